"""Building blocks of the demo's simulated BOLD: planted signal, HRF, AR(1) noise, drift, motion.

All functions are pure given their ``random_state``; shapes are (n_samples, n_voxels).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "standardize_features",
    "random_projection",
    "plant_signal",
    "convolve_hrf",
    "ar1_noise",
    "slow_drift",
    "motion_confounds",
    "MOTION_COLUMNS",
]

MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def standardize_features(features: np.ndarray) -> np.ndarray:
    """Z-score each column (population std); constant columns become 0.

    Parameters
    ----------
    features : array of shape (n_samples, n_features)

    Returns
    -------
    z : float64 array of shape (n_samples, n_features)
    """
    features = np.asarray(features, dtype=np.float64)
    std = features.std(axis=0)
    return (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)


def random_projection(
    n_features: int,
    n_voxels: int,
    *,
    random_state: np.random.Generator,
    shared_rank: int = 3,
    shared_weight: float = 0.5,
) -> np.ndarray:
    """Gaussian voxel weights: independent part plus a shared low-rank part.

    The low-rank part (rank ``shared_rank``, a fraction ``shared_weight`` of each weight's
    variance) makes voxels' tuning, hence their responses, correlated.

    Returns
    -------
    weights : array of shape (n_features, n_voxels)
        Each entry has unit variance; columns are scaled by ``1 / sqrt(n_features)``.
    """
    independent = random_state.standard_normal((n_features, n_voxels))
    left = random_state.standard_normal((n_features, shared_rank))
    right = random_state.standard_normal((shared_rank, n_voxels))
    shared = left @ right / np.sqrt(shared_rank)
    weights = np.sqrt(1 - shared_weight) * independent + np.sqrt(shared_weight) * shared
    return weights / np.sqrt(n_features)


def plant_signal(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Project standardised features onto voxels; each voxel scaled to unit variance.

    Parameters
    ----------
    features : array of shape (n_samples, n_features)
    weights : array of shape (n_features, n_voxels)

    Returns
    -------
    signal : array of shape (n_samples, n_voxels)
        Zero mean, unit (population) variance per voxel.
    """
    return standardize_features(standardize_features(features) @ weights)


def convolve_hrf(signal: np.ndarray, run: np.ndarray, tr: float) -> np.ndarray:
    """Causal convolution with nilearn's SPM HRF sampled at the TR, restarted in each run.

    Parameters
    ----------
    signal : array of shape (n_trs_total, n_voxels)
    run : array of shape (n_trs_total,)
        Run label of each row (rows of a run are contiguous).
    tr : float
        Repetition time (s).

    Returns
    -------
    convolved : array of shape (n_trs_total, n_voxels)
    """
    from nilearn.glm.first_level import spm_hrf
    from scipy.signal import lfilter

    hrf = spm_hrf(tr, oversampling=1)
    out = np.empty_like(signal, dtype=np.float64)
    for label in pd.unique(run):
        rows = run == label
        out[rows] = lfilter(hrf, [1.0], signal[rows], axis=0)
    return out


def ar1_noise(
    n_samples: int, n_voxels: int, phi: float, *, random_state: np.random.Generator
) -> np.ndarray:
    """Stationary AR(1) noise with unit variance: ``e[t] = phi e[t-1] + sqrt(1-phi^2) w[t]``.

    Returns
    -------
    noise : array of shape (n_samples, n_voxels)
    """
    from scipy.signal import lfilter

    white = random_state.standard_normal((n_samples, n_voxels))
    gain = np.sqrt(1.0 - phi**2)
    initial = ((1.0 - gain) * white[0])[None, :]  # makes e[0] = w[0]: stationary start
    noise, _ = lfilter([gain], [1.0, -phi], white, axis=0, zi=initial)
    return noise


def slow_drift(
    n_samples: int, n_voxels: int, tr: float, *, random_state: np.random.Generator
) -> np.ndarray:
    """Scanner drift: a random linear trend plus a cosine with period twice the run.

    Both components lie below 0.01 Hz for runs longer than 50 s, so detrending and a
    0.01 Hz high-pass remove them.

    Returns
    -------
    drift : array of shape (n_samples, n_voxels)
        Amplitudes drawn from N(0, 3^2) per voxel and component.
    """
    time = np.arange(n_samples) * tr
    basis = np.stack([time / time[-1] - 0.5, np.cos(np.pi * time / time[-1])], axis=1)
    return basis @ random_state.normal(0.0, 3.0, (2, n_voxels))


def motion_confounds(n_samples: int, *, random_state: np.random.Generator) -> pd.DataFrame:
    """Six motion-like random walks (translations in mm, rotations in rad).

    Returns
    -------
    confounds : DataFrame of shape (n_samples, 6)
        Columns ``trans_x, trans_y, trans_z, rot_x, rot_y, rot_z``; first row 0.
    """
    scale = np.array([0.03, 0.03, 0.03, 0.0005, 0.0005, 0.0005])
    steps = random_state.standard_normal((n_samples, 6)) * scale
    steps[0] = 0.0
    return pd.DataFrame(np.cumsum(steps, axis=0), columns=list(MOTION_COLUMNS))
