"""Lanczos resampling of event-wise features onto the fMRI time grid.

Follows the Huth lab's ``lanczosinterp2D`` (``ridge_utils/interpdata.py``; also
used in gallantlab's voxelwise_tutorials): every new sample is a Lanczos-windowed
sinc-weighted *sum* of the events around it, with the cutoff at the new
sampling rate (times ``cutoff_mult``). The weights are deliberately not
normalised to sum to one, as in the original: the resampled value grows with the
number of events per TR (e.g. words per TR), which is part of what the brain
sees. A constant signal sampled uniformly every ``dt`` seconds comes out, away
from the edges, as that constant times ``(tr / dt) * I`` where ``I`` is the
kernel's integral in units of ``1 / cutoff`` (0.99706 for 3 lobes, 1.00979 for
2, 0.99935 for 5): the sum of the kernel over a grid of spacing ``dt`` is
``I / (cutoff * dt)``. Near the first and last ``window`` TRs fewer events fall
under the kernel, so values shrink there.

Time conventions used by :mod:`brainalign.features.extract` (Huth's): an event
is placed at the midpoint of its interval (``onset + duration / 2``) and a TR at
the midpoint of its volume acquisition (``(k + 0.5) * tr``), both in seconds
from the start of the run's first volume.
"""

from __future__ import annotations

import numpy as np

__all__ = ["lanczos_kernel", "lanczos_resample", "tr_times", "event_times"]


def lanczos_kernel(t: np.ndarray, cutoff: float, window: int = 3) -> np.ndarray:
    """Lanczos kernel ``sinc(t * cutoff) * sinc(t * cutoff / window)`` inside ``window`` lobes.

    Parameters
    ----------
    t : ndarray of any shape
        Time differences in seconds.
    cutoff : float
        Cutoff frequency in Hz (the kernel's first zero is at ``1 / cutoff``).
    window : int
        Number of lobes; the kernel is 0 where ``|t * cutoff| > window``.

    Returns
    -------
    ndarray of the shape of ``t``
        Equal to Huth's ``window * sin(pi x) sin(pi x / window) / (pi x)^2`` with
        ``x = t * cutoff`` and 1 at ``x = 0``.
    """
    x = np.asarray(t, dtype=np.float64) * cutoff
    value = np.sinc(x) * np.sinc(x / window)
    return np.where(np.abs(x) > window, 0.0, value)


def _check_times(name: str, times: np.ndarray) -> np.ndarray:
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise ValueError(f"'{name}' must be a 1-D array of finite times; got shape {times.shape}")
    return times


def lanczos_resample(
    data: np.ndarray,
    old_times: np.ndarray,
    new_times: np.ndarray,
    window: int = 3,
    cutoff_mult: float = 1.0,
) -> np.ndarray:
    """Resample event features to new (evenly spaced) times with a Lanczos filter.

    Parameters
    ----------
    data : ndarray of shape (n_events, n_features)
        One row per event.
    old_times : ndarray of shape (n_events,)
        Time of each event (s); need not be sorted or evenly spaced.
    new_times : ndarray of shape (n_new,)
        Evenly spaced target times (s), at least two; their mean spacing sets the cutoff.
    window : int
        Number of Lanczos lobes.
    cutoff_mult : float
        Multiplier of the cutoff frequency ``1 / mean(diff(new_times))``.

    Returns
    -------
    ndarray of shape (n_new, n_features), float64
        ``K @ data`` with ``K[i, j] = lanczos_kernel(new_times[i] - old_times[j])``.
    """
    data = np.asarray(data, dtype=np.float64)
    old_times = _check_times("old_times", old_times)
    new_times = _check_times("new_times", new_times)
    if data.ndim != 2 or data.shape[0] != old_times.shape[0]:
        raise ValueError(
            f"'data' must have shape (n_events, n_features) with n_events = "
            f"len(old_times) = {old_times.shape[0]}; got {data.shape}"
        )
    if new_times.shape[0] < 2 or np.any(np.diff(new_times) <= 0):
        raise ValueError(
            f"'new_times' must be at least two increasing times; got {new_times.shape[0]} "
            "time(s) or a non-increasing grid"
        )
    if not (isinstance(window, int | np.integer) and window >= 1) or not cutoff_mult > 0:
        raise ValueError(
            f"'window' must be an integer >= 1 and 'cutoff_mult' > 0; got {window!r}, "
            f"{cutoff_mult!r}"
        )
    cutoff = cutoff_mult / np.mean(np.diff(new_times))
    kernel = lanczos_kernel(new_times[:, None] - old_times[None, :], cutoff, window)
    return kernel @ data


def tr_times(n_trs: int, tr: float) -> np.ndarray:
    """Midpoints of ``n_trs`` volumes: ``(k + 0.5) * tr`` for k = 0..n_trs-1, shape (n_trs,)."""
    if n_trs < 1 or not tr > 0:
        raise ValueError(f"'n_trs' must be >= 1 and 'tr' > 0; got {n_trs!r} and {tr!r}")
    return (np.arange(n_trs, dtype=np.float64) + 0.5) * float(tr)


def event_times(onset: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Midpoints ``onset + duration / 2`` of events, shape (n_events,)."""
    onset = np.asarray(onset, dtype=np.float64)
    duration = np.asarray(duration, dtype=np.float64)
    if np.any(duration < 0):
        raise ValueError("event 'duration' must be >= 0; fix the events table")
    return onset + duration / 2.0
