"""Per-voxel significance of held-out encoding scores: permutation nulls and FDR.

The null distribution of each voxel's reported score (per-fold Pearson r averaged over
folds, or r of the concatenated predictions) comes from permuted responses:

``"timeseries"``
    Block permutation. Within every run the samples are cut into contiguous blocks of
    ``block_size`` samples and the blocks are shuffled, so the null keeps the
    autocorrelation within blocks (AR(1) noise with phi = 0.5 is uncorrelated after a
    few samples; use blocks longer than the autocorrelation).
``"concepts"``
    Label permutation: the responses of whole concepts are exchanged.

The outer folds are refitted on every permutation, each voxel keeping the alpha its
inner CV chose on the real data, and the permuted data are predicted and scored like
the real ones; the same permutations serve every voxel. Why refit: with
cross-validation each fold's training set holds the other folds' test data, so the
per-fold scores of a null voxel are positively correlated. Permuting only the held-out
data against fixed predictions makes the folds independent in the null, too narrow a
null for their mean (measured: 13-15% of null voxels at p < 0.05 for 4 runs of AR(1)
noise; 5-7% with refitting). Refitting costs one product with the responses per fold and
permutation (:class:`~brainalign.encoding.solver.FixedAlphaRidge`).

One-sided p-values (better than chance) are returned: the empirical
``p_perm = (1 + #{null >= observed}) / (1 + n_permutations)``, ``p_normal`` from a normal
fit to the permutation null (its mean and standard deviation) and ``p_gpd`` from a
generalised Pareto fit to the null's upper tail (Knijnenburg et al. 2009; see
:mod:`~brainalign.encoding.tail`). ``p`` is the one ``tail`` chooses (config
``encoding.tail``: ``"gpd"`` in the workflow; ``"normal"`` when a caller names none, as
before); voxels are corrected together with
Benjamini-Hochberg on ``p`` (:func:`fdr_bh`). The empirical p cannot go below
``1 / (n_permutations + 1)``, so with a few hundred permutations no voxel of a
whole-brain mask survives FDR control; the normal fit resolves small p only through the
normal's tail, beyond what the permutations show; the GPD tail is fitted to the
permutations' own largest values (tests/test_tail.py compares the three on AR(1) nulls).

Calibration (tests/test_encoding_stats.py; 20 null datasets of 4 runs x 100 TRs, smooth
features, AR(1) noise with phi = 0.5, blocks of 10): 6.4% of null voxels at p < 0.05
and none at q <= 0.05. The small excess comes from block edges, which break the
autocorrelation the real data keep; longer blocks reduce it (5.5-6% with 25 TRs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ._checks import check_blocks, check_groups, lookup
from .delays import make_delays
from .ridge import EncodingResult, standardize
from .scoring import SCORINGS
from .device import Device
from .nulls import PermutedRefit, null_statistics
from .solver import FixedAlphaRidge
from .tail import MAX_TAIL, TAILS, empirical_p, gpd_tail_p, normal_p

__all__ = [
    "PERMUTATIONS",
    "PermutationResult",
    "block_permutation",
    "fdr_bh",
    "permutation_pvalues",
    "permutation_test",
]

logger = logging.getLogger(__name__)

Split = tuple[np.ndarray, np.ndarray]

#: ``method`` values of :func:`permutation_pvalues` that take the former, gathering path.
GATHER_METHODS = ("hat-gather", "eigen-gather", "auto-gather")


def block_permutation(n: int, block_size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices that shuffle contiguous blocks of ``block_size`` samples (last may be shorter).

    Parameters
    ----------
    n : int
        Number of samples.
    block_size : int
        Samples per block (>= 1); 1 is a plain permutation.
    rng : Generator
        Random generator.

    Returns
    -------
    order : array of shape (n,), int
        A permutation of ``range(n)`` that keeps each block's samples together and in order.
    """
    blocks = np.array_split(np.arange(n), np.arange(block_size, n, block_size))
    return np.concatenate([blocks[i] for i in rng.permutation(len(blocks))])


