"""Tests of the encoding rules' file-level steps, on tiny files in the workflow's formats."""

from __future__ import annotations

import copy

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from brainalign import io
from brainalign.config import ConfigError, check_joint_models
from brainalign.encoding.steps import (
    run_fit_encoding,
    run_fit_joint_encoding,
    summarize_best_layer_tables,
    summarize_joint_tables,
)
from brainalign.group import group_paired_ttest
from brainalign.pipeline import map_sidecar

PARAMS = {
    "alphas": [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0],
    "delays": [1, 2],
    "outer_folds": 4,
    "inner_folds": 3,
    "n_targets_batch": 16,
    "n_permutations": 200,
    "block_size": 5,
    "fdr_q": 0.05,
    "min_ceiling": 0.1,
    "banded_iterations": 4,
}
ROIS = {"language": 1, "visual": 2, "control": 3}
AFFINE = np.diag([8.0, 8.0, 8.0, 1.0]).tolist()


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _voxels(n_per_roi=12):
    roi = np.repeat([1, 2, 3], n_per_roi).astype(np.int32)
    ijk = np.stack(np.unravel_index(np.arange(roi.size), (4, 5, 3 * n_per_roi)), axis=1).astype(
        np.int32
    )
    return roi, ijk


def _write_brain(path, subject, task, responses, by_run=None, runs=None):
    roi, ijk = _voxels(responses.shape[1] // 3)
    meta = {
        "subject": subject,
        "task": task,
        "kind": "concepts" if task == "concepts" else "timeseries",
        "geometry": "volume",
        "space": "MNI152",
        "rois": ROIS,
        "affine": AFFINE,
        "shape": [4, 5, responses.shape[1]],
    }
    if task == "concepts":
        arrays = {
            "patterns": responses.astype(np.float32),
            "roi": roi,
            "ijk": ijk,
            "patterns_by_run": by_run.astype(np.float32),
        }
        meta |= {
            "stimuli": [f"c{i:02d}" for i in range(responses.shape[0])],
            "runs": [1, 2],
            "n_repeats": 2,
        }
    else:
        arrays = {
            "bold": responses.astype(np.float32),
            "run": runs.astype(np.int32),
            "roi": roi,
            "ijk": ijk,
        }
        meta |= {"runs": sorted(set(runs.tolist())), "tr": 2.0}
    io.save_arrays(path, arrays, meta)


def _write_features(path, model, condition, task, layers, names=None, runs=None):
    meta = {
        "model": model,
        "model_id": None,
        "revision": None,
        "extractor": "x",
        "condition": condition,
        "task": task,
        "layers": sorted(layers),
        "pooling": "word",
        "units": "a.u.",
    }
    arrays = {f"layer-{layer:02d}": X.astype(np.float32) for layer, X in layers.items()}
    if task == "concepts":
        meta["stimuli"] = names
    else:
        arrays["run"] = runs.astype(np.int32)
        meta |= {"runs": sorted(set(runs.tolist())), "tr": 2.0}
    io.save_arrays(path, arrays, meta)


def _concepts(tmp_path, subject="01", seed=0):
    """48 concepts, 2 runs; layer 3 of 'lang' drives the language ROI, 'vis' the visual ROI."""
    rng = np.random.default_rng(seed)
    lang = {1: rng.standard_normal((48, 10)), 3: rng.standard_normal((48, 10))}
    vis = {0: rng.standard_normal((48, 7))}
    signal = np.hstack(
        [
            lang[3] @ rng.standard_normal((10, 12)),
            vis[0] @ rng.standard_normal((7, 12)),
            np.zeros((48, 12)),
        ]
    )
    by_run = signal[None] / 3 + rng.standard_normal((2, 48, 36))
    names = [f"c{i:02d}" for i in range(48)]
    order = rng.permutation(48)  # the feature files list the concepts in another order
    for model, condition, layers in (("lang", "sentence", lang), ("vis", "image", vis)):
        _write_features(
            tmp_path / f"{model}.safetensors",
            model,
            condition,
            "concepts",
            {k: v[order] for k, v in layers.items()},
            names=[names[i] for i in order],
        )
    brain = tmp_path / f"sub-{subject}_concepts.safetensors"
    _write_brain(brain, subject, "concepts", by_run.mean(0), by_run=by_run)
    return brain


def _naturalistic(tmp_path, subject="01", seed=1):
    """3 runs x 60 TRs; the two spaces drive the language and visual ROIs 1 TR later."""
    rng = np.random.default_rng(seed)
    runs = np.repeat([1, 2, 3], 60)
    lang, vis = rng.standard_normal((180, 8)), rng.standard_normal((180, 5))
    lagged = lambda X: np.vstack(
        [np.roll(X[runs == r], 1, axis=0) for r in (1, 2, 3)]
    )  # noqa: E731
    signal = np.hstack(
        [
            lagged(lang) @ rng.standard_normal((8, 12)),
            lagged(vis) @ rng.standard_normal((5, 12)),
            np.zeros((180, 12)),
        ]
    )
    Y = signal / signal.std(0).clip(1e-9) * (signal.std(0) > 0) + rng.standard_normal((180, 36))
    _write_features(
        tmp_path / "lang_nat.safetensors", "lang", "sentence", "naturalistic", {3: lang}, runs=runs
    )
    _write_features(
        tmp_path / "vis_nat.safetensors", "vis", "image", "naturalistic", {0: vis}, runs=runs
    )
    brain = tmp_path / f"sub-{subject}_naturalistic.safetensors"
    _write_brain(brain, subject, "naturalistic", Y, runs=runs)
    return brain


def _outputs(tmp_path, stem):
    return {
        key: tmp_path / f"{stem}_{key}.{ext}"
        for key, ext in (
            ("map", "nii.gz"),
            ("voxels", "parquet"),
            ("rois", "parquet"),
            ("best_layer", "parquet"),
        )
    }


def _fit(brain, features, layers, out, params=PARAMS):
    return run_fit_encoding(
        brain,
        features,
        layers=layers,
        params=params,
        seed=0,
        out_map=out["map"],
        out_voxels=out["voxels"],
        out_rois=out["rois"],
        out_best_layer=out["best_layer"],
    )


def test_run_fit_encoding_concepts_writes_significance_and_ceiling(tmp_path):
    brain = _concepts(tmp_path)
    out = _outputs(tmp_path, "fit")
    rois = _fit(brain, tmp_path / "lang.safetensors", [3], out)
    voxels = pd.read_parquet(out["voxels"])
    assert {
        "r",
        "r2",
        "alpha",
        "alpha_edge",
        "cv_r2",
        "p",
        "p_perm",
        "q",
        "significant",
        "ceiling",
        "r_norm",
        "r2_norm",
        "subject",
        "model",
        "layer",
    } <= set(voxels.columns)
    assert voxels["ceiling"].notna().all()
    folds = voxels[[f"alpha_fold{k}" for k in range(4)]].to_numpy()
    np.testing.assert_allclose(voxels["alpha"], np.exp(np.log(folds).mean(axis=1)))
    assert np.isin(folds, PARAMS["alphas"]).all()
    by_roi = rois.set_index("roi")
    assert by_roi.loc["language", "n_significant"] >= 8
    assert by_roi.loc["control", "n_significant"] <= 1
    assert by_roi.loc["language", "mean_ceiling"] > by_roi.loc["control", "mean_ceiling"] + 0.2
    assert by_roi.loc["language", "mean_r_norm"] > by_roi.loc["language", "mean_r"]
    assert np.allclose(voxels["q"], stats.false_discovery_control(voxels["p"]))
    assert pd.read_parquet(out["rois"]).equals(rois)


def test_run_fit_encoding_naturalistic_has_no_ceiling(tmp_path):
    brain = _naturalistic(tmp_path)
    out = _outputs(tmp_path, "nat")
    rois = _fit(brain, tmp_path / "vis_nat.safetensors", [0], out)
    voxels = pd.read_parquet(out["voxels"])
    assert voxels["ceiling"].isna().all() and voxels["r_norm"].isna().all()
    assert rois.set_index("roi").loc["visual", "n_significant"] >= 10
    no_test = _fit(
        brain, tmp_path / "vis_nat.safetensors", [0], out, PARAMS | {"n_permutations": 0}
    )
    assert (no_test["n_significant"] == 0).all()
    assert pd.read_parquet(out["voxels"])["p"].isna().all()


def test_run_fit_encoding_fits_every_layer_as_alone(tmp_path):
    """Two layers in one call: a map volume and rows per layer, each as a one-layer fit."""
    brain = _concepts(tmp_path)
    both, alone = _outputs(tmp_path, "both"), _outputs(tmp_path, "alone")
    rois = _fit(brain, tmp_path / "lang.safetensors", [3, 1], both)
    _fit(brain, tmp_path / "lang.safetensors", [3], alone)
    assert rois["layer"].tolist() == [3, 3, 3, 1, 1, 1]
    voxels = pd.read_parquet(both["voxels"])
    pd.testing.assert_frame_equal(
        voxels[voxels.layer == 3].reset_index(drop=True), pd.read_parquet(alone["voxels"])
    )
    img = nib.load(both["map"])
    assert img.shape[3:] == (2,)
    assert io.read_json(map_sidecar(both["map"]))["layers"] == [3, 1]
    volume = img.get_fdata()[..., 1]
    assert np.count_nonzero(volume) == np.count_nonzero(voxels[voxels.layer == 1]["r"])
    np.testing.assert_allclose(
        np.sort(volume[volume != 0]), np.sort(voxels[voxels.layer == 1]["r"][lambda r: r != 0]),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match=r"^'layers' must be distinct layer indices; got \[3, 3\]$"):
        _fit(brain, tmp_path / "lang.safetensors", [3, 3], both)


JOINT = {
    "name": "lv",
    "spaces": [
        {"model": "lang", "condition": "sentence", "layer": 3},
        {"model": "vis", "condition": "image", "layer": 0},
    ],
}


def test_run_fit_joint_encoding_partitions_the_rois(tmp_path):
    tables = []
    for subject, seed in (("01", 1), ("02", 2)):
        brain = _naturalistic(tmp_path, subject, seed)
        out = _outputs(tmp_path, f"joint{subject}")
        tables.append(out["rois"])
        rois = run_fit_joint_encoding(
            brain,
            [tmp_path / "lang_nat.safetensors", tmp_path / "vis_nat.safetensors"],
            joint=JOINT,
            params=PARAMS,
            seed=0,
            out_map=out["map"],
            out_voxels=out["voxels"],
            out_rois=out["rois"],
        )
        unique = rois[rois.measure == "unique"].pivot(index="roi", columns="space", values="value")
        lang, vis = "model-lang_cond-sentence_layer-3", "model-vis_cond-image_layer-0"
        assert unique.loc["language", lang] > unique.loc["language", vis] + 0.1
        assert unique.loc["visual", vis] > unique.loc["visual", lang] + 0.1
        voxels = pd.read_parquet(out["voxels"])
        assert {
            "joint_r",
            "joint_r2",
            f"unique_{lang}",
            f"r2_without_{vis}",
            "shared",
            "joint",
        } <= set(voxels.columns)
    subjects, group = summarize_joint_tables(tables)
    assert len(subjects) == 2 * 3 * 7
    row = group[(group.roi == "visual") & (group.measure == "unique") & (group.space == vis)]
    assert len(row) == 1 and row["n_subjects"].item() == 2 and row["mean"].item() > 0.1
    with pytest.raises(
        ValueError, match=r"joint model 'lv' has 2 spaces but 1 feature files were given"
    ):
        run_fit_joint_encoding(
            brain,
            [tmp_path / "lang_nat.safetensors"],
            joint=JOINT,
            params=PARAMS,
            seed=0,
            out_map=out["map"],
            out_voxels=out["voxels"],
            out_rois=out["rois"],
        )


def test_run_fit_encoding_best_layer_and_group_tables(tmp_path):
    paths = []
    for subject, seed in (("01", 0), ("02", 3), ("03", 4)):
        brain = _concepts(tmp_path, subject, seed)
        for model, layers in (("lang", [1, 3]), ("vis", [0])):
            out = _outputs(tmp_path, f"best_{subject}_{model}")
            _fit(brain, tmp_path / f"{model}.safetensors", layers, out, PARAMS | {"n_permutations": 0})
            paths.append(out["best_layer"])
            table = pd.read_parquet(out["best_layer"])
            assert set(table["fold"]) == {0, 1, 2, 3} and set(table["subject"]) == {subject}
            if model == "lang":
                assert (table[table.roi == "language"]["layer"] == 3).all()
    subjects, group, paired = summarize_best_layer_tables(paths)
    assert len(subjects) == 3 * 2 * 3
    assert (
        subjects[(subjects.model == "lang") & (subjects.roi == "language")]["layers"] == "3,3,3,3"
    ).all()
    lang = group[(group.model == "lang") & (group.roi == "language")]
    assert lang["mean"].item() > 0.3 and lang["n_subjects"].item() == 3
    # models are compared within a condition; these two models have different conditions
    assert paired.empty or not (paired["between"] == "model").any()


def test_group_paired_ttest_matches_scipy():
    rng = np.random.default_rng(9)
    table = pd.DataFrame(
        {
            "subject": np.tile(["01", "02", "03", "04", "05"], 4),
            "roi": np.repeat(["a", "b"], 10),
            "condition": np.tile(np.repeat(["picture", "sentence"], 5), 2),
            "mean_r": rng.normal(0.2, 0.1, 20),
        }
    )
    table = table.drop(index=[3])  # subject 04 lacks 'picture' in ROI a: left out of that pair
    out = group_paired_ttest(table, "mean_r", "condition", ["roi"]).set_index("roi")
    a = (
        table[table.roi == "a"]
        .pivot(index="subject", columns="condition", values="mean_r")
        .dropna()
    )
    t, p = stats.ttest_rel(a["picture"], a["sentence"])
    assert out.loc["a", "t"] == pytest.approx(t) and out.loc["a", "p"] == pytest.approx(p)
    assert out.loc["a", "n_subjects"] == 4 and out.loc["b", "n_subjects"] == 5
    assert (out.loc["a", "a"], out.loc["a", "b"]) == ("picture", "sentence")
    np.testing.assert_allclose(out["q"], stats.false_discovery_control(out["p"]))
    with pytest.raises(ValueError, match=r"group_paired_ttest: table lacks columns \['model'\]"):
        group_paired_ttest(table, "mean_r", "model", ["roi"])


def _config():
    return {
        "models": {
            "clip": {"extractor": "clip", "layers": [1, 2]},
            "minilm": {"extractor": "text_encoder", "layers": [6]},
        },
        "encoding": {
            "joint": [
                {
                    "name": "cliplm",
                    "spaces": [
                        {"model": "clip", "condition": "image", "layer": 2},
                        {"model": "minilm", "condition": "sentence", "layer": 6},
                    ],
                }
            ]
        },
    }


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda c: c["encoding"]["joint"][0]["spaces"][1].update(model="minilmm"),
            r"config 'encoding.joint\[0\] \(cliplm\)' uses model 'minilmm', which is not in 'models' .* \(did you mean 'minilm'\?\)",
        ),
        (
            lambda c: c["encoding"]["joint"][0]["spaces"][0].update(layer=7),
            r"uses layer 7 of 'clip', which is not among 'models.clip.layers' \[1, 2\]",
        ),
        (
            lambda c: c["encoding"]["joint"][0]["spaces"][1].update(condition="image"),
            r"uses condition 'image', which model 'minilm' \(text_encoder\) cannot run",
        ),
        (
            lambda c: c["encoding"]["joint"][0]["spaces"].pop(),
            r"'encoding.joint\[0\] \(cliplm\).spaces' must list at least two distinct feature spaces",
        ),
        (
            lambda c: c["encoding"]["joint"].append(copy.deepcopy(c["encoding"]["joint"][0])),
            r"config 'encoding.joint' names must be unique; 'cliplm' is repeated",
        ),
    ],
)
def test_check_joint_models(mutate, match):
    config = _config()
    assert [j["name"] for j in check_joint_models(config)] == ["cliplm"]
    mutate(config)
    with pytest.raises(ConfigError, match=match):
        check_joint_models(config)


