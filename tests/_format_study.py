"""A small study for the end-to-end format tests: stimuli, a tiny model's features, and
responses planted from those features.

Each format test writes its dataset in the real format (fMRIPrep tree, Pereira ``.mat``,
event-related BOLD, fsaverage GIfTI) with these planted responses in the ``language`` ROI
(pure noise elsewhere), runs the whole workflow on it with the same tiny model, and checks
that encoding and RSA find the planted ROI and nothing in the control ROI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from brainalign.demo import make_demo_stimuli
from brainalign.demo.signals import (
    convolve_hrf,
    plant_signal,
    random_projection,
    standardize_features,
)
from brainalign.features import ModelSpec, extract_features_file
from brainalign.io import load_arrays, read_table, write_table

SEED = 0
MODEL = {"extractor": "text_encoder", "source": "tiny", "layers": [1, 2]}
LAYER = 2


def study_stimuli(root: Path, *, n_concepts: int = 24, n_trs: tuple[int, ...] = (90,)) -> Path:
    """Demo stimuli with naturalistic runs of the given (possibly unequal) lengths."""
    longest = max(n_trs)
    make_demo_stimuli(root, n_concepts=n_concepts, n_contexts=2, n_runs=len(n_trs),
                      n_trs=longest, tr=2.0, image_size=16, seed=SEED)
    nat = root / "naturalistic"
    runs = read_table(nat / "runs.tsv")
    runs["n_trs"] = list(n_trs)
    write_table(runs, nat / "runs.tsv")
    for name in ("words", "frames"):
        table = read_table(nat / f"{name}.tsv")
        end = table["run"].map(dict(zip(runs["run"], runs["n_trs"] * runs["tr"])))
        write_table(table[table["onset"] + table["duration"] <= end].reset_index(drop=True),
                    nat / f"{name}.tsv")
    return root


def tiny_features(stimuli: Path, task: str, out: Path) -> tuple[np.ndarray, dict]:
    """Layer LAYER of the tiny BERT (the workflow's model 'bert' with seed SEED), sentences."""
    spec = ModelSpec.from_config("bert", MODEL, seed=SEED)
    path = out / f"bert_{task}.safetensors"
    extract_features_file(spec, stimuli, task=task, condition="sentence", out=path)
    arrays, meta = load_arrays(path)
    return arrays[f"layer-{LAYER:02d}"].astype(np.float64), meta


def planted(features: np.ndarray, n_units: int, *, seed: int = 1) -> np.ndarray:
    """Unit-variance responses of ``n_units`` units to the features, shape (n_samples, n_units)."""
    rng = np.random.default_rng(seed)
    weights = random_projection(features.shape[1], n_units, random_state=rng)
    return plant_signal(standardize_features(features), weights)


def planted_timeseries(features: np.ndarray, runs: np.ndarray, n_units: int, tr: float = 2.0) -> np.ndarray:
    """As :func:`planted`, HRF-convolved within runs and rescaled to unit variance."""
    signal = convolve_hrf(planted(features, n_units), runs, tr)
    return signal / signal.std(axis=0)


def study_config(dataset: dict, stimuli: Path, **sections) -> dict:
    """A workflow configuration for the study: the tiny BERT, modest statistics."""
    config = {
        "seed": SEED,
        "dataset": dataset,
        "stimuli": {"root": str(stimuli)},
        "models": {"bert": MODEL},
        "conditions": ["sentence"],
        "encoding": {"alphas": [1.0, 100.0, 10000.0], "delays": [1, 2, 3], "outer_folds": 4,
                     "inner_folds": 3, "n_permutations": 20},
        "rsa": {"metric": "correlation", "n_permutations": 200, "n_bootstrap": 50},
        "figures": {"formats": ["png"]},
    }
    config.update(sections)
    return config


def write_study_config(workdir: Path, config: dict) -> Path:
    path = workdir / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def roi_scores(workdir: Path) -> pd.DataFrame:
    """Subject x ROI mean held-out r of the planted layer."""
    table = pd.read_parquet(workdir / "results/group/encoding_subjects.parquet")
    return table[(table["model"] == "bert") & (table["layer"] == LAYER)]
