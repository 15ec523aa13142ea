"""Conditions: which streams each kind of model reads, and what each stream feeds it.

A fake joint model (numpy only) that requires an image records what it is given,
so the tests see that text-only conditions feed it each concept's noise image, and
that joint streams pair each transcript word with the frame on screen at its time.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from brainalign import config as config_module
from brainalign.features import (
    CONDITIONS,
    ModelSpec,
    concurrent_frames,
    condition_modalities,
    extract_concept_features,
    extract_naturalistic_features,
    lanczos_resample,
    load_extractor,
    resolve_streams,
    supported_conditions,
    uses_noise,
)
from brainalign.features import registry
from brainalign.features.conditions import noise_table_input
from tests._features_helpers import IMAGES, N_TRS, TR


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mean_pixel(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float64).mean(axis=(0, 1))


class FakeJoint:
    """A joint model that requires an image: row = [word length, word start, mean RGB]."""

    modalities = frozenset({"text", "image"})
    requires_image = True
    joint = True
    n_layers = 2
    pseudo_layers: dict = {}

    def __init__(self):
        self.spec = ModelSpec.from_config("fake", {"extractor": "clip", "source": "tiny"}, seed=0)

    def encode_text_spans(self, sentences, spans, layers):
        raise AssertionError("a model that requires an image never reads text alone")

    def encode_text_image(self, sentences, spans, images, layers):
        rows = [
            [end - start, start, *mean_pixel(image)]
            for sentence_spans, image in zip(spans, images, strict=True)
            for start, end in sentence_spans
        ]
        return {layer: np.array(rows, np.float32).reshape(-1, 5) + layer for layer in layers}

    def encode_images(self, images, layers):
        rows = [[0.0, 0.0, *mean_pixel(image)] for image in images]
        return {layer: np.array(rows, np.float32).reshape(-1, 5) + layer for layer in layers}


# --- stream resolution ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "plain", "needs_image", "joint"),
    [
        ("sentence", ("text",), ("text", "noise"), ("text+noise",)),
        ("picture", ("text", "image"), ("text", "image"), ("text+image",)),
        ("noise", ("text", "noise"), ("text", "noise"), ("text+noise",)),
        ("image", ("image",), ("image",), ("image",)),
        ("word", ("word",), ("word", "noise"), ("word+noise",)),
        ("language", ("text",), ("text", "noise"), ("text+noise",)),
        ("vision", ("image",), ("image",), ("image",)),
        ("joint", ("text", "image"), ("text", "image"), ("text+image",)),
    ],
)
def test_streams_per_kind_of_model(condition, plain, needs_image, joint):
    assert resolve_streams(condition) == plain
    assert resolve_streams(condition, requires_image=True) == needs_image
    assert resolve_streams(condition, requires_image=True, joint=True) == joint
    assert uses_noise(condition, True) == ("noise" in "".join(joint))


def test_unknown_condition_is_an_error():
    with pytest.raises(ValueError, match=r"unknown condition 'video'; known: sentence, picture"):
        resolve_streams("video")


def test_config_condition_table_agrees_with_the_library():
    assert set(config_module.CONDITION_MODALITIES) == set(CONDITIONS)
    for condition in CONDITIONS:
        assert config_module.CONDITION_MODALITIES[condition] == condition_modalities(condition)


def test_config_support_considers_requires_image(monkeypatch):
    fake = {
        "needy_text": registry.ExtractorInfo("m", frozenset({"text"}), requires_image=True),
        "needy_joint": registry.ExtractorInfo("m", frozenset({"text", "image"}), True),
    }
    monkeypatch.setattr(registry, "BUILTIN_EXTRACTORS", {**registry.BUILTIN_EXTRACTORS, **fake})
    monkeypatch.setitem(config_module.EXTRACTOR_MODALITIES, "needy_text", frozenset({"text"}))
    monkeypatch.setitem(
        config_module.EXTRACTOR_MODALITIES, "needy_joint", frozenset({"text", "image"})
    )
    conditions = list(CONDITIONS)
    visual_language = [c for c in conditions if c != "audio"]
    assert config_module._supported({"extractor": "needy_text"}, conditions) == []
    assert config_module._supported({"extractor": "needy_joint"}, conditions) == visual_language
    assert config_module._supported({"extractor": "audio_encoder"}, conditions) == ["audio"]
    assert config_module._supported({"extractor": "text_encoder"}, conditions) == [
        "sentence",
        "word",
        "language",
    ]
    table = "results/stimuli/noise/noise_images.tsv"
    models = {"a": {"extractor": "needy_joint"}, "b": {"extractor": "clip"}}
    get = noise_table_input(models, table)
    assert get(SimpleNamespace(model="a", condition="sentence")) == [table]
    assert get(SimpleNamespace(model="b", condition="sentence")) == []
    assert get(SimpleNamespace(model="b", condition="noise")) == [table]


# --- a model that requires an image gets the noise image --------------------------------------


def test_text_only_conditions_feed_the_noise_image(stim, noise_dir):
    fake = FakeJoint()
    assert supported_conditions(fake) == [c for c in CONDITIONS if c != "audio"]
    sentences = pd.read_csv(stim / "sentences.tsv", sep="\t")
    for condition, folder in (("sentence", noise_dir), ("picture", stim), ("word", noise_dir)):
        arrays, meta = extract_concept_features(fake, stim, condition, [1], noise_dir)
        got = arrays["layer-01"] - 1
        for row, concept in enumerate(IMAGES):
            image = Image.open(folder / "images" / f"{concept}.png")
            np.testing.assert_allclose(got[row, 2:], mean_pixel(image), rtol=1e-6)
            if condition == "word":
                assert got[row, :2].tolist() == [len(concept), 0]
            else:  # the word's length, averaged over the concept's contexts
                own = sentences[sentences["concept"] == concept]
                expected = (own["char_end"] - own["char_start"]).mean()
                np.testing.assert_allclose(got[row, 0], expected, rtol=1e-6)
        assert meta["streams"] == [
            {"sentence": "text+noise", "picture": "text+image"}.get(condition, "word+noise")
        ]
        assert ("noise_table_sha256" in meta) == (condition != "picture")
        # a text-only condition is no true ablation for this model: the stand-in is recorded
        assert ("stand_in" in meta) == (condition != "picture")
    with pytest.raises(ValueError, match=r"condition 'noise' needs 'noise_dir'"):
        extract_concept_features(fake, stim, "sentence", [1])


def test_joint_stream_pairs_each_word_with_its_concurrent_frame(stim, noise_dir):
    fake = FakeJoint()
    words = pd.read_csv(stim / "naturalistic" / "words.tsv", sep="\t")
    frames = pd.read_csv(stim / "naturalistic" / "frames.tsv", sep="\t")
    shown = concurrent_frames(words, frames)
    for condition, folder in (("joint", stim), ("language", noise_dir)):
        arrays, meta = extract_naturalistic_features(fake, stim, condition, [0], noise_dir)
        grid = (np.arange(N_TRS) + 0.5) * TR
        for run, offset in ((1, 0), (2, N_TRS)):
            rows = np.flatnonzero(words["run"] == run)
            events = np.array(
                [
                    [
                        words["char_end"][i] - words["char_start"][i],
                        words["char_start"][i],
                        *mean_pixel(Image.open(folder / frames["image"][shown[i]])),
                    ]
                    for i in rows
                ]
            )
            times = words["onset"][rows] + words["duration"][rows] / 2
            expected = lanczos_resample(events, times.to_numpy(), grid)
            np.testing.assert_allclose(
                arrays["layer-00"][offset : offset + N_TRS], expected, rtol=1e-5, atol=1e-3
            )
        assert meta["streams"] == [f"text+{'image' if condition == 'joint' else 'noise'}"]


def test_concurrent_frames_by_time_then_nearest():
    frames = pd.DataFrame(
        {
            "run": [1, 1, 1, 1, 2],
            "onset": [0.0, 8.0, 16.0, 12.0, 0.0],
            "duration": [8.0, 8.0, 8.0, 2.0, 5.0],
        }
    )
    words = pd.DataFrame(
        {
            "run": [1, 1, 1, 1, 2, 2],
            "onset": [1.0, 8.0, 12.5, 40.0, 1.0, 9.0],
            "duration": [0.3, 0.2, 0.4, 0.2, 0.2, 0.2],
        }
    )
    # 8.1 s: the second frame; 12.7 s: two frames cover it, the later-starting wins;
    # 40.1 s: after every frame, the nearest middle (the third frame, 20 s)
    np.testing.assert_array_equal(concurrent_frames(words, frames), [0, 1, 3, 2, 4, 4])
    with pytest.raises(ValueError, match=r"run 3 has words but no frames in frames.tsv"):
        concurrent_frames(pd.concat([words, words.assign(run=3)]), frames)


# --- the word condition and the video conditions ----------------------------------------------


@pytest.fixture(scope="module")
def bert():
    return load_extractor(
        ModelSpec.from_config("b", {"extractor": "text_encoder", "source": "tiny"}, seed=0)
    )


@pytest.fixture(scope="module")
def clip():
    return load_extractor(
        ModelSpec.from_config("c", {"extractor": "clip", "source": "tiny"}, seed=0)
    )


def test_word_condition_encodes_the_word_alone(stim, bert):
    arrays, meta = extract_concept_features(bert, stim, "word", [1, 2])
    direct = bert.encode_text(list(IMAGES), [(0, len(c)) for c in IMAGES], [1, 2])
    np.testing.assert_array_equal(arrays["layer-02"], direct[2])
    sentence, _ = extract_concept_features(bert, stim, "sentence", [2])
    assert not np.allclose(arrays["layer-02"], sentence["layer-02"], atol=1e-3)
    assert meta["streams"] == ["word"]
    words = pd.read_csv(stim / "naturalistic" / "words.tsv", sep="\t")
    natural, _ = extract_naturalistic_features(bert, stim, "word", [1])
    per_word = bert.encode_text(list(words["word"]), [(0, len(w)) for w in words["word"]], [1])[1]
    grid = (np.arange(N_TRS) + 0.5) * TR
    rows = np.flatnonzero(words["run"] == 2)
    times = (words["onset"] + words["duration"] / 2).to_numpy()[rows]
    expected = lanczos_resample(per_word[rows].astype(np.float64), times, grid)
    np.testing.assert_allclose(natural["layer-01"][N_TRS:], expected, atol=1e-5)


@pytest.mark.parametrize(
    ("video", "concept"), [("language", "sentence"), ("vision", "image"), ("joint", "picture")]
)
def test_video_conditions_read_the_streams_of_words_and_frames(video, concept, stim, clip):
    a, meta = extract_naturalistic_features(clip, stim, video, [1, 3])
    b, _ = extract_naturalistic_features(clip, stim, concept, [1, 3])
    assert all(np.array_equal(a[k], b[k]) for k in b)
    assert meta["condition"] == video and meta["streams"] == list(CONDITIONS[video])
    widths = {"language": 32, "vision": 24, "joint": 56}
    assert a["layer-01"].shape == (2 * N_TRS, widths[video])
    assert a["layer-03"].shape == (2 * N_TRS, 16)  # the summed embeds
