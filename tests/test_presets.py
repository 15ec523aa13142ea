"""The papers' presets run on the demo with tiny stand-ins for the big models: the target
builds exactly its tables and figures, and the tables show the planted effects."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import REPO, snakemake, tiny_config, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def _paper000_config() -> dict:
    """The demo (concepts task) + the paper000 preset, its models swapped for tiny ones.

    The demo plants the language ROI from MiniLM's sentence features and the visual ROI
    from CLIP's image features (config/config.yaml, demo.generators).
    """
    config = tiny_config()
    preset = yaml.safe_load((REPO / "config" / "presets" / "paper000.yaml").read_text())
    config["dataset"]["tasks"] = {"concepts": {"kind": "concepts", "desc": "trials"}}
    config["models"] = {
        "minilm": config["models"]["minilm"],
        "clip": config["models"]["clip"],
        "bert": {"extractor": "text_encoder", "source": "tiny", "layers": [0, 1, 2]},
        "align": {"extractor": "align", "source": "tiny", "layers": [0, 1, 2, 3]},
        "glove": {"extractor": "static", "source": "tiny", "layers": [0]},
    }
    config["conditions"] = preset["conditions"]
    config["rsa"] = {**preset["rsa"], "n_permutations": 1000, "n_bootstrap": 200}
    config["paper000"] = {**preset["paper000"], "counterparts": {"clip": "bert", "align": "bert"}}
    config["encoding"]["joint"] = []
    config["contrasts"] = {}
    return config


@pytest.fixture(scope="module")
def paper000_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("paper000")
    write_config(workdir, _paper000_config())
    snakemake(workdir, "--cores", "2", "paper000")
    return workdir


def test_paper000_target_builds_exactly_its_outputs(paper000_run):
    results = paper000_run / "results"
    for name in ("estimands", "bestlayers", "similarity", "partial"):
        assert (results / "paper000" / f"paper000_{name}.parquet").exists()
    # each figure with the table of the numbers it plots
    assert {p.name for p in (results / "figures").iterdir()} == {
        f"paper000_{name}.{ext}" for name in ("layers", "ablation") for ext in ("png", "tsv")}
    assert not (results / "encoding").exists() and not (results / "bundle").exists()


def test_paper000_estimands_show_the_planted_rois(paper000_run):
    table = pd.read_parquet(paper000_run / "results/paper000/paper000_estimands.parquet")
    assert set(table["estimand"]) == {"group_mean_rdm", "subject_mean"}
    group = table[table.estimand == "group_mean_rdm"].set_index(["roi", "model", "condition", "layer"])["score"]
    # language ROI: driven by MiniLM's sentences; visual ROI: by CLIP's images
    assert group["language", "minilm", "sentence", 6] > group["language", "bert", "sentence"].max()
    assert group["visual", "clip", "picture"].max() > group["visual", "clip", "sentence"].max()
    subject = table[table.estimand == "subject_mean"]
    assert subject["ceiling_upper"].notna().all() and table["q"].notna().all()
    planted = table[(table.roi == "visual") & (table.model == "clip") & (table.condition == "picture")]
    assert (planted["q"] <= 0.05).all()  # FDR over every model x condition x layer x ROI
    control = table[table.roi == "control"]
    assert (control["q"] > 0.05).mean() >= 0.95


def test_paper000_partial_ablation_and_layers(paper000_run):
    partial = pd.read_parquet(paper000_run / "results/paper000/paper000_partial.parquet")
    assert set(partial["model"]) == {"clip", "align"} and set(partial["control_model"]) == {"bert"}
    clip = partial[(partial.model == "clip") & (partial.roi == "visual") & (partial.condition == "picture")]
    # BERT carries none of CLIP's image signal: partialling it out leaves the visual score
    assert (clip["ablated"] > 0.5 * clip["initial"]).all() and (clip["initial"] > 0).any()
    best = pd.read_parquet(paper000_run / "results/paper000/paper000_bestlayers.parquet")
    assert {"best_layer", "layer", "p", "q", "alternative", "estimand"} <= set(best.columns)


def _paper002_config() -> dict:
    """The demo (naturalistic task) + the paper002 preset with tiny stand-ins: CLIP as the
    joint model (its joint / language / vision conditions), its text tower's features
    regressed out (the residual keeps the image part, which drives the visual ROI; OLS needs
    fewer unimodal features than training TRs, 32 < 120 here), trained MiniLM vs the same
    architecture with random weights at every layer, a tiny wav2vec 2.0 reading the
    soundtrack (it drives the auditory ROI), the vision + language + audio joint model and
    the per-voxel joint-vs-language contrast of CLIP."""
    config = tiny_config()
    preset = yaml.safe_load((REPO / "config" / "presets" / "paper002.yaml").read_text())
    config["dataset"]["tasks"] = {"naturalistic": {"kind": "naturalistic"}}
    config["dataset"]["rois"] = ["language", "visual", "auditory", "control"]
    config["demo"]["generators"]["auditory"] = {"model": "wav2vec2", "condition": "audio", "layer": 2}
    minilm = config["models"]["minilm"]
    config["models"] = {
        "clip": config["models"]["clip"],
        "minilm": minilm,
        "minilmrandom": {**minilm, "source": "random"},
        "wav2vec2": {"extractor": "audio_encoder", "source": "tiny", "layers": [2]},
    }
    config["conditions"] = preset["conditions"]
    streams = [{"model": "clip", "condition": "vision", "layer": 2},
               {"model": "minilm", "condition": "language", "layer": 6},
               {"model": "wav2vec2", "condition": "audio", "layer": 2}]
    config["encoding"].update(n_permutations=0, joint=[{"name": "streams", "spaces": streams}])
    pair = preset["contrasts"]["pairs"]["jointVsLanguage"]
    config["contrasts"] = {"settings": {"n_resamples": 200}, "pairs": {"jointVsLanguage": {
        side: {**pair[side], "model": "clip", "layer": 2} for side in ("a", "b")}}}
    config["paper002"] = {
        **preset["paper002"], "model": "clip", "layer": 2, "residual_components": None,
        "residual": [{"model": "clip", "condition": "language", "layer": 2}],
        "finetuned": {"a": "minilm", "b": "minilmrandom", "condition": "language"},
    }
    return config


@pytest.fixture(scope="module")
def paper002_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("paper002")
    write_config(workdir, _paper002_config())
    snakemake(workdir, "--cores", "2", "paper002")
    return workdir


def test_paper002_tables_show_the_planted_rois(paper002_run):
    tables = paper002_run / "results/paper002/tables"
    conditions = pd.read_parquet(tables / "paper002_conditions.parquet").set_index(
        ["roi", "condition_a", "condition_b"])
    # the visual ROI follows CLIP's images: joint and vision beat language-only there
    assert conditions.loc[("visual", "joint", "language"), "significant"]
    assert not conditions.loc[("control", "joint", "language"), "significant"]
    residual = pd.read_parquet(tables / "paper002_residual.parquet").set_index("roi")
    assert residual.loc["visual", "significant"] and not residual.loc["control", "significant"]
    # trained MiniLM against its random-weight twin, layer by layer: the random twin predicts
    # the language ROI well too on this small demo (r 0.23 vs 0.26), so only the direction is
    # asserted there; nowhere is the untrained model significantly better
    layers = pd.read_parquet(tables / "paper002_layers.parquet").set_index(["roi", "layer"])
    assert layers.loc[("language", 6), "mean"] > 0 > layers.loc[("control", 6), "mean"]
    assert list(layers.index.get_level_values("layer").unique()) == [3, 6]
    assert not layers.loc["control", "significant"].any()
    for name in ("paper002_rois.png", "paper002_layers.png", "paper002_streams.png",
                 "contrasts_shares.png", "contrasts_task-naturalistic.png"):
        assert (paper002_run / "results/figures" / name).stat().st_size > 10_000


def test_paper002_audio_stream_finds_the_auditory_roi(paper002_run):
    """The soundtrack's features drive the auditory ROI: there, and only there, dropping the
    audio stream from the vision + language + audio model costs variance; and the vision
    and language streams are what the visual and language ROIs need."""
    streams = pd.read_parquet(paper002_run / "results/paper002/tables/paper002_streams.parquet")
    unique = streams[streams.measure == "unique"].set_index(["roi", "space"])
    audio = unique.xs("model-wav2vec2_cond-audio_layer-2", level="space")
    assert audio.loc["auditory", "significant"] and audio.loc["auditory", "mean"] > 0.05
    assert not audio.loc[["language", "visual", "control"], "significant"].any()
    assert unique.loc[("visual", "model-clip_cond-vision_layer-2"), "significant"]
    # the language ROI is the demo's weakest (joint r about 0.2): MiniLM's unique variance
    # there is positive in every subject (about 0.05, p about 0.02) but not Holm-significant
    # across the four ROIs with three subjects
    language = unique.loc[("language", "model-minilm_cond-language_layer-6")]
    assert language["mean"] > 0.02 and language["p"] < 0.05
    # the per-voxel contrast (joint vs language-only CLIP) is significant in the visual ROI
    group = pd.read_parquet(paper002_run / "results/group/contrasts_group.parquet")
    visual = group[(group.contrast == "jointVsLanguage") & (group.roi == "visual")]
    others = group[(group.contrast == "jointVsLanguage") & group.roi.isin(["control", "auditory"])]
    assert visual["share_units"].iloc[0] > 0.1 and (others["n_significant"] == 0).all()
