"""Each real dataset format through the whole workflow, recovering planted truth.

The datasets are written in exactly the distributed formats (Pereira 2018 ``.mat`` files,
an fMRIPrep derivatives tree, event-related BOLD with ``events.tsv``, fsaverage GIfTI
surfaces) with responses planted from a tiny BERT's features in one ROI (the ``language``
network) and noise elsewhere; the workflow runs with that same tiny BERT.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ._format_study import planted, roi_scores, study_config, study_stimuli, tiny_features, write_study_config
from .conftest import snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def _run(workdir: Path, config: dict, *args: str, check: bool = True):
    path = write_study_config(workdir, config)
    return snakemake(workdir, "--configfile", str(path), "--cores", "2", *args, check=check)


# ----------------------------------------------------------------------------- Pereira
def _pereira_dataset(root: Path, stimuli: Path, subjects: list[str], rng) -> None:
    from ._pereira_files import write_pereira_mat

    concepts, meta = tiny_features(stimuli, "concepts", root)
    names = list(meta["stimuli"])
    shape = (9, 8, 7)
    ijk = np.argwhere(np.ones(shape, dtype=bool))
    for s, subject in enumerate(subjects):
        keep = np.sort(rng.choice(len(ijk), 300, replace=False))  # each subject its own voxels
        sub_ijk = ijk[keep]
        columns = np.arange(len(keep))
        lang_l, lang_r, visual = columns[:60], columns[60:120], columns[120:180]
        examples = rng.standard_normal((len(names), len(keep)))
        examples[:, lang_l] += 1.5 * planted(concepts, len(lang_l), seed=10 + s)
        order = rng.permutation(len(names))  # the file's own concept order
        atlases = {"languageLH": {"LIFG": lang_l[:30], "LMTG": lang_l[30:]},
                   "languageRH": {"RIFG": lang_r}, "visual": {"V": visual}}
        write_pereira_mat(root / subject / "data_180concepts_sentences.mat", examples[order],
                          [names[i] for i in order], sub_ijk, shape, atlases)


def test_pereira_files_recover_the_planted_network(tmp_path):
    rng = np.random.default_rng(0)
    stimuli = study_stimuli(tmp_path / "stimuli")
    subjects = ["M01", "P01"]
    _pereira_dataset(tmp_path / "pereira", stimuli, subjects, rng)
    dataset = {"format": "pereira", "root": str(tmp_path / "pereira"), "subjects": subjects,
               "tasks": {"sentences": {"kind": "concepts", "conditions": ["sentence"]}},
               "rois": ["languageLH", "languageRH", "visual"]}
    _run(tmp_path, study_config(dataset, stimuli))
    scores = roi_scores(tmp_path).groupby("roi")["mean_r"].mean()
    print(f"\n{Path(tmp_path).name}: encoding r (subject mean, layer 2) {scores.round(3).to_dict()}")
    assert scores["languageLH"] > 0.4, scores
    assert abs(scores["languageRH"]) < 0.15 and abs(scores["visual"]) < 0.15, scores
    rsa = pd.read_parquet(tmp_path / "results/group/rsa_task-sentences_subjects.parquet")
    rsa = rsa[rsa["layer"] == 2].groupby("roi")["score"].mean()
    print(f"RSA (subject mean, layer 2) {rsa.round(3).to_dict()}")
    assert rsa["languageLH"] > 0.3 and abs(rsa["visual"]) < 0.15, rsa
    _pereira_bad_inputs(tmp_path, dataset, stimuli)


def _pereira_bad_inputs(tmp_path: Path, dataset: dict, stimuli: Path) -> None:
    """Concepts of the .mat files that the stimuli folder lacks stop the run before any job."""
    from brainalign.io import read_table, write_table

    concepts = read_table(stimuli / "concepts.tsv")
    write_table(concepts.iloc[1:], stimuli / "concepts.tsv")
    workdir = tmp_path / "bad"
    workdir.mkdir()
    proc = _run(workdir, study_config(dataset, stimuli), "--dry-run", check=False)
    assert proc.returncode != 0
    lacking = re.escape(repr(concepts["concept"].iloc[0]))
    pattern = rf"Pereira file '.*M01/data_180concepts_sentences.mat' has 1 concepts that the stimuli's concepts.tsv lacks \(e.g. {lacking}\)"
    assert re.search(pattern, proc.stdout + proc.stderr), proc.stdout[-2000:]
    assert not (workdir / "results").exists()


# ----------------------------------------------------------------------------- fMRIPrep
FMRIPREP_RUNS = (60, 48, 54)  # ses-1 runs 1 and 2, ses-2 run 1: unequal lengths


def _fmriprep_dataset(root: Path, stimuli: Path, subjects: list[str]) -> dict:
    from ._fmriprep_files import atlas_volume, subject_mask, voxel_plant, write_fmriprep_tree
    from ._format_study import planted_timeseries

    features, meta = tiny_features(stimuli, "naturalistic", root.parent)
    runs = np.repeat(np.arange(1, len(FMRIPREP_RUNS) + 1), FMRIPREP_RUNS)
    order = {("1", 1): 1, ("1", 2): 2, ("2", 1): 3}
    plants = {}
    for i, subject in enumerate(subjects):
        language = atlas_volume(subject_mask(i)) == 1
        signal = planted_timeseries(features, runs, int(language.sum()))
        weights = np.zeros((*language.shape, language.sum()))
        weights[language, np.arange(language.sum())] = 1.5
        plants[subject] = (weights, signal)

    def plant(subject, session, run, n_volumes):
        weights, signal = plants[subject]
        rows = runs == order[(session, run)]
        assert rows.sum() == n_volumes
        return voxel_plant(weights, lambda *_: signal[rows])(subject, session, run, n_volumes)

    return write_fmriprep_tree(root, subjects=subjects, sessions=("1", "2"), runs_per_session=(2, 1),
                               n_volumes=FMRIPREP_RUNS, plant=plant, atlas="demo",
                               per_subject_atlas=True, seed=3)


def test_fmriprep_derivatives_recover_the_planted_roi(tmp_path):
    stimuli = study_stimuli(tmp_path / "stimuli", n_trs=FMRIPREP_RUNS)
    subjects = ["01", "02"]
    tree = _fmriprep_dataset(tmp_path / "fmriprep", stimuli, subjects)
    confounds = pd.read_csv(tree["subjects"]["01"]["runs"][0]["confounds"], sep="\t")
    assert confounds.shape[1] > 100 and confounds["trans_x_derivative1"].isna().iloc[0]
    dataset = {"format": "bids", "root": str(tmp_path / "fmriprep"), "subjects": subjects,
               "tasks": {"movie": {"kind": "naturalistic"}}, "space": "MNI152NLin2009cAsym",
               "desc": "preproc", "atlas": "demo", "rois": ["language", "visual", "control"]}
    _run(tmp_path, study_config(dataset, stimuli))
    scores = roi_scores(tmp_path).groupby("roi")["mean_r"].mean()
    print(f"\n{Path(tmp_path).name}: encoding r (subject mean, layer 2) {scores.round(3).to_dict()}")
    assert scores["language"] > 0.25, scores
    assert abs(scores["control"]) < 0.1 and abs(scores["visual"]) < 0.1, scores
    from brainalign.io import load_arrays

    arrays, meta = load_arrays(tmp_path / "results/preprocess/sub-02/sub-02_task-movie_desc-preproc_bold.safetensors")
    assert meta["runs"] == [1, 2, 3] and meta["n_volumes"] == list(FMRIPREP_RUNS)
    assert arrays["bold"].shape[0] == sum(FMRIPREP_RUNS) - 3 * 2  # two non-steady-state volumes per run
    assert [q["n_columns"] for q in meta["qc"]["runs"]] == [9, 9, 9]  # 6 motion, WM, CSF, >= 1 cosine
    _fmriprep_bad_inputs(tmp_path, dataset, stimuli, tree)


def _fmriprep_nan_voxels(tmp_path: Path, dataset: dict, stimuli: Path, tree: dict) -> None:
    """NaN in a third of the language voxels for 2 TRs of one run stops preprocessing."""
    import nibabel as nib

    from ._fmriprep_files import atlas_volume, subject_mask

    run = tree["subjects"]["01"]["runs"][1]  # ses-1 run-2: the second run in (session, run) order
    img = nib.load(run["bold"])
    data = np.asarray(img.dataobj, dtype=np.float32)
    language = np.argwhere(atlas_volume(subject_mask(0)) == 1)
    bad = language[: len(language) // 3]
    data[tuple(bad.T)] = np.where(np.arange(data.shape[-1]) < 7, data[tuple(bad.T)], np.nan)
    nib.save(nib.Nifti1Image(data, img.affine, img.header), run["bold"])
    workdir = tmp_path / "nan"
    workdir.mkdir()
    target = "results/preprocess/sub-01/sub-01_task-movie_desc-preproc_bold.safetensors"
    proc = _run(workdir, study_config(dataset, stimuli), target, check=False)
    assert proc.returncode != 0
    log = (workdir / "results/logs/preprocess_brain/sub-01_task-movie.log").read_text()
    message = (rf"sub-01 task movie ROI language: {len(bad)} of {len(language)} units \(\d+%\) have "
               r"NaN or constant signal \(in run\(s\) 2\), more than config "
               r"'preprocess.max_flagged_share' 0.1")
    assert re.search(message, log), log[-2000:]
    assert not (workdir / target).exists()


def _fmriprep_bad_inputs(tmp_path: Path, dataset: dict, stimuli: Path, tree: dict) -> None:
    _fmriprep_nan_voxels(tmp_path, dataset, stimuli, tree)
    cases = [
        ({"preprocess": {"confounds": ["trans_x", "white_matte"]}},
         r"confounds? .*sub-01_ses-1_task-movie_run-1_desc-confounds_timeseries.tsv.* white_matte"),
        ({"preprocess": {"confounds": "simpel"}}, r"config 'preprocess.confounds' .*simpel"),
    ]
    for k, (sections, message) in enumerate(cases):
        workdir = tmp_path / f"bad{k}"
        workdir.mkdir()
        proc = _run(workdir, study_config(dataset, stimuli, **sections), "--dry-run", check=False)
        assert proc.returncode != 0
        assert re.search(message, proc.stdout + proc.stderr), (proc.stdout + proc.stderr)[-2000:]
    Path(tree["subjects"]["02"]["mask"]).unlink()
    for run in tree["subjects"]["02"]["runs"]:  # fMRIPrep's per-run masks too
        for mask in Path(run["bold"]).parent.glob("sub-02_*_desc-brain_mask.nii.gz"):
            mask.unlink()
    workdir = tmp_path / "nomask"
    workdir.mkdir()
    proc = _run(workdir, study_config(dataset, stimuli), "--dry-run", check=False)
    assert proc.returncode != 0
    assert re.search(r"sub-02.*mask", proc.stdout + proc.stderr), (proc.stdout + proc.stderr)[-2000:]
    assert not (workdir / "results").exists()


# ----------------------------------------------------------------------------- events
EVENT_VOLUMES = (84, 84)


def _trial_onsets(rng, n_trials: int) -> np.ndarray:
    """Jittered inter-trial intervals of 4-8 s after 6 s of rest."""
    return 6.0 + np.concatenate([[0.0], np.cumsum(rng.uniform(4.0, 8.0, n_trials - 1))])


def _events_dataset(root: Path, stimuli: Path, subjects: list[str]) -> dict:
    """fMRIPrep tree of event-related runs: every concept once per run, in random order,
    with a response pattern (planted from the tiny BERT's concept features) in the
    language voxels."""
    from nilearn.glm.first_level import compute_regressor

    from ._fmriprep_files import atlas_volume, subject_mask, write_fmriprep_tree

    concepts, meta = tiny_features(stimuli, "concepts", root.parent)
    names = list(meta["stimuli"])
    rng = np.random.default_rng(5)
    events = {}

    def plant(subject, session, run, n_volumes):
        i = subjects.index(subject)
        language = atlas_volume(subject_mask(i)) == 1
        patterns = 2.0 * planted(concepts, int(language.sum()), seed=20 + i)
        order = rng.permutation(len(names))
        onsets = _trial_onsets(rng, len(names))
        events[(subject, run)] = pd.DataFrame({"onset": onsets, "duration": 1.0,
                                               "trial_type": "word",
                                               "concept": [names[k] for k in order]})
        frame_times = np.arange(n_volumes) * 2.0
        out = np.zeros((*language.shape, n_volumes))
        for onset, k in zip(onsets, order):
            hrf, _ = compute_regressor(np.array([[onset], [1.0], [1.0]]), "glover", frame_times)
            out[language] += patterns[k][:, None] * hrf[:, 0][None, :]
        return out

    tree = write_fmriprep_tree(root, subjects=subjects, sessions=None, runs_per_session=(2,),
                               n_volumes=EVENT_VOLUMES, plant=plant, atlas="demo",
                               per_subject_atlas=True, task="objects", seed=4)
    for subject in subjects:
        for run in tree["subjects"][subject]["runs"]:
            path = Path(run["bold"]).parent / f"sub-{subject}_task-objects_run-{run['run']}_events.tsv"
            events[(subject, run["run"])].to_csv(path, sep="\t", index=False, na_rep="n/a")
    return tree


def test_event_related_bold_gives_single_trial_betas_that_recover_the_planted_roi(tmp_path):
    stimuli = study_stimuli(tmp_path / "stimuli")
    subjects = ["01", "02"]
    tree = _events_dataset(tmp_path / "fmriprep", stimuli, subjects)
    dataset = {"format": "bids", "root": str(tmp_path / "fmriprep"), "subjects": subjects,
               "tasks": {"objects": {"kind": "events"}}, "space": "MNI152NLin2009cAsym",
               "desc": "preproc", "atlas": "demo", "rois": ["language", "visual", "control"]}
    _run(tmp_path, study_config(dataset, stimuli))
    scores = roi_scores(tmp_path).groupby("roi")["mean_r"].mean()
    print(f"\n{Path(tmp_path).name}: encoding r (subject mean, layer 2) {scores.round(3).to_dict()}")
    assert scores["language"] > 0.3, scores
    assert abs(scores["control"]) < 0.15, scores
    rsa = pd.read_parquet(tmp_path / "results/group/rsa_task-objects_subjects.parquet")
    rsa = rsa[rsa["layer"] == 2].groupby("roi")["score"].mean()
    print(f"RSA (subject mean, layer 2) {rsa.round(3).to_dict()}")
    assert rsa["language"] > 0.2 and abs(rsa["control"]) < 0.15, rsa
    # an events file without onsets stops the run before any job
    first = tree["subjects"]["01"]["runs"][0]
    path = Path(first["bold"]).parent / "sub-01_task-objects_run-1_events.tsv"
    pd.read_csv(path, sep="\t").drop(columns="onset").to_csv(path, sep="\t", index=False)
    workdir = tmp_path / "bad"
    workdir.mkdir()
    proc = _run(workdir, study_config(dataset, stimuli), "--dry-run", check=False)
    assert proc.returncode != 0
    assert re.search(r"events '.*sub-01_task-objects_run-1_events.tsv' must have an 'onset' column",
                     proc.stdout + proc.stderr), (proc.stdout + proc.stderr)[-2000:]


# ----------------------------------------------------------------------------- surfaces
SURFACE_RUNS = (60, 56)


def _surface_dataset(root: Path, stimuli: Path, subjects: list[str]) -> dict:
    """fMRIPrep fsaverage5 GIfTI runs; the atlas's language vertices (the first third of
    each hemisphere) get a signal planted from the tiny BERT's naturalistic features."""
    import nibabel as nib

    from ._fmriprep_files import write_fmriprep_tree
    from ._format_study import planted_timeseries

    features, _ = tiny_features(stimuli, "naturalistic", root.parent)
    runs = np.repeat(np.arange(1, len(SURFACE_RUNS) + 1), SURFACE_RUNS)
    tree = write_fmriprep_tree(root, subjects=subjects, sessions=None, runs_per_session=(2,),
                               n_volumes=SURFACE_RUNS, atlas="demo", surface_space="fsaverage5",
                               seed=6)
    n = 10242
    language = np.arange(n) < n // 3  # label 1 of the tree's surface atlas
    for i, subject in enumerate(subjects):
        signal = planted_timeseries(features, runs, 2 * int(language.sum()))
        for run in tree["subjects"][subject]["runs"]:
            rows = runs == run["run"]
            for h, hemi in enumerate(("L", "R")):
                path = Path(run["surface"][hemi])
                img = nib.load(path)
                data = np.stack([d.data for d in img.darrays], axis=1)  # vertices x volumes
                block = signal[rows][:, h * language.sum():(h + 1) * language.sum()]
                data[language] += 1.5 * block.T
                for k, darray in enumerate(img.darrays):
                    darray.data = np.ascontiguousarray(data[:, k], dtype=np.float32)
                nib.save(img, str(path))
    return tree


