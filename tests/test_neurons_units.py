"""The pipeline side of the neuron-level stage: units read from feature files written by the
real extraction (two towers kept apart, checked against each tower extracted alone, with and
without heads; MLP neurons; the heads and MLP neurons of a cross-modal family), the
config checks of the neurons section, the network labels of voxels, and the synthetic
neurons demo's planted units."""

from __future__ import annotations

import copy
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from brainalign import io
from brainalign.config import ConfigError, validate_config
from brainalign.demo.neurons_dataset import NETWORK_SPHERES, SyntheticNeuronsReader, make_neurons_dataset
from brainalign.demo.signals import convolve_hrf, standardize_features
from brainalign.features import ModelSpec
from brainalign.features.extract import write_task_features
from brainalign.neurons.steps import cv_groups, voxel_networks
from brainalign.neurons.units import read_units, unit_labels

from .conftest import REPO

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- units from feature files -------------------------------------------------------------
@pytest.fixture(scope="module")
def clip_files(stim, tmp_path_factory):
    """Tiny CLIP's naturalistic features: joint (both towers, heads recorded) and text alone."""
    from brainalign.features import load_extractor

    out = tmp_path_factory.mktemp("clip")
    spec = ModelSpec(name="clip", extractor="clip", source="tiny", layers=[1, 2], attention_heads=True)
    extractor = load_extractor(spec)
    for condition in ("joint", "language"):
        write_task_features(extractor, stim, "naturalistic", condition, out / f"{condition}.safetensors")
    return out


def test_two_tower_units_are_the_text_tower_then_the_vision_tower(clip_files):
    units, labels, extra, meta = read_units(clip_files / "joint.safetensors", [2, 1], ["hidden", "head"])
    assert list(labels["unit"]) == list(range(units.shape[1])) and units.dtype == np.float32
    hidden = labels[labels["kind"] == "hidden"]
    # the text units of the joint file are exactly the text tower extracted alone (reference)
    text_alone, _ = io.load_arrays(clip_files / "language.safetensors")
    for layer in (1, 2):
        text = hidden[(hidden["layer"] == layer) & (hidden["modality"] == "text")]
        np.testing.assert_array_equal(units[:, text["unit"]], text_alone[f"layer-{layer:02d}"])
        assert list(text["index"]) == list(range(text_alone[f"layer-{layer:02d}"].shape[1]))
        vision = hidden[(hidden["layer"] == layer) & (hidden["modality"] == "vision")]
        assert vision["index"].min() == len(text) and len(text) != len(vision)  # widths 32 / 24
    heads = labels[labels["kind"] == "head"]
    arrays, _ = io.load_arrays(clip_files / "joint.safetensors")
    image = heads[(heads["layer"] == 2) & (heads["stream"] == "image")]
    np.testing.assert_array_equal(units[:, image["unit"]], arrays["heads-image-02"].reshape(len(units), -1))
    assert set(image["head"]) == {0, 1} and set(image["modality"]) == {"vision"}
    assert list(pd.unique(labels["layer"])) == [1, 2] and "run" in extra and meta["model"] == "clip"


def test_units_of_a_missing_layer_or_kind_are_refused(clip_files, tmp_path):
    with pytest.raises(ValueError, match=r"has no units of layers \[5\]; it has layers \[1, 2\]"):
        read_units(clip_files / "joint.safetensors", [5])
    _features(tmp_path / "bt.safetensors")  # a cross-modal family: no heads written
    with pytest.raises(ValueError, match="no attention-head arrays for layer 2 .*attention_heads: true"):
        read_units(tmp_path / "bt.safetensors", [2], ["head"])
    with pytest.raises(ValueError, match="no MLP-neuron arrays for layer 2 .*'mlp_neurons: true'"):
        read_units(clip_files / "joint.safetensors", [2], ["mlp"])
    with pytest.raises(ValueError, match="neurons kinds must be a non-empty list of hidden, head, mlp"):
        read_units(clip_files / "joint.safetensors", [2], ["neuron"])


