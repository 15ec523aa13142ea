"""The neurons rules' steps on files in the real formats (feature files and a preprocessed
brain file written with brainalign.io): a cross-modal unit planted in the language ROI with
opposite signs on two voxel halves, a two-tower vision unit in the visual ROI, noise in the
control ROI; the tables recover them, and the architecture contrast finds the cross-modal
model's unified language voxels."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from brainalign import io
from brainalign.datasets.units import check_units
from brainalign.neurons._checks_config import MODEL_DEFAULTS, NEURONS_DEFAULTS
from brainalign.neurons.steps import TABLES, run_architecture_contrast, run_map_units, summarize_neurons

N_RUNS, N_TRS, WIDTH = 3, 70, 6
ROIS = {"language": 1, "visual": 2, "control": 3}


def _shift(x: np.ndarray, run: np.ndarray, lag: int) -> np.ndarray:
    out = np.zeros_like(x)
    for r in np.unique(run):
        rows = np.flatnonzero(run == r)
        out[rows[lag:]] = x[rows[:-lag]]
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("neurons_steps")
    rng = np.random.default_rng(7)
    run = np.repeat(np.arange(1, N_RUNS + 1), N_TRS).astype(np.int32)
    meta = {"task": "naturalistic", "runs": list(range(1, N_RUNS + 1)), "tr": 2.0, "layers": [1],
            "heads": {}, "pseudo_layers": {}}
    cross = rng.standard_normal((len(run), WIDTH)).astype(np.float32)
    towers = rng.standard_normal((len(run), WIDTH)).astype(np.float32)
    io.save_arrays(root / "cross.safetensors", {"layer-01": cross, "run": run},
                   {**meta, "model": "cross", "streams": ["text+image"]})
    io.save_arrays(root / "towers.safetensors", {"layer-01": towers, "run": run},
                   {**meta, "model": "towers", "streams": ["text", "image"],
                    "stream_widths": {"layer-01": [2, 4]}})
    roi = np.repeat([1, 2, 3], [10, 10, 20]).astype(np.int32)
    bold = rng.standard_normal((len(run), len(roi)))
    halves = np.r_[np.ones(5), -np.ones(5)]
    bold[:, :10] += 1.5 * _shift(cross[:, [0]], run, 2) * halves  # + / - halves of language
    bold[:, 10:20] += 1.5 * _shift(towers[:, [4]], run, 2)        # a vision-tower unit
    arrays = {"bold": bold.astype(np.float32), "run": run, "roi": roi,
              "ijk": np.stack([np.arange(len(roi)), np.zeros(len(roi)), np.zeros(len(roi))], 1).astype(np.int32)}
    brain_meta = {"subject": "01", "task": "naturalistic", "kind": "timeseries", "geometry": "volume",
                  "rois": ROIS, "space": "MNI152", "runs": meta["runs"], "tr": 2.0,
                  "affine": np.eye(4).tolist(), "shape": [len(roi), 1, 1]}
    check_units(arrays, brain_meta)
    io.save_arrays(root / "brain.safetensors", arrays, brain_meta)
    return root


def _params() -> dict:
    params = copy.deepcopy(NEURONS_DEFAULTS)
    params.update(
        models={m: {**MODEL_DEFAULTS, "layers": [1]} for m in ("cross", "towers")},
        networks={"language": ["language"], "visual": ["visual"], "somatomotor": ["control"]},
        n_permutations=100, n_null=50, contrast={"two_tower": "towers", "cross": "cross", "n_resamples": 100},
    )
    return params


ENCODING = {"delays": [1, 2, 3], "block_size": 10, "outer_folds": 5}


def _map(files, model: str, out_dir) -> dict:
    out = {name: out_dir / f"{model}_{name}.parquet" for name in TABLES}
    out.update(pairs=out_dir / f"{model}_pairs.npz", map=out_dir / f"{model}_map.nii.gz")
    run_map_units(files / f"{model}.safetensors", files / "brain.safetensors", out, model=model,
                  condition="joint", spec=_params()["models"][model], params=_params(), encoding=ENCODING)
    return out


def test_map_units_step_recovers_the_planted_units(files, tmp_path):
    out = _map(files, "cross", tmp_path)
    units = io.read_table(out["units"]).set_index("index")
    assert units.loc[0, "best_network"] == "language" and set(units["modality"]) == {"cross"}
    assert units.loc[0, "n_positive"] >= 4 and units.loc[0, "n_negative"] >= 4
    assert (units.drop(index=0)["n_significant"] == 0).all()  # the other units are pure noise
    pairs = np.load(out["pairs"])
    assert pairs["score"].shape == (WIDTH, 40) and pairs["sign"].dtype == np.int8
    np.testing.assert_array_equal(pairs["sign"][0, :10][pairs["significant"][0, :10]],
                                  np.r_[np.ones(5), -np.ones(5)][pairs["significant"][0, :10]])
    networks = io.read_table(out["networks"]).set_index("network")
    assert networks.loc["language", "n_significant_units"] == 1
    assert networks.loc["somatomotor", "n_significant_units"] == 0
    counts = io.read_table(out["countnull"])
    assert np.isclose(counts["null_pmf"].sum(), 1) and np.isclose(counts["share_observed"].sum(), 1)
    polarity = io.read_table(out["polarity"])
    assert polarity["layer"].tolist() == ["1", "mirror"]  # the model's layer numbers, as text
    import nibabel as nib

    assert np.asarray(nib.load(out["map"]).dataobj)[:10].ravel().sum() >= 8  # one unit per voxel


def test_two_tower_units_and_the_architecture_contrast(files, tmp_path):
    out = _map(files, "towers", tmp_path)
    architecture = io.read_table(out["architecture"]).set_index("network")
    assert architecture.loc["visual", "share_vision_only"] > 0.8
    assert architecture.loc["language", "share_unified"] == 0
    table = run_architecture_contrast(
        {"a": files / "cross.safetensors", "b": files / "towers.safetensors"}, files / "brain.safetensors",
        tmp_path / "contrast.parquet", models={"a": "cross", "b": "towers"}, params=_params(),
        encoding=ENCODING)
    table = table.set_index("network")
    assert list(table.index) == ["language", "visual", "somatomotor", "all"]
    assert table.loc["language", "difference"] > 0.8 and table.loc["language", "p"] <= 0.05
    assert table.loc["somatomotor", "difference"] == 0
    pooled = summarize_neurons({"architecture": [out["architecture"], out["architecture"]]}, tmp_path / "tables")
    assert len(pooled["architecture"]) == 2 * len(architecture)
    assert isinstance(pd.read_parquet(tmp_path / "tables" / "neurons_architecture.parquet"), pd.DataFrame)
