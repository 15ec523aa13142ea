"""Tests of brainalign.preprocess (atlas loading, run cleaning, concept averaging) and of the
BIDS reader's preprocess_task that composes them for naturalistic and concept tasks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brainalign.demo import make_demo_dataset
from brainalign.io import load_arrays, save_arrays, write_json, write_table
from brainalign.datasets.bids_preprocess import preprocess_task
from brainalign.datasets.confounds import DEFAULT_CONFOUNDS, select_confounds
from brainalign.datasets.registry import DatasetError
from brainalign.preprocess import (
    clean_run,
    concept_means,
    cosine_drift,
    flag_units,
    load_atlas,
    mask_run,
)
from tests._fmriprep_files import MOTION, voxel_plant, write_fmriprep_tree

SHAPE = (7, 8, 9)
AFFINE = np.array([[3.0, 0, 0, -10], [0, 3.0, 0, -12], [0, 0, 3.0, -8], [0, 0, 0, 1]])
TR = 1.5
RUN_TRS = (40, 33)
CONFOUNDS = ["trans_x", "rot_z", "csf"]
ROIS = ["lang", "vis"]
#: the config's ``preprocess`` section, ``zscore`` resolved to a bool (as BidsReader passes it)
PARAMS = {"high_pass": 0.01, "detrend": True, "confounds": CONFOUNDS, "zscore": True}


def _save(data: np.ndarray, path: Path, affine: np.ndarray = AFFINE) -> Path:
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def _runs_table(path: Path, tr: float, n_trs) -> Path:
    """The stimuli's naturalistic/runs.tsv, where preprocess_task takes the TR from."""
    table = pd.DataFrame({"run": range(1, len(n_trs) + 1), "tr": tr, "n_trs": list(n_trs)})
    write_table(table, path)
    return path


def _labels(labels_file) -> list[str]:
    """The ROI names of an atlas labels TSV, in its order (so roi k + 1 = its k-th row)."""
    return [str(name) for name in pd.read_csv(labels_file, sep="\t")["name"]]


