"""Tests of the RSA stage's file-level steps on tiny labelled files with planted structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign import io
from brainalign.figures_rsa import plot_rsa_layer_profiles, plot_rsa_model_comparison, plot_rsa_rdms
from brainalign.rsa import compare_rdms, compute_crossnobis_rdm, compute_rdm
from brainalign.rsa.steps import (
    load_brain_rdms,
    run_brain_rdms,
    run_model_rdms,
    run_rsa,
    run_rsa_inference,
    summarize_rsa,
)

CONCEPTS = [f"concept{i:02d}" for i in range(14)]
SUBJECTS = ["01", "02", "03", "04"]
PARAMS = {"comparison": "spearman", "n_permutations": 300, "n_bootstrap": 200, "bootstrap": "both",
          "ci_level": 0.9, "fdr_alpha": 0.05}
KINDS = ("layers", "ceiling", "selected", "models", "pairwise")


def _features(rng):
    """Layer features of two models; model 'good' layer 2 drives the 'lang' ROI."""
    base = rng.standard_normal((14, 10))
    return {
        "good": {0: rng.standard_normal((14, 10)), 2: base + 0.3 * rng.standard_normal((14, 10))},
        "bad": {1: rng.standard_normal((14, 12))},
    }, base


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Brain pattern files, feature files and every step's outputs, computed once."""
    root = tmp_path_factory.mktemp("rsa")
    rng = np.random.default_rng(1)
    features, base = _features(rng)
    for model, layers in features.items():
        order = rng.permutation(14) if model == "bad" else np.arange(14)  # stimuli travel with rows
        io.save_arrays(root / f"{model}_features.safetensors",
                       {f"layer-{k:02d}": v[order].astype(np.float32) for k, v in layers.items()},
                       {"model": model, "condition": "sentence", "stimuli": [CONCEPTS[i] for i in order],
                        "task": "concepts", "layers": sorted(layers)})
    for subject in SUBJECTS:
        order = rng.permutation(14)
        driven = base @ rng.standard_normal((10, 30))
        runs = np.concatenate([driven + rng.standard_normal((2, 14, 30)) * 1.2,
                               rng.standard_normal((2, 14, 25))], axis=2)[:, order]
        io.save_arrays(root / f"sub-{subject}_patterns.safetensors",
                       {"patterns": runs.mean(0).astype(np.float32),
                        "patterns_by_run": runs.astype(np.float32),
                        "roi": np.repeat(np.array([1, 2], np.int32), [30, 25]),
                        "ijk": np.zeros((55, 3), np.int32)},
                       {"subject": subject, "task": "concepts", "stimuli": [CONCEPTS[i] for i in order],
                        "rois": {"lang": 1, "ctrl": 2}})
    _run_steps(root)
    return root


def _run_steps(root):
    brains = [root / f"sub-{s}_rdms.safetensors" for s in SUBJECTS]
    for subject, path in zip(SUBJECTS, brains):
        run_brain_rdms(root / f"sub-{subject}_patterns.safetensors", ["lang", "ctrl"],
                       metric="crossnobis", noise="diag", out=path)
    models = []
    for model in ("good", "bad"):
        models.append(root / f"{model}_rdms.safetensors")
        run_model_rdms(root / f"{model}_features.safetensors", metric="correlation", out=models[-1])
        run_rsa(brains, models[-1], params=PARAMS, seed=0, out_scores=root / f"{model}_scores.parquet",
                out_permutation=root / f"{model}_perm.parquet")
    for roi in ("lang", "ctrl"):
        run_rsa_inference(brains, models, roi, params=PARAMS, seed=0,
                          out={k: root / f"{roi}_{k}.parquet" for k in KINDS})
    summarize_rsa([root / f"{m}_scores.parquet" for m in ("good", "bad")],
                  [root / f"{m}_perm.parquet" for m in ("good", "bad")],
                  {k: [root / f"{roi}_{k}.parquet" for roi in ("lang", "ctrl")] for k in KINDS},
                  brains, fdr_alpha=0.05,
                  out={k: root / f"group_{k}.parquet" for k in
                       ("subjects", "group", "ceiling", "selected", "models", "pairwise", "brain_rdms")})


def _table(root, name):
    return pd.read_parquet(root / f"group_{name}.parquet")


def test_brain_rdms_are_crossnobis_in_each_roi_and_label_their_concepts(workdir):
    arrays, meta = io.load_arrays(workdir / "sub-01_rdms.safetensors")
    patterns, pmeta = io.load_arrays(workdir / "sub-01_patterns.safetensors")
    assert set(arrays) == {"roi-lang", "roi-ctrl"}
    assert meta["stimuli"] == pmeta["stimuli"] and meta["metric"] == "crossnobis"
    assert meta["n_voxels"] == {"lang": 30, "ctrl": 25} and meta["noise"] == "diag"
    by_run = patterns["patterns_by_run"][:, :, 30:].astype(np.float64)
    precision = 1 / ((by_run - by_run.mean(0)) ** 2).sum((0, 1)) * 14  # dof = 14 x (2 - 1)
    np.testing.assert_allclose(arrays["roi-ctrl"], compute_crossnobis_rdm(by_run, precision), atol=1e-12)


def test_scores_pair_rdms_by_concept_name_not_position(workdir):
    scores = _table(workdir, "subjects")
    row = scores[(scores.subject == "02") & (scores.roi == "lang") & (scores.model == "bad")].iloc[0]
    subjects, stimuli, rdms, _ = load_brain_rdms([workdir / "sub-02_rdms.safetensors"], "lang")
    features, meta = io.load_arrays(workdir / "bad_features.safetensors")
    order = [meta["stimuli"].index(name) for name in stimuli]  # the 'bad' rows are shuffled
    expected = compare_rdms(compute_rdm(features["layer-01"][order]), rdms[0])
    assert row["score"] == pytest.approx(expected, abs=1e-12)
    assert len(scores) == 4 * 2 * 3 and set(scores.columns) >= {"subject", "roi", "model", "condition",
                                                                 "layer", "score", "brain_metric"}


