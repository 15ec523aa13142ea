"""The intracranial demo: synthetic SEEG in BIDS-iEEG, with planted site classes.

Each subject has ``n_shafts`` shafts of ``contacts_per_shaft`` contacts (MNI coordinates,
:func:`brainalign.ieeg.simulate.shaft_layout`), watching the demo film (the naturalistic
stimuli: one recording per run, the film starting 5 s in). The background is 1/f noise plus
line noise at ``line_freq`` and two harmonics; one contact per subject is marked bad.

Planted truth. Responses are high-gamma bursts about 100 ms after each event of the
configured tasks (each word for ``word_events``, each scene cut for ``scene_events``) whose
amplitude is ``1 + g z``: ``z`` a random projection of the features
of the model, condition and layer of the contact's class (``demo.ieeg.sites``), computed on
the same events (words: the word_events features; cuts: the scene_events features), and
``g`` set by ``snr``. Only the even contacts 2, 4 and 6 of a shaft respond, so that each
bipolar channel (the recording sites after the default re-reference) holds at most one
responsive contact: a site's class is the class of its responsive contact, or ``noise``. A
class of share ``s`` gets ``round(s * n_sites / 2)`` contacts (each makes two sites). The
site classes are written to ``ground_truth/sub-<s>_sites.tsv``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import load_arrays, write_json, write_table
from ..ieeg.simulate import shaft_layout, simulate_seeg, write_bids_ieeg
from .signals import random_projection, standardize_features

__all__ = ["make_ieeg_demo_dataset", "site_classes", "IEEG_REGIONS"]

logger = logging.getLogger(__name__)

#: Regions of the demo electrodes, by the y (posterior-anterior) coordinate of the contact.
IEEG_REGIONS = ("posterior", "middle", "anterior")
_MOVIE_ONSET = 5.0
_RESPONSIVE = (2, 4, 6)  # contact numbers that may respond


def _region(y: float) -> str:
    return IEEG_REGIONS[0] if y < -30 else IEEG_REGIONS[1] if y < 0 else IEEG_REGIONS[2]


def site_classes(names: Sequence[str], n_contacts: int, sites: Mapping[str, Mapping[str, Any]],
                 *, random_state: np.random.Generator) -> dict[str, str]:
    """Class of each responsive contact (``noise`` for the others), drawn without replacement.

    Parameters
    ----------
    names : contact names (shaft letters + number)
    n_contacts : contacts per shaft
    sites : ``demo.ieeg.sites`` (class -> share, model, condition, layer)
    """
    n_sites = len(names) // n_contacts * (n_contacts - 1)
    candidates = [n for n in names if int("".join(c for c in n if c.isdigit())) in _RESPONSIVE]
    order = list(random_state.permutation(len(candidates)))
    classes = {name: "noise" for name in names}
    for label, spec in sites.items():
        count = int(round(spec["share"] * n_sites / 2))
        if count > len(order):
            raise ValueError(
                f"config 'demo.ieeg.sites': {label} needs {count} responsive contacts but only "
                f"{len(order)} are left; lower the shares or add shafts (demo.ieeg.n_shafts)"
            )
        for _ in range(count):
            classes[candidates[order.pop()]] = label
    return classes


def _drive(features: Mapping[str, np.ndarray], n_contacts: int, rng) -> dict[str, np.ndarray]:
    """Per event type: standardized random projections (n_events, n_contacts)."""
    out = {}
    for events, X in features.items():
        Z = standardize_features(X)
        drive = Z @ random_projection(Z.shape[1], n_contacts, random_state=rng)
        out[events] = standardize_features(drive)
    return out


def _event_table(stimuli: Path) -> pd.DataFrame:
    words = pd.read_csv(stimuli / "naturalistic" / "words.tsv", sep="\t")
    frames = pd.read_csv(stimuli / "naturalistic" / "frames.tsv", sep="\t")
    cuts = frames[frames["scene_cut"].astype(int) == 1]
    return pd.concat([
        pd.DataFrame({"kind": "words", "row": np.arange(len(words)), "run": words["run"],
                      "onset": words["onset"]}),
        pd.DataFrame({"kind": "cuts", "row": np.arange(len(cuts)), "run": cuts["run"].to_numpy(),
                      "onset": cuts["onset"].to_numpy()}),
    ], ignore_index=True)


def _amplitudes(events: pd.DataFrame, classes: Mapping[str, str], names: Sequence[str],
                drives: Mapping[str, Mapping[str, np.ndarray]], gain: float) -> np.ndarray:
    """Burst amplitude (n_events, n_contacts): 1 + gain * drive at responsive contacts."""
    amplitudes = np.zeros((len(events), len(names)))
    for c, name in enumerate(names):
        label = classes[name]
        if label == "noise":
            continue
        for kind in drives[label]:  # event types of the configured tasks only
            rows = (events["kind"] == kind).to_numpy()
            amplitudes[rows, c] = np.maximum(0.0, 1.0 + gain * drives[label][kind][:, c])
    return amplitudes


def _simulate_subject(out: Path, stimuli: Path, subject: str, index: int, features, params, task, seed):
    rng = np.random.default_rng([seed, index, 17])
    demo = params["ieeg"]
    n_contacts = demo["contacts_per_shaft"]
    names, xyz = shaft_layout(demo["n_shafts"], n_contacts, random_state=seed * 1000 + index)
    classes = site_classes(names, n_contacts, demo["sites"], random_state=rng)
    drives = {label: _drive(feats, len(names), rng) for label, feats in features.items()}
    events = _event_table(stimuli)
    amplitudes = _amplitudes(events, classes, names, drives, gain=0.6 * min(1.0, demo["snr"]) ** 0.5)
    duration = params["n_trs"] * params["tr"] + 2 * _MOVIE_ONSET
    bad = [n for n in names if n.endswith(str(n_contacts))][:1]
    for run in sorted(events["run"].unique()):
        rows = (events["run"] == run).to_numpy()
        data = simulate_seeg(duration, demo["sfreq"], len(names),
                             (events["onset"][rows] + _MOVIE_ONSET).to_numpy(), amplitudes[rows],
                             line_freq=demo["line_freq"], burst_uv=25.0 * demo["snr"] ** 0.5,
                             random_state=int(rng.integers(2**31)))
        write_bids_ieeg(str(out), subject, task, int(run), data, demo["sfreq"], names, xyz,
                        [_region(p[1]) for p in xyz], bad, {int(run): _MOVIE_ONSET},
                        demo["line_freq"])
    pairs = [(a, b) for a, b in zip(names[:-1], names[1:]) if a.rstrip("0123456789") == b.rstrip("0123456789")]
    sites = pd.DataFrame({
        "channel": [f"{a}-{b}" for a, b in pairs],
        "class": [classes[b] if classes[b] != "noise" else classes[a] for a, b in pairs],
        "bad": [a in bad or b in bad for a, b in pairs],
    })
    write_table(sites, out / "ground_truth" / f"sub-{subject}_sites.tsv")
    return sites


def make_ieeg_demo_dataset(
    out_dir: str | os.PathLike,
    stimuli_dir: str | os.PathLike,
    generator_features: Mapping[str, Mapping[str, str | os.PathLike]],
    *,
    params: Mapping[str, Any],
    subjects: Sequence[str],
    bids_task: str = "movie",
    seed: int = 0,
) -> Path:
    """Write the synthetic intracranial dataset (BIDS-iEEG) and its planted truth.

    Parameters
    ----------
    out_dir : path
        The BIDS root.
    stimuli_dir : path
        The demo stimuli (naturalistic/words.tsv and frames.tsv with scene_cut).
    generator_features : mapping
        Site class -> {"words": word_events features file, "cuts": scene_events features
        file} of the class's model and condition (``demo.ieeg.sites``).
    params : mapping
        The config's ``demo`` section (n_trs, tr and ``ieeg``).
    subjects : subject labels
    bids_task : the task entity of the recordings
    seed : int
    """
    out, stimuli = Path(out_dir), Path(stimuli_dir)
    sites = params["ieeg"]["sites"]
    features = {
        label: {kind: load_arrays(path)[0][f"layer-{sites[label]['layer']:02d}"]
                for kind, path in generator_features[label].items()}
        for label in sites
    }
    summary = {}
    for index, subject in enumerate(subjects):
        table = _simulate_subject(out, stimuli, subject, index, features, params, bids_task, seed)
        good = table[~table["bad"]]
        summary[subject] = {label: float((good["class"] == label).mean())
                            for label in [*sites, "noise"]}
        logger.info("sub-%s: %d sites, shares %s", subject, len(good), summary[subject])
    write_json({"site_shares": summary, "sites": {k: dict(v) for k, v in sites.items()},
                "movie_onset": _MOVIE_ONSET, "responsive_contacts": list(_RESPONSIVE)},
               out / "ground_truth" / "ground_truth.json")
    return out
