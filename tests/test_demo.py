"""Tests of the synthetic demo: stimuli folder and dataset with planted ground truth."""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from brainalign.demo import make_demo_dataset, make_demo_stimuli
from brainalign.demo.stimuli import load_concept_words, load_sentence_templates
from brainalign.features.audio_windows import read_wav
from brainalign.io import load_arrays, read_json, read_table, save_arrays, sha256_file

N_CONCEPTS, N_CONTEXTS, N_RUNS, N_TRS, TR, SIZE = 7, 4, 2, 30, 1.5, 20


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


# ----------------------------------------------------------------------------- stimuli
@pytest.fixture(scope="module")
def stim(tmp_path_factory) -> Path:
    return make_demo_stimuli(
        tmp_path_factory.mktemp("stim"),
        n_concepts=N_CONCEPTS,
        n_contexts=N_CONTEXTS,
        n_runs=N_RUNS,
        n_trs=N_TRS,
        tr=TR,
        image_size=SIZE,
        seed=3,
    )


def test_shipped_words_and_templates():
    words, templates = load_concept_words(), load_sentence_templates()
    assert len(words) >= 180 and len(set(words)) == len(words)
    assert all(re.fullmatch(r"[a-z]+", w) for w in words)
    assert len(templates) >= 8
    assert all(t.count("{w}") == 1 and not t.startswith("{w}") for t in templates)


def test_concepts_and_images_follow_contract(stim):
    concepts = read_table(stim / "concepts.tsv")
    assert list(concepts.columns) == ["concept", "image"]
    assert list(concepts["concept"]) == load_concept_words()[:N_CONCEPTS]
    for rel in concepts["image"]:
        with Image.open(stim / rel) as img:
            assert img.mode == "RGB" and img.size == (SIZE, SIZE)
    assert len(set(map(sha256_file, (stim / r for r in concepts["image"])))) == N_CONCEPTS


def test_sentence_spans_point_at_the_word(stim):
    sentences = read_table(stim / "sentences.tsv")
    assert list(sentences.columns) == ["concept", "context", "sentence", "char_start", "char_end"]
    assert len(sentences) == N_CONCEPTS * N_CONTEXTS
    for row in sentences.itertuples():
        assert row.sentence[row.char_start : row.char_end] == row.concept
    for _, group in sentences.groupby("concept"):
        assert sorted(group["context"]) == list(range(N_CONTEXTS))
        assert group["sentence"].nunique() == N_CONTEXTS  # distinct templates per concept


def test_transcript_words_inside_runs(stim):
    words = read_table(stim / "naturalistic" / "words.tsv")
    runs = read_table(stim / "naturalistic" / "runs.tsv")
    assert list(runs.columns) == ["run", "tr", "n_trs", "audio"]
    for run, audio in zip(runs["run"], runs["audio"]):  # the soundtrack covers the run
        samples, rate = read_wav(stim / audio)
        assert audio == f"naturalistic/audio/run-{run:02d}.wav" and rate == 16000
        assert len(samples) == round(N_TRS * TR * rate) and 0.05 < samples.std() < 0.5
    assert (
        runs["run"].tolist() == [1, 2]
        and (runs["tr"] == TR).all()
        and (runs["n_trs"] == N_TRS).all()
    )
    cols = ["run", "onset", "duration", "word", "sentence", "char_start", "char_end"]
    assert list(words.columns) == cols and set(words["run"]) == {1, 2}
    for row in words.itertuples():
        assert row.sentence[row.char_start : row.char_end] == row.word
    assert (words["onset"] >= 0).all() and (words["duration"] > 0).all()
    assert (words["onset"] + words["duration"] <= N_TRS * TR + 1e-9).all()
    for _, run in words.groupby("run"):
        ends = (run["onset"] + run["duration"]).to_numpy()
        assert (run["onset"].to_numpy()[1:] >= ends[:-1]).all()  # no overlapping words
        rate = len(run) / (N_TRS * TR)
        assert 1.5 < rate < 3.5, rate
    known = set(read_table(stim / "sentences.tsv")["sentence"])
    assert set(words["sentence"]) <= known


