"""Write a tiny Brain TreeBank release in the layout public loaders read (h5py and pandas).

See :mod:`brainalign.datasets.braintreebank` for the layout and where it was read from. The
release written here: one subject (``sub_3``) with two trials (two movies), 8 labels of
which one trigger channel (``DC10``), one corrupted, one with ``*`` and one with ``#`` in its
label, one label missing from the localization table; triggers once a second with a clock
that drifts (so a time must go through the triggers); a transcript with a row without text.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

SFREQ = 2048
#: Labels as released (h5 order), and their cleaned names.
LABELS = ["LA1", "LA2*", "LA3", "LB1", "LB2#", "DC10", "LB3", "LC1"]
CLEAN = [label.replace("*", "").replace("#", "") for label in LABELS]
CORRUPTED = ["LB3"]
REGIONS = {"LA1": "ctx-lh-superiortemporal", "LA2": "ctx-lh-superiortemporal",
           "LA3": "ctx-lh-superiortemporal", "LB1": "Left-Hippocampus",
           "LB2": "Left-Hippocampus", "LB3": "Left-Hippocampus"}  # LC1 not localized
MOVIES = {0: "cars-2", 1: "lotr-1"}
#: Recording start offset (samples) and clock drift of each trial.
OFFSET, DRIFT = 1500, 1.0004
N_SAMPLES = 40 * SFREQ
WORDS = pd.DataFrame({
    "text": ["Hello", "there", None, "gon", "na", "win", "Go", "now", "late"],
    "start": [1.5, 2.25, 3.0, 4.1, 4.4, 4.9, 8.3, 12.7, 60.0],
    "end": [2.0, 2.6, 3.5, 4.4, 4.8, 5.4, 8.8, 13.3, 60.5],
    "sentence": ["Hello there", "Hello there", "Hello there", "gonna win", "gonna win",
                 "gonna win", "Go now", "Go now", "late"],
})


def movie_sample(movie_time: float) -> float:
    """The true sample of a movie time under the planted clock."""
    return OFFSET + movie_time * SFREQ * DRIFT


def signals(seed: int = 0) -> np.ndarray:
    """(n_labels, N_SAMPLES) float32: noise, channel i offset by i (to check the h5 keys)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((len(LABELS), N_SAMPLES)) * 1e-5 +
            np.arange(len(LABELS))[:, None] * 1e-3).astype(np.float32)


def write_release(root: Path, data: np.ndarray | None = None, subdir: str = "") -> Path:
    """Write the release under ``root``; h5 files under ``root/subdir`` (BaRISTA layout)."""
    root = Path(root)
    data = signals() if data is None else data
    for path in ("electrode_labels/sub_3", "localization/sub_3", "subject_metadata",
                 "subject_timings", subdir or "."):
        (root / path).mkdir(parents=True, exist_ok=True)
    (root / "electrode_labels/sub_3/electrode_labels.json").write_text(json.dumps(LABELS))
    (root / "corrupted_elec.json").write_text(json.dumps({"sub_3": CORRUPTED, "sub_1": ["X1"]}))
    loc = pd.DataFrame([{"ID": k, "Electrode": name + ("*" if name == "LA2" else ""),
                         "L": 100.0 + k, "P": 120.0 - 2 * k, "I": 90.0 + 3 * k,
                         "DesikanKilliany": region, "Destrieux": "x"}
                        for k, (name, region) in enumerate(REGIONS.items())])
    loc.to_csv(root / "localization/sub_3/depth-wm.csv", index=False)
    for trial, movie in MOVIES.items():
        name = f"sub_3_trial{trial:03d}"
        (root / f"subject_metadata/{name}_metadata.json").write_text(
            json.dumps({"title": movie.title(), "filename": movie}))
        movie_time = np.arange(0.0, 30.0, 1.0)  # the recording outlasts the triggers
        pd.DataFrame({"start_time": movie_time + 1e9, "movie_time": movie_time,
                      "index": np.round(movie_sample(movie_time)).astype(int)}).to_csv(
            root / f"subject_timings/{name}_timings.csv", index=False)
        with h5py.File(root / subdir / f"{name}.h5", "w") as h5:
            group = h5.create_group("data")
            for i in range(len(LABELS)):
                group.create_dataset(f"electrode_{i}", data=data[i])
        folder = root / "transcripts" / movie
        folder.mkdir(parents=True, exist_ok=True)
        WORDS.assign(is_onset=[1, 0, 0, 1, 0, 0, 1, 0, 1], pos="NOUN").to_csv(
            folder / "features.csv")  # index written as the unnamed first column
    return root
