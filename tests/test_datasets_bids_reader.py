"""The bids reader's inputs as Snakemake sees them: sessions, surfaces, the demo layout."""

from __future__ import annotations

import re

import pytest

from brainalign.config import validate_config
from brainalign.datasets.registry import DatasetError, get_reader

from ._fmriprep_files import write_fmriprep_tree
from .conftest import REPO


def _config(root, stimuli, **dataset):
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["dataset"] = {"format": "bids", "root": str(root), "subjects": ["01", "02"],
                         "tasks": {"movie": {"kind": "naturalistic"}},
                         "space": "MNI152NLin2009cAsym", "desc": "preproc", "atlas": "demo",
                         **dataset}
    config["stimuli"] = {"root": str(stimuli)}
    config["encoding"]["joint"] = []
    config["preprocess"] = {}
    return validate_config(config)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("fmriprep")
    return write_fmriprep_tree(root, subjects=("01", "02"), sessions=("1", "2"),
                               runs_per_session=(2, 1), n_volumes=(20, 18, 22), atlas="demo",
                               per_subject_atlas=True)


def _reader(config):
    return get_reader(config["dataset"], config["stimuli"]["root"], preprocess=config["preprocess"])


def test_sessions_are_concatenated_in_session_run_order(tree, tmp_path):
    config = _config(tree["root"], tmp_path)
    files = _reader(config).inputs("01", "movie")
    assert [f.split("/")[-1].split("_space")[0] for f in files["bold"]] == [
        "sub-01_ses-1_task-movie_run-1", "sub-01_ses-1_task-movie_run-2", "sub-01_ses-2_task-movie_run-1"]
    assert len(files["confounds"]) == len(files["sidecar"]) == 3
    assert files["mask"].endswith("sub-01/anat/sub-01_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz")
    assert files["atlas"].endswith("sub-01_space-MNI152NLin2009cAsym_atlas-demo_dseg.nii.gz")
    assert files["runs"].endswith("naturalistic/runs.tsv")


def test_sessions_kept_apart_become_tasks(tree, tmp_path):
    config = _config(tree["root"], tmp_path, sessions=["1", "2"], session_mode="separate")
    assert list(config["dataset"]["tasks"]) == ["movieses1", "movieses2"]
    reader = _reader(config)
    assert len(reader.inputs("02", "movieses1")["bold"]) == 2
    (only,) = reader.inputs("02", "movieses2")["bold"]
    assert "_ses-2_task-movie_run-1_" in only


def test_separate_sessions_need_the_session_list(tree, tmp_path):
    with pytest.raises(ValueError, match=r"config 'dataset.session_mode' is 'separate', which needs "
                                         r"the sessions listed in 'dataset.sessions'; got None"):
        _config(tree["root"], tmp_path, session_mode="separate")


def test_a_session_without_runs_is_named(tree, tmp_path):
    config = _config(tree["root"], tmp_path, sessions=["1", "2"], session_mode="separate",
                     tasks={"movie": {"kind": "naturalistic"}, "rest": {"kind": "naturalistic",
                                                                        "bids_task": "movie"}})
    reader = _reader(config)
    reader.dataset["tasks"]["restses2"]["session"] = "3"
    with pytest.raises(DatasetError, match=r"sub-01 has no run of task 'movie' in session '3'"):
        reader.inputs("01", "restses2")


def test_demo_inputs_are_predicted_before_the_files_exist(tmp_path):
    import yaml

    config = validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    files = _reader(config).inputs("02", "concepts")
    assert files["bold"][1].endswith(
        "sub-02/func/sub-02_task-concepts_run-2_space-MNI152_desc-trials_bold.nii.gz")
    assert files["events"][0].endswith("sub-02_task-concepts_run-1_events.tsv")
    assert files["mask"].endswith("dataset/space-MNI152_desc-brain_mask.nii.gz")


