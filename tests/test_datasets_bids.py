"""Tests of brainalign.datasets.bids: discovery on fMRIPrep trees written in the real format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from bids.layout import parse_file_entities

from brainalign.datasets.bids import RunFiles, index_dataset, parse_entities
from brainalign.datasets.confounds import DEFAULT_CONFOUNDS
from brainalign.datasets.registry import DatasetError
from tests._fmriprep_files import SPACE, write_fmriprep_tree

TASKS = {"film": {"kind": "naturalistic", "bids_task": "movie"}}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict:
    """Two subjects x two sessions (2 and 1 runs) of unequal lengths, shared atlas, events."""
    return write_fmriprep_tree(
        tmp_path_factory.mktemp("fmriprep") / "derivatives",
        atlas="demo",
        events=True,
        n_acompcor=12,
        seed=1,
    )


@pytest.fixture
def copy(tree, tmp_path) -> Path:
    """A private copy of the tree, to break."""
    return Path(shutil.copytree(tree["root"], tmp_path / "derivatives"))


def _index(root, **kwargs):
    options = {
        "subjects": ["01", "02"],
        "tasks": TASKS,
        "space": SPACE,
        "desc": "preproc",
        "atlas": "demo",
        "confounds": DEFAULT_CONFOUNDS,
        "source": "study.yaml",
        **kwargs,
    }
    return index_dataset(root, **options)


def _relocate(path, old: Path, new: Path) -> str:
    return str(new / Path(path).relative_to(old))


# ----------------------------------------------------------------------------- parsing
@pytest.mark.parametrize(
    "name",
    [
        "sub-01_ses-1_task-movie_run-2_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz",
        "sub-01_ses-1_task-movie_run-2_space-MNI152NLin2009cAsym_res-2_desc-brain_mask.nii.gz",
        "sub-01_ses-1_task-movie_run-2_desc-confounds_timeseries.tsv",
        "sub-01_ses-1_task-movie_run-02_hemi-L_space-fsaverage5_bold.func.gii",
        "sub-01_space-MNI152NLin2009cAsym_atlas-Schaefer2018_dseg.nii.gz",
        "space-MNI152_atlas-demo_dseg.tsv",
        "sub-01_task-concepts_acq-mb4_run-1_echo-2_events.tsv",
    ],
)
def test_entities_are_pybids_own(name):
    expected = parse_file_entities("/" + name, config=["bids", "derivatives"])
    ours = parse_entities(name)
    assert {k: ours[k] for k in expected} == {
        k: (int(v) if k == "run" else v) for k, v in expected.items()
    }
    assert set(ours) - set(expected) <= {"tpl"}


# ----------------------------------------------------------------------------- discovery
def test_runs_of_every_session_in_order(tree):
    index = _index(tree["root"])
    for subject, files in tree["subjects"].items():
        runs = index.runs(subject, "film")
        assert [(r.session, r.run) for r in runs] == [("1", 1), ("1", 2), ("2", 1)]
        assert runs == [
            RunFiles(
                w["session"],
                w["run"],
                str(w["bold"]),
                str(w["sidecar"]),
                str(w["confounds"]),
                str(w["events"]),
            )
            for w in files["runs"]
        ]
        lengths = [nib.load(r.bold).shape[3] for r in runs]
        assert lengths == [36, 30, 33]  # unequal runs
        assert index.tr(subject, "film") == 2.0
    assert index.subjects == ["01", "02"]


def test_per_subject_masks_and_shared_atlas(tree):
    index = _index(tree["root"])
    masks = {s: index.mask(s) for s in ("01", "02")}
    assert masks == {s: str(f["mask"]) for s, f in tree["subjects"].items()}
    data = [np.asarray(nib.load(m).dataobj) for m in masks.values()]
    assert (data[0] != data[1]).any()  # each subject its own mask
    assert index.atlas("02") == {"atlas": str(tree["atlas"]), "labels": str(tree["labels"])}


def test_per_subject_atlas_wins(tmp_path):
    tree = write_fmriprep_tree(
        tmp_path,
        subjects=("01",),
        sessions=None,
        runs_per_session=(1,),
        n_volumes=12,
        atlas="demo",
        per_subject_atlas=True,
        n_acompcor=2,
    )
    (tmp_path / f"space-{SPACE}_atlas-demo_dseg.nii.gz").write_bytes(
        Path(tree["subjects"]["01"]["atlas"]).read_bytes()
    )
    index = _index(tmp_path, subjects=["01"])
    own = tree["subjects"]["01"]
    assert index.atlas("01") == {"atlas": str(own["atlas"]), "labels": str(own["labels"])}
    assert "/anat/sub-01_space-" in index.atlas("01")["atlas"]
    assert index.runs("01", "film")[0].session is None


def test_configured_sessions_only(tree):
    index = _index(tree["root"], sessions=["2"])
    assert [(r.session, r.run) for r in index.runs("01", "film")] == [("2", 1)]


def test_task_list_and_desc_override(tree):
    index = _index(
        tree["root"], tasks={"movie": {"kind": "naturalistic", "desc": "preproc"}}, desc=None
    )
    assert len(index.runs("02", "movie")) == 3


def test_shared_mask(tree):
    index = _index(tree["root"], mask=f"sub-01/anat/sub-01_space-{SPACE}_desc-brain_mask.nii.gz")
    assert index.mask("02") == index.mask("01") == str(tree["subjects"]["01"]["mask"])


def test_run_mask_when_no_anat_mask(copy, caplog):
    for mask in copy.glob("sub-01/anat/*_desc-brain_mask.nii.gz"):
        mask.unlink()
    index = _index(copy)
    assert index.mask("01").endswith(
        f"sub-01_ses-1_task-movie_run-1_space-{SPACE}_desc-brain_mask.nii.gz"
    )
    assert "using the run mask" in caplog.text


def test_surfaces(tmp_path):
    tree = write_fmriprep_tree(
        tmp_path,
        subjects=("01",),
        runs_per_session=(1, 2),
        n_volumes=(12, 10),
        atlas="demo",
        surface_space="fsaverage5",
        n_vertices=30,
        n_acompcor=2,
    )
    index = _index(tmp_path, subjects=["01"], space="fsaverage5", desc=None, surface=True)
    runs = index.runs("01", "film")
    assert [r.bold for r in runs] == [
        {h: str(w["surface"][h]) for h in "LR"} for w in tree["subjects"]["01"]["runs"]
    ]
    assert (
        runs[0].sidecar.endswith("hemi-L_space-fsaverage5_bold.json")
        and index.tr("01", "film") == 2.0
    )
    assert index.atlas("01") == {
        h: str(tmp_path / f"hemi-{h}_space-fsaverage5_atlas-demo_dseg.label.gii") for h in "LR"
    }
    assert index.mask("01") is None
    for hemi in "LR":
        (tmp_path / f"hemi-{hemi}_space-fsaverage5_atlas-demo_dseg.label.gii").rename(
            tmp_path / f"{dict(L='lh', R='rh')[hemi]}.demo.annot"
        )
    assert _index(tmp_path, subjects=["01"], space="fsaverage5", desc=None, surface=True).atlas(
        "01"
    ) == {"L": str(tmp_path / "lh.demo.annot"), "R": str(tmp_path / "rh.demo.annot")}


def _demo_layout(root: Path) -> None:
    """The synthetic demo's layout: shared mask and atlas at the root, no sessions."""
    for name in (
        "space-MNI152_desc-brain_mask.nii.gz",
        "space-MNI152_atlas-demo_dseg.nii.gz",
        "space-MNI152_atlas-demo_dseg.tsv",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    for run in (1, 2):
        stem = func / f"sub-01_task-naturalistic_run-{run}"
        Path(f"{stem}_space-MNI152_desc-preproc_bold.nii.gz").touch()
        Path(f"{stem}_space-MNI152_desc-preproc_bold.json").write_text(
            json.dumps({"RepetitionTime": 2.0})
        )
        Path(f"{stem}_desc-confounds_timeseries.tsv").write_text("trans_x\trot_z\n0\t0\n")
        stem = func / f"sub-01_task-concepts_run-{run}"
        Path(f"{stem}_space-MNI152_desc-trials_bold.nii.gz").touch()
        Path(f"{stem}_events.tsv").touch()


def test_demo_layout(tmp_path):
    _demo_layout(tmp_path)
    index = index_dataset(
        tmp_path,
        subjects=["01"],
        space="MNI152",
        desc="preproc",
        tasks={
            "concepts": {"kind": "concepts", "desc": "trials"},
            "naturalistic": {"kind": "naturalistic"},
        },
        mask="space-MNI152_desc-brain_mask.nii.gz",
        atlas="demo",
        confounds=["trans_x", "rot_z"],
    )
    assert index.mask("01") == str(tmp_path / "space-MNI152_desc-brain_mask.nii.gz")
    assert index.atlas("01")["labels"] == str(tmp_path / "space-MNI152_atlas-demo_dseg.tsv")
    concepts = index.runs("01", "concepts")
    assert [Path(r.bold).name for r in concepts] == [
        f"sub-01_task-concepts_run-{r}_space-MNI152_desc-trials_bold.nii.gz" for r in (1, 2)
    ]
    assert all(r.events and r.confounds is None and r.sidecar is None for r in concepts)
    assert [r.run for r in index.runs("01", "naturalistic")] == [1, 2]
    with pytest.raises(
        DatasetError, match=r"has no RepetitionTime: none of its runs has a _bold.json"
    ):
        index.tr("01", "concepts")
    short = index_dataset(
        tmp_path,
        subjects=["01"],
        space="MNI152",
        desc="preproc",
        tasks=["naturalistic"],
        mask="space-MNI152_desc-brain_mask.nii.gz",
        confounds=[],
    )
    assert short.runs("01", "naturalistic") == index.runs("01", "naturalistic")


# ----------------------------------------------------------------------------- errors
def test_subject_not_found(tree):
    with pytest.raises(
        DatasetError,
        match=r"^subject '03' not found: no folder sub-03 under .*derivatives; "
        r"found 2 subjects \(sub-01, sub-02\)\. Fix 'dataset.subjects' or 'dataset.root' in study.yaml\.$",
    ):
        _index(tree["root"], subjects=["01", "03"])


def test_no_bold_in_space(tree):
    with pytest.raises(
        DatasetError,
        match=r"^no BOLD file for sub-01 task 'film' \(task 'movie', space "
        r"'MNI152NLin6Asym', desc 'preproc', \*\.nii\[\.gz\]\); found for this task: space "
        rf"{SPACE} desc preproc extension \.nii\.gz \(3 files\)\. Set 'dataset.space' / "
        r"'dataset.desc' \(or the task's 'desc'\) in study.yaml to match the files\.$",
    ):
        _index(tree["root"], space="MNI152NLin6Asym")


def test_no_bold_for_task(tree):
    with pytest.raises(
        DatasetError,
        match=r"no BOLD file for sub-01 task 'rest' \(task 'rest', .*found tasks: "
        r"movie\. Set 'dataset.tasks.rest.bids_task' in study.yaml",
    ):
        _index(tree["root"], tasks={"rest": {"kind": "naturalistic"}})


def test_session_not_found(tree):
    with pytest.raises(
        DatasetError,
        match=r"^sub-01 has no session \['3'\] under .*sub-01; found sessions "
        r"\['1', '2'\]\. Fix 'dataset.sessions' in study.yaml",
    ):
        _index(tree["root"], sessions=["1", "3"])


def test_subject_without_mask(copy):
    for mask in copy.glob("sub-02/**/*_desc-brain_mask.nii.gz"):
        mask.unlink()
    with pytest.raises(
        DatasetError,
        match=rf"^sub-02 has no brain mask: expected sub-02\[_ses-\*\]_space-{SPACE}"
        r"_desc-brain_mask.nii.gz .*found masks: none\. Set 'dataset.mask' to a mask shared",
    ):
        _index(copy)


def test_shared_mask_missing(tree):
    with pytest.raises(
        DatasetError,
        match=r"config 'dataset.mask' is 'brain.nii.gz', but .*brain.nii.gz does " r"not exist",
    ):
        _index(tree["root"], mask="brain.nii.gz")


def test_missing_atlas_and_labels(copy):
    with pytest.raises(
        DatasetError,
        match=rf"^no atlas 'schaefer' in space {SPACE} for sub-01: expected .*found "
        rf"atlases \['demo \(space {SPACE}\)'\]\. Fix 'dataset.atlas' in study.yaml",
    ):
        _index(copy, atlas="schaefer")
    (copy / f"space-{SPACE}_atlas-demo_dseg.tsv").unlink()
    with pytest.raises(
        DatasetError,
        match=rf"atlas labels missing for sub-01: expected space-{SPACE}_atlas-demo_dseg"
        r"\.tsv next to '.*' or \[space-.*\]atlas-demo_dseg\.tsv \(columns index, name\)",
    ):
        _index(copy)


def test_runs_disagree_on_tr(copy):
    sidecar = next(copy.glob("sub-02/ses-2/func/*_bold.json"))
    sidecar.write_text(json.dumps({"RepetitionTime": 1.5}))
    with pytest.raises(
        DatasetError,
        match=r"^sub-02 task 'film': runs disagree on RepetitionTime: 2\.0 s in "
        r"'.*ses-1_task-movie_run-1_.*_bold.json' but 1\.5 s in '.*ses-2_task-movie_run-1_",
    ):
        _index(copy)


def test_naturalistic_run_without_confounds(copy):
    next(copy.glob("sub-01/ses-2/func/*_desc-confounds_timeseries.tsv")).unlink()
    with pytest.raises(
        DatasetError,
        match=r"^sub-01 task 'film' session 2 run 1 has no confounds file: expected "
        r"sub-01_ses-2_task-movie_run-1_desc-confounds_timeseries.tsv in .*ses-2/func for "
        r"'preprocess.confounds'; .*set 'preprocess.confounds: \[\]' in study.yaml",
    ):
        _index(copy)
    assert _index(copy, confounds=[]).runs("01", "film")[2].confounds is None


def test_confounds_checked_before_any_job(tree):
    with pytest.raises(DatasetError, match=r"names strategy 'simpel'.*did you mean 'simple'"):
        _index(tree["root"], confounds="simpel")
    with pytest.raises(
        DatasetError, match=r"lacks columns 'framewise_displacment' \(close: framewise_displacement"
    ):
        _index(tree["root"], confounds=["trans_x", "framewise_displacment"])
    with pytest.raises(DatasetError, match=r"is not fMRIPrep's ICA-AROMA output"):
        _index(tree["root"], confounds="ica_aroma")


def test_events_required_for_concepts(copy):
    next(copy.glob("sub-02/ses-1/func/*run-2_events.tsv")).unlink()
    with pytest.raises(
        DatasetError,
        match=r"^sub-02 task 'words' session 1 run 2 has no events file: expected "
        r"sub-02_ses-1_task-movie_run-2_events.tsv in ",
    ):
        _index(copy, tasks={"words": {"kind": "concepts", "bids_task": "movie"}})


def test_ambiguous_files(copy):
    bold = next(copy.glob("sub-01/ses-1/func/*run-1_space-*_desc-preproc_bold.nii.gz"))
    shutil.copy(bold, bold.with_name(bold.name.replace("_desc-preproc", "_res-2_desc-preproc")))
    with pytest.raises(
        DatasetError,
        match=r"BOLD of sub-01 task 'film' session 1 run 1 is ambiguous: 2 files "
        r"match .*; they differ in entities \['res'\]\. Move the unwanted ones",
    ):
        _index(copy)


def test_surface_needs_both_hemispheres(tmp_path):
    write_fmriprep_tree(
        tmp_path,
        subjects=("01",),
        sessions=None,
        runs_per_session=(1,),
        n_volumes=8,
        atlas="demo",
        surface_space="fsaverage5",
        n_vertices=10,
        n_acompcor=2,
    )
    next(tmp_path.glob("sub-01/func/*hemi-R*.func.gii")).unlink()
    with pytest.raises(
        DatasetError, match=r"has hemispheres \['L'\]; expected both hemi-L and hemi-R"
    ):
        _index(tmp_path, subjects=["01"], space="fsaverage5", desc=None, surface=True)


def test_sessions_in_natural_order(tmp_path):
    write_fmriprep_tree(
        tmp_path,
        subjects=("01",),
        sessions=("10", "2"),
        runs_per_session=(1, 1),
        n_volumes=(9, 8),
        atlas="demo",
        n_acompcor=2,
    )
    runs = _index(tmp_path, subjects=["01"]).runs("01", "film")
    assert [(r.session, nib.load(r.bold).shape[3]) for r in runs] == [("2", 8), ("10", 9)]
