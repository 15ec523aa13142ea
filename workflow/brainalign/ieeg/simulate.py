"""Synthetic stereo-EEG with planted event-locked high-gamma responses, written as BIDS-iEEG.

:func:`simulate_seeg` returns volts: per channel 1/f (pink) background, line noise at 50 or
60 Hz plus two harmonics, and for each event a high-gamma burst (a sinusoid at a
channel-specific frequency in 80-140 Hz, random phase per event) whose envelope is the
caller's amplitude of that event and channel times a Gaussian bump peaking ``peak`` s after
the event. After notch, band-pass 70-150 Hz, Hilbert envelope and binning, the binned
envelope of a responsive channel is linear in its amplitude.

:func:`write_bids_ieeg` writes one recording with mne-bids (EDF through edfio, or
BrainVision), with ``_electrodes.tsv`` (plus a region column), ``_channels.tsv`` (bads) and
``_events.tsv`` (the ``movie`` rows aligning the recording to the stimulus runs).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["shaft_layout", "simulate_seeg", "write_bids_ieeg"]

logger = logging.getLogger(__name__)


def shaft_layout(
    n_shafts: int = 2, n_contacts: int = 8, random_state: int = 0
) -> tuple[list[str], np.ndarray]:
    """Contact names and MNI coordinates of straight shafts inside the brain.

    Shafts alternate hemispheres (``LA``, ``RB``, ``LC``...); contacts 1..n run 3.5 mm
    apart from the lateral cortex inwards (x from +-60 mm towards the midline).
    Up to 26 shafts x 16 contacts.

    Returns
    -------
    names : list of str, length n_shafts * n_contacts
    xyz : array of shape (n_shafts * n_contacts, 3), mm (MNI152NLin2009cAsym)
    """
    rng = np.random.default_rng(random_state)
    names, xyz = [], []
    for s in range(n_shafts):
        side = -1 if s % 2 == 0 else 1
        shaft = ("L" if side < 0 else "R") + chr(ord("A") + s)
        y, z = rng.uniform(-60, 30), rng.uniform(-20, 40)
        for c in range(n_contacts):
            names.append(f"{shaft}{c + 1}")
            xyz.append([side * (60 - 3.5 * c), y, z])
    return names, np.array(xyz)


def _pink(n_channels: int, n_samples: int, sfreq: float, rng) -> np.ndarray:
    spectrum = rng.normal(size=(n_channels, n_samples // 2 + 1)) + 1j * rng.normal(
        size=(n_channels, n_samples // 2 + 1))
    freqs = np.fft.rfftfreq(n_samples, 1 / sfreq)
    spectrum /= np.sqrt(np.maximum(freqs, 1.0))
    noise = np.fft.irfft(spectrum, n=n_samples, axis=1)
    return noise / noise.std(axis=1, keepdims=True)


def simulate_seeg(
    duration: float,
    sfreq: float,
    n_channels: int,
    event_times: Sequence[float],
    amplitudes: np.ndarray,
    line_freq: float = 60.0,
    noise_uv: float = 10.0,
    line_uv: float = 30.0,
    burst_uv: float = 50.0,
    peak: float = 0.1,
    width: float = 0.03,
    random_state: int = 0,
) -> np.ndarray:
    """A synthetic SEEG recording with planted high-gamma responses.

    Parameters
    ----------
    duration, sfreq : float
        Seconds and Hz.
    n_channels : int
    event_times : sequence of float, length n_events
        Seconds from the recording start.
    amplitudes : array of shape (n_events, n_channels)
        Burst amplitude of each event at each channel (0: no response; 1: ``burst_uv``).
    line_freq : float
        50 or 60 Hz; the line noise has this frequency and its 2nd and 3rd harmonics
        (``line_uv``, half, a quarter).
    noise_uv, line_uv, burst_uv : float
        Background standard deviation, line amplitude and burst amplitude in microvolts.
    peak, width : float
        The burst envelope's Gaussian peak after the event and its standard deviation (s).
    random_state : int

    Returns
    -------
    data : array of shape (n_channels, n_samples), volts
    """
    rng = np.random.default_rng(random_state)
    n_samples = int(round(duration * sfreq))
    times = np.arange(n_samples) / sfreq
    amplitudes = np.asarray(amplitudes, dtype=float).reshape(len(event_times), n_channels)
    data = noise_uv * _pink(n_channels, n_samples, sfreq, rng)
    phases = rng.uniform(0, 2 * np.pi, size=(n_channels, 3))
    for k, factor in enumerate((1.0, 0.5, 0.25)):
        data += line_uv * factor * np.sin(2 * np.pi * line_freq * (k + 1) * times[None]
                                          + phases[:, k:k + 1])
    carrier = rng.uniform(80, 140, size=n_channels)
    half = int(4 * width * sfreq)
    offsets = np.arange(-half, half + 1)
    bump = np.exp(-0.5 * (offsets / sfreq / width) ** 2)
    for e, t in enumerate(event_times):
        index = int(round((t + peak) * sfreq)) + offsets
        keep = (index >= 0) & (index < n_samples)
        phase = rng.uniform(0, 2 * np.pi, size=(n_channels, 1))
        wave = np.sin(2 * np.pi * carrier[:, None] * times[index[keep]][None] + phase)
        data[:, index[keep]] += burst_uv * amplitudes[e][:, None] * bump[keep][None] * wave
    return data * 1e-6


def _movie_events(movie_onsets: Mapping[int, float], sfreq: float):
    runs = sorted(movie_onsets)
    events = np.array([[int(round(movie_onsets[r] * sfreq)), 0, int(r)] for r in runs])
    if len(runs) == 1:  # trial_type 'movie', value = the stimulus run
        return events, {"movie": int(runs[0])}
    return events, {f"movie/{r}": int(r) for r in runs}  # MNE's hierarchical 'movie/<run>'


def write_bids_ieeg(
    root: str,
    subject: str,
    task: str,
    run: int,
    data: np.ndarray,
    sfreq: float,
    ch_names: Sequence[str],
    xyz_mni: np.ndarray,
    regions: Sequence[str],
    bads: Sequence[str],
    movie_onsets: Mapping[int, float],
    line_freq: float,
    session: str | None = None,
    fmt: str = "EDF",
    region_column: str = "region",
    space: str = "MNI152NLin2009cAsym",
) -> str:
    """Write one SEEG recording as BIDS-iEEG with mne-bids.

    Parameters
    ----------
    root : str
        BIDS root.
    subject, task : str
    run : int
    data : array of shape (n_channels, n_samples), volts
    sfreq : float
    ch_names : sequence of str
        Contact names (type SEEG).
    xyz_mni : array of shape (n_channels, 3)
        Contact coordinates in mm in ``space``.
    regions : sequence of str
        Region of each contact, written as column ``region_column`` of ``_electrodes.tsv``.
    bads : sequence of str
        Channels written with status ``bad`` in ``_channels.tsv``.
    movie_onsets : mapping of int to float
        Stimulus run -> recording time (s) at which that movie segment starts
        (``_events.tsv`` rows: trial_type ``movie`` (``movie/<run>`` for several), value = run).
    line_freq : float
        PowerLineFrequency of ``_ieeg.json``.
    session : str or None
    fmt : str
        ``EDF`` (through edfio; it pads the recording to whole seconds, its data records,
        with edge values: give whole-second data to keep the duration) or ``BrainVision``.
    region_column : str
    space : str
        The template space of the coordinates (``_coordsystem.json``).

    Returns
    -------
    path : str
        The written recording.
    """
    import mne
    import mne_bids
    import pandas as pd

    info = mne.create_info(list(ch_names), float(sfreq), "seeg")
    info["line_freq"] = float(line_freq)
    raw = mne.io.RawArray(np.asarray(data, dtype=float), info, verbose=False)
    positions = {n: np.asarray(p, float) / 1000.0 for n, p in zip(ch_names, xyz_mni)}
    raw.set_montage(mne.channels.make_dig_montage(ch_pos=positions, coord_frame="mni_tal"),
                    verbose="error")  # a template space has no fiducials
    raw.info["bads"] = list(bads)
    events, event_id = _movie_events(movie_onsets, sfreq)
    path = mne_bids.BIDSPath(subject=subject, session=session, task=task, run=run,
                             datatype="ieeg", root=root, space=space)
    mne_bids.write_raw_bids(raw, path, events=events, event_id=event_id, format=fmt,
                            allow_preload=True, overwrite=True, verbose="error")
    electrodes = path.copy().update(task=None, run=None, suffix="electrodes", extension=".tsv")
    table = pd.read_csv(electrodes.fpath, sep="\t", keep_default_na=False)
    table[region_column] = table["name"].map(dict(zip(ch_names, regions))).fillna("n/a")
    table.to_csv(electrodes.fpath, sep="\t", index=False)
    written = path.copy().update(suffix="ieeg", extension=".edf" if fmt == "EDF" else ".vhdr")
    logger.info("wrote %s (%d channels, %.1f s)", written.fpath, len(ch_names),
                data.shape[1] / sfreq)
    return os.fspath(written.fpath)
