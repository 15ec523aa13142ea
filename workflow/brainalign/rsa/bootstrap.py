"""Bootstrap of RSA scores over stimuli and subjects, with rsatoolbox's semantics.

A bootstrap sample draws subjects with replacement, conditions (stimuli) with
replacement, or both (rsatoolbox ``eval_bootstrap_rdm``, ``eval_bootstrap_pattern``,
``eval_bootstrap``). Resampled conditions follow rsatoolbox's ``subsample_pattern``: the
RDM of the sample keeps every pair of drawn conditions, so a pair of distinct conditions
drawn ``c_i`` and ``c_j`` times appears ``c_i * c_j`` times, and the pairs of two copies of
the same condition (a dissimilarity of 0 that any model "predicts") are dropped. A sample
with fewer than 3 distinct conditions is invalid (NaN), as in rsatoolbox. The group score
of a sample is the mean over the drawn subjects, copies included.

Rather than building each resampled RDM, we weight every pair of the original RDM by its
multiplicity ``c_i * c_j``: weighted ranks (ties averaged over the weighted counts) equal
the ranks of the expanded vector, and a weighted Pearson correlation of them equals its
Spearman correlation - exactly, not approximately. The sample is then a few passes over
the pairs and one matrix product for all models and subjects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ._checks import check_positive_int, check_rdms, check_same_pairs, lookup
from .compare import LINEAR_COMPARISONS, RDM_COMPARISONS, compare_rdm_sets

__all__ = [
    "BOOTSTRAP_KINDS",
    "BootstrapSamples",
    "draw_bootstrap",
    "bootstrap_samples_from_indices",
    "bootstrap_scores",
    "group_bootstrap",
    "bootstrap_ci",
    "bootstrap_p_zero",
    "bootstrap_pair_tests",
]

logger = logging.getLogger(__name__)

#: What a bootstrap sample redraws.
BOOTSTRAP_KINDS: tuple[str, ...] = ("both", "stimuli", "subjects")


@dataclass(frozen=True)
class BootstrapSamples:
    """Bootstrap samples as counts: how often each subject and condition was drawn.

    Attributes
    ----------
    subject_counts : array of int of shape (n_bootstrap, n_subjects)
    condition_counts : array of int of shape (n_bootstrap, n_conditions)
    """

    subject_counts: np.ndarray
    condition_counts: np.ndarray

    @property
    def n_bootstrap(self) -> int:
        return int(self.subject_counts.shape[0])


def draw_bootstrap(
    n_subjects: int,
    n_conditions: int,
    n_bootstrap: int,
    *,
    kind: str = "both",
    random_state: int | np.random.Generator | None = None,
) -> BootstrapSamples:
    """Draw bootstrap samples of subjects and/or conditions, with replacement.

    Parameters
    ----------
    n_subjects, n_conditions, n_bootstrap : int
    kind : {"both", "stimuli", "subjects"}
        Resample subjects and conditions, conditions only, or subjects only.
    random_state : int, Generator or None

    Returns
    -------
    BootstrapSamples
    """
    lookup(dict.fromkeys(BOOTSTRAP_KINDS), kind, "kind")
    n_subjects = check_positive_int(n_subjects, "n_subjects")
    n_conditions = check_positive_int(n_conditions, "n_conditions", minimum=3)
    n_bootstrap = check_positive_int(n_bootstrap, "n_bootstrap")
    rng = np.random.default_rng(random_state)
    subjects = rng.integers(0, n_subjects, size=(n_bootstrap, n_subjects))
    conditions = rng.integers(0, n_conditions, size=(n_bootstrap, n_conditions))
    if kind == "stimuli":
        subjects = np.tile(np.arange(n_subjects), (n_bootstrap, 1))
    if kind == "subjects":
        conditions = np.tile(np.arange(n_conditions), (n_bootstrap, 1))
    return bootstrap_samples_from_indices(subjects, conditions, n_subjects, n_conditions)


def bootstrap_samples_from_indices(
    subject_indices: np.ndarray,
    condition_indices: np.ndarray,
    n_subjects: int,
    n_conditions: int,
) -> BootstrapSamples:
    """Bootstrap samples from drawn indices (e.g. the draws rsatoolbox made).

    Parameters
    ----------
    subject_indices : array of int of shape (n_bootstrap, n_draws_subjects)
    condition_indices : array of int of shape (n_bootstrap, n_draws_conditions)
    n_subjects, n_conditions : int
        Totals, so that undrawn ones get a count of 0.

    Returns
    -------
    BootstrapSamples
    """

    def counts(indices: np.ndarray, total: int) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.intp)
        offsets = np.arange(indices.shape[0])[:, None] * total
        flat = np.bincount((indices + offsets).ravel(), minlength=indices.shape[0] * total)
        return flat.reshape(indices.shape[0], total)

    return BootstrapSamples(counts(subject_indices, n_subjects), counts(condition_indices, n_conditions))


class _WeightedRanks:
    """Ranks of a stack of vectors under integer weights, reusing one dense ranking."""

    def __init__(self, vectors: np.ndarray):
        dense = rankdata(vectors, method="dense", axis=1).astype(np.intp) - 1
        self.n_groups = dense.max(axis=1) + 1
        self.starts = np.concatenate([[0], np.cumsum(self.n_groups)[:-1]])
        self.ids = dense + self.starts[:, None]
        self.total = int(self.n_groups.sum())

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        n_vectors = self.ids.shape[0]
        sums = np.bincount(self.ids.ravel(), weights=np.tile(weights, n_vectors), minlength=self.total)
        before = np.cumsum(sums) - sums
        before -= np.repeat(before[self.starts], self.n_groups)
        return (before + (sums + 1.0) / 2.0)[self.ids]


def _weighted_transform(values: np.ndarray, weights: np.ndarray, method: str) -> np.ndarray:
    """Weighted analogue of :func:`~brainalign.rsa.transform_rdms` (NaN rows if degenerate)."""
    total = weights.sum()
    centred = values - (values @ weights / total)[:, None]
    if method == "rho_a":
        return centred * np.sqrt(12.0 / (total**3 - total))
    norms = np.sqrt((centred * centred) @ weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        return centred / np.where(norms > 0, norms, np.nan)[:, None]


def bootstrap_scores(
    model_rdms: np.ndarray,
    subject_rdms: np.ndarray,
    samples: BootstrapSamples,
    *,
    method: str = "spearman",
) -> np.ndarray:
    """Per-subject comparisons of every model RDM under each sample's conditions.

    Parameters
    ----------
    model_rdms : array of shape (n_models, n_pairs)
    subject_rdms : array of shape (n_subjects, n_pairs)
    samples : BootstrapSamples
        From :func:`draw_bootstrap`; only the condition counts are used here (subject
        counts weight the group mean in :func:`group_bootstrap`).
    method : {"spearman", "pearson", "rho_a", "kendall_tau_a"}

    Returns
    -------
    scores : array of shape (n_bootstrap, n_models, n_subjects)
        NaN for samples with fewer than 3 distinct conditions.
    """
    lookup(RDM_COMPARISONS, method, "method")
    models = check_rdms(model_rdms, "model_rdms")
    subjects = check_rdms(subject_rdms, "subject_rdms")
    check_same_pairs(models, subjects, ("model_rdms", "subject_rdms"))
    counts = np.asarray(samples.condition_counts)
    n = int(round((1 + np.sqrt(1 + 8 * models.shape[1])) / 2))
    if counts.shape[1] != n:
        raise ValueError(
            f"bootstrap samples draw from {counts.shape[1]} conditions but the RDMs have {n}; "
            "draw them with n_conditions matching the RDMs"
        )
    rows, cols = np.triu_indices(n, k=1)
    vectors = np.concatenate([models, subjects])
    ranks = _WeightedRanks(vectors) if method not in ("pearson", "kendall_tau_a") else None
    full = compare_rdm_sets(models, subjects, method)
    scores = np.full((counts.shape[0], models.shape[0], subjects.shape[0]), np.nan)
    for b, count in enumerate(counts):
        if b and b % max(1, counts.shape[0] // 4) == 0:
            logger.info("bootstrap: %d / %d samples", b, counts.shape[0])
        if np.count_nonzero(count) < 3:
            continue
        if np.all(count == 1):
            scores[b] = full
            continue
        weights = (count[rows] * count[cols]).astype(np.float64)
        scores[b] = _sample_scores(vectors, weights, ranks, models.shape[0], method)
    logger.info("bootstrap: %d samples, %d models x %d subjects", counts.shape[0], *full.shape)
    return scores


def _sample_scores(vectors, weights, ranks, n_models, method) -> np.ndarray:
    """Scores (n_models, n_subjects) of one sample, from its pair weights."""
    if method == "kendall_tau_a":
        keep = weights > 0
        expanded = [np.repeat(v[keep], weights[keep].astype(np.intp)) for v in vectors]
        compare = RDM_COMPARISONS[method]
        return np.array([[compare(m, s) for s in expanded[n_models:]] for m in expanded[:n_models]])
    values = vectors if ranks is None else ranks(weights)
    transformed = _weighted_transform(values, weights, method)
    return (transformed[:n_models] * weights) @ transformed[n_models:].T


def group_bootstrap(scores: np.ndarray, samples: BootstrapSamples) -> np.ndarray:
    """Group score of each sample: mean over the drawn subjects, copies included.

    Parameters
    ----------
    scores : array of shape (n_bootstrap, n_models, n_subjects)
        From :func:`bootstrap_scores`.
    samples : BootstrapSamples

    Returns
    -------
    evaluations : array of shape (n_bootstrap, n_models)
    """
    weights = np.asarray(samples.subject_counts, dtype=np.float64)
    if weights.shape != (scores.shape[0], scores.shape[2]):
        raise ValueError(
            f"'scores' has shape {scores.shape} but the samples count {weights.shape} "
            "(n_bootstrap, n_subjects); use the samples the scores were computed with"
        )
    masked = np.where(weights[:, None, :] > 0, scores, 0.0)
    return np.einsum("bms,bs->bm", masked, weights) / weights.sum(axis=1, keepdims=True)


def bootstrap_ci(evaluations: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile confidence interval of bootstrap evaluations (rsatoolbox ``get_ci``).

    As rsatoolbox, the samples are framed by -inf and +inf before taking quantiles, so too
    few samples give an infinite (honest) interval; invalid (NaN) samples are dropped.

    Parameters
    ----------
    evaluations : array of shape (n_bootstrap, ...)
    level : float
        Coverage in (0, 1).

    Returns
    -------
    low, high : arrays of shape evaluations.shape[1:]
    """
    if not 0 < level < 1:
        raise ValueError(f"'level' must be in (0, 1), e.g. 0.95; got {level!r}")
    evaluations = np.asarray(evaluations, dtype=np.float64)
    frame = np.full((2, *evaluations.shape[1:]), np.inf)
    frame[0] = -np.inf
    framed = np.concatenate([frame, evaluations])
    cut = (1 - level) / 2
    with np.errstate(invalid="ignore"):  # interpolating next to -inf/+inf gives NaN: unbounded
        low = np.nanquantile(framed, cut, axis=0)
        high = np.nanquantile(framed, 1 - cut, axis=0)
    return np.where(np.isnan(low), -np.inf, low), np.where(np.isnan(high), np.inf, high)