def test_concept_units_with_nan_or_constant_trials_are_zeroed_and_counted(tmp_path):
    """A voxel with a NaN trial, or with one value in every trial, is never made up."""
    import nibabel as nib
    import numpy as np
    import pandas as pd

    from brainalign.datasets.bids_preprocess import preprocess_task

    rng = np.random.default_rng(0)
    mask = np.ones((3, 4, 5), dtype=np.uint8)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(mask, affine), tmp_path / "mask.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((3, 4, 5), np.int16), affine), tmp_path / "atlas.nii.gz")
    pd.DataFrame({"index": [1], "name": ["all"]}).to_csv(tmp_path / "atlas.tsv", sep="\t", index=False)
    concepts = ["a", "b", "c", "d"]
    pd.DataFrame({"concept": concepts}).to_csv(tmp_path / "concepts.tsv", sep="\t", index=False)
    inputs = {"bold": [], "events": [], "mask": str(tmp_path / "mask.nii.gz"),
              "atlas": str(tmp_path / "atlas.nii.gz"), "labels": str(tmp_path / "atlas.tsv"),
              "concepts": str(tmp_path / "concepts.tsv")}
    for run in (1, 2):
        trials = rng.standard_normal((3, 4, 5, 8)).astype(np.float32)
        trials[0, 0, 0] = 5.0  # constant voxel (unit 0)
        if run == 2:
            trials[0, 0, 1, 3] = np.nan  # unit 1: one NaN trial in run 2
        nib.save(nib.Nifti1Image(trials, affine), tmp_path / f"run{run}.nii.gz")
        pd.DataFrame({"concept": concepts * 2}).to_csv(tmp_path / f"run{run}.tsv", sep="\t", index=False)
        inputs["bold"].append(str(tmp_path / f"run{run}.nii.gz"))
        inputs["events"].append(str(tmp_path / f"run{run}.tsv"))
    for zscore in (True, False):
        arrays, meta = preprocess_task(inputs, subject="01", task="t", kind="concepts", surface=False,
                                       rois=["all"], params={"zscore": zscore, "betas": {}})
        assert meta["qc"]["flagged_units"] == [0, 1]
        assert (arrays["patterns_by_run"][..., :2] == 0).all()
        assert np.isfinite(arrays["patterns"]).all() and (arrays["patterns"][:, 2:] != 0).all()
    # RSA leaves the flagged units out of the ROI's RDM
    from brainalign import io
    from brainalign.rsa.rdm import compute_rdm
    from brainalign.rsa.steps import run_brain_rdms

    io.save_arrays(tmp_path / "brain.safetensors", arrays, {**meta, "space": "x"})
    rdm = run_brain_rdms(tmp_path / "brain.safetensors", ["all"], metric="correlation",
                         noise="none", out=tmp_path / "rdms.safetensors")["roi-all"]
    np.testing.assert_allclose(rdm, compute_rdm(arrays["patterns"][:, 2:], metric="correlation"))


