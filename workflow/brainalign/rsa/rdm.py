"""Representational dissimilarity matrices (RDMs) of condition patterns.

An RDM is stored condensed: the upper triangle (diagonal excluded) of the
n_conditions x n_conditions dissimilarity matrix, row by row - the order of
``scipy.spatial.distance.squareform`` - so an RDM over ``n`` conditions has
``n * (n - 1) / 2`` entries. Distances are computed from one Gram matrix
(``Z @ Z.T``, a single BLAS call) in float64.

Metrics of one pattern matrix (``RDM_METRICS``):

``"correlation"``
    ``1 - Pearson r`` between two patterns (rsatoolbox ``'correlation'``,
    scipy ``'correlation'``).
``"cosine"``
    ``1 - cosine similarity`` (scipy ``'cosine'``; rsatoolbox has no such RDM).
``"squared_euclidean"``
    Squared Euclidean distance divided by the number of features, i.e. the
    mean squared difference per feature. This is what rsatoolbox's
    ``calc_rdm(method='euclidean')`` returns (it labels it "squared
    euclidean"); it is therefore comparable across ROIs of different sizes.
``"euclidean"``
    The plain Euclidean distance (scipy ``'euclidean'``), not divided by
    anything. Rank-based comparisons give the same result as with
    ``"squared_euclidean"``; Pearson comparisons do not.

Cross-validated distance of repeated measurements (:func:`compute_crossnobis_rdm`):

``"crossnobis"``
    rsatoolbox's ``calc_rdm(method='crossnobis')`` with leave-one-run-out folds:
    for each run ``r``, ``(u_i - u_j) . P (v_i - v_j) / n_features`` with ``u`` the
    mean of the other runs, ``v`` run ``r`` and ``P`` the noise precision
    (identity: the cross-validated squared Euclidean distance; a diagonal
    precision from the run residuals: univariate noise normalisation), averaged
    over folds. Noise is independent between runs, so its bias cancels: the
    expected distance of two identical conditions is 0 and estimates can be negative.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from ._checks import lookup, n_conditions_from_rdm

__all__ = [
    "RDM_METRICS",
    "BRAIN_RDM_METRICS",
    "compute_rdm",
    "compute_crossnobis_rdm",
    "estimate_noise_precision",
    "n_conditions_from_rdm",
    "reorder_rdm",
]

logger = logging.getLogger(__name__)


def _cosine_gram(patterns: np.ndarray, center: bool, metric: str) -> np.ndarray:
    """Cosine similarities of the rows (after removing each row's mean if ``center``).

    One copy of the data at most, then one BLAS call (``R @ R.T``, a symmetric rank-k
    update) on the unnormalised rows; the norms scale the small Gram matrix afterwards.
    """
    rows = patterns - patterns.mean(axis=1, keepdims=True) if center else patterns
    gram = rows @ rows.T
    norms = np.sqrt(np.diag(gram).copy())
    flat = np.flatnonzero(norms == 0)
    if flat.size:
        raise ValueError(
            f"metric '{metric}' is undefined for patterns with zero "
            f"{'variance' if center else 'norm'}; got such rows {flat.tolist()[:10]}. "
            "Drop those conditions or use metric 'squared_euclidean'"
        )
    return gram / norms[:, None] / norms[None, :]


def _correlation(patterns: np.ndarray) -> np.ndarray:
    return 1.0 - _cosine_gram(patterns, center=True, metric="correlation")


def _cosine(patterns: np.ndarray) -> np.ndarray:
    return 1.0 - _cosine_gram(patterns, center=False, metric="cosine")


def _sum_squares(patterns: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances via the Gram matrix, clipped at 0."""
    centred = patterns - patterns.mean(axis=0)  # translation-invariant; less round-off
    sq = np.einsum("ij,ij->i", centred, centred)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * (centred @ centred.T), 0.0)


def _squared_euclidean(patterns: np.ndarray) -> np.ndarray:
    return _sum_squares(patterns) / patterns.shape[1]


def _euclidean(patterns: np.ndarray) -> np.ndarray:
    return np.sqrt(_sum_squares(patterns))


RDM_METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "correlation": _correlation,
    "cosine": _cosine,
    "squared_euclidean": _squared_euclidean,
    "euclidean": _euclidean,
}
#: Metrics of brain RDMs: those of one pattern matrix, plus crossnobis across runs.
BRAIN_RDM_METRICS: tuple[str, ...] = (*RDM_METRICS, "crossnobis")


def compute_rdm(patterns: np.ndarray, metric: str = "correlation") -> np.ndarray:
    """Representational dissimilarity matrix of condition patterns, condensed.

    Parameters
    ----------
    patterns : array of shape (n_conditions, n_features)
        One row per condition (stimulus), e.g. voxels of an ROI or model units.
    metric : {"correlation", "cosine", "squared_euclidean", "euclidean"}
        Dissimilarity (see the module docstring for exact definitions).

    Returns
    -------
    rdm : array of shape (n_conditions * (n_conditions - 1) // 2,), float64
        Upper triangle, row by row (``scipy.spatial.distance.squareform`` order).
    """
    distance = lookup(RDM_METRICS, metric, "metric")
    patterns = _check_patterns(patterns, "patterns", "(n_conditions, n_features)")
    rows, cols = np.triu_indices(patterns.shape[0], k=1)
    return distance(patterns)[rows, cols]


