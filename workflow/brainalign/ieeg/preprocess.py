"""MNE preprocessing of one intracranial recording, every step configurable and logged.

In order (settings of the config section ``preprocess.ieeg``, see
:data:`brainalign.ieeg._checks.DEFAULT_IEEG`):

1. keep the SEEG / ECoG channels that are not bad (``raw.info['bads']``, i.e. status
   ``bad`` in ``_channels.tsv``);
2. notch at ``line_freq`` (default: the recording's PowerLineFrequency) and its harmonics
   below Nyquist (``raw.notch_filter``);
3. re-reference: ``bipolar`` (neighbouring contacts of one shaft, ``LA1-LA2``, with
   ``mne.set_bipolar_reference``), ``average`` (common average per channel type),
   ``laplacian`` (each contact minus the mean of its neighbours on its shaft) or ``none``;
4. ``band`` [low, high]: band-pass (``raw.filter``) then the Hilbert amplitude
   (``raw.apply_hilbert(envelope=True)``), the high-gamma envelope; ``band`` null keeps
   the broadband signal;
5. resample to ``sfreq`` (``raw.resample``);
6. ``zscore``: each channel minus its mean over the whole recording, divided by its
   standard deviation over the recording (after the steps above), so that channels and
   recordings share one scale; the responses are then in standard deviations.

Contacts are named by letters and a number (``LA1``, ``LA2``, ``RH10``, ``LA'3``); two
contacts are neighbours when they are on the same shaft and their numbers differ by one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..datasets.registry import DatasetError
from ._checks import check_band, check_reference

__all__ = [
    "preprocess_raw",
    "shaft_contact",
    "bipolar_pairs",
    "laplacian_matrix",
    "notch_frequencies",
]

logger = logging.getLogger(__name__)

_CONTACT = re.compile(r"^([A-Za-z][A-Za-z_']*?)(\d+)$")


def shaft_contact(name: str) -> tuple[str, int] | None:
    """``'LA12'`` -> ``('LA', 12)``; None when the name is not letters + number."""
    match = _CONTACT.match(name.strip())
    return (match.group(1), int(match.group(2))) if match else None


def _by_shaft(names: Sequence[str]) -> dict[str, dict[int, str]]:
    shafts: dict[str, dict[int, str]] = {}
    for name in names:
        parsed = shaft_contact(name)
        if parsed is not None:
            shafts.setdefault(parsed[0], {})[parsed[1]] = name
    return shafts


def bipolar_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """(anode, cathode) pairs of neighbouring contacts: ``LA1-LA2``, ``LA2-LA3``...

    Contacts are neighbours when on one shaft with numbers differing by one; a pair whose
    contact is missing (dropped as bad) is skipped.
    """
    pairs = []
    for contacts in _by_shaft(names).values():
        for number in sorted(contacts):
            if number + 1 in contacts:
                pairs.append((contacts[number], contacts[number + 1]))
    return pairs


def laplacian_matrix(names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """The Laplacian re-reference as a matrix: each contact minus the mean of its neighbours.

    Parameters
    ----------
    names : sequence of str
        Channel names (contacts).

    Returns
    -------
    weights : array of shape (n_kept, n_channels)
        ``weights @ data`` is the re-referenced signal.
    kept : list of str
        Contacts with at least one neighbour (the others have no local reference and are
        dropped).
    """
    index = {name: k for k, name in enumerate(names)}
    shafts = _by_shaft(names)
    rows, kept = [], []
    for name in names:
        parsed = shaft_contact(name)
        if parsed is None:
            continue
        contacts = shafts[parsed[0]]
        neighbours = [contacts[n] for n in (parsed[1] - 1, parsed[1] + 1) if n in contacts]
        if not neighbours:
            continue
        row = np.zeros(len(names))
        row[index[name]] = 1.0
        row[[index[n] for n in neighbours]] -= 1.0 / len(neighbours)
        rows.append(row)
        kept.append(name)
    return np.array(rows).reshape(len(rows), len(names)), kept


def notch_frequencies(line_freq: float, sfreq: float) -> np.ndarray:
    """The line frequency and its harmonics strictly below Nyquist."""
    return np.arange(line_freq, sfreq / 2.0, line_freq)


def _pick_good(raw, qc: dict, where: str):
    types = raw.get_channel_types()
    data_types = [t for t in ("seeg", "ecog") if t in types]
    if not data_types:
        raise DatasetError(
            f"recording '{where}' has no SEEG or ECoG channel (types {sorted(set(types))}); "
            "expected the type SEEG or ECOG in _channels.tsv column 'type'. Fix the channels file."
        )
    bads = [name for name in raw.info["bads"] if name in raw.ch_names]
    other = [n for n, t in zip(raw.ch_names, types) if t not in ("seeg", "ecog") and n not in bads]
    raw.drop_channels(bads + other)
    raw.info["bads"] = []
    logger.info("%s: dropped %d bad channels %s and %d non-SEEG/ECoG channels %s; %d kept",
                where, len(bads), bads, len(other), other, len(raw.ch_names))
    qc.update(dropped_bad=bads, dropped_other=other, channel_types=data_types)
    return raw


def _notch(raw, settings: Mapping[str, Any], qc: dict, where: str):
    line = settings.get("line_freq") or raw.info.get("line_freq")
    if not settings.get("notch", True):
        qc["notch"] = []
        logger.info("%s: no notch filter (preprocess.ieeg.notch false)", where)
        return raw
    if not line:
        raise DatasetError(
            f"recording '{where}' has no PowerLineFrequency in its _ieeg.json and config "
            "'preprocess.ieeg.line_freq' is null; expected the line frequency. Set "
            "line_freq to 50 or 60 (or notch: false)."
        )
    freqs = notch_frequencies(float(line), raw.info["sfreq"])
    raw.notch_filter(freqs, picks="data", verbose=False)
    logger.info("%s: notch at %s Hz", where, freqs.tolist())
    qc["notch"] = freqs.tolist()
    return raw


def _bipolar(raw, where: str):
    import mne

    pairs = bipolar_pairs(raw.ch_names)
    if not pairs:
        raise DatasetError(
            f"recording '{where}' has no two neighbouring contacts of one shaft (names like "
            f"LA1, LA2) among {raw.ch_names[:5]}...; expected bipolar pairs. Set config "
            "'preprocess.ieeg.reference' to average, laplacian or none."
        )
    anodes, cathodes = [a for a, _ in pairs], [c for _, c in pairs]
    names = [f"{a}-{c}" for a, c in pairs]
    out = mne.set_bipolar_reference(raw, anodes, cathodes, ch_name=names, copy=True,
                                    verbose=False)
    return out.pick(names)


def _laplacian(raw, where: str):
    import mne

    weights, kept = laplacian_matrix(raw.ch_names)
    if not kept:
        raise DatasetError(
            f"recording '{where}' has no contact with a neighbour on its shaft; expected names "
            "like LA1, LA2. Set config 'preprocess.ieeg.reference' to average or none."
        )
    info = raw.copy().pick(kept).info
    out = mne.io.RawArray(weights @ raw.get_data(), info, first_samp=raw.first_samp,
                          verbose=False)
    out.set_annotations(raw.annotations)
    return out


def _reference(raw, scheme: str, qc: dict, where: str):
    before = len(raw.ch_names)
    if scheme == "bipolar":
        raw = _bipolar(raw, where)
    elif scheme == "average":
        raw.set_eeg_reference("average", ch_type=qc["channel_types"], projection=False,
                              verbose=False)
    elif scheme == "laplacian":
        raw = _laplacian(raw, where)
    elif scheme == "none":
        pass
    else:  # pragma: no cover - check_reference ran first
        raise DatasetError(f"unknown reference {scheme!r}")
    logger.info("%s: %s reference, %d contacts -> %d channels", where, scheme, before,
                len(raw.ch_names))
    qc.update(reference=scheme, n_channels=len(raw.ch_names))
    return raw


def _envelope(raw, band, qc: dict, where: str):
    if band is None:
        logger.info("%s: broadband signal (band null)", where)
        qc["band"] = None
        return raw
    raw.filter(float(band[0]), float(band[1]), picks="data", verbose=False)
    raw.apply_hilbert(picks="data", envelope=True, verbose=False)
    logger.info("%s: band-pass %g-%g Hz and Hilbert envelope", where, band[0], band[1])
    qc["band"] = [float(band[0]), float(band[1])]
    return raw


def _zscore(raw, qc: dict, where: str):
    data = raw._data
    mean, std = data.mean(axis=1, keepdims=True), data.std(axis=1, keepdims=True)
    constant = np.flatnonzero(std[:, 0] == 0)
    std[std == 0] = 1.0
    data -= mean
    data /= std
    logger.info("%s: z-scored each channel over the recording (%d constant)", where,
                len(constant))
    qc.update(zscore=True, constant_channels=[raw.ch_names[k] for k in constant])
    return raw


def preprocess_raw(raw, settings: Mapping[str, Any], where: str) -> tuple[Any, dict]:
    """Preprocess one recording (see the module docstring for the steps).

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The recording as read (e.g. by ``mne_bids.read_raw_bids``), bads in ``info['bads']``;
        loaded into memory here (the input object is modified when already loaded).
    settings : mapping
        The ``preprocess.ieeg`` settings (:func:`brainalign.ieeg._checks.ieeg_settings`).
    where : str
        The recording's file name, quoted in messages.

    Returns
    -------
    raw : mne.io.BaseRaw
        The processed recording: (n_channels, n_samples) at ``settings['sfreq']``.
    qc : dict
        What was done, with values: dropped channels, notch frequencies, reference, band,
        sampling rates, z-scoring.
    """
    check_reference(settings["reference"])
    check_band(settings.get("band"), raw.info["sfreq"], where)
    raw = raw.load_data(verbose=False)
    qc: dict[str, Any] = {"sfreq_in": float(raw.info["sfreq"])}
    raw = _pick_good(raw, qc, where)
    raw = _notch(raw, settings, qc, where)
    raw = _reference(raw, settings["reference"], qc, where)
    raw = _envelope(raw, settings.get("band"), qc, where)
    sfreq = float(settings["sfreq"])
    if sfreq != raw.info["sfreq"]:
        raw.resample(sfreq, verbose=False)
        logger.info("%s: resampled %g -> %g Hz", where, qc["sfreq_in"], sfreq)
    qc["sfreq"] = float(raw.info["sfreq"])
    if settings.get("zscore", True):
        raw = _zscore(raw, qc, where)
    else:
        qc["zscore"] = False
    return raw, qc
