"""Finite impulse response (FIR) delays, applied within each run.

The haemodynamic response lags the stimulus by several seconds. Rather than
assume its shape, each feature is copied at several delays (in samples, i.e.
TRs) and the regression learns one weight per feature and delay. A delayed
copy is shifted *within its run*: the first ``d`` samples of every run are
zero, so nothing from one run ever reaches the next one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._checks import check_2d, check_delays, check_groups

__all__ = ["make_delays"]


def make_delays(X: np.ndarray, delays: Sequence[int], runs: np.ndarray) -> np.ndarray:
    """Stack copies of ``X`` shifted by each delay, without crossing run boundaries.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Features, runs concatenated; the samples of each run in time order.
    delays : sequence of int
        Shifts in samples (TRs). ``d > 0`` puts the feature value of sample
        ``t - d`` at sample ``t`` (the response follows the stimulus);
        negative ``d`` looks ahead. ``(0,)`` returns ``X`` unchanged.
    runs : array of shape (n_samples,)
        Run label of every sample. Shifts happen among the samples of one
        label, in their order; the ``|d|`` samples at the run's start
        (``d > 0``) or end (``d < 0``) are zero.

    Returns
    -------
    X_delayed : array of shape (n_samples, n_features * n_delays), float32
        Blocks in the order of ``delays``: columns
        ``[k * n_features, (k + 1) * n_features)`` hold ``X`` shifted by ``delays[k]``.
    """
    X = check_2d(X, "X")
    delays = check_delays(delays)
    runs = check_groups(runs, X.shape[0], "runs")
    n_features = X.shape[1]
    out = np.zeros((X.shape[0], n_features * len(delays)), dtype=np.float32)
    for run in np.unique(runs):
        rows = np.flatnonzero(runs == run)
        for k, delay in enumerate(delays):
            cols = slice(k * n_features, (k + 1) * n_features)
            out[rows, cols] = _shift(X[rows], delay)
    return out


def _shift(block: np.ndarray, delay: int) -> np.ndarray:
    """Shift the rows of ``block`` down by ``delay`` (up if negative), zero filled."""
    n_rows = block.shape[0]
    lag = min(abs(delay), n_rows)
    shifted = np.zeros_like(block)
    if delay >= 0:
        shifted[lag:] = block[: n_rows - lag]
    else:
        shifted[: n_rows - lag] = block[lag:]
    return shifted
