"""Boundary validation of the intracranial (iEEG) settings and files: one-line errors.

Every message names the configuration key or the file (and its column), what was expected,
what was found, and how to fix it. Errors about the data on disk are
:class:`brainalign.datasets.registry.DatasetError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..datasets.registry import DatasetError

__all__ = [
    "DEFAULT_IEEG",
    "REFERENCES",
    "ieeg_settings",
    "check_reference",
    "check_band",
    "check_electrodes",
    "check_window",
]

#: Defaults of the config section ``preprocess.ieeg`` (the lead imports them for the schema).
DEFAULT_IEEG: dict[str, Any] = {
    "line_freq": None,  # Hz; null: the recording's PowerLineFrequency (_ieeg.json)
    "notch": True,  # notch at line_freq and its harmonics below Nyquist
    "reference": "bipolar",  # bipolar, average, laplacian or none
    "band": [70, 150],  # Hz: high-gamma envelope; null: broadband
    "sfreq": 200,  # Hz after resampling
    "window": [0.0, 0.2],  # s relative to each event
    "bin": 0.025,  # s per time bin
    "n_blocks": 5,  # contiguous cross-validation blocks of events
    "zscore": True,  # z-score each channel over the recording
}

REFERENCES = ("bipolar", "average", "laplacian", "none")


def check_reference(name: Any, source: str = "config/config.yaml") -> str:
    """Return ``name`` if it is a known re-referencing scheme, else raise one line."""
    if name not in REFERENCES:
        raise DatasetError(
            f"config 'preprocess.ieeg.reference' is {name!r}, which is not a known "
            f"re-referencing scheme; expected one of: {', '.join(REFERENCES)}. Edit {source}."
        )
    return str(name)


def ieeg_settings(preprocess: Mapping[str, Any] | None, source: str = "config/config.yaml") -> dict:
    """The ``preprocess.ieeg`` section merged over :data:`DEFAULT_IEEG`, checked.

    Raises
    ------
    DatasetError
        For an unknown key, an unknown reference, a malformed band, window or bin.
    """
    given = dict((preprocess or {}).get("ieeg") or {})
    unknown = sorted(set(given) - set(DEFAULT_IEEG))
    if unknown:
        raise DatasetError(
            f"config 'preprocess.ieeg' has unknown keys {unknown}; expected some of "
            f"{', '.join(DEFAULT_IEEG)}. Edit {source}."
        )
    settings = {**DEFAULT_IEEG, **given}
    check_reference(settings["reference"], source)
    band = settings["band"]
    if band is not None and not (len(band) == 2 and 0 < float(band[0]) < float(band[1])):
        raise DatasetError(
            f"config 'preprocess.ieeg.band' is {band!r}; expected [low, high] Hz with "
            f"0 < low < high (e.g. [70, 150]) or null for broadband. Edit {source}."
        )
    start, stop = (float(v) for v in settings["window"])
    n_bins = (stop - start) / float(settings["bin"])
    if not (stop > start and settings["bin"] > 0 and abs(n_bins - round(n_bins)) < 1e-6):
        raise DatasetError(
            f"config 'preprocess.ieeg.window' {settings['window']} and 'bin' {settings['bin']} "
            f"must give a whole number of bins (stop > start, bin > 0); got {n_bins:g} bins. "
            f"Edit {source}."
        )
    if int(settings["n_blocks"]) < 2:
        raise DatasetError(
            f"config 'preprocess.ieeg.n_blocks' is {settings['n_blocks']}; expected at least "
            f"2 cross-validation blocks. Edit {source}."
        )
    return settings


def check_band(band: Sequence[float] | None, sfreq: float, where: str) -> None:
    """Raise when the recording's Nyquist frequency is at or below the band's upper edge."""
    if band is not None and sfreq / 2.0 <= float(band[1]):
        raise DatasetError(
            f"recording '{where}' is sampled at {sfreq:g} Hz (Nyquist {sfreq / 2:g} Hz), too "
            f"low for config 'preprocess.ieeg.band' {list(band)} Hz; expected a sampling rate "
            f"above {2 * float(band[1]):g} Hz. Choose a lower band (upper edge below "
            f"{sfreq / 2:g} Hz) or band: null for broadband."
        )


def check_electrodes(
    channels: Mapping[str, str], electrodes: Sequence[str], channels_file: str,
    electrodes_file: str,
) -> None:
    """Electrodes and channels must match: every electrode is a channel, and every
    SEEG/ECoG channel has coordinates.

    Parameters
    ----------
    channels : mapping of str to str
        Channel name -> BIDS type (``SEEG``, ``ECOG``, ``TRIG``...) from ``_channels.tsv``.
    electrodes : sequence of str
        The ``name`` column of ``_electrodes.tsv``.
    """
    missing = [name for name in electrodes if name not in channels]
    if missing:
        raise DatasetError(
            f"electrodes '{electrodes_file}' column 'name' lists {missing[:5]} "
            f"({len(missing)} in all) that channels '{channels_file}' column 'name' lacks; "
            "expected every electrode to be a recorded channel. Fix the names in one of them."
        )
    known = set(electrodes)
    lacking = [name for name, kind in channels.items()
               if str(kind).upper() in ("SEEG", "ECOG") and name not in known]
    if lacking:
        raise DatasetError(
            f"channels '{channels_file}' has SEEG/ECoG channels {lacking[:5]} "
            f"({len(lacking)} in all) without coordinates in electrodes '{electrodes_file}' "
            "column 'name'; expected a row (name, x, y, z) for each. Add them, or mark the "
            "channels' type as another (e.g. MISC) or their status as bad."
        )


def check_window(
    times: Sequence[float], window: Sequence[float], duration: float, where: str,
    ids: Sequence[str] | None = None,
) -> None:
    """Raise when an event's window (time + window) falls outside [0, duration] seconds."""
    import numpy as np

    times = np.asarray(times, dtype=float)
    outside = (times + float(window[0]) < 0) | (times + float(window[1]) > duration)
    if outside.any():
        k = int(np.flatnonzero(outside)[0])
        name = f" ({ids[k]})" if ids is not None else ""
        raise DatasetError(
            f"{where}: {int(outside.sum())} events fall outside the recording of {duration:g} s "
            f"with window {list(window)} s, e.g. event {k}{name} at {times[k]:.3f} s (movie "
            "onset in _events.tsv column 'onset' + stimulus onset); expected every event "
            "window inside the recording. Fix the 'movie' rows of _events.tsv or the "
            "stimulus onsets, or narrow 'preprocess.ieeg.window'."
        )
