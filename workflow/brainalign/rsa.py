"""Representational similarity analysis: RDMs and their comparison.

An RDM is stored condensed: the upper triangle (diagonal excluded) of the
n_conditions x n_conditions dissimilarity matrix, row by row - the order of
``scipy.spatial.distance.squareform`` - so an RDM over ``n`` conditions has
``n * (n - 1) / 2`` entries. Distances are computed from one Gram matrix
(``Z @ Z.T``, a single BLAS call) in float64.

Metrics (``RDM_METRICS``):

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

Comparisons (``RDM_COMPARISONS``): ``"spearman"`` (rsatoolbox ``'spearman'``,
ties get average ranks), ``"pearson"`` (rsatoolbox ``'corr'``) and
``"kendall_tau_a"`` (rsatoolbox ``'tau-a'``: ties count as neither
concordant nor discordant and stay in the denominator, which suits model
RDMs with many ties).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import kendalltau, rankdata

__all__ = [
    "RDM_METRICS",
    "RDM_COMPARISONS",
    "compute_rdm",
    "compare_rdms",
    "n_conditions_from_rdm",
]


def _unit_rows(patterns: np.ndarray, center: bool, metric: str) -> np.ndarray:
    """Rows scaled to unit norm (after removing each row's mean if ``center``)."""
    rows = patterns - patterns.mean(axis=1, keepdims=True) if center else patterns
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    flat = np.flatnonzero(norms == 0)
    if flat.size:
        raise ValueError(
            f"metric '{metric}' is undefined for patterns with zero "
            f"{'variance' if center else 'norm'}; got such rows {flat.tolist()[:10]}. "
            "Drop those conditions or use metric 'squared_euclidean'"
        )
    return rows / norms[:, None]


def _correlation(patterns: np.ndarray) -> np.ndarray:
    z = _unit_rows(patterns, center=True, metric="correlation")
    return 1.0 - z @ z.T


def _cosine(patterns: np.ndarray) -> np.ndarray:
    z = _unit_rows(patterns, center=False, metric="cosine")
    return 1.0 - z @ z.T


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


def _lookup(registry: dict, name: object, parameter: str) -> Callable:
    if isinstance(name, str) and name in registry:
        return registry[name]
    else:
        allowed = ", ".join(repr(key) for key in registry)
        raise ValueError(f"'{parameter}' must be one of {allowed}; got {name!r}")


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
    distance = _lookup(RDM_METRICS, metric, "metric")
    patterns = np.asarray(patterns, dtype=np.float64)
    if patterns.ndim != 2 or patterns.shape[0] < 3 or patterns.shape[1] < 1:
        raise ValueError(
            "'patterns' must be a 2D array (n_conditions, n_features) with >= 3 conditions "
            f"and >= 1 feature; got shape {patterns.shape}"
        )
    if not np.all(np.isfinite(patterns)):
        raise ValueError("'patterns' must be finite; got NaN/inf values. Drop or impute them")
    rows, cols = np.triu_indices(patterns.shape[0], k=1)
    return distance(patterns)[rows, cols]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return _pearson(rankdata(a), rankdata(b))


def _kendall_tau_a(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-a from scipy's tau-b: (C - D) / n_pairs, ties in the denominator."""
    n_pairs = a.size * (a.size - 1) / 2
    tied_a = _tied_pairs(a)
    tied_b = _tied_pairs(b)
    tau_b = kendalltau(a, b, variant="b").statistic
    return float(tau_b * np.sqrt((n_pairs - tied_a) * (n_pairs - tied_b)) / n_pairs)


def _tied_pairs(values: np.ndarray) -> float:
    counts = np.unique(values, return_counts=True)[1].astype(np.float64)
    return float(np.sum(counts * (counts - 1) / 2))


RDM_COMPARISONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "spearman": _spearman,
    "pearson": _pearson,
    "kendall_tau_a": _kendall_tau_a,
}


def compare_rdms(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> float:
    """Similarity of two condensed RDMs over the same conditions, in the same order.

    Parameters
    ----------
    a, b : arrays of shape (n_pairs,)
        Condensed RDMs (as returned by :func:`compute_rdm`).
    method : {"spearman", "pearson", "kendall_tau_a"}
        Comparison (see the module docstring).

    Returns
    -------
    similarity : float
        In [-1, 1]; 1 means the same (rank) order of dissimilarities.
    """
    compare = _lookup(RDM_COMPARISONS, method, "method")
    a = _check_rdm(a, "a")
    b = _check_rdm(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            "RDMs 'a' and 'b' must have the same length (same conditions); "
            f"got shapes {a.shape} and {b.shape}"
        )
    return compare(a, b)


def _check_rdm(rdm: np.ndarray, name: str) -> np.ndarray:
    rdm = np.asarray(rdm, dtype=np.float64)
    if rdm.ndim != 1 or rdm.size < 3:
        raise ValueError(
            f"RDM '{name}' must be condensed, 1D with >= 3 entries (scipy squareform "
            f"order); got shape {rdm.shape}. Use compute_rdm or squareform(rdm, checks=False)"
        )
    if not np.all(np.isfinite(rdm)):
        raise ValueError(f"RDM '{name}' must be finite; got NaN/inf entries")
    if np.ptp(rdm) == 0:
        raise ValueError(f"RDM '{name}' is constant; its correlation with another RDM is undefined")
    n_conditions_from_rdm(rdm)
    return rdm


def n_conditions_from_rdm(rdm: np.ndarray) -> int:
    """Number of conditions of a condensed RDM; raises if the length is not n(n-1)/2.

    Parameters
    ----------
    rdm : array of shape (n_pairs,)

    Returns
    -------
    n_conditions : int
    """
    n_pairs = np.shape(rdm)[0]
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(
            f"a condensed RDM has n * (n - 1) / 2 entries; got {n_pairs}, which is not of that "
            "form. Pass the upper triangle of a square RDM"
        )
    return n