def test_frames_tile_each_run(stim):
    frames = read_table(stim / "naturalistic" / "frames.tsv")
    images = set(read_table(stim / "concepts.tsv")["image"])
    assert list(frames.columns) == ["run", "onset", "duration", "image", "scene_cut"]
    assert set(frames["image"]) <= images and (frames["scene_cut"] == 1).all()  # a shot each
    for _, run in frames.groupby("run"):
        onset, duration = run["onset"].to_numpy(), run["duration"].to_numpy()
        assert onset[0] == 0 and np.allclose(onset[1:], onset[:-1] + duration[:-1])
        assert np.isclose(onset[-1] + duration[-1], N_TRS * TR)
        assert (duration[:-1] >= 2).all() and (duration <= 6).all()
        assert (run["image"].to_numpy()[1:] != run["image"].to_numpy()[:-1]).all()


def test_stimuli_are_byte_deterministic(stim, tmp_path):
    kwargs = dict(
        n_concepts=N_CONCEPTS,
        n_contexts=N_CONTEXTS,
        n_runs=N_RUNS,
        n_trs=N_TRS,
        tr=TR,
        image_size=SIZE,
    )
    again = make_demo_stimuli(tmp_path / "again", seed=3, **kwargs)
    other = make_demo_stimuli(tmp_path / "other", seed=4, **kwargs)
    assert _hashes(again) == _hashes(stim)
    differ = {k for k, v in _hashes(other).items() if _hashes(stim).get(k) != v}
    assert "sentences.tsv" in differ and "naturalistic/words.tsv" in differ
    assert any(k.startswith("images/") for k in differ)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(n_concepts=10_000),
            r"parameter 'n_concepts' must be <= \d+ \(the shipped word list\); got 10000",
        ),
        (dict(n_contexts=99), r"parameter 'n_contexts' must be <= \d+ .*got 99"),
        (dict(n_trs=5, tr=2.0), r"must give runs of at least 20 s; got 5 x 2.0 s"),
        (dict(seed=-1), r"parameter 'seed' must be a non-negative integer; got -1"),
    ],
)
def test_stimuli_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_demo_stimuli(tmp_path, **kwargs)


# ----------------------------------------------------------------------------- dataset
CONCEPTS = ["kettle", "bird", "apple", "tower", "drum", "sock", "lamp", "cave", "rope"]
RUN_TRS = (70, 60)
DS_TR = 1.5


def write_fake_features(root: Path, model: str, n_features: int, *, seed: int, shuffle: bool):
    """Random concept and TR-level features per the contract (two layers)."""
    rng = np.random.default_rng(seed)
    stimuli = list(rng.permutation(CONCEPTS)) if shuffle else list(CONCEPTS)
    base = {
        "model": model,
        "model_id": f"fake/{model}",
        "revision": "none",
        "extractor": "fake",
        "condition": "intact",
        "layers": [0, 1],
        "pooling": "mean",
        "units": "a.u.",
        "stimuli": stimuli,
    }
    concept_arrays = {
        f"layer-0{i}": rng.standard_normal((len(stimuli), n_features)).astype(np.float32)
        for i in (0, 1)
    }
    save_arrays(
        root / f"{model}_concepts.safetensors", concept_arrays, {**base, "task": "concepts"}
    )
    n_trs = sum(RUN_TRS)
    natural = {
        f"layer-0{i}": rng.standard_normal((n_trs, n_features)).astype(np.float32) for i in (0, 1)
    }
    natural["run"] = np.repeat([1, 2], RUN_TRS).astype(np.int32)
    save_arrays(
        root / f"{model}_naturalistic.safetensors",
        natural,
        {**base, "task": "naturalistic", "runs": [1, 2], "tr": DS_TR},
    )
    return {
        "concepts": root / f"{model}_concepts.safetensors",
        "naturalistic": root / f"{model}_naturalistic.safetensors",
    }


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    return {
        "language": {**write_fake_features(root, "lm", 16, seed=1, shuffle=False), "layer": 1},
        "visual": {**write_fake_features(root, "vm", 12, seed=2, shuffle=True), "layer": 0},
    }


DS_KW = dict(n_subjects=2, n_concept_runs=2, n_contexts=4, voxel_size=8.0, snr=1.0, ar1_phi=0.4)


@pytest.fixture(scope="module")
def ds(tmp_path_factory, generators) -> Path:
    return make_demo_dataset(
        tmp_path_factory.mktemp("ds") / "ds", generators=generators, seed=7, **DS_KW
    )


def _roi_of_voxel(ds: Path) -> tuple[np.ndarray, np.ndarray]:
    mask = np.asarray(nib.load(ds / "space-MNI152_desc-brain_mask.nii.gz").dataobj)
    atlas = np.asarray(nib.load(ds / "space-MNI152_atlas-demo_dseg.nii.gz").dataobj)
    return mask, atlas


