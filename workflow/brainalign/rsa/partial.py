"""Partial-correlation ablation: a VLM's RDM with its language-only counterpart's partialled out.

Paper 000 (Pereira concepts) asks whether a vision-language model's alignment with the
brain comes from what it shares with its language-only counterpart (VisualBERT vs BERT,
LLaVA vs Llama...). It removes the counterpart's RDM ``z`` from the VLM's RDM ``x`` and
correlates what is left with the brain RDM ``y``. Three ``kind`` s:

``"partial"`` (default)
    Partial Spearman: the Pearson partial correlation of the ranks of ``x`` and ``y``
    given the ranks of ``z`` (both ``x`` and ``y`` residualised on ``z``):
    ``(r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2))``.
``"semipartial"``
    Only ``x`` residualised (ranks): ``(r_xy - r_xz r_yz) / sqrt(1 - r_xz^2)``.
``"paper"``
    What the paper's code does (``rsa/partial_correlations.ipynb`` of dmg-illc's
    vl-concept-processing): ordinary least squares of the raw ``x`` on the raw ``z``, then
    the Spearman correlation of the residuals with ``y``.

The initial and ablated scores are compared with a paired bootstrap over stimuli: each
sample redraws the stimuli, rebuilds the RDM vectors of the drawn stimuli (pairs of two
copies of one stimulus dropped) and recomputes both scores. As in
:mod:`~brainalign.rsa.bootstrap`, each sample is the original pairs weighted by the number
of times they were drawn; weighted ranks and weighted correlations equal those of the
rebuilt vectors exactly, and a partial correlation is a function of the three pairwise
correlations. The paper's own test (a Fisher z-test with the number of RDM cells as the
sample size) treats the cells as independent, which they are not; it is not used here.
"""

from __future__ import annotations

import logging

import numpy as np

from ._checks import check_rdm, check_rdms, check_same_pairs, lookup
from .bootstrap import (
    BootstrapSamples,
    _weighted_transform,
    _WeightedRanks,
    bootstrap_ci,
    bootstrap_pair_tests,
    draw_bootstrap,
)

__all__ = ["PARTIAL_KINDS", "partial_spearman", "partial_bootstrap", "partial_ablation"]

logger = logging.getLogger(__name__)

#: How the counterpart's RDM is removed (see the module docstring).
PARTIAL_KINDS: tuple[str, ...] = ("partial", "semipartial", "paper")


def _check_inputs(model_rdms, control_rdms, brain_rdm, kind):
    """Stacks (n_models, n_pairs) of the model and control RDMs, and the brain RDM."""
    lookup(dict.fromkeys(PARTIAL_KINDS), kind, "kind")
    models = check_rdms(np.atleast_2d(model_rdms), "model_rdms")
    controls = check_rdms(np.atleast_2d(control_rdms), "control_rdms")
    brain = check_rdm(brain_rdm, "brain_rdm")
    check_same_pairs(models, controls, ("model_rdms", "control_rdms"))
    check_same_pairs(models, brain, ("model_rdms", "brain_rdm"))
    if controls.shape[0] not in (1, models.shape[0]):
        raise ValueError(
            f"'control_rdms' must hold 1 RDM or one per model RDM ({models.shape[0]}); got "
            f"{controls.shape[0]}. Pair each VLM layer with its counterpart's layer"
        )
    return models, np.broadcast_to(controls, models.shape), brain


def _from_correlations(r_xy, r_xz, r_yz, kind) -> np.ndarray:
    """Partial or semipartial correlation of x and y given z, from the pairwise ones."""
    numerator = r_xy - r_xz * r_yz
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "semipartial":
            return numerator / np.sqrt(1.0 - r_xz**2)
        return numerator / np.sqrt((1.0 - r_xz**2) * (1.0 - r_yz**2))


def _weighted_residuals(x, z, weights) -> np.ndarray:
    """Residuals (n_models, n_pairs) of a weighted least-squares fit of each x on z (+ 1)."""
    total = weights.sum()
    xc = x - ((x @ weights) / total)[:, None]
    zc = z - ((z @ weights) / total)[:, None]
    slope = ((xc * zc) @ weights) / ((zc * zc) @ weights)
    return xc - slope[:, None] * zc


def _scores(models, controls, brain, weights, kind, ranks=None):
    """Initial and ablated scores (each of shape (n_models,)) under pair weights."""
    n = models.shape[0]
    vectors = np.concatenate([models, controls, brain[None]])
    ranked = ranks(weights) if ranks is not None else _WeightedRanks(vectors)(weights)
    t = _weighted_transform(ranked, weights, "spearman") * np.sqrt(weights)
    initial = t[:n] @ t[-1]
    if kind == "paper":
        residuals = _weighted_residuals(models, controls, weights)
        ranked_res = _WeightedRanks(residuals)(weights)
        r = _weighted_transform(ranked_res, weights, "spearman") * np.sqrt(weights)
        return initial, r @ t[-1]
    r_xz = np.sum(t[:n] * t[n:2 * n], axis=1)
    r_yz = t[n:2 * n] @ t[-1]
    return initial, _from_correlations(initial, r_xz, r_yz, kind)