def _preprocess(inputs: dict, kind: str = "naturalistic", rois=ROIS, **params):
    """preprocess_task on one subject's volume files, ``params`` overriding PARAMS."""
    return preprocess_task(
        inputs,
        subject="01",
        task=kind,
        kind=kind,
        surface=False,
        rois=list(rois),
        params={**PARAMS, **params},
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A 7x8x9 brain with two ROIs and two naturalistic runs full of drift and confounds."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[1:6, 1:7, 2:8] = 1
    atlas = np.zeros(SHAPE, dtype=np.int16)
    atlas[1:3, 1:4, 2:5], atlas[4:6, 3:7, 5:8], atlas[0, 0, 0] = 1, 2, 2  # (0,0,0) is outside
    files = {
        "mask": _save(mask, root / "mask.nii.gz"),
        "atlas": _save(atlas, root / "atlas.nii.gz"),
    }
    files["labels"] = root / "labels.tsv"
    write_table(pd.DataFrame({"index": [1, 2], "name": ["lang", "vis"]}), files["labels"])
    files["bold"], files["sidecar"], files["confounds"] = [], [], []
    for run, n in enumerate(RUN_TRS, start=1):
        conf = np.cumsum(rng.standard_normal((n, 3)), axis=0)
        bold = (
            500
            + rng.standard_normal(SHAPE + (n,))
            + np.tensordot(rng.standard_normal(SHAPE + (3,)), conf, (3, 1))
        )
        bold += np.linspace(0, 5, n)  # drift
        stem = root / f"sub-01_task-naturalistic_run-{run}"
        files["bold"].append(_save(bold.astype(np.float32), Path(f"{stem}_bold.nii.gz")))
        files["sidecar"].append(Path(f"{stem}_bold.json"))
        write_json({"RepetitionTime": TR}, files["sidecar"][-1])
        table = pd.DataFrame(conf, columns=CONFOUNDS)
        table["framewise_displacement"] = np.r_[np.nan, rng.random(n - 1)]
        files["confounds"].append(Path(f"{stem}_desc-confounds_timeseries.tsv"))
        write_table(table, files["confounds"][-1])
    files["runs"] = _runs_table(root / "runs.tsv", TR, RUN_TRS)
    return files


def _inputs(tiny, **files) -> dict:
    """preprocess_task's inputs of a volume naturalistic task, ``files`` replacing some."""
    keys = ("bold", "sidecar", "confounds", "mask", "atlas", "labels", "runs")
    return {**{key: tiny[key] for key in keys}, **files}


def _clean(tiny, **params):
    return _preprocess(_inputs(tiny), **params)


# ----------------------------------------------------------------------------- atlas
def test_load_atlas(tiny):
    mask_img, atlas_img, rois = load_atlas(tiny["atlas"], tiny["labels"], tiny["mask"])
    assert rois == {"lang": 1, "vis": 2}
    assert mask_img.shape == atlas_img.shape == SHAPE
    atlas = np.asarray(atlas_img.dataobj)
    assert atlas[0, 0, 0] == 0  # labels outside the mask are dropped
    assert (atlas == 1).sum() == 2 * 3 * 3 and (atlas == 2).sum() == 2 * 4 * 3


def test_load_atlas_grid_mismatch(tiny, tmp_path):
    wrong = _save(np.zeros((7, 8, 10), dtype=np.int16), tmp_path / "atlas10.nii.gz")
    with pytest.raises(
        ValueError,
        match=r"atlas '.*atlas10.nii.gz' has grid shape \(7, 8, 10\).*"
        r"but mask '.*mask.nii.gz' has shape \(7, 8, 9\)",
    ):
        load_atlas(wrong, tiny["labels"], tiny["mask"])
    stretched = AFFINE.copy()
    stretched[0, 0] = 4.0
    shifted = _save(np.zeros(SHAPE, dtype=np.int16), tmp_path / "shifted.nii.gz", stretched)
    with pytest.raises(
        ValueError, match=r"atlas '.*shifted.nii.gz' has grid .*affine diagonal \[4.0, 3.0, 3.0\]"
    ):
        load_atlas(shifted, tiny["labels"], tiny["mask"])


# ----------------------------------------------------------------------------- naturalistic
def test_naturalistic_layout(tiny):
    arrays, meta = _clean(tiny)
    n_voxels = 5 * 6 * 6
    assert arrays["bold"].shape == (sum(RUN_TRS), n_voxels) and arrays["bold"].dtype == np.float32
    assert arrays["run"].tolist() == [1] * RUN_TRS[0] + [2] * RUN_TRS[1]
    assert arrays["ijk"].shape == (n_voxels, 3) and arrays["roi"].shape == (n_voxels,)
    atlas = np.asarray(nib.load(tiny["atlas"]).dataobj)
    assert (atlas[tuple(arrays["ijk"].T)] == arrays["roi"]).all()
    assert meta["runs"] == [1, 2] and meta["tr"] == TR and meta["rois"] == {"lang": 1, "vis": 2}
    assert meta["shape"] == list(SHAPE) and np.allclose(meta["affine"], AFFINE)
    assert (meta["kind"], meta["geometry"], meta["subject"]) == ("timeseries", "volume", "01")
    assert meta["n_volumes"] == list(RUN_TRS)
    untouched, _ = _clean(tiny, high_pass=None, detrend=False, confounds=[], zscore=False)
    for run, bold_file in enumerate(tiny["bold"], start=1):  # columns follow ijk exactly
        raw = np.asarray(nib.load(bold_file).dataobj)[tuple(arrays["ijk"].T)].T
        assert np.array_equal(untouched["bold"][untouched["run"] == run], raw)


def test_each_run_is_zscored(tiny):
    arrays, _ = _clean(tiny)
    for run in (1, 2):
        block = arrays["bold"][arrays["run"] == run].astype(np.float64)
        assert np.allclose(block.mean(axis=0), 0, atol=1e-5)
        assert np.allclose(block.std(axis=0, ddof=1), 1, atol=1e-5)


@pytest.mark.parametrize("high_pass_filter", ["cosine", "butterworth", None])
def test_clean_run_zscores_with_every_high_pass_filter(tiny, high_pass_filter):
    mask_img = nib.load(tiny["mask"])
    for bold_file, conf_file in zip(tiny["bold"], tiny["confounds"]):
        data = mask_run(bold_file, mask_img, tiny["mask"])
        confounds = pd.read_csv(conf_file, sep="\t")[CONFOUNDS].to_numpy()
        cleaned, _ = clean_run(data, confounds, tr=TR, high_pass_filter=high_pass_filter)
        assert np.allclose(cleaned.mean(axis=0), 0, atol=1e-5)
        assert np.allclose(cleaned.std(axis=0, ddof=1), 1, atol=1e-5)


def test_cleaning_matches_ordinary_least_squares(tiny):
    """Reference: residuals of OLS on [1, t, confounds, cosines], then sample z-score."""
    arrays, _ = _clean(tiny, high_pass=0.02)
    ijk = tuple(arrays["ijk"].T)
    for run, (bold_file, conf_file) in enumerate(zip(tiny["bold"], tiny["confounds"]), start=1):
        data = np.asarray(nib.load(bold_file).dataobj, dtype=np.float64)[ijk].T
        n = len(data)
        conf = pd.read_csv(conf_file, sep="\t")[CONFOUNDS].to_numpy()
        design = np.column_stack([np.ones(n), np.arange(n), conf, cosine_drift(n, TR, 0.02)])
        resid = data - design @ np.linalg.lstsq(design, data, rcond=None)[0]
        expected = stats.zscore(resid, axis=0, ddof=1)
        assert np.allclose(arrays["bold"][arrays["run"] == run], expected, atol=1e-4)
        corr = np.corrcoef(np.column_stack([conf, arrays["bold"][arrays["run"] == run]]).T)[:3, 3:]
        assert np.abs(corr).max() < 1e-4  # confounds regressed out


def test_cosine_drift_counts_and_orthonormality():
    drift = cosine_drift(100, 2.0, 0.01)
    assert drift.shape == (100, 4)  # floor(2 * 100 * 2.0 * 0.01)
    assert np.allclose(drift.T @ drift, np.eye(4))


def test_default_strategy_is_never_every_column(tiny):
    """The default (motion, WM/CSF, high-pass) needs fMRIPrep's columns the tiny file lacks."""
    with pytest.raises(
        DatasetError,
        match=r"confounds '.*run-1_desc-confounds_timeseries.tsv' lacks columns 'trans_y' "
        r"\(close: trans_x\), 'trans_z' .* and 1 more that config 'preprocess.confounds' "
        r"\(\{\"strategy\": \[\"motion\"",
    ):
        _clean(tiny, confounds=DEFAULT_CONFOUNDS)
    listed, meta = _clean(tiny, confounds=[*CONFOUNDS, "framewise_displacement"])
    assert [r["columns"] for r in meta["qc"]["runs"]] == [
        [*CONFOUNDS, "framewise_displacement"]
    ] * 2
    assert [r["n_columns"] for r in meta["qc"]["runs"]] == [4, 4]
    assert np.isfinite(
        listed["bold"]
    ).all()  # the n/a first row of framewise_displacement is filled
    assert not np.allclose(listed["bold"], _clean(tiny)[0]["bold"])


def test_naturalistic_errors(tiny, tmp_path):
    runs = _runs_table(tmp_path / "runs.tsv", 2.0, RUN_TRS)
    with pytest.raises(
        DatasetError,
        match=r"RepetitionTime 1.5 s in '.*run-1_bold.json' does not match tr=2.0 s of "
        r"'.*runs.tsv'; fix naturalistic/runs.tsv or the sidecar",
    ):
        _preprocess(_inputs(tiny, runs=runs))
    with pytest.raises(
        DatasetError,
        match=r"confounds '.*run-1_desc-confounds_timeseries.tsv' lacks columns 'white_matter'",
    ):
        _clean(tiny, confounds=["trans_x", "white_matter"])
    with pytest.raises(DatasetError, match=r"atlas labels '.*labels.tsv' have no ROI \['motor'\]"):
        _preprocess(_inputs(tiny), rois=["lang", "motor"])
    data = mask_run(tiny["bold"][0], nib.load(tiny["mask"]), tiny["mask"])
    with pytest.raises(
        ValueError, match=r"'high_pass_filter' must be 'cosine', 'butterworth' or None; got 'fir'"
    ):
        clean_run(data, tr=TR, high_pass_filter="fir")


def test_bold_grid_mismatch(tiny, tmp_path):
    bad = _save(
        np.zeros((7, 8, 9, 5), dtype=np.float32), tmp_path / "sub-01_run-1_bold.nii.gz", AFFINE * 2
    )
    with pytest.raises(
        ValueError,
        match=r"BOLD image '.*sub-01_run-1_bold.nii.gz' has grid shape \(7, 8, 9\) \(affine "
        r"diagonal \[6.0, 6.0, 6.0\]\) but mask '.*mask.nii.gz' has shape \(7, 8, 9\)",
    ):
        _preprocess(_inputs(tiny, bold=[bad], sidecar=[], confounds=tiny["confounds"][:1]))


# ----------------------------------------------------------------------------- planted signal
CONCEPTS = ["kettle", "bird", "apple", "tower", "drum"]
DEMO_TRS = (80, 70)


def _fake_features(root: Path, model: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    meta = {
        "model": model,
        "condition": "intact",
        "stimuli": CONCEPTS,
        "layers": [0],
        "units": "a.u.",
    }
    save_arrays(
        root / f"{model}_c.safetensors",
        {"layer-00": rng.standard_normal((len(CONCEPTS), 16)).astype(np.float32)},
        {**meta, "task": "concepts"},
    )
    save_arrays(
        root / f"{model}_n.safetensors",
        {
            "layer-00": rng.standard_normal((sum(DEMO_TRS), 16)).astype(np.float32),
            "run": np.repeat([1, 2], DEMO_TRS).astype(np.int32),
        },
        {**meta, "task": "naturalistic", "runs": [1, 2], "tr": 2.0},
    )
    return {
        "concepts": root / f"{model}_c.safetensors",
        "naturalistic": root / f"{model}_n.safetensors",
        "layer": 0,
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    generators = {
        "language": _fake_features(root, "lm", 1),
        "visual": _fake_features(root, "vm", 2),
    }
    return make_demo_dataset(root / "ds", generators=generators, n_subjects=1, snr=0.5, seed=11)


def _demo_inputs(ds: Path) -> dict:
    """The demo's shared mask, atlas and labels, as preprocess_task's inputs."""
    return {
        "mask": ds / "space-MNI152_desc-brain_mask.nii.gz",
        "atlas": ds / "space-MNI152_atlas-demo_dseg.nii.gz",
        "labels": ds / "space-MNI152_atlas-demo_dseg.tsv",
    }


def _corr_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = stats.zscore(a, axis=0), stats.zscore(b, axis=0)
    return (a * b).mean(axis=0)


def test_cleaning_recovers_planted_signal(demo, tmp_path):
    func = demo / "sub-01" / "func"
    inputs = {
        "bold": sorted(func.glob("sub-01_task-naturalistic_run-*_bold.nii.gz")),
        "sidecar": sorted(func.glob("sub-01_task-naturalistic_run-*_bold.json")),
        "confounds": sorted(
            func.glob("sub-01_task-naturalistic_run-*_desc-confounds_timeseries.tsv")
        ),
        "runs": _runs_table(tmp_path / "runs.tsv", 2.0, DEMO_TRS),
        **_demo_inputs(demo),
    }
    assert len(inputs["bold"]) == len(inputs["sidecar"]) == len(inputs["confounds"]) == 2
    rois = _labels(inputs["labels"])
    cleaned, _ = _preprocess(inputs, rois=rois, confounds=list(MOTION))
    raw, _ = _preprocess(
        inputs, rois=rois, high_pass=None, detrend=False, confounds=[], zscore=False
    )
    truth, _ = load_arrays(
        demo / "ground_truth" / "sub-01_task-naturalistic_desc-signal.safetensors"
    )
    position = {tuple(v): i for i, v in enumerate(cleaned["ijk"])}
    driven = [position[tuple(v)] for v in truth["ijk"]]
    r_clean = _corr_columns(truth["signal"], cleaned["bold"][:, driven])
    r_raw = _corr_columns(truth["signal"], raw["bold"][:, driven])
    assert r_clean.mean() > r_raw.mean() + 0.1 and (r_clean > r_raw).mean() > 0.8
    assert 0.4 < r_clean.mean() < np.sqrt(0.5 / 1.5) + 0.05  # at most the planted correlation
    control = cleaned["bold"][:, cleaned["roi"] == rois.index("control") + 1]
    r_null = _corr_columns(truth["signal"][:, : control.shape[1]], control)
    assert abs(r_null.mean()) < 0.05


def _concepts_table(path: Path, concepts: list[str]) -> Path:
    """The stimuli's concepts.tsv: the row order of the patterns."""
    write_table(pd.DataFrame({"concept": concepts}), path)
    return path


def test_concept_patterns_recover_planted_signal(demo, tmp_path):
    func = demo / "sub-01" / "func"
    inputs = {
        "bold": sorted(func.glob("sub-01_task-concepts_run-*_desc-trials_bold.nii.gz")),
        "events": [func / f"sub-01_task-concepts_run-{r}_events.tsv" for r in (1, 2)],
        "concepts": _concepts_table(tmp_path / "concepts.tsv", CONCEPTS),
        **_demo_inputs(demo),
    }
    arrays, meta = _preprocess(inputs, "concepts", rois=_labels(inputs["labels"]))
    assert meta["stimuli"] == CONCEPTS and meta["n_repeats"] == 6 and meta["kind"] == "concepts"
    truth, _ = load_arrays(demo / "ground_truth" / "sub-01_task-concepts_desc-signal.safetensors")
    position = {tuple(v): i for i, v in enumerate(arrays["ijk"])}
    patterns = arrays["patterns"][:, [position[tuple(v)] for v in truth["ijk"]]]
    assert _corr_columns(truth["signal"], patterns).mean() > 0.6


# ----------------------------------------------------------------------------- concepts
TRIALS = {
    1: ["pear", "fig", "yam", "fig", "pear", "yam", "yam"],
    2: ["fig", "yam", "pear", "pear", "fig", "yam"],
}


@pytest.fixture(scope="module")
def concept_runs(tiny, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("concepts")
    rng = np.random.default_rng(5)
    files = {"bold": [], "events": []}
    for run, trials in TRIALS.items():
        data = rng.normal(3.0 * run, 2.0, SHAPE + (len(trials),)).astype(np.float32)
        files["bold"].append(
            _save(data, root / f"sub-01_task-concepts_run-{run}_desc-trials_bold.nii.gz")
        )
        events = pd.DataFrame({"trial": range(1, len(trials) + 1), "concept": trials, "context": 0})
        files["events"].append(root / f"sub-01_task-concepts_run-{run}_events.tsv")
        write_table(events, files["events"][-1])
    return files


def _hand_average(bold_file: Path, trials: list[str], order: list[str], ijk: tuple) -> np.ndarray:
    data = np.asarray(nib.load(bold_file).dataobj, dtype=np.float64)[ijk].T  # (n_trials, n_voxels)
    z = (data - data.mean(axis=0)) / data.std(axis=0, ddof=1)
    return np.stack([z[[i for i, t in enumerate(trials) if t == c]].mean(axis=0) for c in order])


def _concept_inputs(tiny, concept_runs, concepts: Path, **files) -> dict:
    """preprocess_task's inputs of a volume concepts task, ``files`` replacing some."""
    shared = {key: tiny[key] for key in ("mask", "atlas", "labels")}
    return {**concept_runs, **shared, "concepts": concepts, **files}


def test_concept_averaging_by_hand(tiny, concept_runs, tmp_path):
    order = ["yam", "pear", "fig"]
    listed = _concepts_table(tmp_path / "concepts.tsv", order)
    arrays, meta = _preprocess(_concept_inputs(tiny, concept_runs, listed), "concepts")
    ijk = tuple(arrays["ijk"].T)
    expected = np.stack(
        [_hand_average(f, TRIALS[r], order, ijk) for r, f in zip((1, 2), concept_runs["bold"])]
    )
    assert arrays["patterns_by_run"].shape == (2, 3, 5 * 6 * 6)
    assert np.allclose(arrays["patterns_by_run"], expected, atol=1e-5)
    assert np.allclose(arrays["patterns"], expected.mean(axis=0), atol=1e-5)
    assert meta["stimuli"] == order and meta["n_repeats"] == [5, 4, 4] and meta["runs"] == [1, 2]
    assert meta["rois"] == {"lang": 1, "vis": 2} and (arrays["roi"] > 0).sum() == 18 + 24
    other = _concepts_table(tmp_path / "other.tsv", ["fig", "pear", "yam"])
    reordered, meta = _preprocess(_concept_inputs(tiny, concept_runs, other), "concepts")
    assert meta["stimuli"] == ["fig", "pear", "yam"]  # rows follow concepts.tsv
    assert np.allclose(reordered["patterns"], arrays["patterns"][[2, 1, 0]])
    assert np.allclose(reordered["patterns_by_run"], arrays["patterns_by_run"][:, [2, 1, 0]])


def test_concept_errors(tiny, concept_runs, tmp_path):
    every = _concepts_table(tmp_path / "concepts.tsv", ["fig", "pear", "yam"])
    short = tmp_path / "sub-01_task-concepts_run-2_events.tsv"
    events = pd.DataFrame({"trial": range(1, 7), "concept": ["yam", "pear"] * 3})
    write_table(events, short)
    with pytest.raises(
        ValueError,
        match=r"events '.*run-2_events.tsv' must contain every concept exactly as listed; "
        r"missing \['fig'\], unknown \[\]",
    ):
        _preprocess(
            _concept_inputs(tiny, concept_runs, every, events=[concept_runs["events"][0], short]),
            "concepts",
        )
    two = _concepts_table(tmp_path / "two.tsv", ["yam", "pear"])
    with pytest.raises(
        ValueError, match=r"events '.*run-1_events.tsv' .* missing \[\], unknown \['fig'\]"
    ):
        _preprocess(_concept_inputs(tiny, concept_runs, two), "concepts")
    wrong = short.rename(tmp_path / "sub-01_task-concepts_run-1_events.tsv")
    with pytest.raises(
        DatasetError,
        match=r"events '.*run-1_events.tsv' must have a 'concept' column and one row per volume "
        r"\(7\); got columns \['trial', 'concept'\] and 6 rows. Pass the events file of this run.",
    ):
        _preprocess(
            _concept_inputs(
                tiny, concept_runs, every, bold=concept_runs["bold"][:1], events=[wrong]
            ),
            "concepts",
        )


# ----------------------------------------------------------------------------- fMRIPrep runs
N_DUMMY = 2
FMRIPREP_TRS = (60, 50, 56)


def _planted_series(subject: str, session, run: int, n_volumes: int) -> np.ndarray:
    """A smooth unit-variance series per run (seeded by the run), shape (n_volumes, 1)."""
    rng = np.random.default_rng([int(subject), int(session), run])
    series = np.convolve(rng.standard_normal(n_volumes + 2), np.ones(3) / np.sqrt(3), "valid")
    return series[:, None]


@pytest.fixture(scope="module")
def fmriprep(tmp_path_factory) -> dict:
    """One subject, two sessions (2 + 1 runs of unequal lengths), a signal planted in the
    language slab of its mask, strong motion / WM / CSF nuisance, 2 non-steady-state volumes."""
    from tests._fmriprep_files import atlas_volume, subject_mask

    weights = 2.0 * (atlas_volume(subject_mask(0)) == 1)[..., None]
    tree = write_fmriprep_tree(
        tmp_path_factory.mktemp("fmriprep"),
        subjects=("01",),
        n_volumes=FMRIPREP_TRS,
        n_dummy=N_DUMMY,
        plant=voxel_plant(weights, _planted_series),
        atlas="demo",
        n_acompcor=4,
        seed=7,
    )
    tree["weights"] = weights[..., 0]
    return tree


def _run_inputs(fmriprep, k: int, spec=DEFAULT_CONFOUNDS):
    sub = fmriprep["subjects"]["01"]
    run = sub["runs"][k]
    mask_img = nib.load(sub["mask"])
    data = mask_run(run["bold"], mask_img, sub["mask"])
    confounds, sample_mask, report = select_confounds(
        run["bold"], spec, n_volumes=len(data), confounds_file=run["confounds"]
    )
    return run, data, confounds, sample_mask, report


def _nuisance(run) -> np.ndarray:
    table = pd.read_csv(run["confounds"], sep="\t", na_values=["n/a"])
    return table[[*MOTION, "white_matter", "csf"]].to_numpy()


def _r2(regressors: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Variance of each column of ``data`` explained by ``regressors`` (with intercept)."""
    design = np.column_stack([np.ones(len(data)), regressors])
    centred = data - data.mean(axis=0)
    resid = data - design @ np.linalg.lstsq(design, data, rcond=None)[0]
    return 1 - (resid**2).sum(axis=0) / (centred**2).sum(axis=0)


def test_clean_run_removes_planted_motion_confound(fmriprep):
    run, data, confounds, sample_mask, report = _run_inputs(fmriprep, 0)
    cleaned, qc = clean_run(
        data,
        confounds,
        sample_mask,
        tr=fmriprep["tr"],
        fmriprep_high_pass=report["fmriprep_high_pass"],
    )
    kept = sample_mask
    nuisance = _nuisance(run)[kept]
    raw_r2 = _r2(nuisance, data[kept])
    assert np.median(raw_r2) > 0.9  # the nuisance dominates the raw signal
    assert _r2(nuisance, cleaned).max() < 1e-8  # and is gone after cleaning
    untreated, _ = clean_run(data, None, sample_mask, tr=fmriprep["tr"])
    assert np.median(_r2(nuisance, untreated)) > 0.5  # high-pass + detrend alone do not remove it
    signal = _planted_series("01", "1", 1, run["n_volumes"])[kept, 0]
    planted = fmriprep["weights"][nib.load(fmriprep["subjects"]["01"]["mask"]).get_fdata() > 0] > 0
    r_clean = np.corrcoef(signal, cleaned[:, planted].T)[0, 1:]
    r_raw = np.corrcoef(signal, data[kept][:, planted].T)[0, 1:]
    assert r_clean.mean() > 0.55 and r_raw.mean() < 0.3
    assert abs(np.corrcoef(signal, cleaned[:, ~planted].T)[0, 1:].mean()) < 0.1


def _ols_zscore(data: np.ndarray, regressors: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(data)), np.arange(len(data)), regressors])
    resid = data - design @ np.linalg.lstsq(design, data, rcond=None)[0]
    return stats.zscore(resid, axis=0, ddof=1)


def test_fmriprep_cosines_are_not_doubled(fmriprep):
    """With fMRIPrep's cosines among the confounds no own drift is added (reference: OLS)."""
    run, data, confounds, sample_mask, report = _run_inputs(fmriprep, 1)
    assert report["fmriprep_high_pass"] and any(c.startswith("cosine") for c in report["columns"])
    kept = sample_mask
    once, qc = clean_run(
        data, confounds, sample_mask, tr=fmriprep["tr"], high_pass=0.02, fmriprep_high_pass=True
    )
    assert qc["high_pass"] == "fMRIPrep cosine columns (among the confounds)"
    assert np.allclose(once, _ols_zscore(data[kept], confounds[kept]), atol=1e-6)
    twice, qc = clean_run(data, confounds, sample_mask, tr=fmriprep["tr"], high_pass=0.02)
    drift = cosine_drift(len(data), fmriprep["tr"], 0.02)
    assert qc["high_pass"] == f"{drift.shape[1]} cosine drift regressors below 0.02 Hz"
    assert np.allclose(
        twice, _ols_zscore(data[kept], np.hstack([confounds, drift])[kept]), atol=1e-6
    )
    assert not np.allclose(once, twice, atol=1e-3)


def test_non_steady_state_volumes_are_dropped(fmriprep):
    run, data, confounds, sample_mask, report = _run_inputs(fmriprep, 2)
    cleaned, qc = clean_run(
        data, confounds, sample_mask, tr=fmriprep["tr"], fmriprep_high_pass=True
    )
    assert cleaned.shape == (run["n_volumes"] - N_DUMMY, data.shape[1])
    assert qc["dropped_volumes"] == report["dropped_volumes"] == [0, 1] and qc["n_kept"] == len(
        cleaned
    )
    direct, _ = clean_run(
        data[N_DUMMY:], confounds[N_DUMMY:], tr=fmriprep["tr"], fmriprep_high_pass=True
    )
    assert np.allclose(cleaned, direct, atol=1e-8)
    kept_all, _ = clean_run(data, confounds, None, tr=fmriprep["tr"], fmriprep_high_pass=True)
    assert np.abs(kept_all[:N_DUMMY]).mean() > 2 * np.abs(cleaned[:N_DUMMY]).mean()  # the burst


def test_nan_and_constant_units_are_counted_and_zeroed(fmriprep, caplog):
    _, data, confounds, sample_mask, _ = _run_inputs(fmriprep, 0)
    broken = data.copy()
    broken[7, 3], broken[:, 5], broken[:, 9] = np.nan, 42.0, np.inf
    broken[0, 11], broken[N_DUMMY:, 11] = 1.0, 2.0  # constant over the kept volumes only
    assert flag_units(broken, sample_mask) == {"nan_units": [3, 9], "constant_units": [5, 11]}
    cleaned, qc = clean_run(
        broken, confounds, sample_mask, tr=fmriprep["tr"], fmriprep_high_pass=True
    )
    assert qc["nan_units"] == [3, 9] and qc["constant_units"] == [5, 11]
    bad = [3, 5, 9, 11]
    assert (cleaned[:, bad] == 0).all() and np.isfinite(cleaned).all()
    good, _ = clean_run(
        np.delete(data, bad, axis=1),
        confounds,
        sample_mask,
        tr=fmriprep["tr"],
        fmriprep_high_pass=True,
    )
    assert np.allclose(np.delete(cleaned, bad, axis=1), good)
    assert (
        "2 units with NaN / infinite values and 2 constant units set to 0 and flagged"
        in caplog.text
    )


def test_sessions_concatenated_with_dropped_volumes_labelled(fmriprep, tmp_path):
    sub = fmriprep["subjects"]["01"]
    atlas = fmriprep["root"] / f"space-{fmriprep['space']}_atlas-demo_dseg"
    inputs = {key: [r[key] for r in sub["runs"]] for key in ("bold", "sidecar", "confounds")} | {
        "mask": sub["mask"],
        "atlas": f"{atlas}.nii.gz",
        "labels": f"{atlas}.tsv",
        "runs": _runs_table(tmp_path / "runs.tsv", fmriprep["tr"], FMRIPREP_TRS),
    }
    # sub-01's own brain mask leaves the atlas's control slab out: an ROI without voxels
    # stops preprocessing (test_faults), so only the ROIs inside the mask are configured
    rois = [name for name in _labels(f"{atlas}.tsv") if name != "control"]
    arrays, meta = _preprocess(inputs, rois=rois, confounds=DEFAULT_CONFOUNDS)
    kept = [n - N_DUMMY for n in FMRIPREP_TRS]
    assert meta["runs"] == [1, 2, 3]  # run entities repeat across sessions (1, 2, 1)
    assert meta["n_volumes"] == list(FMRIPREP_TRS) and meta["tr"] == fmriprep["tr"]
    default = json.loads(json.dumps(DEFAULT_CONFOUNDS))
    assert [json.loads(r["strategy"]) for r in meta["qc"]["runs"]] == [default] * 3
    assert arrays["run"].tolist() == [1] * kept[0] + [2] * kept[1] + [3] * kept[2]
    assert arrays["volume"].tolist() == [v for n in FMRIPREP_TRS for v in range(N_DUMMY, n)]
    assert [r["dropped_volumes"] for r in meta["qc"]["runs"]] == [[0, 1]] * 3
    assert meta["qc"]["flagged_units"] == []
    planted = fmriprep["weights"][tuple(arrays["ijk"].T)] > 0
    truth = np.concatenate(
        [
            _planted_series("01", r["session"], r["run"], r["n_volumes"])[N_DUMMY:, 0]
            for r in sub["runs"]
        ]
    )
    r = np.corrcoef(truth, arrays["bold"].T)[0, 1:]
    assert r[planted].mean() > 0.55 and abs(r[~planted].mean()) < 0.1
    for block in np.split(arrays["bold"], np.cumsum(kept)[:-1]):
        assert np.allclose(block.mean(axis=0), 0, atol=1e-5)


def test_dead_voxel_flagged_in_every_run(tiny, tmp_path):
    img = nib.load(tiny["bold"][1])
    data = np.asarray(img.dataobj).copy()
    data[2, 3, 4, 5] = np.nan
    dead = _save(data, tmp_path / "sub-01_task-naturalistic_run-2_bold.nii.gz")
    shutil.copy(
        Path(tiny["bold"][1]).with_name("sub-01_task-naturalistic_run-2_bold.json"), tmp_path
    )
    sidecar = tmp_path / "sub-01_task-naturalistic_run-2_bold.json"
    arrays, meta = _preprocess(
        _inputs(tiny, bold=[tiny["bold"][0], dead], sidecar=[tiny["sidecar"][0], sidecar])
    )
    unit = [tuple(v) for v in arrays["ijk"]].index((2, 3, 4))
    assert meta["qc"]["flagged_units"] == [unit] and meta["qc"]["runs"][1]["nan_units"] == [unit]
    assert (arrays["bold"][:, unit] == 0).all() and np.isfinite(arrays["bold"]).all()


def test_concept_means_without_zscore_and_with_a_nan_unit():
    data = np.arange(12, dtype=float).reshape(4, 3)
    data[1, 2] = np.nan
    means, counts = concept_means(
        data, ["b", "a", "b", "a"], ["a", "b"], "events.tsv", zscore=False
    )
    assert counts.tolist() == [2, 2]
    assert np.allclose(means[:, :2], [[(3 + 9) / 2, (4 + 10) / 2], [(0 + 6) / 2, (1 + 7) / 2]])
    assert np.isfinite(means).all()