def test_rsa_runs_on_vertices_as_on_voxels(tmp_path):
    """Single-trial GIfTI patterns on both hemispheres: concept RDMs of a surface ROI."""
    import nibabel as nib
    import numpy as np
    import pandas as pd

    from brainalign import io
    from brainalign.datasets.bids_preprocess import preprocess_task
    from brainalign.datasets.units import check_units
    from brainalign.rsa.steps import run_brain_rdms

    rng = np.random.default_rng(1)
    n_vertices, concepts = {"L": 11, "R": 13}, ["a", "b", "c", "d", "e"]
    truth = rng.standard_normal((len(concepts), 24))
    pd.DataFrame({"concept": concepts}).to_csv(tmp_path / "concepts.tsv", sep="\t", index=False)
    inputs = {"bold_L": [], "bold_R": [], "events": [], "concepts": str(tmp_path / "concepts.tsv")}
    for hemi, n in n_vertices.items():
        labels = nib.gifti.GiftiLabelTable()
        for key, name in enumerate(["unknown", "lang"]):
            label = nib.gifti.GiftiLabel(key=key)
            label.label = name
            labels.labels.append(label)
        roi = (np.arange(n) < 6).astype(np.int32)
        nib.save(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
            roi, intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32")], labeltable=labels),
            tmp_path / f"hemi-{hemi}_atlas.label.gii")
        inputs[f"atlas_{hemi}"] = str(tmp_path / f"hemi-{hemi}_atlas.label.gii")
    for run in (1, 2):
        order = rng.permutation(len(concepts))
        trials = truth[order] + 0.3 * rng.standard_normal((len(concepts), 24))
        for h, (hemi, n) in enumerate(n_vertices.items()):
            block = trials[:, :11] if hemi == "L" else trials[:, 11:]
            nib.save(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
                np.ascontiguousarray(row, dtype=np.float32), intent="NIFTI_INTENT_TIME_SERIES",
                datatype="NIFTI_TYPE_FLOAT32") for row in block]), tmp_path / f"run{run}_{hemi}.func.gii")
            inputs[f"bold_{hemi}"].append(str(tmp_path / f"run{run}_{hemi}.func.gii"))
        pd.DataFrame({"concept": [concepts[k] for k in order]}).to_csv(
            tmp_path / f"run{run}.tsv", sep="\t", index=False)
        inputs["events"].append(str(tmp_path / f"run{run}.tsv"))
    arrays, meta = preprocess_task(inputs, subject="01", task="t", kind="concepts", surface=True,
                                   rois=["lang"], params={"zscore": False, "betas": {}})
    meta.update(space="fsaverage5")
    check_units(arrays, meta)
    assert meta["geometry"] == "surface" and meta["n_vertices"] == n_vertices
    assert int((arrays["roi"] == meta["rois"]["lang"]).sum()) == 12  # 6 vertices per hemisphere
    np.testing.assert_allclose(arrays["patterns"][:, :11].mean(), truth[:, :11].mean(), atol=0.2)
    io.save_arrays(tmp_path / "brain.safetensors", arrays, meta)
    rdms = run_brain_rdms(tmp_path / "brain.safetensors", ["lang"], metric="correlation",
                          noise="none", out=tmp_path / "rdms.safetensors")
    lang = np.r_[np.arange(6), 11 + np.arange(6)]
    expected = 1 - np.corrcoef(truth[:, lang])[np.triu_indices(len(concepts), 1)]
    assert np.corrcoef(rdms["roi-lang"], expected)[0, 1] > 0.9


def test_events_naming_unknown_stimuli_stop_before_any_job(tmp_path):
    import pandas as pd

    tree = write_fmriprep_tree(tmp_path / "ds", subjects=("01",), sessions=None, runs_per_session=(1,),
                               n_volumes=(30,), atlas="demo", events=True, task="objects")
    stimuli = tmp_path / "stimuli"
    stimuli.mkdir()
    # ten concepts, so that the default five outer folds can cross-validate them
    known = ["c0", "c1", *(f"x{i}" for i in range(8))]
    pd.DataFrame({"concept": known}).to_csv(stimuli / "concepts.tsv", sep="\t", index=False)
    config = _config(tree["root"], stimuli, subjects=["01"], tasks={"objects": {"kind": "events"}})
    with pytest.raises(DatasetError, match=r"events '.*sub-01_task-objects_run-1_events.tsv' names "
                                           r"stimuli that '.*concepts.tsv' lacks: \['c2'\] \(1 in all\)"):
        _reader(config).check()
    pd.DataFrame({"concept": [*known, "c2"]}).to_csv(stimuli / "concepts.tsv", sep="\t", index=False)
    _reader(config).check()


def test_flagged_share_per_roi_is_counted_and_bounded():
    import numpy as np

    from brainalign.datasets.units import check_flagged_share, unit_qc

    arrays = {"roi": np.array([1] * 10 + [2] * 10, dtype=np.int32)}
    meta = {"subject": "01", "task": "movie", "rois": {"language": 1, "visual": 2},
            "qc": {"flagged_units": [0, 1, 12],
                   "runs": [{"run": 1, "nan_units": [], "constant_units": []},
                            {"run": 2, "nan_units": [0, 1], "constant_units": [12]}]}}
    table = unit_qc(arrays, meta).set_index("roi")
    assert table.loc["language", ["n_units", "n_flagged", "runs"]].tolist() == [10, 2, "2"]
    assert table.loc["visual", "share_flagged"] == pytest.approx(0.1)
    check_flagged_share(table.reset_index(), 0.2)
    with pytest.raises(ValueError, match=re.escape(
            "sub-01 task movie ROI language: 2 of 10 units (20%) have NaN or constant signal (in "
            "run(s) 2), more than config 'preprocess.max_flagged_share' 0.1; check the data and "
            "brain mask of that run, or raise the threshold.")):
        check_flagged_share(table.reset_index(), 0.1)