def partial_spearman(
    model_rdms: np.ndarray, control_rdms: np.ndarray, brain_rdm: np.ndarray, *, kind: str = "partial"
) -> np.ndarray:
    """Spearman correlation of model RDMs with a brain RDM, the control RDMs partialled out.

    Parameters
    ----------
    model_rdms : array of shape (n_models, n_pairs) or (n_pairs,)
        Condensed RDMs of the VLM (e.g. one per layer).
    control_rdms : array of shape (n_models, n_pairs) or (n_pairs,)
        The language-only counterpart's RDM for each model RDM (or one for all).
    brain_rdm : array of shape (n_pairs,)
        E.g. the group-mean brain RDM of one ROI.
    kind : {"partial", "semipartial", "paper"}

    Returns
    -------
    rho : array of shape (n_models,)
    """
    models, controls, brain = _check_inputs(model_rdms, control_rdms, brain_rdm, kind)
    return _scores(models, controls, brain, np.ones(brain.size), kind)[1]


def partial_bootstrap(
    model_rdms: np.ndarray,
    control_rdms: np.ndarray,
    brain_rdm: np.ndarray,
    samples: BootstrapSamples,
    *,
    kind: str = "partial",
) -> tuple[np.ndarray, np.ndarray]:
    """Initial and ablated scores of every bootstrap sample of the stimuli (paired).

    Parameters
    ----------
    model_rdms, control_rdms, brain_rdm
        As :func:`partial_spearman`.
    samples : BootstrapSamples
        From :func:`~brainalign.rsa.bootstrap.draw_bootstrap` (condition counts used).
    kind : {"partial", "semipartial", "paper"}

    Returns
    -------
    initial, ablated : arrays of shape (n_bootstrap, n_models)
        NaN for samples with fewer than 3 distinct stimuli.
    """
    models, controls, brain = _check_inputs(model_rdms, control_rdms, brain_rdm, kind)
    counts = np.asarray(samples.condition_counts)
    n = int(round((1 + np.sqrt(1 + 8 * brain.size)) / 2))
    if counts.shape[1] != n:
        raise ValueError(
            f"bootstrap samples draw from {counts.shape[1]} stimuli but the RDMs have {n}; "
            "draw them with n_conditions matching the RDMs"
        )
    rows, cols = np.triu_indices(n, k=1)
    ranks = _WeightedRanks(np.concatenate([models, controls, brain[None]]))
    initial = np.full((counts.shape[0], models.shape[0]), np.nan)
    ablated = np.full_like(initial, np.nan)
    for b, count in enumerate(counts):
        if np.count_nonzero(count) >= 3:
            weights = (count[rows] * count[cols]).astype(np.float64)
            initial[b], ablated[b] = _scores(models, controls, brain, weights, kind, ranks)
    return initial, ablated


def partial_ablation(
    model_rdms: np.ndarray,
    control_rdms: np.ndarray,
    brain_rdm: np.ndarray,
    *,
    kind: str = "partial",
    n_bootstrap: int = 1000,
    level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Initial vs ablated score of each model RDM, with a paired stimulus bootstrap test.

    Parameters
    ----------
    model_rdms, control_rdms, brain_rdm, kind
        As :func:`partial_spearman`.
    n_bootstrap : int
    level : float
        Coverage of the percentile CIs.
    random_state : int, Generator or None

    Returns
    -------
    result : dict of str to array of shape (n_models,)
        ``initial``, ``ablated``, ``difference`` (initial - ablated), its ``ci_low`` and
        ``ci_high``, and ``p`` (two-sided, rsatoolbox's bootstrap pair-test formula).
    """
    models, controls, brain = _check_inputs(model_rdms, control_rdms, brain_rdm, kind)
    initial, ablated = _scores(models, controls, brain, np.ones(brain.size), kind)
    n = int(round((1 + np.sqrt(1 + 8 * brain.size)) / 2))
    samples = draw_bootstrap(1, n, n_bootstrap, kind="stimuli", random_state=random_state)
    boot_initial, boot_ablated = partial_bootstrap(models, controls, brain, samples, kind=kind)
    low, high = bootstrap_ci(boot_initial - boot_ablated, level)
    p = np.array([bootstrap_pair_tests(np.stack([a, b], axis=1))[0, 1]
                  for a, b in zip(boot_initial.T, boot_ablated.T)])
    logger.info("partial ablation (%s, %d samples): initial %s, ablated %s", kind, n_bootstrap,
                np.round(initial, 3), np.round(ablated, 3))
    return {"initial": initial, "ablated": ablated, "difference": initial - ablated,
            "ci_low": low, "ci_high": high, "p": p, "alternative": "two-sided"}
