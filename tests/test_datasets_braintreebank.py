"""The Brain TreeBank reader on a tiny release written in the public layout (h5py, pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.datasets.braintreebank import (
    COORD_SPACE,
    find_trial,
    movie_to_samples,
    read_channels,
    read_signals,
    release_files,
    stimulus_tables,
)
from brainalign.datasets.registry import DatasetError
from brainalign.datasets.units import check_units

from ._braintreebank_files import (
    CLEAN,
    LABELS,
    N_SAMPLES,
    SFREQ,
    WORDS,
    movie_sample,
    signals,
    write_release,
)


@pytest.fixture
def release(tmp_path):
    return write_release(tmp_path / "btb")


def test_files_found_at_root_or_in_all_subject_data(tmp_path):
    root = write_release(tmp_path / "b", subdir="all_subject_data")
    assert release_files(root, "3", 1)["h5"] == str(root / "all_subject_data/sub_3_trial001.h5")
    assert release_files(tmp_path, "3", 1)["h5"] == str(tmp_path / "sub_3_trial001.h5")
    with pytest.raises(DatasetError, match="release's subject numbers"):
        release_files(root, "sub3", 0)


def test_find_trial_by_movie_without_punctuation(release):
    assert find_trial(release, "3", "lotr1") == 1
    assert find_trial(release, "3", "cars-2") == 0
    with pytest.raises(DatasetError, match=r"0 trials of movie 'venom'.*0: cars-2, 1: lotr-1"):
        find_trial(release, "3", "venom")


def test_channels_map_cleaned_labels_to_h5_keys(release):
    files = release_files(release, "3", 0)
    table = read_channels(files, "3")
    assert "DC10" not in table["name"].tolist()  # trigger channel
    assert table["name"].tolist() == [n for n in CLEAN if n != "DC10"]
    assert table["key"].tolist() == [f"electrode_{CLEAN.index(n)}" for n in table["name"]]
    assert table.set_index("name").loc["LB3", "corrupted"]
    la2 = table.set_index("name").loc["LA2"]  # '*' in both the labels and depth-wm.csv
    assert (la2["x"], la2["y"], la2["z"], la2["region"]) == (101, 118, 93, "ctx-lh-superiortemporal")
    assert np.isnan(table.set_index("name").loc["LC1", "x"])  # not localized
    data = read_signals(files["h5"], table["key"].tolist())
    # channel i of the h5 carries an offset of i mV: the rows follow the release's order
    expected = [LABELS.index(lab) * 1e-3 for lab in LABELS if not lab.startswith("DC")]
    np.testing.assert_allclose(data.mean(axis=1), expected, atol=1e-6)
    with pytest.raises(DatasetError, match="lacks data/electrode_99"):
        read_signals(files["h5"], ["electrode_99"])


def test_movie_times_go_through_the_drifting_triggers(release):
    timings = pd.read_csv(release_files(release, "3", 0)["timings"])
    times = np.array([0.0, 1.5, 7.25, 28.9, 29.0, 35.0])
    samples, valid = movie_to_samples(times, timings)
    assert valid.tolist() == [True, True, True, True, False, False]  # past the last trigger
    truth = movie_sample(times[valid])
    # within the drift over one trigger interval (0.8 sample) plus rounding
    assert np.abs(samples[valid] - truth).max() <= 2.0
    naive = 1500 + times[valid] * 2048  # the first trigger and the nominal rate only
    assert np.abs(naive - truth).max() > 20
    # neuroprobe's rule, written out: the first trigger at or after each time
    for t, s in zip(times[valid], samples[valid]):
        row = timings[timings["movie_time"] >= t].iloc[0]
        assert s == np.round(row["index"] + (t - row["movie_time"]) * 2048)


def test_stimulus_tables_words_and_char_spans(release):
    words, frames = stimulus_tables(release, "3", 1)
    kept = WORDS[WORDS["text"].notna()].reset_index(drop=True)
    assert words.columns.tolist() == ["run", "onset", "duration", "word", "sentence",
                                      "char_start", "char_end"]
    assert words["word"].tolist() == kept["text"].tolist()
    np.testing.assert_allclose(words["onset"], kept["start"])
    np.testing.assert_allclose(words["duration"], kept["end"] - kept["start"])
    spans = [s[a:b] for s, a, b in zip(words["sentence"], words["char_start"], words["char_end"])]
    assert spans == words["word"].tolist()
    assert words.loc[words["word"] == "na", "char_start"].item() == 3  # after 'gon'
    assert (words["run"] == 1).all()
    assert len(frames) == 0 and "scene_cut" in frames.columns


def _config(root, stimuli, kind="word_events"):
    dataset = {"format": "braintreebank", "root": str(root), "subjects": ["3"],
               "tasks": {"words": {"kind": kind, "bids_task": "cars2", "stimuli": str(stimuli)}},
               "rois": ["ctxlhsuperiortemporal", "LeftHippocampus"]}
    return dataset


def _stimuli(release, tmp_path):
    words, frames = stimulus_tables(release, "3", 0)
    folder = tmp_path / "stim" / "naturalistic"
    folder.mkdir(parents=True)
    words.to_csv(folder / "words.tsv", sep="\t", index=False)
    frames.to_csv(folder / "frames.tsv", sep="\t", index=False)
    return folder.parent


def test_reader_check_and_inputs(release, tmp_path):
    from brainalign.datasets.braintreebank import BrainTreebankReader

    stimuli = _stimuli(release, tmp_path)
    reader = BrainTreebankReader(_config(release, stimuli), str(stimuli))
    reader.check()
    inputs = reader.inputs("3", "words")
    assert inputs["h5"].endswith("sub_3_trial000.h5")
    assert inputs["events"] == str(stimuli / "naturalistic" / "words.tsv")
    (release / "subject_timings/sub_3_trial000_timings.csv").unlink()
    with pytest.raises(DatasetError, match=r"sub_3 task words: file '.*timings.csv' does not"):
        reader.check()


def _planted(release, tmp_path, reference):
    """Release whose LA1 and LA2 carry a 100 Hz burst 50-150 ms after each word onset."""
    words, _ = stimulus_tables(release, "3", 0)
    data = signals(seed=1)
    t = np.arange(int(0.1 * SFREQ)) / SFREQ
    for onset in words["onset"]:
        start = int(round(movie_sample(onset) + 0.05 * SFREQ))
        if start + t.size < N_SAMPLES and onset < 29:
            data[0, start:start + t.size] += 2e-4 * np.sin(2 * np.pi * 100 * t)
            data[1, start:start + t.size] += 2e-4 * np.sin(2 * np.pi * 100 * t + 1.0)
    write_release(release, data)
    stimuli = _stimuli(release, tmp_path)
    from brainalign.datasets.braintreebank import BrainTreebankReader

    reader = BrainTreebankReader(_config(release, stimuli), str(stimuli))
    params = {"ieeg": {"reference": reference, "band": [70, 150], "sfreq": 400,
                       "window": [0.0, 0.2], "bin": 0.05, "n_blocks": 2}}
    return reader.preprocess(reader.inputs("3", "words"), "3", "words", params), words


def test_preprocess_recovers_planted_responses(release, tmp_path):
    (arrays, meta), words = _planted(release, tmp_path, "none")
    check_units(arrays, meta)
    assert meta["kind"] == "epochs" and meta["alignment"] == "language"
    assert meta["space"] == meta["coord_space"] == COORD_SPACE
    # 'late' at 60 s is past the last trigger: left out, and recorded
    assert meta["events"] == [f"word-{k:05d}" for k in range(7)]
    assert meta["qc"]["events_dropped"] == ["word-00007"]
    truth = movie_sample(words["onset"].to_numpy()[:7]) / SFREQ
    np.testing.assert_allclose(meta["event_times"], truth, atol=2 / SFREQ)
    assert meta["qc"]["dropped_bad"] == ["LB3"]
    assert meta["channels"] == ["LA1", "LA2", "LA3", "LB1", "LB2", "LC1"]
    assert meta["regions"][0] == "ctxlhsuperiortemporal" and meta["regions"][-1] == ""
    assert arrays["group"].tolist() == [0, 0, 0, 0, 1, 1, 1]  # contiguous, in time order
    resp = arrays["responses"].reshape(7, 6, 4)  # events x channels x bins
    burst = resp[:, :2, 1:3].mean()  # LA1, LA2 at 50-150 ms
    assert burst > resp[:, 2:, :].mean() + 3.0 and burst > resp[:, :2, 0].mean() + 3.0
    rois = arrays["roi"].reshape(6, 4)[:, 0].tolist()
    assert rois == [1, 1, 1, 2, 2, 0]


def test_preprocess_bipolar_channels_at_midpoints(release, tmp_path):
    (arrays, meta), _ = _planted(release, tmp_path, "bipolar")
    assert meta["channels"] == ["LA1-LA2", "LA2-LA3", "LB1-LB2"]  # LB3 corrupted, LC1 alone
    xyz = arrays["xyz"][arrays["bin"] == 0]
    np.testing.assert_allclose(xyz[0], [100.5, 119.0, 91.5])
    assert meta["regions"] == ["ctxlhsuperiortemporal"] * 2 + ["LeftHippocampus"]


def test_scene_events_need_cuts(release, tmp_path):
    from brainalign.datasets.braintreebank import BrainTreebankReader

    stimuli = _stimuli(release, tmp_path)
    reader = BrainTreebankReader(_config(release, stimuli, "scene_events"), str(stimuli))
    reader.check()  # an empty frames.tsv is well-formed
    with pytest.raises(DatasetError, match="none of 0 events"):
        reader.preprocess(reader.inputs("3", "words"), "3", "words", {})