def test_fsaverage_surfaces_recover_the_planted_vertices(tmp_path):
    stimuli = study_stimuli(tmp_path / "stimuli", n_trs=SURFACE_RUNS)
    subjects = ["01", "02"]
    _surface_dataset(tmp_path / "fmriprep", stimuli, subjects)
    dataset = {"format": "bids", "root": str(tmp_path / "fmriprep"), "subjects": subjects,
               "tasks": {"movie": {"kind": "naturalistic"}}, "space": "fsaverage5",
               "atlas": "demo", "rois": ["language", "visual", "control"]}
    _run(tmp_path, study_config(dataset, stimuli))
    scores = roi_scores(tmp_path).groupby("roi")["mean_r"].mean()
    print(f"\n{Path(tmp_path).name}: encoding r (subject mean, layer 2) {scores.round(3).to_dict()}")
    assert scores["language"] > 0.2, scores
    assert abs(scores["control"]) < 0.1 and abs(scores["visual"]) < 0.1, scores
    from brainalign.datasets.surface import read_surface_map

    maps, names = read_surface_map(
        tmp_path / "results/encoding/sub-01/task-movie/sub-01_task-movie_model-bert_cond-sentence_stat-r_statmap.dscalar.nii")
    assert names == ["layer-01", "layer-02"]
    left = maps["L"][:, 1]
    assert np.nanmean(left[: 10242 // 3]) > np.nanmean(left[10242 // 3:]) + 0.2
    assert (tmp_path / "results/figures/encoding_map_task-movie.png").stat().st_size > 10_000
