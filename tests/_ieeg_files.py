"""Small BIDS-iEEG datasets written with mne-bids' own writers, for the iEEG tests.

:func:`write_stimuli` writes ``naturalistic/words.tsv`` and ``naturalistic/frames.tsv``
(onsets in seconds from the start of each movie segment ``run``).
:func:`write_ieeg_dataset` writes, per run, one SEEG recording of two shafts (``LA1..LA8``,
``RB1..RB8``; MNI152NLin2009cAsym coordinates in mm, a ``region`` column per contact) with
``mne_bids.write_raw_bids`` from an ``mne.io.RawArray`` (EDF through edfio, or
BrainVision): ``_channels.tsv`` with bads (``raw.info['bads']``), ``_electrodes.tsv`` and
``_coordsystem.json`` (montage in ``mni_tal``, ``BIDSPath.space``), ``_events.tsv`` with
one ``movie`` row (value = the stimulus run), ``_ieeg.json`` with PowerLineFrequency.
The signal is :func:`brainalign.ieeg.simulate.simulate_seeg`: contact LA3 responds to
words, RB4 to scene cuts, with the per-event amplitudes returned in the truth record.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainalign.ieeg.simulate import shaft_layout, simulate_seeg

REGIONS = {"LA": ["superiortemporal"] * 4 + ["insula"] * 4,
           "RB": ["lateraloccipital"] * 4 + ["fusiform"] * 4}


def write_stimuli(root: Path, runs=(1, 2), duration: float = 50.0, seed: int = 0) -> dict:
    """words.tsv (a word every ~0.45 s) and frames.tsv (a frame every 0.5 s, a cut every
    ~4th) for movie segments of ``duration`` s; returns the two tables."""
    rng = np.random.default_rng(seed)
    words, frames = [], []
    for run in runs:
        onsets = np.cumsum(rng.uniform(0.35, 0.55, size=int(duration / 0.45)))
        for k, onset in enumerate(onsets[onsets < duration - 1.0]):
            words.append({"run": run, "onset": round(float(onset), 3), "duration": 0.3,
                          "word": f"w{k}", "sentence": k // 8, "char_start": 0, "char_end": 2})
        for k, onset in enumerate(np.arange(0.0, duration - 1.0, 0.5)):
            frames.append({"run": run, "onset": float(onset), "duration": 0.5,
                           "image": f"run{run}_{k:04d}.png",
                           "scene_cut": int(k == 0 or rng.uniform() < 0.25)})
    folder = Path(root) / "naturalistic"
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"words": pd.DataFrame(words), "frames": pd.DataFrame(frames)}
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.tsv", sep="\t", index=False)
    return tables


def _raw(data, sfreq, names, xyz, bads, line_freq):
    import mne

    info = mne.create_info(names, sfreq, "seeg")
    info["line_freq"] = line_freq
    raw = mne.io.RawArray(data, info, verbose=False)
    montage = mne.channels.make_dig_montage(
        ch_pos={n: p / 1000.0 for n, p in zip(names, xyz)}, coord_frame="mni_tal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no fiducials in a template space
        raw.set_montage(montage, verbose=False)
    raw.info["bads"] = list(bads)
    return raw


def write_ieeg_dataset(
    root: Path, stimuli: dict, subject: str = "01", task: str = "movie", runs=(1, 2),
    fmt: str = "EDF", sfreq: float = 1000.0, movie_onset: float = 2.0, tail: float = 2.0,
    line_freq: float = 60.0, bads=("LA8",), seed: int = 0,
) -> dict[str, Any]:
    """Write one subject's recordings (BIDS run r plays stimulus run r from
    ``movie_onset`` s); returns the truth: names, xyz, regions, per-run event times and
    the planted amplitudes of LA3 (words) and RB4 (scene cuts)."""
    import mne_bids

    names, xyz = shaft_layout(2, 8, random_state=seed)
    regions = [r for shaft in ("LA", "RB") for r in REGIONS[shaft]]
    rng = np.random.default_rng(seed + 1)
    truth: dict[str, Any] = {"names": names, "xyz": xyz, "regions": regions, "runs": {}}
    words, frames = stimuli["words"], stimuli["frames"]
    for run in runs:
        word_t = movie_onset + words.loc[words["run"] == run, "onset"].to_numpy()
        cuts = frames[(frames["run"] == run) & (frames["scene_cut"] == 1)]
        cut_t = movie_onset + cuts["onset"].to_numpy()
        amplitudes = np.zeros((len(word_t) + len(cut_t), len(names)))
        amplitudes[: len(word_t), names.index("LA3")] = rng.uniform(0, 1, len(word_t))
        amplitudes[len(word_t):, names.index("RB4")] = rng.uniform(0, 1, len(cut_t))
        last = movie_onset + float(frames.loc[frames["run"] == run, "onset"].max()) + tail
        duration = float(np.ceil(last))  # whole seconds: EDF pads to its 1 s data records
        data = simulate_seeg(duration, sfreq, len(names), np.r_[word_t, cut_t], amplitudes,
                             line_freq=line_freq, random_state=seed + run)
        raw = _raw(data, sfreq, names, xyz, bads, line_freq)
        path = mne_bids.BIDSPath(subject=subject, task=task, run=run, datatype="ieeg",
                                 root=root, space="MNI152NLin2009cAsym")
        mne_bids.write_raw_bids(raw, path, events=np.array([[int(movie_onset * sfreq), 0, run]]),
                                event_id={"movie": run}, format=fmt, allow_preload=True,
                                overwrite=True, verbose=False)
        truth["runs"][run] = {"word_times": word_t, "cut_times": cut_t, "duration": duration,
                              "word_amp": amplitudes[: len(word_t), names.index("LA3")],
                              "cut_amp": amplitudes[len(word_t):, names.index("RB4")],
                              "path": path}
    electrodes = next((Path(root) / f"sub-{subject}" / "ieeg").glob("*_electrodes.tsv"))
    table = pd.read_csv(electrodes, sep="\t", keep_default_na=False)
    table["region"] = table["name"].map(dict(zip(names, regions)))
    table.to_csv(electrodes, sep="\t", index=False)
    truth["electrodes"] = electrodes
    return truth