def test_stream_widths_split_the_towers_without_heads_and_mlp_units_are_labelled(clip_files, stim,
                                                                                  tmp_path):
    """A file written with mlp_neurons and no heads: the recorded stream_widths split CLIP's
    layer into its towers (the text part equal to the text tower alone), and the mlp-* arrays
    are units of kind mlp of each tower."""
    from brainalign.features import load_extractor

    spec = ModelSpec(name="clip", extractor="clip", source="tiny", layers=[1, 2], mlp_neurons=True)
    write_task_features(load_extractor(spec), stim, "naturalistic", "joint", tmp_path / "f.safetensors")
    units, labels, extra, meta = read_units(tmp_path / "f.safetensors", [1, 2], ["hidden", "mlp"])
    assert meta["heads"] == {} and meta["stream_widths"] == {"layer-01": [32, 24], "layer-02": [32, 24]}
    assert meta["mlp"]["mlp-image-02"] == {"layer": 2, "stream": "image", "n_mlp": 48,
                                           "block": "vision_model.encoder.layers.1"}
    text_alone, _ = io.load_arrays(clip_files / "language.safetensors")
    hidden = labels[(labels["kind"] == "hidden") & (labels["layer"] == 2)]
    text = hidden[hidden["modality"] == "text"]
    np.testing.assert_array_equal(units[:, text["unit"]], text_alone["layer-02"])
    assert (hidden["modality"] == "vision").sum() == 24
    mlp = labels[labels["kind"] == "mlp"]
    assert mlp.groupby(["layer", "modality"]).size().to_dict() == {
        (1, "text"): 64, (1, "vision"): 48, (2, "text"): 64, (2, "vision"): 48}
    arrays, _ = io.load_arrays(tmp_path / "f.safetensors")
    image = mlp[(mlp["layer"] == 1) & (mlp["stream"] == "image")]
    np.testing.assert_array_equal(units[:, image["unit"]], arrays["mlp-image-01"])
    assert list(image["index"]) == list(range(48)) and set(image["head"]) == {-1}
    assert not any(k.startswith("mlp-") for k in extra)
    # the hidden states do not depend on the option (the hooks only read)
    np.testing.assert_array_equal(arrays["layer-01"], io.load_arrays(clip_files / "joint.safetensors")[0]["layer-01"])


def test_cross_modal_heads_and_mlp_units_are_cross(stim, tmp_path):
    from brainalign.features import load_extractor

    spec = ModelSpec(name="bt", extractor="bridgetower", source="tiny", layers=[0, 2],
                     attention_heads=True, mlp_neurons=True)
    write_task_features(load_extractor(spec), stim, "concepts", "joint", tmp_path / "bt.safetensors")
    units, labels, _, meta = read_units(tmp_path / "bt.safetensors", [2], ["hidden", "head", "mlp"])
    assert meta["heads"]["heads-text+image-02"]["block"] == "cross_modal_text_layers.1"
    assert meta["mlp"]["mlp-text+image-02"]["block"] == "cross_modal_text_layers.1"
    assert "heads-text+image-00" not in meta["heads"]  # hidden state 0 is no block's output
    assert labels.groupby("kind").size().to_dict() == {"head": 32, "hidden": 32, "mlp": 64}
    assert set(labels["modality"]) == {"cross"} and set(labels["stream"]) == {"text+image"}
    assert units.shape == (len(meta["stimuli"]), 128) and np.isfinite(units).all()


def test_labels_of_cross_modal_summed_and_unsplittable_layers():
    cross = unit_labels({"streams": ["text+image"]}, {3: 5})
    assert list(cross["modality"]) == ["cross"] * 5 and list(cross["index"]) == list(range(5))
    summed = unit_labels({"streams": ["text", "image"], "pseudo_layers": {"7": "projection"}}, {7: 4})
    assert set(summed["modality"]) == {"summed"}
    recorded = unit_labels({"streams": ["word", "noise"], "stream_widths": {"layer-01": [2, 3]}}, {1: 5})
    assert list(recorded["modality"]) == ["text"] * 2 + ["vision"] * 3
    with pytest.raises(ValueError, match="widths are not recorded.*attention_heads: true"):
        unit_labels({"streams": ["text", "image"]}, {1: 6}, path="f.safetensors")


