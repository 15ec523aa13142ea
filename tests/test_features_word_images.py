"""Condition "wordpicture" (paper 000's picture input): the concept word with each of the
concept's images, features averaged over the images."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from brainalign.features import ModelSpec, load_extractor
from brainalign.features.cache import stimulus_checksum
from brainalign.features.conditions import resolve_streams, uses_images
from brainalign.features.extract import (
    concept_images,
    extract_concept_features,
    extract_naturalistic_features,
)
from tests._features_helpers import IMAGES, tiny_joint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def multi(stim, tmp_path_factory):
    """The stimulus folder with an ``images`` column: 3, 1, 2, empty (-> image), 2 images."""
    root = tmp_path_factory.mktemp("multi") / "stimuli"
    shutil.copytree(stim, root)
    rng = np.random.default_rng(5)
    for k in range(4):
        pixels = rng.integers(0, 256, size=(30 + 3 * k, 36, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"extra{k}.png")
    concepts = pd.read_csv(root / "concepts.tsv", sep="\t")
    concepts["images"] = [
        "images/dog.png;images/extra0.png; images/extra1.png",
        "images/extra2.png",
        "images/unbelievably.png;images/extra3.png",
        None,
        "images/extra1.png;images/saxophone.png",
    ]
    concepts.to_csv(root / "concepts.tsv", sep="\t", index=False)
    return root


@pytest.fixture(scope="module")
def clip():
    spec = ModelSpec.from_config("clip", {"extractor": "clip", "source": "tiny"}, seed=1)
    return load_extractor(spec)


def lists(multi):
    return concept_images(pd.read_csv(multi / "concepts.tsv", sep="\t"))


def load(multi, paths):
    return [Image.open(multi / p).convert("RGB") for p in paths]


def test_images_column_is_read_with_fallback_to_image(multi, stim):
    assert [len(x) for x in lists(multi)] == [3, 1, 2, 1, 2]
    assert lists(multi)[0][2] == "images/extra1.png" and lists(multi)[3] == ["images/kiwi.png"]
    assert concept_images(pd.read_csv(stim / "concepts.tsv", sep="\t"))[1] == ["images/apple.png"]
    assert resolve_streams("wordpicture") == ("word", "images")
    assert resolve_streams("wordpicture", joint=True) == ("word+images",)
    assert uses_images("wordpicture")


def test_two_tower_features_are_the_mean_over_images_of_word_and_image(clip, multi):
    embeds = clip.n_layers
    arrays, meta = extract_concept_features(clip, multi, "wordpicture", [1, embeds])
    words = list(IMAGES)
    text = clip.encode_text(words, [(0, len(w)) for w in words], [1, embeds])
    for layer in (1, embeds):
        per_image = [
            clip.encode_images(load(multi, paths), [layer])[layer].astype(np.float64)
            for paths in lists(multi)
        ]
        if layer == embeds:  # paper 000: word + image embedding, averaged over the images
            expected = [np.mean(t + imgs, axis=0) for t, imgs in zip(text[layer], per_image)]
        else:  # [word, image_k] concatenated, averaged over k
            expected = [
                np.mean([np.concatenate([t, img]) for img in imgs], axis=0)
                for t, imgs in zip(text[layer], per_image)
            ]
        np.testing.assert_allclose(arrays[f"layer-{layer:02d}"], np.stack(expected), atol=3e-6)
    assert meta["streams"] == ["word", "images"]
    single, _ = extract_concept_features(clip, multi, "image", [embeds])
    one_image = text[embeds][0] + single[f"layer-{embeds:02d}"][0]  # dog.png only
    assert not np.allclose(arrays[f"layer-{embeds:02d}"][0], one_image, atol=1e-3)


def test_joint_model_encodes_each_word_image_pair_and_averages(multi):
    model = tiny_joint("visualbert")
    arrays, meta = extract_concept_features(model, multi, "wordpicture", [0, 2])
    assert meta["streams"] == ["word+images"]
    for c, (word, paths) in enumerate(zip(IMAGES, lists(multi), strict=True)):
        pairs = model.encode_text_image(
            [word] * len(paths), [[(0, len(word))]] * len(paths), load(multi, paths), [0, 2]
        )
        for layer in (0, 2):
            expected = pairs[layer].astype(np.float64).mean(axis=0)
            np.testing.assert_allclose(arrays[f"layer-{layer:02d}"][c], expected, atol=3e-6)
    differs = [not np.allclose(pairs[2][0], pairs[2][k], atol=1e-4) for k in range(1, len(paths))]
    assert all(differs)  # the image changes the pair's features, so the mean is not trivial


def test_naturalistic_wordpicture_is_each_word_alone_with_its_frame(clip, multi):
    arrays, meta = extract_naturalistic_features(clip, multi, "wordpicture", [1])
    word, _ = extract_naturalistic_features(clip, multi, "word", [1])
    vision, _ = extract_naturalistic_features(clip, multi, "vision", [1])
    expected = np.concatenate([word["layer-01"], vision["layer-01"]], axis=1)
    np.testing.assert_array_equal(arrays["layer-01"], expected)
    assert meta["streams"] == ["word", "images"]


def test_stimulus_checksum_covers_the_images_column(multi, tmp_path):
    root = tmp_path / "stimuli"
    shutil.copytree(multi, root)
    before = stimulus_checksum(root, "concepts", images=True)
    Image.new("RGB", (30, 36), (9, 9, 9)).save(root / "images" / "extra3.png")
    assert stimulus_checksum(root, "concepts", images=True) != before