def test_dataset_layout_follows_contract(ds):
    mask, atlas = _roi_of_voxel(ds)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert np.issubdtype(atlas.dtype, np.integer) and set(np.unique(atlas)) == {0, 1, 2, 3, 4}
    assert not atlas[mask == 0].any()
    labels = read_table(ds / "space-MNI152_atlas-demo_dseg.tsv")
    assert dict(zip(labels["name"], labels["index"])) == {
        "language": 1, "visual": 2, "control": 3, "auditory": 4}
    assert read_json(ds / "dataset_description.json")["Name"]
    for sub in ("01", "02"):
        func = ds / f"sub-{sub}" / "func"
        for run, n_trs in zip((1, 2), RUN_TRS):
            img = nib.load(func / f"sub-{sub}_task-naturalistic_run-{run}_space-MNI152_desc-preproc_bold.nii.gz")
            assert img.shape == mask.shape + (n_trs,)
            assert np.isclose(np.asarray(img.dataobj)[mask > 0].mean(), 1000, rtol=0.05)
            sidecar = read_json(func / f"sub-{sub}_task-naturalistic_run-{run}_space-MNI152_desc-preproc_bold.json")
            assert sidecar["RepetitionTime"] == DS_TR
            conf = read_table(
                func / f"sub-{sub}_task-naturalistic_run-{run}_desc-confounds_timeseries.tsv"
            )
            assert list(conf.columns) == [
                "trans_x",
                "trans_y",
                "trans_z",
                "rot_x",
                "rot_y",
                "rot_z",
            ]
            assert len(conf) == n_trs


def test_concept_events_cover_every_concept(ds):
    contexts = {1: {0, 2}, 2: {1, 3}}
    for run in (1, 2):
        events = read_table(ds / "sub-01" / "func" / f"sub-01_task-concepts_run-{run}_events.tsv")
        img = nib.load(
            ds / "sub-01" / "func" / f"sub-01_task-concepts_run-{run}_space-MNI152_desc-trials_bold.nii.gz"
        )
        assert list(events.columns) == ["trial", "concept", "context"]
        assert img.shape[3] == len(events) == len(CONCEPTS) * 2
        assert events["trial"].tolist() == list(range(1, len(events) + 1))
        assert (events.groupby("concept")["context"].apply(set) == contexts[run]).all()
        assert set(events["concept"]) == set(CONCEPTS)
        assert events["concept"].tolist() != sorted(events["concept"])  # shuffled


def test_ground_truth_record(ds, generators):
    truth = read_json(ds / "ground_truth" / "ground_truth.json")
    assert truth["snr"] == 1.0 and truth["ar1_phi"] == 0.4 and truth["seed"] == 7
    assert truth["generators"]["language"]["concepts"]["model"] == "lm"
    assert truth["generators"]["visual"]["naturalistic"]["layer"] == 0
    assert truth["generators"]["visual"]["concepts"]["condition"] == "intact"
    assert truth["undriven_rois"] == ["auditory", "control"]


@pytest.mark.parametrize("task", ["concepts", "naturalistic"])
def test_signal_fraction_zero_outside_driven_rois(ds, task):
    mask, atlas = _roi_of_voxel(ds)
    expected = DS_KW["snr"] / (1 + DS_KW["snr"])
    for sub in ("01", "02"):
        frac = np.asarray(
            nib.load(
                ds / "ground_truth" / f"sub-{sub}_task-{task}_desc-signalfraction_map.nii.gz"
            ).dataobj
        )
        assert (frac[atlas >= 3] == 0).all() and (frac[(mask > 0) & (atlas == 0)] == 0).all()
        for index in (1, 2):
            assert (frac[atlas == index] > 0).all()
            assert abs(frac[atlas == index].mean() - expected) < 0.1


def _corr_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = (a - a.mean(0)) / a.std(0)
    b = (b - b.mean(0)) / b.std(0)
    return (a * b).mean(0)


