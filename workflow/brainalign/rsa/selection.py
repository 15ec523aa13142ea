"""Best-layer selection on held-out subjects (leave one subject out).

Reporting the best layer's score, with the layer picked as the argmax over the same
data, is biased upwards: the maximum of noisy scores exceeds the score of the truly best
layer. Here each subject's score comes from the layer that is best on the *other*
subjects: pick the layer on n - 1 subjects, score it on the left-out one, repeat for every
subject, average. The same procedure runs inside every bootstrap sample (with the
sample's subject multiplicities; all copies of the left-out subject are left out), so
confidence intervals and model comparisons include the uncertainty of the selection.
"""

from __future__ import annotations

import numpy as np

__all__ = ["heldout_layer_scores", "heldout_group_score"]


def heldout_layer_scores(
    scores: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each subject's score at the layer that is best on the other subjects.

    Parameters
    ----------
    scores : array of shape (..., n_layers, n_subjects)
        Per-subject scores of each layer (leading axes, e.g. bootstrap samples, are kept).
    weights : array of shape (..., n_subjects) or None
        Multiplicity of each subject (bootstrap counts; 0 = not drawn). None: all 1.

    Returns
    -------
    heldout : array of shape (..., n_subjects)
        Score of the layer chosen without the subject; NaN where the subject was not
        drawn or no other subject was (nothing to choose on).
    chosen : array of int of shape (..., n_subjects)
        Index of the chosen layer (-1 where ``heldout`` is NaN). Ties go to the first layer.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim < 2 or scores.shape[-2] < 1 or scores.shape[-1] < 1:
        raise ValueError(
            f"'scores' must have shape (..., n_layers, n_subjects); got {scores.shape}"
        )
    shape = (*scores.shape[:-2], scores.shape[-1])
    weights = np.ones(shape) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != shape:
        raise ValueError(f"'weights' must have shape {shape}; got {weights.shape}")
    drawn = weights > 0
    weighted = np.where(drawn[..., None, :], scores, 0.0) * weights[..., None, :]
    others = weighted.sum(axis=-1, keepdims=True) - weighted  # (..., n_layers, n_subjects)
    n_others = weights.sum(axis=-1, keepdims=True) - weights
    chosen = np.argmax(others, axis=-2)
    heldout = np.take_along_axis(scores, chosen[..., None, :], axis=-2)[..., 0, :]
    valid = drawn & (n_others > 0) & np.isfinite(heldout) & np.all(np.isfinite(others), axis=-2)
    return np.where(valid, heldout, np.nan), np.where(valid, chosen, -1)


def heldout_group_score(heldout: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Group mean of held-out scores over the drawn subjects (copies included).

    Parameters
    ----------
    heldout : array of shape (..., n_subjects)
        From :func:`heldout_layer_scores`.
    weights : array of shape (..., n_subjects) or None

    Returns
    -------
    score : array of shape heldout.shape[:-1]
        NaN if any drawn subject has no held-out score.
    """
    heldout = np.asarray(heldout, dtype=np.float64)
    weights = np.ones(heldout.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    drawn = weights > 0
    bad = np.any(drawn & ~np.isfinite(heldout), axis=-1)
    total = np.where(drawn, heldout, 0.0) * weights
    score = total.sum(axis=-1) / weights.sum(axis=-1)
    return np.where(bad, np.nan, score)