def _permute_runs(groups: np.ndarray, block_size: int, rng: np.random.Generator) -> np.ndarray:
    """Block permutation inside every run; runs stay in place."""
    order = np.arange(groups.size)
    for run in np.unique(groups):
        rows = np.flatnonzero(groups == run)
        order[rows] = rows[block_permutation(rows.size, block_size, rng)]
    return order


def _permute_concepts(groups: np.ndarray, block_size: int, rng: np.random.Generator) -> np.ndarray:
    """Exchange whole concepts (each concept must have the same number of samples)."""
    labels, inverse = np.unique(groups, return_inverse=True)
    rows = [np.flatnonzero(inverse == i) for i in range(labels.size)]
    if len({r.size for r in rows}) > 1:
        raise ValueError(
            "label permutation needs the same number of samples per concept in 'groups'; "
            "got unequal counts. Average repeats per concept first"
        )
    order = np.arange(groups.size)
    for target, source in zip(rows, (rows[i] for i in rng.permutation(labels.size))):
        order[target] = source
    return order


PERMUTATIONS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "timeseries": _permute_runs,
    "concepts": _permute_concepts,
}


@dataclass(frozen=True, eq=False)
class PermutationResult:
    """Per-voxel permutation test of a held-out score.

    Attributes
    ----------
    p : array of shape (n_voxels,), float64
        The p-value of the chosen ``tail``: ``p_normal``, ``p_gpd`` or ``p_perm``.
    p_perm : array of shape (n_voxels,), float64
        Empirical p-value ``(1 + #{null >= observed}) / (1 + n_permutations)``.
    observed : array of shape (n_voxels,), float64
        The statistic on the real data.
    null_mean, null_sd : arrays of shape (n_voxels,), float64
        Mean and standard deviation of the statistic over permutations.
    p_normal : array of shape (n_voxels,), float64
        ``norm.sf((observed - null_mean) / null_sd)``; 1 where the null has no spread.
    p_gpd : array of shape (n_voxels,), float64
        Generalised Pareto tail p (:func:`~brainalign.encoding.tail.gpd_tail_p`).
    tail_method : array of shape (n_voxels,), str
        How ``p_gpd`` was found: ``empirical`` (>= 10 exceedances), ``gpd`` or
        ``fallback`` (no GPD fit passed: empirical).
    tail : str
        Which p is ``p``.
    """

    p: np.ndarray
    p_perm: np.ndarray
    observed: np.ndarray
    null_mean: np.ndarray
    null_sd: np.ndarray
    p_normal: np.ndarray | None = None
    p_gpd: np.ndarray | None = None
    tail_method: np.ndarray | None = None
    tail: str = "normal"


def permutation_test(
    result: EncodingResult,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    kind: str,
    groups: np.ndarray,
    n_permutations: int = 1000,
    block_size: int = 10,
    random_state: int | None = 0,
    n_targets_batch: int | None = 4096,
    tail: str = "normal",
) -> PermutationResult:
    """Permutation test of every voxel's score in a :func:`fit_encoding` result.

    Parameters
    ----------
    result : EncodingResult
        The fit (its folds, delays, chosen alphas, form and scoring are reused).
    X : array of shape (n_samples, n_features)
        The features it was fitted on (before delays).
    Y : array of shape (n_samples, n_voxels)
        The responses it was fitted on.
    kind : {"timeseries", "concepts"}
        Block permutation within runs, or label permutation of concepts.
    groups : array of shape (n_samples,)
        Run or concept label of every sample (as given to :func:`fit_encoding`).
    n_permutations, block_size, random_state, n_targets_batch, tail
        See :func:`permutation_pvalues`.

    Returns
    -------
    PermutationResult
        ``observed`` equals ``result.r`` up to float32 round-off.
    """
    X_fit = make_delays(np.asarray(X, dtype=np.float32), result.delays, groups)
    splits = [
        (np.flatnonzero(result.fold != k), np.flatnonzero(result.fold == k))
        for k in range(result.alpha.shape[0])
    ]
    return permutation_pvalues(
        X_fit,
        Y,
        splits,
        result.alpha,
        kind=kind,
        groups=groups,
        form=result.solver,
        scoring=result.scoring,
        n_permutations=n_permutations,
        block_size=block_size,
        random_state=random_state,
        n_targets_batch=n_targets_batch,
        tail=tail,
    )


