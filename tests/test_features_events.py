"""Event-locked features (intracranial tasks): one row per word or scene cut, no resampling."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from brainalign.features import extract_event_features
from brainalign.features.extract import scene_cut_sentences
from tests.test_features import tiny

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clip():
    return tiny("clip", "clip")


@pytest.fixture
def cut_stim(stim, tmp_path):
    """The tiny stimuli with scene cuts marked: the 1st and 2nd frames of run 1, 2nd of run 2."""
    out = shutil.copytree(stim, tmp_path / "stim")
    frames = pd.read_csv(out / "naturalistic" / "frames.tsv", sep="\t")
    frames["scene_cut"] = [1, 1, 0, 0, 1]
    frames.to_csv(out / "naturalistic" / "frames.tsv", sep="\t", index=False)
    return out


def test_word_events_are_the_words_each_with_its_concurrent_frame(cut_stim, clip):
    arrays, meta = extract_event_features(clip, cut_stim, "picture", layers=[1])
    words = pd.read_csv(cut_stim / "naturalistic" / "words.tsv", sep="\t")
    frames = pd.read_csv(cut_stim / "naturalistic" / "frames.tsv", sep="\t")
    assert meta["stimuli"] == [f"word-{k:05d}" for k in range(len(words))]
    assert meta["alignment"] == "language" and arrays["layer-01"].shape[0] == len(words)
    for k in (0, len(words) - 1):  # first word of run 1, last of run 2
        row = words.iloc[k]
        t = row.onset + row.duration / 2
        on = frames[(frames.run == row.run) & (frames.onset <= t) & (t < frames.onset + frames.duration)]
        text = clip.encode_text([row.sentence], [(row.char_start, row.char_end)], [1])[1]
        image = clip.encode_images([Image.open(cut_stim / on.image.iloc[-1])], [1])[1]
        np.testing.assert_allclose(arrays["layer-01"][k], np.concatenate([text[0], image[0]]), atol=1e-5)


def test_scene_events_are_the_cuts_with_the_sentence_before_them(cut_stim, clip):
    arrays, meta = extract_event_features(clip, cut_stim, "picture", layers=[2], alignment="vision")
    words = pd.read_csv(cut_stim / "naturalistic" / "words.tsv", sep="\t")
    frames = pd.read_csv(cut_stim / "naturalistic" / "frames.tsv", sep="\t")
    assert meta["stimuli"] == ["cut-00000", "cut-00001", "cut-00004"]
    owner = scene_cut_sentences(words, frames.iloc[[0, 1, 4]])
    # cut at 0 s precedes every word of run 1 -> the run's first sentence; cut at 8 s and
    # run 2's cut at 12 s -> the last word of their run starting before them
    run1, run2 = np.flatnonzero(words.run == 1), np.flatnonzero(words.run == 2)
    assert owner[0] == run1[0] and owner[1] == run1[words.onset[run1] <= 8.0][-1]
    assert owner[2] == run2[words.onset[run2] <= 12.0][-1]
    assert words.sentence[owner[0]] != words.sentence[owner[1]]
    for k, row in zip(range(3), [0, 1, 4]):
        sentence = words.sentence[owner[k]]
        text = clip.encode_text([sentence], [(0, len(sentence))], [2])[2]
        image = clip.encode_images([Image.open(cut_stim / frames.image[row])], [2])[2]
        np.testing.assert_allclose(arrays["layer-02"][k], np.concatenate([text[0], image[0]]), atol=1e-5)


def test_frames_without_scene_cuts_are_an_error(stim, clip):
    with pytest.raises(ValueError, match="frames.tsv' must have columns .*scene_cut"):
        extract_event_features(clip, stim, "image", layers=[1], alignment="vision")
