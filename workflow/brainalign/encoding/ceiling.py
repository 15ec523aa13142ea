"""Noise ceilings from repeated presentations, and noise-ceiling-normalised scores.

When every stimulus is measured in several runs, the reliability of the run-averaged
response bounds what any model can explain. Per voxel, the Pearson correlation
across stimuli between every pair of runs is averaged (``r_bar``) and stepped up to
the number of runs averaged with the Spearman-Brown formula::

    ceiling = n r_bar / (1 + (n - 1) r_bar)

``ceiling`` estimates the explainable variance: the share of the averaged response's
variance that repeats across runs, i.e. the largest R^2 a perfect model could reach;
the largest expected Pearson r is ``sqrt(ceiling)``. Normalised scores are
``r / sqrt(ceiling)`` and ``R^2 / ceiling``; where the ceiling is below
``min_ceiling`` (unreliable voxels, whose ratio would be noise over noise) they are NaN.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["noise_ceiling", "normalise_scores"]

logger = logging.getLogger(__name__)


def noise_ceiling(patterns_by_run: np.ndarray) -> np.ndarray:
    """Spearman-Brown corrected repeat reliability of the run-averaged pattern, per voxel.

    Parameters
    ----------
    patterns_by_run : array of shape (n_runs, n_stimuli, n_voxels)
        The response to every stimulus in every run (e.g. ``patterns_by_run`` of the
        concept task's preprocessed file); at least 2 runs and 3 stimuli.

    Returns
    -------
    ceiling : array of shape (n_voxels,), float64
        Explainable variance of the mean over runs; in ``(-inf, 1]``. Negative or zero
        where the runs do not agree (no reliable signal); 0 for constant voxels.
    """
    data = np.asarray(patterns_by_run, dtype=np.float64)
    if data.ndim != 3 or data.shape[0] < 2 or data.shape[1] < 3:
        raise ValueError(
            "'patterns_by_run' must have shape (n_runs >= 2, n_stimuli >= 3, n_voxels); got "
            f"shape {data.shape}. A noise ceiling needs repeated presentations"
        )
    n_runs = data.shape[0]
    centred = data - data.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("rsv,rsv->rv", centred, centred))
    unit = centred / np.where(norms > 0, norms, np.inf)[:, None, :]
    pairs = [(a, b) for a in range(n_runs) for b in range(a + 1, n_runs)]
    r_bar = np.mean([np.einsum("sv,sv->v", unit[a], unit[b]) for a, b in pairs], axis=0)
    return n_runs * r_bar / (1.0 + (n_runs - 1) * r_bar)


def normalise_scores(
    r: np.ndarray, r2: np.ndarray, ceiling: np.ndarray, min_ceiling: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Divide scores by the noise ceiling where it is at least ``min_ceiling``.

    Parameters
    ----------
    r, r2 : arrays of shape (n_voxels,)
        Held-out Pearson r and R^2.
    ceiling : array of shape (n_voxels,)
        Explainable variance (:func:`noise_ceiling`).
    min_ceiling : float
        Smallest ceiling for which a normalised score is given (in (0, 1]).

    Returns
    -------
    r_norm : array of shape (n_voxels,), float64
        ``r / sqrt(ceiling)``; NaN where ``ceiling < min_ceiling``.
    r2_norm : array of shape (n_voxels,), float64
        ``r2 / ceiling``; NaN where ``ceiling < min_ceiling``.
    """
    if not 0 < min_ceiling <= 1:
        raise ValueError(f"'min_ceiling' must be in (0, 1]; got {min_ceiling!r}")
    ceiling = np.asarray(ceiling, dtype=np.float64)
    valid = np.isfinite(ceiling) & (ceiling >= min_ceiling)
    safe = np.where(valid, ceiling, 1.0)
    r_norm = np.where(valid, np.asarray(r, dtype=np.float64) / np.sqrt(safe), np.nan)
    r2_norm = np.where(valid, np.asarray(r2, dtype=np.float64) / safe, np.nan)
    if np.isfinite(ceiling).any():
        logger.info(
            "noise ceiling: %d of %d voxels >= %.2f (median ceiling %.3f)",
            int(valid.sum()),
            ceiling.size,
            min_ceiling,
            float(np.nanmedian(ceiling)),
        )
    return r_norm, r2_norm
