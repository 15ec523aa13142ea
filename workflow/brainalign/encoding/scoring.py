"""Scores of held-out predictions, voxel by voxel.

Computed here (not with ``himalaya.scoring``) so that they are float64,
chunked over voxels, independent of the compute backend, and defined for
constant voxels. Both follow scipy / scikit-learn conventions.

Two ways to summarise cross-validated predictions are offered (``SCORINGS``):

``"fold_mean"``
    Score each outer test fold on its own, then average over folds with equal
    weight (as Brain-Score's cross-regressed correlation does). Unbiased under
    the null hypothesis.
``"concatenated"``
    Concatenate the held-out predictions of all folds (each sample predicted
    exactly once) and score them together. Because the alpha - hence the
    scale of the predictions - is chosen per fold from data that include the
    other folds' test samples, and because the training mean added back
    differs between folds, this estimate is biased *negative* for voxels
    without signal (measured: -0.02 to -0.1 for 3 runs x 120 TRs of AR(1)
    noise, about -0.13 for 60 concepts in 5 folds; the fold mean is centred on
    0, within +-0.01 over seeds). Use it only when folds are too small to
    score alone (e.g. leave-one-concept-out).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SCORINGS", "MIN_FOLD_SAMPLES", "score_predictions", "score_folds"]

SCORINGS = ("concatenated", "fold_mean")

MIN_FOLD_SAMPLES = 3


def score_predictions(
    Y: np.ndarray, predictions: np.ndarray, chunk_size: int = 8192, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation and coefficient of determination per voxel.

    Parameters
    ----------
    Y : array of shape (n_samples, n_voxels)
        Measured responses.
    predictions : array of shape (n_samples, n_voxels)
        Predicted responses (in the units of ``Y``).
    chunk_size : int
        Voxels scored at a time, in float64 (bounds memory).
    rows : array of int or None
        Score only these samples (rows), taken chunk by chunk; None scores every row.

    Returns
    -------
    r : array of shape (n_voxels,), float64
        Pearson correlation over samples (``scipy.stats.pearsonr``); 0 where
        either the voxel or its prediction is constant.
    r2 : array of shape (n_voxels,), float64
        ``1 - SS_res / SS_tot`` with ``SS_tot`` around the mean of ``Y``
        (``sklearn.metrics.r2_score``, per voxel); negative when the
        prediction is worse than the mean; 0 where the voxel is constant.
    """
    Y = np.asarray(Y)
    predictions = np.asarray(predictions)
    if Y.ndim != 2 or Y.shape != predictions.shape:
        raise ValueError(
            "'Y' and 'predictions' must be 2D arrays of the same shape; "
            f"got Y shape {Y.shape} and predictions shape {predictions.shape}"
        )
    r = np.zeros(Y.shape[1])
    r2 = np.zeros(Y.shape[1])
    for start in range(0, Y.shape[1], chunk_size):
        cols = slice(start, start + chunk_size)
        if rows is None:
            r[cols], r2[cols] = _score_chunk(Y[:, cols], predictions[:, cols])
        else:
            r[cols], r2[cols] = _score_chunk(Y[:, cols][rows], predictions[:, cols][rows])
    return r, r2


def score_folds(
    Y: np.ndarray, predictions: np.ndarray, fold: np.ndarray, scoring: str = "fold_mean"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Score cross-validated predictions per fold and summarise them.

    Parameters
    ----------
    Y : array of shape (n_samples, n_voxels)
        Measured responses.
    predictions : array of shape (n_samples, n_voxels)
        Held-out predictions.
    fold : array of shape (n_samples,)
        Outer fold (0 to n_folds - 1) in which each sample was predicted.
    scoring : {"fold_mean", "concatenated"}
        How ``r`` and ``r2`` summarise the folds (see the module docstring).

    Returns
    -------
    r, r2 : arrays of shape (n_voxels,), float64
        The summary scores.
    r_folds, r2_folds : arrays of shape (n_folds, n_voxels), float64
        Scores of each test fold alone; NaN for folds of fewer than
        ``MIN_FOLD_SAMPLES`` samples.
    """
    n_folds = int(fold.max()) + 1
    r_folds = np.full((n_folds, Y.shape[1]), np.nan)
    r2_folds = np.full((n_folds, Y.shape[1]), np.nan)
    sizes = np.bincount(fold, minlength=n_folds)
    for k in np.flatnonzero(sizes >= MIN_FOLD_SAMPLES):
        r_folds[k], r2_folds[k] = score_predictions(Y, predictions, rows=np.flatnonzero(fold == k))
    if scoring == "fold_mean":
        if sizes.min() < MIN_FOLD_SAMPLES:
            raise ValueError(
                f"scoring 'fold_mean' needs >= {MIN_FOLD_SAMPLES} samples per test fold; got "
                f"a fold of {sizes.min()}. Use fewer outer folds or scoring='concatenated'"
            )
        return r_folds.mean(axis=0), r2_folds.mean(axis=0), r_folds, r2_folds
    elif scoring == "concatenated":
        r, r2 = score_predictions(Y, predictions)
        return r, r2, r_folds, r2_folds
    else:
        allowed = ", ".join(repr(name) for name in SCORINGS)
        raise ValueError(f"'scoring' must be one of {allowed}; got {scoring!r}")


def _score_chunk(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = y.astype(np.float64)
    p = p.astype(np.float64)
    varies_y = np.ptp(y, axis=0) > 0
    both_vary = varies_y & (np.ptp(p, axis=0) > 0)
    yc = y - y.mean(axis=0)
    pc = p - p.mean(axis=0)
    ss_y = np.where(varies_y, np.einsum("ij,ij->j", yc, yc), 1.0)
    ss_p = np.where(both_vary, np.einsum("ij,ij->j", pc, pc), 1.0)
    r = np.where(both_vary, np.einsum("ij,ij->j", yc, pc) / np.sqrt(ss_y * ss_p), 0.0)
    r2 = np.where(varies_y, 1.0 - np.einsum("ij,ij->j", y - p, y - p) / ss_y, 0.0)
    return np.clip(r, -1.0, 1.0), r2