# --- configuration ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def neurons_config() -> dict:
    return yaml.safe_load((REPO / "config" / "neurons.yaml").read_text())


def _edited(config: dict, edit) -> dict:
    config = copy.deepcopy(config)
    edit(config)
    return config


def test_head_and_mlp_units_are_accepted_where_the_model_writes_them(neurons_config):
    def edit(c):
        c["models"]["bridgetower"].update(attention_heads=True, mlp_neurons=True)
        c["models"]["clip"].update(mlp_neurons=True)
        c["neurons"]["models"]["bridgetower"].update(kinds=["hidden", "head", "mlp"])
        c["neurons"]["models"]["clip"].update(kinds=["mlp"])

    checked = validate_config(_edited(neurons_config, edit), source="neurons.yaml")
    assert checked["neurons"]["models"]["bridgetower"]["kinds"] == ["hidden", "head", "mlp"]


def test_the_demo_config_and_the_defaults_validate(neurons_config):
    checked = validate_config(neurons_config, source="neurons.yaml")
    assert checked["neurons"]["models"]["clip"]["kinds"] == ["hidden"]
    assert checked["neurons"]["block_length"] is None and checked["neurons"]["contrast"]["n_resamples"] == 200
    plain = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    assert plain["neurons"]["models"] == {} and plain["neurons"]["correction"] == "maxstat"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["neurons"]["models"]["clip"].update(layers=[7]),
         r"'neurons.models.clip.layers' asks for units of layers \[7\], which model 'clip' does not extract"),
        (lambda c: c["neurons"]["models"]["bridgetower"].update(kinds=["head"]),
         r"'head' units but 'models.bridgetower.attention_heads' is false"),
        (lambda c: c["models"]["clip"].update(extractor="align", attention_heads=False) or
         c["neurons"]["models"]["clip"].update(kinds=["mlp"]), r"'mlp' units of model 'clip' \(align\), a family with none"),
        (lambda c: c["models"]["clip"].update(attention_heads=False) or
         c["neurons"]["models"]["clip"].update(kinds=["hidden", "head"]), "attention_heads' is false"),
        (lambda c: c["neurons"]["models"]["clip"].update(kinds=["mlp"]), "'models.clip.mlp_neurons' is false"),
        (lambda c: c["neurons"]["models"].update(vit={"layers": [1]}), "names model 'vit', which is not in"),
        (lambda c: c["neurons"].update(networks={}), "the atlas has no network labels"),
        (lambda c: c["neurons"].update(networks={"language": ["broca"]}), r"must list ROIs of 'dataset.rois'"),
        (lambda c: c["neurons"].update(correction="bonferroni"), r"'neurons.correction' must be one of"),
        (lambda c: c["neurons"].update(tasks=["concepts"]), r"'neurons.tasks' must be null or a list of tasks"),
        (lambda c: c["neurons"]["demo"]["plants"][0].update(network="control"), "'control' is never driven"),
    ],
)
def test_bad_neurons_requests_stop_at_config_time(neurons_config, edit, message):
    with pytest.raises(ConfigError, match=message) as error:
        validate_config(_edited(neurons_config, edit), source="neurons.yaml")
    assert "\n" not in str(error.value) and str(error.value).endswith("Edit neurons.yaml.")


# --- voxels: networks and CV groups -------------------------------------------------------
def test_voxel_networks_from_labelled_rois():
    arrays = {"roi": np.array([0, 1, 2, 3, 1, 3], dtype=np.int32)}
    meta = {"rois": {"ifg": 1, "stg": 2, "pcc": 3}}
    network, names = voxel_networks(arrays, meta, {"language": ["ifg", "stg"], "defaultmode": ["pcc"]})
    assert names == ["language", "defaultmode"]
    assert network.tolist() == [-1, 0, 0, 1, 0, 1]


def test_concept_patterns_get_seeded_outer_folds_as_groups():
    groups = cv_groups("concepts", np.arange(23), 5, seed=3)
    assert sorted(np.bincount(groups)) == [4, 4, 5, 5, 5]
    assert np.array_equal(groups, cv_groups("concepts", np.arange(23), 5, seed=3))
    runs = np.repeat([1, 2], 10)
    assert cv_groups("timeseries", runs, 5, seed=3) is runs