def bootstrap_p_zero(evaluations: np.ndarray) -> np.ndarray:
    """One-sided bootstrap p-value of ``score > 0``: ``(1 + #{<= 0}) / (1 + n_valid)``.

    Parameters
    ----------
    evaluations : array of shape (n_bootstrap, ...)
        NaN (invalid) samples are ignored.

    Returns
    -------
    p : array of shape evaluations.shape[1:]
    """
    evaluations = np.asarray(evaluations, dtype=np.float64)
    valid = np.isfinite(evaluations)
    return (1.0 + np.sum(valid & (evaluations <= 0), axis=0)) / (1.0 + valid.sum(axis=0))


def bootstrap_pair_tests(evaluations: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-values of every pairwise difference (rsatoolbox formula).

    ``p = 2 min(P(a < b), P(a > b))`` over the samples (ties excluded), then
    ``(N - 1) / N * p + 1 / N``, as rsatoolbox's ``bootstrap_pair_tests``. Samples in
    which any model is NaN are dropped first.

    Parameters
    ----------
    evaluations : array of shape (n_bootstrap, n_models)

    Returns
    -------
    p : array of shape (n_models, n_models)
        Symmetric, 1 on the diagonal.
    """
    evaluations = np.asarray(evaluations, dtype=np.float64)
    evaluations = evaluations[np.all(np.isfinite(evaluations), axis=1)]
    n = evaluations.shape[0]
    if n == 0:
        return np.full((evaluations.shape[1],) * 2, np.nan)
    less = (evaluations[:, :, None] < evaluations[:, None, :]).sum(axis=0)
    ties = (evaluations[:, :, None] == evaluations[:, None, :]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        proportion = less / (n - ties)
    proportion = np.minimum(proportion, 1 - proportion) * 2
    p = (n - 1) / n * proportion + 1 / n
    np.fill_diagonal(p, 1.0)
    return p