def test_planted_concept_signal_is_in_the_trials(ds):
    """Trial volumes of driven voxels follow the planted concept pattern; control ones do not."""
    mask, atlas = _roi_of_voxel(ds)
    truth, meta = load_arrays(ds / "ground_truth" / "sub-02_task-concepts_desc-signal.safetensors")
    assert meta["stimuli"] == CONCEPTS and set(np.unique(truth["roi"])) == {1, 2}
    func = ds / "sub-02" / "func"
    data = np.asarray(nib.load(func / "sub-02_task-concepts_run-1_space-MNI152_desc-trials_bold.nii.gz").dataobj)
    events = read_table(func / "sub-02_task-concepts_run-1_events.tsv")
    rows = [CONCEPTS.index(c) for c in events["concept"]]
    driven = data[tuple(truth["ijk"].T)].T  # (n_trials, n_driven)
    r = _corr_columns(driven, truth["signal"][rows])
    assert r.mean() > 0.5  # expected sqrt(snr / (1 + snr)) ~ 0.71
    control = data[atlas == 3].T
    r_null = _corr_columns(control, truth["signal"][rows][:, : control.shape[1]])
    assert abs(r_null.mean()) < 0.1


def test_dataset_is_byte_deterministic(ds, generators, tmp_path):
    again = make_demo_dataset(tmp_path / "again", generators=generators, seed=7, **DS_KW)
    assert _hashes(again) == _hashes(ds)
    one = make_demo_dataset(
        tmp_path / "one", generators=generators, seed=7, **{**DS_KW, "n_subjects": 1}
    )
    assert all(_hashes(ds)[k] == v for k, v in _hashes(one).items() if "sub-01" in k)
    other = make_demo_dataset(
        tmp_path / "other", generators=generators, seed=8, **{**DS_KW, "n_subjects": 1}
    )
    name = "sub-01/func/sub-01_task-naturalistic_run-1_space-MNI152_desc-preproc_bold.nii.gz"
    assert _hashes(other)[name] != _hashes(ds)[name]


def test_dataset_errors(generators, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"'generators' must map some of the ROIs \['auditory', 'language', 'visual'\].*got \['control'\]",
    ):
        make_demo_dataset(tmp_path, generators={"control": generators["language"]})
    bad_layer = {"language": {**generators["language"], "layer": 5}}
    with pytest.raises(
        ValueError,
        match=r"lm_concepts.safetensors' has no array 'layer-05'; it has \['layer-00', 'layer-01'\]",
    ):
        make_demo_dataset(tmp_path, generators=bad_layer)
    swapped = {
        "language": {**generators["language"], "concepts": generators["language"]["naturalistic"]}
    }
    with pytest.raises(ValueError, match=r"must have metadata task 'concepts'; got 'naturalistic'"):
        make_demo_dataset(tmp_path, generators=swapped)
    with pytest.raises(
        ValueError, match=r"'n_contexts' must be a multiple of n_concept_runs \(4\); got 6"
    ):
        make_demo_dataset(tmp_path, generators=generators, n_concept_runs=4, n_contexts=6)
    with pytest.raises(ValueError, match=r"'ar1_phi' must be a number in \[0, 1\); got 1.0"):
        make_demo_dataset(tmp_path, generators=generators, ar1_phi=1.0)


def test_generators_must_share_concepts(generators, tmp_path):
    arrays, meta = load_arrays(generators["visual"]["concepts"])
    meta["stimuli"] = [*meta["stimuli"][:-1], "zebra"]
    save_arrays(tmp_path / "odd.safetensors", arrays, meta)
    odd = {
        **generators,
        "visual": {**generators["visual"], "concepts": tmp_path / "odd.safetensors"},
    }
    with pytest.raises(
        ValueError, match=r"generators 'language' and 'visual' must describe the same stimuli"
    ):
        make_demo_dataset(tmp_path / "ds", generators=odd)
    assert not (tmp_path / "ds").exists()  # validated before anything is written


def test_only_the_tasks_given_are_simulated(generators, tmp_path):
    natural_only = {
        roi: {"naturalistic": g["naturalistic"], "layer": g["layer"]}
        for roi, g in generators.items()
    }
    ds = make_demo_dataset(
        tmp_path / "ds", generators=natural_only, seed=7, **{**DS_KW, "n_subjects": 1}
    )
    assert not list(ds.rglob("*task-concepts*"))
    assert len(list(ds.rglob("sub-01_task-naturalistic_run-*_desc-preproc_bold.nii.gz"))) == 2
    assert read_json(ds / "ground_truth" / "ground_truth.json")["tasks"] == ["naturalistic"]
    with pytest.raises(
        ValueError, match=r"generators\['language'\] must be a dict with 'layer' \(int\) and paths"
    ):
        make_demo_dataset(
            tmp_path / "bad",
            generators={"language": {"concepts": generators["language"]["concepts"]}},
        )