def test_planted_layer_is_significant_and_control_is_not(workdir):
    group = _table(workdir, "group").set_index(["roi", "model", "layer"])
    assert group.loc[("lang", "good", 2), "q"] < 0.05
    assert group.loc[("lang", "good", 2), "significant"]
    assert group.loc[("lang", "good", 2), "ci_low"] > 0
    assert not group.xs("ctrl", level="roi")["significant"].any()
    assert group.loc[("lang", "good", 2), "p_perm"] == pytest.approx(1 / 301)
    assert (group["n_permutations"] == 300).all() and (group["n_subjects"] == 4).all()
    # FDR family: one model x condition across its layers and ROIs
    good = group.xs("good", level="model")
    assert good["q"].min() >= good["p_perm"].min()


def test_noise_ceiling_is_higher_in_the_driven_roi(workdir):
    ceiling = _table(workdir, "ceiling").set_index("roi")
    assert ceiling.loc["lang", "lower"] > 0.3 > ceiling.loc["ctrl", "upper"] - 0.2
    assert (ceiling["lower"] < ceiling["upper"]).all()


def test_heldout_selection_and_model_comparison(workdir):
    selected = _table(workdir, "selected")
    lang = selected[(selected.roi == "lang") & (selected.model == "good")]
    assert (lang["layer"] == 2).all() and len(lang) == 4
    models = _table(workdir, "models").set_index(["roi", "model"])
    assert models.loc[("lang", "good"), "significant"]
    assert models.loc[("lang", "good"), "score"] == pytest.approx(lang["score"].mean())
    pair = _table(workdir, "pairwise").set_index("roi").loc["lang"]
    assert (pair["model_a"], pair["model_b"]) == ("bad", "good")  # sorted labels
    assert pair["difference"] < -0.3 and pair["ci_high"] < 0 and pair["p_boot"] < 0.1  # 90% CI


def test_group_average_brain_rdms(workdir):
    table = _table(workdir, "brain_rdms")
    assert len(table) == 2 * 14 * 13 // 2
    subjects, stimuli, rdms, _ = load_brain_rdms([workdir / f"sub-{s}_rdms.safetensors" for s in SUBJECTS],
                                                 "ctrl")
    ctrl = table[table.roi == "ctrl"]
    np.testing.assert_allclose(ctrl["dissimilarity"], rdms.mean(axis=0))
    assert list(ctrl["concept_a"][:2]) == [stimuli[0]] * 2 and ctrl["concept_b"].iloc[0] == stimuli[1]


def test_figures_are_written_deterministically(workdir, tmp_path):
    group, ceiling = _table(workdir, "group"), _table(workdir, "ceiling")
    digests = []
    for attempt in range(2):
        paths = [tmp_path / f"{name}{attempt}.png" for name in ("profiles", "bars", "rdms")]
        plot_rsa_layer_profiles(group, ceiling, value_label="RSA", paths=[paths[0]], dpi=50)
        plot_rsa_model_comparison(_table(workdir, "models"), _table(workdir, "pairwise"), ceiling,
                                  value_label="RSA", paths=[paths[1]], dpi=50)
        plot_rsa_rdms(_table(workdir, "brain_rdms"),
                      [workdir / f"{m}_rdms.safetensors" for m in ("good", "bad")], paths=[paths[2]],
                      dpi=50)
        digests.append([io.sha256_file(p) for p in paths])
        assert all(p.stat().st_size > 1000 for p in paths)
    assert digests[0] == digests[1]


def test_step_errors(workdir, tmp_path):
    with pytest.raises(ValueError, match=r"ROI 'vis' is not in the atlas of .* fix 'dataset.rois'"):
        run_brain_rdms(workdir / "sub-01_patterns.safetensors", ["vis"], metric="correlation",
                       noise="none", out=tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match=r"config 'rsa.metric' \(model RDMs\) must be one of"):
        run_model_rdms(workdir / "good_features.safetensors", metric="crossnobis", out=tmp_path / "y")
    with pytest.raises(ValueError, match=r"'noise' must be 'none' or 'diag'; got 'full'"):
        run_brain_rdms(workdir / "sub-01_patterns.safetensors", ["lang"], metric="crossnobis",
                       noise="full", out=tmp_path / "z.safetensors")


def test_single_subject_has_no_heldout_selection_but_still_a_permutation_test(workdir, tmp_path):
    brain = [workdir / "sub-01_rdms.safetensors"]
    models = [workdir / f"{m}_rdms.safetensors" for m in ("good", "bad")]
    params = {**PARAMS, "n_bootstrap": 20, "n_permutations": 50}
    tables = run_rsa_inference(brain, models, "lang", params=params, seed=0,
                               out={k: tmp_path / f"{k}.parquet" for k in KINDS})
    assert np.isnan(tables["ceiling"]["lower"].iloc[0]) and tables["ceiling"]["upper"].iloc[0] > 0.99
    assert tables["selected"]["score"].isna().all() and (tables["selected"]["layer"] == -1).all()
    assert tables["models"]["score"].isna().all()
    assert np.isfinite(tables["layers"]["mean"]).all()
    _, permutation = run_rsa(brain, models[0], params=params, seed=0, out_scores=tmp_path / "s.parquet",
                             out_permutation=tmp_path / "p.parquet")
    assert permutation["p_perm"].between(1 / 51, 1).all()
