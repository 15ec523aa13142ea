"""Scores of held-out predictions, voxel by voxel.

Computed here (not with ``himalaya.scoring``) so that they are float64,
chunked over voxels, independent of the compute backend, and defined for
constant voxels. Both follow scikit-learn / scipy conventions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["score_predictions"]


def score_predictions(
    Y: np.ndarray, predictions: np.ndarray, chunk_size: int = 8192
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
        r[cols], r2[cols] = _score_chunk(Y[:, cols], predictions[:, cols])
    return r, r2


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