# --- the synthetic neurons demo -----------------------------------------------------------
def _features(path, n_runs=2, n_trs=80, width=12, seed=0):
    """A TR-aligned feature file in the extraction's format: one cross-modal layer."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n_runs * n_trs, width)).astype(np.float32)
    run = np.repeat(np.arange(1, n_runs + 1), n_trs).astype(np.int32)
    io.save_arrays(path, {"layer-02": values, "run": run},
                   {"model": "bt", "task": "naturalistic", "tr": 2.0, "streams": ["text+image"],
                    "layers": [2], "heads": {}, "pseudo_layers": {}})
    return values, run


def test_neurons_demo_plants_unit_groups_with_signed_voxel_halves(tmp_path):
    values, run = _features(tmp_path / "bt.safetensors")
    plants = [{"model": "bt", "layer": 2, "modality": "cross", "network": "language"},
              {"model": "bt", "layer": 2, "modality": "cross", "network": "visual"}]
    out = make_neurons_dataset(tmp_path / "ds", features={"bt": tmp_path / "bt.safetensors"}, plants=plants,
                               group_size=2, snr=4.0, seed=1)
    truth = json.loads((out / "ground_truth/ground_truth.json").read_text())
    chosen = [p["units"] for p in truth["plants"]]
    assert all(len(units) == 2 for units in chosen) and not set(chosen[0]) & set(chosen[1])
    arrays, _ = io.load_arrays(out / "ground_truth/plants.safetensors")
    labels = np.asarray(nib.load(out / "space-MNI152_atlas-networks_dseg.nii.gz").dataobj)
    network = labels[tuple(arrays["ijk"].T)]
    for k, name in enumerate(["language", "visual"]):
        inside = network == NETWORK_SPHERES[name][0]
        assert set(np.unique(arrays["sign"][k][inside])) == {-1, 1}
        assert not arrays["sign"][k][~inside].any()
        assert abs(int(arrays["sign"][k].sum())) <= 1  # two halves
    # the written BOLD follows the group's units, with the planted sign per voxel half
    reader = SyntheticNeuronsReader(
        {"format": "synthetic_neurons", "root": str(out), "atlas": "networks", "naturalistic_runs": [1, 2],
         "tasks": {"naturalistic": {"kind": "naturalistic"}}, "space": "MNI152"}, str(tmp_path))
    files = reader.inputs("01", "naturalistic")
    bold = np.concatenate([np.asarray(nib.load(f).dataobj)[tuple(arrays["ijk"].T)].T for f in files["bold"]])
    driver = standardize_features(convolve_hrf(standardize_features(values[:, chosen[0]].astype(float)).sum(1,
                                  keepdims=True), run, 2.0))[:, 0]
    bold = bold - bold.mean(axis=0)
    r = driver @ bold / np.maximum(np.linalg.norm(bold, axis=0) * np.linalg.norm(driver), 1e-9)
    assert np.mean(np.sign(r[arrays["sign"][0] != 0]) == arrays["sign"][0][arrays["sign"][0] != 0]) > 0.9
    assert np.abs(r[network == NETWORK_SPHERES["control"][0]]).max() < np.abs(r[arrays["sign"][0] != 0]).mean()


def test_neurons_demo_refuses_unknown_networks_and_small_pools(tmp_path):
    _features(tmp_path / "bt.safetensors", width=4)
    with pytest.raises(ValueError, match="must drive networks among"):
        make_neurons_dataset(tmp_path / "a", features={"bt": tmp_path / "bt.safetensors"},
                             plants=[{"model": "bt", "layer": 2, "modality": "cross", "network": "motor"}])
    with pytest.raises(ValueError, match="free units of modality 'text'"):
        make_neurons_dataset(tmp_path / "b", features={"bt": tmp_path / "bt.safetensors"},
                             plants=[{"model": "bt", "layer": 2, "modality": "text", "network": "language"}])
