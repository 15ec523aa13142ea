"""Event-locked responses: binned means around each event, CV blocks, labelled arrays.

A bin ``[start, stop)`` of an event at ``t`` seconds covers the samples
``round((t + start) * sfreq)`` to that plus ``round(bin * sfreq)``, sample ``i`` being at
``i / sfreq`` seconds from the recording start. The labelled representation (kind
``epochs``, geometry ``electrodes``) is described in :mod:`brainalign.datasets.units`:
a unit is a channel x time bin, unit index = channel * n_bins + bin.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..datasets.registry import DatasetError
from ..datasets.units import roi_masks_from_sets
from ._checks import check_window

__all__ = ["time_bins", "epoch_bins", "cv_blocks", "epochs_arrays"]

logger = logging.getLogger(__name__)


def time_bins(window: Sequence[float], bin: float) -> list[list[float]]:
    """``[[start, stop], ...]`` of the bins of ``bin`` seconds tiling ``window``."""
    start, stop = float(window[0]), float(window[1])
    n_bins = int(round((stop - start) / bin))
    return [[round(start + k * bin, 9), round(start + (k + 1) * bin, 9)] for k in range(n_bins)]


def epoch_bins(
    data: np.ndarray,
    sfreq: float,
    times: np.ndarray,
    window: tuple[float, float],
    bin: float,
    where: str,
) -> np.ndarray:
    """Mean of each channel in each time bin around each event (vectorised).

    Parameters
    ----------
    data : array of shape (n_channels, n_samples)
    sfreq : float
        Sampling rate of ``data`` in Hz.
    times : array of shape (n_events,)
        Event times in seconds from the first sample.
    window : (float, float)
        Start and stop in seconds relative to each event.
    bin : float
        Bin width in seconds (a whole number of samples, at least one).
    where : str
        The recording, quoted in messages.

    Returns
    -------
    responses : array of shape (n_events, n_channels, n_bins)

    Raises
    ------
    DatasetError
        When an event's window falls outside the recording.
    """
    data = np.asarray(data)
    times = np.asarray(times, dtype=float)
    per_bin = int(round(bin * sfreq))
    if per_bin < 1 or abs(per_bin - bin * sfreq) > 1e-6:
        raise DatasetError(
            f"config 'preprocess.ieeg.bin' {bin:g} s is not a whole number of samples at "
            f"{sfreq:g} Hz ({where}); expected a multiple of {1 / sfreq:g} s. Edit the bin or sfreq."
        )
    edges = np.array(time_bins(window, bin))[:, 0]
    check_window(times, window, data.shape[1] / sfreq, where)
    starts = np.rint((times[:, None] + edges[None, :]) * sfreq).astype(np.int64)
    index = starts[:, :, None] + np.arange(per_bin)  # (n_events, n_bins, per_bin)
    if index.size and (index.min() < 0 or index.max() >= data.shape[1]):
        check_window(times, (window[0], window[1] + 1.0 / sfreq), data.shape[1] / sfreq, where)
    binned = data[:, index].mean(axis=-1)  # (n_channels, n_events, n_bins)
    return np.ascontiguousarray(binned.transpose(1, 0, 2))


def cv_blocks(n_events: int, n_blocks: int) -> np.ndarray:
    """Cross-validation block of each event: ``n_blocks`` contiguous equal-count chunks.

    Parameters
    ----------
    n_events : int
        Events in time order (runs concatenated in run order).
    n_blocks : int

    Returns
    -------
    group : int32 array of shape (n_events,)
        Block ``k`` is the ``k``-th chunk of ``numpy.array_split(range(n_events), n_blocks)``
        (the first ``n_events % n_blocks`` blocks hold one event more).
    """
    if n_events < n_blocks:
        raise DatasetError(
            f"{n_events} events cannot fill config 'preprocess.ieeg.n_blocks' {n_blocks} "
            "cross-validation blocks; expected at least one event per block. Lower n_blocks."
        )
    sizes = [n_events // n_blocks + (k < n_events % n_blocks) for k in range(n_blocks)]
    return np.repeat(np.arange(n_blocks, dtype=np.int32), sizes)


def epochs_arrays(
    responses: np.ndarray,
    channels: Sequence[str],
    xyz: np.ndarray,
    regions: Sequence[str],
    rois: Sequence[str],
    bins: Sequence[Sequence[float]],
    coord_space: str,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The labelled arrays and meta of kind ``epochs`` / geometry ``electrodes``.

    Parameters
    ----------
    responses : array of shape (n_events, n_channels, n_bins)
    channels : sequence of str, length n_channels
        Channel names after re-referencing (``LA1-LA2``).
    xyz : array of shape (n_channels, 3)
        Coordinates in mm in ``coord_space``.
    regions : sequence of str, length n_channels
        Region of each channel ('' unknown).
    rois : sequence of str
        Regions that become ROIs (``dataset.rois``), numbered 1, 2... in this order; an ROI
        matches a region by its name or by the name without non-alphanumerics
        (``ctx-lh-insula`` is ROI ``ctxlhinsula``).
    bins : sequence of [start, stop], length n_bins
    coord_space : str

    Returns
    -------
    arrays : dict
        ``responses`` float32 (n_events, n_units) channel-major, ``channel``, ``bin``, ``roi``
        int32 (n_units,), ``xyz`` float32 (n_units, 3) and ``roi_masks`` when ROIs overlap.
    meta : dict
        ``kind``, ``geometry``, ``channels``, ``regions``, ``bins``, ``coord_space``,
        ``space``, ``rois`` (and ``roi_names`` with ``roi_masks``).
    """
    n_events, n_channels, n_bins = responses.shape
    if not (len(channels) == len(regions) == len(xyz) == n_channels and len(bins) == n_bins):
        raise ValueError(
            f"responses of shape {responses.shape} do not match {len(channels)} channels, "
            f"{len(regions)} regions, {len(xyz)} coordinates and {len(bins)} bins"
        )
    channel = np.repeat(np.arange(n_channels, dtype=np.int32), n_bins)
    bare = [re.sub(r"[^A-Za-z0-9]", "", str(r)) for r in regions]
    sets = {}
    for name in rois:  # a region by its name, or without non-alphanumerics (ROI names are)
        member = np.array([r == name or b == name for r, b in zip(regions, bare)], dtype=bool)
        if not member.any():
            logger.warning("ROI %s: no channel in this region", name)
        sets[name] = member[channel]
    roi_arrays, roi_meta = roi_masks_from_sets(sets, n_channels * n_bins)
    arrays = {
        "responses": responses.reshape(n_events, n_channels * n_bins).astype(np.float32),
        "channel": channel,
        "bin": np.tile(np.arange(n_bins, dtype=np.int32), n_channels),
        "xyz": np.repeat(np.asarray(xyz, dtype=np.float32).reshape(n_channels, 3), n_bins, axis=0),
        **roi_arrays,
    }
    meta: dict[str, Any] = {
        "kind": "epochs", "geometry": "electrodes", "channels": list(channels),
        "regions": [str(r) for r in regions], "bins": [list(map(float, b)) for b in bins],
        "coord_space": coord_space, "space": coord_space, **roi_meta,
    }
    return arrays, meta
