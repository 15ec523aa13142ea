"""Family-wise corrections of the unit x voxel permutation test.

Two corrections over the whole family of unit (or atom) x voxel pairs:

``"maxstat"`` (default; family-wise error rate)
    Westfall & Young's single-step max statistic. For every permutation the largest
    held-out score over *all* pairs is kept; a pair's corrected p is
    ``(1 + #{permutations whose maximum >= its score}) / (1 + n_permutations)``. Valid
    under any dependence between pairs (units, voxels and delays are all correlated),
    as long as the permutations are exchangeable under the null. Its resolution is
    ``1 / (n_permutations + 1)``: with 200 permutations, alpha = 0.05 keeps pairs
    beaten by at most 9 permutation maxima.

``"fdr_by"`` (false discovery rate)
    Benjamini & Yekutieli (2001): the step-up procedure with the ``c(m) = sum 1/i``
    penalty, which controls the FDR under *any* dependence between the p-values (BH
    needs positive regression dependence, which correlated units of one layer do not
    guarantee). Per-pair p-values come from a normal fit to that pair's own
    permutation null (its mean and sd), as in the encoding stage
    (:mod:`brainalign.encoding.stats`): an empirical p cannot go below
    ``1 / (n_permutations + 1)``, far above the ``alpha / (m c(m))`` the first step of
    BY needs over millions of pairs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CORRECTIONS", "by_adjust", "maxstat_pvalues", "normal_pvalues"]

CORRECTIONS = ("maxstat", "fdr_by")

_CHUNK = 1 << 22  # values handled at a time in the whole-family passes


def maxstat_pvalues(score: np.ndarray, max_null: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Single-step max-statistic (FWER) p-values of every pair.

    Parameters
    ----------
    score : array of shape (n_units, n_voxels)
        Observed held-out scores.
    max_null : array of shape (n_permutations,)
        The largest score over all pairs in each permutation.
    out : array of shape (n_units, n_voxels), optional
        Where to write (e.g. a memory map); a new float32 array if None.

    Returns
    -------
    p : array of shape (n_units, n_voxels), float32
        ``(1 + #{max_null >= score - 1e-6}) / (1 + n_permutations)``.
    """
    null = np.sort(np.asarray(max_null, dtype=np.float64))
    out = np.empty(score.shape, dtype=np.float32) if out is None else out
    for start in range(0, score.shape[0], max(1, _CHUNK // max(1, score.shape[1]))):
        rows = slice(start, start + max(1, _CHUNK // max(1, score.shape[1])))
        below = np.searchsorted(null, np.asarray(score[rows], dtype=np.float64) - 1e-6, side="left")
        out[rows] = (1.0 + null.size - below) / (1.0 + null.size)
    return out


def normal_pvalues(score: np.ndarray, null_sum: np.ndarray, null_sum_sq: np.ndarray, n: int) -> np.ndarray:
    """One-sided p of each pair from a normal fit to its permutation null.

    Parameters
    ----------
    score : array of shape (n_units, n_voxels)
    null_sum, null_sum_sq : arrays of shape (n_units, n_voxels), float64
        Sum and sum of squares of the pair's score over the ``n`` permutations.
    n : int
        Number of permutations (>= 2).

    Returns
    -------
    p : array of shape (n_units, n_voxels), float64
        ``norm.sf((score - mean) / sd)``; 1 where the null has no spread.
    """
    from scipy.stats import norm

    mean = null_sum / n
    sd = np.sqrt(np.maximum(null_sum_sq / n - mean**2, 0.0) * n / max(n - 1, 1))
    spread = sd > 1e-12
    z = np.where(spread, (score - mean) / np.where(spread, sd, 1.0), -np.inf)
    return norm.sf(z)


def by_adjust(p: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Benjamini-Yekutieli adjusted p-values over every entry of ``p``.

    Equals ``scipy.stats.false_discovery_control(p.ravel(), method="by")`` reshaped,
    computed in chunks (one sorted float32 copy of the family in memory).

    Parameters
    ----------
    p : array of any shape
        p-values in [0, 1].
    out : array of the same shape, optional
        Where to write; may be ``p`` itself.

    Returns
    -------
    q : array of the shape of ``p``, float32
        Pairs with ``q < alpha`` are significant at false discovery rate alpha.
    """
    flat = np.asarray(p).reshape(-1)
    m = flat.size
    ordered = np.sort(flat.astype(np.float32))
    penalty = m * _harmonic(m)
    adjusted = np.empty(m, dtype=np.float32)
    running = np.inf
    for stop in range(m, 0, -_CHUNK):  # step-up: running minimum from the largest p down
        start = max(0, stop - _CHUNK)
        ranks = np.arange(start + 1, stop + 1, dtype=np.float64)
        chunk = np.minimum.accumulate((ordered[start:stop] * penalty / ranks)[::-1])[::-1]
        adjusted[start:stop] = np.minimum(np.minimum(chunk, running), 1.0)
        running = float(adjusted[start])
    out = np.empty(np.shape(p), dtype=np.float32) if out is None else out
    out_flat = out.reshape(-1)
    for start in range(0, m, _CHUNK):
        values = np.asarray(flat[start : start + _CHUNK], dtype=np.float32)
        out_flat[start : start + _CHUNK] = adjusted[np.searchsorted(ordered, values, side="right") - 1]
    return out


def _harmonic(m: int) -> float:
    """``sum(1 / i for i in 1..m)``: exact up to a million terms, else the asymptotic series."""
    if m <= 1_000_000:
        return float(np.sum(1.0 / np.arange(1, m + 1, dtype=np.float64)))
    return float(np.log(m) + np.euler_gamma + 1.0 / (2 * m) - 1.0 / (12.0 * m * m))