def test_flagged_units_are_left_out_of_fits_maps_rois_and_fdr(tmp_path):
    """Units preprocessing flagged (NaN or constant, stored as 0) are never scored as r = 0."""
    brain = _concepts(tmp_path)
    out = _outputs(tmp_path, "all")
    _fit(brain, tmp_path / "lang.safetensors", [3], out)
    arrays, meta = io.load_arrays(brain)
    flagged = [0, 1, 2, 30]  # three language voxels, one control voxel
    arrays["patterns"][:, flagged] = 0.0
    arrays["patterns_by_run"][..., flagged] = 0.0
    io.save_arrays(brain, arrays, {**meta, "qc": {"flagged_units": flagged}})
    out_flagged = _outputs(tmp_path, "flagged")
    _fit(brain, tmp_path / "lang.safetensors", [3], out_flagged)
    before, after = (pd.read_parquet(o["voxels"]) for o in (out, out_flagged))
    assert after["excluded"].tolist() == [v in flagged for v in range(36)]
    assert after.loc[flagged, ["r", "p", "q"]].isna().all().all()
    assert not after.loc[flagged, "significant"].any()
    kept = [v for v in range(36) if v not in flagged]
    np.testing.assert_allclose(after.loc[kept, "r"], before.loc[kept, "r"], rtol=1e-5, atol=1e-6)
    rois = pd.read_parquet(out_flagged["rois"]).set_index("roi")
    assert rois.loc["language", "n_voxels"] == 9 and rois.loc["language", "n_excluded"] == 3
    assert rois.loc["language", "mean_r"] == pytest.approx(after.loc[3:11, "r"].mean())
    volume = np.asarray(nib.load(out_flagged["map"]).dataobj)[..., 0]
    ijk = arrays["ijk"]
    assert np.isnan(volume[tuple(ijk[flagged].T)]).all()
    assert np.isfinite(volume[tuple(ijk[kept].T)]).all()