def _check_patterns(patterns: np.ndarray, name: str, shape: str, ndim: int = 2) -> np.ndarray:
    patterns = np.asarray(patterns, dtype=np.float64)
    if patterns.ndim != ndim or patterns.shape[-2] < 3 or patterns.shape[-1] < 1:
        raise ValueError(
            f"'{name}' must be a {ndim}D array {shape} with >= 3 conditions "
            f"and >= 1 feature; got shape {patterns.shape}"
        )
    if not np.all(np.isfinite(patterns)):
        raise ValueError(f"'{name}' must be finite; got NaN/inf values. Drop or impute them")
    return patterns


def estimate_noise_precision(patterns_by_run: np.ndarray) -> np.ndarray:
    """Diagonal noise precision of each feature from the residuals across runs.

    The residual of a run is its pattern minus the mean over runs of the same condition;
    the variance per feature is the residual sum of squares over ``n_conditions *
    (n_runs - 1)`` degrees of freedom. (rsatoolbox's ``prec_from_measurements(...,
    method='diag')`` divides by ``(n_conditions - 1) * n_runs`` unless given ``dof``: a
    constant factor, which scales the crossnobis RDM but changes no comparison.)

    Parameters
    ----------
    patterns_by_run : array of shape (n_runs, n_conditions, n_features)

    Returns
    -------
    precision : array of shape (n_features,)
        ``1 / variance`` per feature.
    """
    data = _check_runs(patterns_by_run)
    residuals = data - data.mean(axis=0, keepdims=True)
    dof = data.shape[1] * (data.shape[0] - 1)
    variance = np.einsum("rcf,rcf->f", residuals, residuals) / dof
    flat = np.flatnonzero(variance <= 0)
    if flat.size:
        raise ValueError(
            f"'patterns_by_run' has {flat.size} features with no variance across runs (e.g. "
            f"{flat.tolist()[:5]}); their noise precision is undefined. Drop them or use "
            "noise 'none'"
        )
    return 1.0 / variance


def _check_runs(patterns_by_run: np.ndarray) -> np.ndarray:
    data = _check_patterns(
        patterns_by_run, "patterns_by_run", "(n_runs, n_conditions, n_features)", ndim=3
    )
    if data.shape[0] < 2:
        raise ValueError(
            "crossnobis needs repeated measurements: 'patterns_by_run' must have >= 2 runs; "
            f"got shape {data.shape}. Use another metric, or configure more concept runs"
        )
    return data


def compute_crossnobis_rdm(
    patterns_by_run: np.ndarray, noise_precision: np.ndarray | None = None
) -> np.ndarray:
    """Cross-validated (crossnobis) RDM, leaving one run out (rsatoolbox semantics).

    Parameters
    ----------
    patterns_by_run : array of shape (n_runs, n_conditions, n_features)
        Condition patterns estimated separately in each run (independent noise).
    noise_precision : array of shape (n_features,) or None
        Diagonal noise precision (e.g. :func:`estimate_noise_precision`); None is the
        identity, i.e. the cross-validated squared Euclidean distance per feature.

    Returns
    -------
    rdm : array of shape (n_conditions * (n_conditions - 1) // 2,), float64
        Mean over folds of ``(u_i - u_j) . P (v_i - v_j) / n_features``.
    """
    data = _check_runs(patterns_by_run)
    n_runs, n_conditions, n_features = data.shape
    weight = np.ones(n_features) if noise_precision is None else np.asarray(noise_precision, float)
    if weight.shape != (n_features,) or not np.all(np.isfinite(weight)) or np.any(weight < 0):
        raise ValueError(
            f"'noise_precision' must be None or {n_features} finite non-negative values (one "
            f"per feature); got shape {weight.shape}"
        )
    data = data - data.mean(axis=1, keepdims=True)  # distances are translation-invariant
    total = data.sum(axis=0)
    square = np.zeros((n_conditions, n_conditions))
    for run in range(n_runs):
        train = (total - data[run]) / (n_runs - 1)
        kernel = (train * weight) @ data[run].T
        diag = np.diag(kernel)
        square += diag[:, None] + diag[None, :] - kernel - kernel.T
    rows, cols = np.triu_indices(n_conditions, k=1)
    return square[rows, cols] / (n_runs * n_features)


def reorder_rdm(rdm: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Condensed RDM(s) over the conditions ``order`` (indices into the original conditions).

    Parameters
    ----------
    rdm : array of shape (n_pairs,) or (n_rdms, n_pairs)
    order : array of int of shape (n_new,)
        Distinct condition indices; row ``k`` of the result is condition ``order[k]``.

    Returns
    -------
    rdm : array of shape (n_new * (n_new - 1) // 2,) or (n_rdms, ...)
    """
    rdm = np.asarray(rdm)
    n = n_conditions_from_rdm(rdm)
    order = np.asarray(order, dtype=np.intp)
    if order.ndim != 1 or np.unique(order).size != order.size or np.any((order < 0) | (order >= n)):
        raise ValueError(
            f"'order' must list distinct condition indices in [0, {n}); got {order.tolist()[:10]}"
        )
    rows, cols = np.triu_indices(order.size, k=1)
    return rdm[..., pair_index(order[rows], order[cols], n)]


def pair_index(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Position in a condensed RDM of the pairs ``(i, j)``, ``i != j`` (any order)."""
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    return lo * n - lo * (lo + 1) // 2 + (hi - lo - 1)
