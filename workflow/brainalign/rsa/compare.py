"""Comparison of RDMs, with rsatoolbox's semantics.

Comparisons (``RDM_COMPARISONS``), of two condensed RDMs over the same conditions:

``"spearman"``
    rsatoolbox ``'spearman'``: Pearson correlation of the ranks (ties get average ranks).
``"pearson"``
    rsatoolbox ``'corr'``: Pearson correlation of the dissimilarities.
``"kendall_tau_a"``
    rsatoolbox ``'tau-a'``: ``(concordant - discordant) / n_pairs``; ties count as neither
    and stay in the denominator, which suits model RDMs with many ties.
``"rho_a"``
    rsatoolbox ``'rho-a'``: ``12 sum((r_a - mean)(r_b - mean)) / (n^3 - n)`` over the ranks,
    the expected Spearman correlation under random tie-breaking; like tau-a it does not
    reward a model for predicting ties, and it is as fast as Spearman.

Spearman, Pearson and rho-a are inner products of transformed RDMs
(:func:`transform_rdms`), so many comparisons are one matrix product; the permutation
and bootstrap machinery relies on this.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import kendalltau, rankdata

from ._checks import check_rdm, check_rdms, check_same_pairs, lookup

__all__ = [
    "RDM_COMPARISONS",
    "LINEAR_COMPARISONS",
    "compare_rdms",
    "compare_rdm_sets",
    "transform_rdms",
    "pool_rdms",
]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return _pearson(rankdata(a), rankdata(b))


def _rho_a(a: np.ndarray, b: np.ndarray) -> float:
    ra = rankdata(a) - (a.size + 1) / 2
    rb = rankdata(b) - (b.size + 1) / 2
    return float(12.0 * np.dot(ra, rb) / (float(a.size) ** 3 - a.size))


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
    "rho_a": _rho_a,
}
#: Comparisons that are inner products of transformed RDMs (see :func:`transform_rdms`).
LINEAR_COMPARISONS: tuple[str, ...] = ("spearman", "pearson", "rho_a")


def compare_rdms(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> float:
    """Similarity of two condensed RDMs over the same conditions, in the same order.

    Parameters
    ----------
    a, b : arrays of shape (n_pairs,)
        Condensed RDMs (as returned by :func:`brainalign.rsa.compute_rdm`).
    method : {"spearman", "pearson", "kendall_tau_a", "rho_a"}
        Comparison (see the module docstring).

    Returns
    -------
    similarity : float
        In [-1, 1]; 1 means the same (rank) order of dissimilarities.
    """
    compare = lookup(RDM_COMPARISONS, method, "method")
    a = check_rdm(a, "a")
    b = check_rdm(b, "b")
    check_same_pairs(a, b, ("a", "b"))
    return compare(a, b)


def transform_rdms(rdms: np.ndarray, method: str) -> np.ndarray:
    """RDMs mapped so that ``method``'s comparison is their inner product.

    Spearman: centred ranks scaled to unit norm; Pearson: centred values scaled to unit
    norm; rho-a: centred ranks times ``sqrt(12 / (n^3 - n))``.

    Parameters
    ----------
    rdms : array of shape (n_rdms, n_pairs)
    method : {"spearman", "pearson", "rho_a"}

    Returns
    -------
    transformed : array of shape (n_rdms, n_pairs), float64
        ``transformed[i] @ transformed[j]`` is the comparison of RDMs ``i`` and ``j``.
    """
    lookup(dict.fromkeys(LINEAR_COMPARISONS), method, "method")
    rdms = np.asarray(rdms, dtype=np.float64)
    values = rdms if method == "pearson" else rankdata(rdms, axis=-1)
    values = values - values.mean(axis=-1, keepdims=True)
    if method == "rho_a":
        n = float(rdms.shape[-1])
        return values * np.sqrt(12.0 / (n**3 - n))
    return values / np.linalg.norm(values, axis=-1, keepdims=True)


def compare_rdm_sets(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Every comparison between two stacks of RDMs (rsatoolbox ``compare(rdms1, rdms2)``).

    Parameters
    ----------
    a : array of shape (n_a, n_pairs)
    b : array of shape (n_b, n_pairs)
    method : {"spearman", "pearson", "kendall_tau_a", "rho_a"}

    Returns
    -------
    similarity : array of shape (n_a, n_b)
    """
    compare = lookup(RDM_COMPARISONS, method, "method")
    a = check_rdms(a, "a")
    b = check_rdms(b, "b")
    check_same_pairs(a, b, ("a", "b"))
    if method in LINEAR_COMPARISONS:
        return transform_rdms(a, method) @ transform_rdms(b, method).T
    else:
        return np.array([[compare(x, y) for y in b] for x in a])


def pool_rdms(rdms: np.ndarray, method: str = "spearman") -> np.ndarray:
    """The pooled RDM that best predicts a group under ``method`` (rsatoolbox ``pool_rdm``).

    Rank-based methods (Spearman, rho-a, tau-a) average the ranks of each RDM; Pearson
    averages the z-scored RDMs. The pool of all subjects gives the noise ceiling's upper
    bound, the pool of the others its lower bound.

    Parameters
    ----------
    rdms : array of shape (n_rdms, n_pairs)
    method : {"spearman", "pearson", "kendall_tau_a", "rho_a"}

    Returns
    -------
    pooled : array of shape (n_pairs,)
    """
    lookup(RDM_COMPARISONS, method, "method")
    rdms = check_rdms(rdms, "rdms")
    if method == "pearson":
        z = (rdms - rdms.mean(axis=1, keepdims=True)) / rdms.std(axis=1, keepdims=True)
        return z.mean(axis=0)
    else:
        return rankdata(rdms, axis=1).mean(axis=0)