def permutation_pvalues(
    X_fit: np.ndarray,
    Y: np.ndarray,
    splits: Sequence[Split],
    alpha: np.ndarray,
    *,
    kind: str,
    groups: np.ndarray,
    form: str = "auto",
    scoring: str = "fold_mean",
    n_permutations: int = 1000,
    block_size: int = 10,
    random_state: int | None = 0,
    n_targets_batch: int | None = 4096,
    method: str = "auto",
    tail: str = "normal",
    dtype: str = "float32",
) -> PermutationResult:
    """One-sided permutation test of cross-validated ridge scores, refitting every fold.

    Parameters
    ----------
    X_fit : array of shape (n_samples, n_columns)
        Features as fitted (delays applied); z-scored per fold inside.
    Y : array of shape (n_samples, n_voxels)
        Responses.
    splits : sequence of (train_idx, test_idx)
        The outer folds; each sample tested once.
    alpha : array of shape (n_folds, n_voxels)
        Alpha of every fold and voxel (kept fixed under permutation).
    kind : {"timeseries", "concepts"}
        Which permutation (see the module docstring).
    groups : array of shape (n_samples,)
        Run label (timeseries) or concept label (concepts) of every sample.
    form : {"auto", "primal", "kernel"}
        Ridge form (same model either way).
    scoring : {"fold_mean", "concatenated"}
        The statistic: mean over folds of the per-fold r, or r of all samples together.
    n_permutations : int
        Number of permutations (>= 2).
    block_size : int
        Samples per block for ``"timeseries"`` (>= 1).
    random_state : int or None
        Seed of the permutations.
    n_targets_batch : int or None
        Voxels processed at a time (bounds memory); None takes all.
    method : {"auto", "hat", "eigen", "hat-gather", "eigen-gather", "auto-gather"}
        How each fold is refitted: a hat matrix per alpha or the eigenbasis
        (:class:`~brainalign.encoding.nulls.PermutedRefit`, the operators permuted, on the
        backend's device); ``"-gather"``: the former path, the responses gathered per
        permutation (:class:`~brainalign.encoding.solver.FixedAlphaRidge`, host side).
        ``"auto"``: the form with fewer operations; gathered on the CPU (numpy backend,
        measured faster there), permuted operators on a torch or cupy device.
        The same result up to float32 round-off.
    tail : {"gpd", "normal", "empirical"}
        Which p is ``p`` (and so which is FDR-corrected downstream): see
        :mod:`~brainalign.encoding.tail`.
    dtype : {"float32", "float64"}
        Precision of the refits' products (float64: for exact comparisons).

    Returns
    -------
    PermutationResult
    """
    permute = lookup(PERMUTATIONS, kind, "kind")
    lookup(dict.fromkeys(TAILS), tail, "tail")
    lookup(dict.fromkeys(SCORINGS), scoring, "scoring")
    _check_positive(n_permutations, "n_permutations", minimum=2)
    _check_positive(block_size, "block_size")
    groups = check_groups(groups, Y.shape[0])
    if kind == "timeseries":
        check_blocks(groups, block_size)
    rng = np.random.default_rng(random_state)
    orders = np.stack([permute(groups, block_size, rng) for _ in range(n_permutations)])
    n_top = min(MAX_TAIL, n_permutations // 4) + 1  # the GPD's largest null values
    folds = [standardize(X_fit, train, test) for train, test in splits]
    stats = _null_statistics(
        Y, orders, folds, splits, alpha, form, method, scoring, n_targets_batch, n_top, dtype
    )
    result = _summarize(stats, n_permutations, tail)
    logger.info(
        "permutation test (%s, %d permutations, folds refitted%s): %d of %d voxels with p < 0.05 "
        "(%s tail; normal fit %d, GPD %d, empirical %d)",
        kind,
        n_permutations,
        f", blocks of {block_size}" if kind == "timeseries" else "",
        int(np.sum(result.p < 0.05)),
        result.p.size,
        tail,
        *(int(np.sum(v < 0.05)) for v in (result.p_normal, result.p_gpd, result.p_perm)),
    )
    return result


def _null_statistics(
    Y, orders, folds, splits, alpha, form, method, scoring, n_targets_batch, n_top, dtype
):
    """Observed scores and null statistics by the refit path ``method`` names."""
    if method == "auto" and _gathering_is_cheaper():
        method = "auto-gather"
    if method in GATHER_METHODS:  # the former path: gathers of the permuted responses
        models = gather_models(folds, alpha, form, method, scoring)
        return _gather_statistics(Y, orders, models, splits, scoring, n_targets_batch, n_top)
    device, centred = Device(), scoring == "fold_mean"
    refits = [
        PermutedRefit(*fold, a, device, form=form, method=method, centred=centred, dtype=dtype)
        for fold, a in zip(folds, alpha)
    ]
    return null_statistics(
        Y, orders, refits, splits, scoring=scoring, n_targets_batch=n_targets_batch, n_top=n_top
    )


def _gathering_is_cheaper() -> bool:
    """On the CPU (numpy backend), gathering the permuted responses is the faster refit.

    Measured (benchmarks/permutation_scale.py, the study unit at 4096 voxels x 20
    permutations, 2 folds run, 1 thread): gathering 0.87 ms per voxel x response set,
    1.07x the GEMM bound (0.81 ms); permuting the operators 1.22 ms (copies of the hat
    operators per alpha group and permutation). On a torch or cupy backend the operators
    are permuted: everything stays on the device, where host-side gathers dominated.
    """
    return Device().name == "numpy"


def gather_models(folds, alpha, form, method, scoring) -> list[FixedAlphaRidge]:
    """The former path's fold models (one decomposition per fold, for every voxel)."""
    return [
        FixedAlphaRidge(
            *fold, a, form=form, method=method.split("-")[0], centred=scoring == "fold_mean"
        )
        for fold, a in zip(folds, alpha)
    ]


def _gather_statistics(Y, orders, models, splits, scoring, n_targets_batch, n_top):
    """Null statistics by gathering the permuted responses (the reference path, host side)."""
    size = Y.shape[1] if n_targets_batch is None else int(n_targets_batch)
    stats = {key: np.zeros(Y.shape[1]) for key in ("observed", "exceed", "sum", "sum_sq")}
    stats["top"] = np.full((n_top, Y.shape[1]), -np.inf)
    for start in range(0, Y.shape[1], size):
        cols = slice(start, start + size)
        y = np.ascontiguousarray(np.asarray(Y[:, cols], dtype=np.float32).T)
        scorer = _Scorer(y, cols, models, splits, scoring)
        observed = scorer(np.arange(Y.shape[0])[None])[0]
        stats["observed"][cols] = observed
        for group in np.array_split(orders, -(-len(orders) // _sets_per_product(y.shape))):
            null = scorer(group)
            stats["exceed"][cols] += np.sum(null >= observed - 1e-6, axis=0)
            stats["sum"][cols] += null.sum(axis=0)
            stats["sum_sq"][cols] += np.square(null).sum(axis=0)
            stats["top"][:, cols] = _largest(stats["top"][:, cols], null)
    return stats


def _sets_per_product(shape: tuple[int, int], budget: int = 2**24) -> int:
    """How many permuted response sets to stack in one product (about 64 MB of float32)."""
    return max(1, budget // max(1, shape[0] * shape[1]))


def _largest(top: np.ndarray, null: np.ndarray) -> np.ndarray:
    """The ``len(top)`` largest values per column of ``top`` and ``null`` together."""
    both = np.concatenate([top, null], axis=0)
    return np.partition(both, both.shape[0] - top.shape[0], axis=0)[-top.shape[0] :]


def _summarize(stats: dict[str, np.ndarray], n: int, tail: str) -> PermutationResult:
    mean = stats["sum"] / n
    sd = np.sqrt(np.maximum(stats["sum_sq"] / n - mean**2, 0.0) * n / (n - 1))
    observed = stats["observed"]
    p_normal, p_perm = normal_p(observed, mean, sd), empirical_p(stats["exceed"], n)
    gpd = gpd_tail_p(observed, stats["exceed"], stats["top"], n)
    chosen = {"normal": p_normal, "gpd": gpd.p, "empirical": p_perm}[tail]
    return PermutationResult(chosen, p_perm, observed, mean, sd, p_normal, gpd.p, gpd.method, tail)


class _Scorer:
    """The reported score of permuted responses, refitting every fold with fixed alphas.

    ``y`` is the batch ``cols`` of the voxels, voxel-major (n_batch, n_samples), so that
    gathering the permuted samples gives contiguous (n_batch, n_sets, n) blocks for the
    products and the correlations.
    """

    def __init__(self, y: np.ndarray, cols: slice, models, splits, scoring: str):
        self.y, self.cols, self.models, self.splits, self.scoring = y, cols, models, splits, scoring

    def __call__(self, orders: np.ndarray) -> np.ndarray:
        """Statistic of each permutation in ``orders`` (n_sets, n_samples): (n_sets, n_voxels)."""
        per_fold, parts = [], []
        for model, (train, test) in zip(self.models, self.splits):
            pred = model.predict(np.take(self.y, orders[:, train], axis=1), self.cols)
            if self.scoring == "fold_mean":  # pred: (n_voxels, n_sets, n_test), test-centred
                per_fold.append(_pearson_centred(np.take(self.y, orders[:, test], axis=1), pred))
            else:
                parts.append((test, pred))
        if self.scoring == "fold_mean":
            return np.mean(per_fold, axis=0).T
        rows = np.argsort(np.concatenate([test for test, _ in parts]))
        predictions = np.concatenate([pred for _, pred in parts], axis=-1)[..., rows]
        return _pearson(np.take(self.y, orders, axis=1), predictions).T


def _pearson(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis of (n_voxels, n_sets, n) arrays; 0 where either is constant."""
    return _pearson_centred(y, p - p.mean(axis=-1, keepdims=True))


def _pearson_centred(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """:func:`_pearson` where ``p`` is already centred along the last axis.

    No centred copy of ``y`` is made: ``sum(y_c p) = sum(y p)`` as ``p`` sums to 0, and
    ``sum(y_c^2) = sum(y^2) - n mean(y)^2`` (the sums in float32, the mean and the
    combination in float64; ``y`` counts as constant where this is below 1e-6 of ``sum(y^2)``).
    """
    yy = np.einsum("ijk,ijk->ij", y, y).astype(np.float64)
    sy = yy - np.square(y.sum(axis=-1, dtype=np.float64)) / y.shape[-1]
    sp = np.einsum("ijk,ijk->ij", p, p).astype(np.float64)
    both = (sy > 1e-6 * yy) & (sp > 0)
    cross = np.einsum("ijk,ijk->ij", y, p).astype(np.float64)
    return np.where(both, cross / np.sqrt(np.where(both, sy * sp, 1.0)), 0.0)


def fdr_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), as ``scipy.stats.false_discovery_control``.

    Parameters
    ----------
    p : array of shape (n,)
        p-values in [0, 1]; NaN entries are ignored and stay NaN.

    Returns
    -------
    q : array of shape (n,), float64
        ``min_{j >= i} p_(j) n / j`` over the sorted p-values, capped at 1; a voxel is
        significant at false discovery rate ``q_level`` when ``q <= q_level``.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"'p' must be a 1D array of p-values; got shape {p.shape}")
    valid = np.isfinite(p)
    if np.any((p[valid] < 0) | (p[valid] > 1)):
        raise ValueError("'p' must hold p-values in [0, 1]; got values outside. Check the input")
    q = np.full(p.shape, np.nan)
    values = p[valid]
    order = np.argsort(values, kind="stable")
    ranked = values[order] * values.size / np.arange(1, values.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(values)
    out[order] = np.minimum(adjusted, 1.0)
    q[valid] = out
    return q


def _check_positive(value, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"'{name}' must be an integer >= {minimum}; got {value!r}")
