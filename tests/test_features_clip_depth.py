"""Contrastive towers of unequal depth (CLIP ViT-L/14: 12 text, 24 vision blocks).

A layer indexes the text tower; the image stream reads the vision hidden state at the
same relative depth (brainalign.features.contrastive.relative_depth, shared with ALIGN).
References: transformers' own ``output_hidden_states`` of the vision tower, the pixels of
its PIL image processor, and a forward hook on the attention output projection.
"""

from __future__ import annotations

import logging
import shutil
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from brainalign.features import ModelSpec, extract_concept_features, load_extractor
from brainalign.features.contrastive import relative_depth
from tests._features_helpers import IMAGES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _clip_folder(folder, vision_layers):
    """A CLIP config (tiny widths, 2 text blocks, ``vision_layers`` vision blocks), its
    processor and the tiny WordPiece tokenizer, saved as a checkpoint folder."""
    from transformers import CLIPImageProcessor

    from brainalign.features.clip import tiny_clip_config
    from brainalign.features.extractors import tiny_tokenizer_path

    config = tiny_clip_config()
    config.vision_config.num_hidden_layers = vision_layers
    config.save_pretrained(folder)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(tiny_tokenizer_path() / name, folder / name)
    return folder


def _load(folder, **cfg):
    spec = ModelSpec.from_config(
        "deep",
        {"extractor": "clip", "source": "random", "id": str(folder), "device": "cpu", **cfg},
        seed=0,
    )
    return load_extractor(spec)


@pytest.fixture(scope="module")
def deep_folder(tmp_path_factory):
    return _clip_folder(tmp_path_factory.mktemp("deepclip"), vision_layers=4)


@pytest.fixture(scope="module")
def deep(deep_folder):
    return _load(deep_folder, attention_heads=True, batch_size=2)


def stimulus_images(stim):
    return [Image.open(stim / "images" / f"{c}.png").convert("RGB") for c in IMAGES]


def reference_vision_states(model, images):
    """Vision hidden states of transformers' CLIP on its PIL processor's pixels."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    pixels = torch.from_numpy(processor(images=images, return_tensors="np")["pixel_values"])
    with torch.no_grad():
        return model.vision_model(pixel_values=pixels, output_hidden_states=True).hidden_states


def test_relative_depth_rounds_halves_up_and_spans_both_stacks():
    for n_from, n_to in [(12, 24), (2, 4), (12, 55), (24, 12), (3, 3), (5, 7)]:
        mapped = [relative_depth(layer, n_from, n_to) for layer in range(n_from + 1)]
        exact = [Fraction(layer * n_to, n_from) for layer in range(n_from + 1)]
        assert mapped == [int(x + Fraction(1, 2)) for x in exact]  # floor(x + 1/2)
        assert mapped[0] == 0 and mapped[-1] == n_to
    assert [relative_depth(layer, 12, 24) for layer in range(13)] == list(range(0, 25, 2))
    with pytest.raises(ValueError, match=r"0 <= layer <= n_from .*got layer 3, n_from 2"):
        relative_depth(3, 2, 4)


def test_layers_follow_the_text_tower_and_map_to_twice_the_vision_depth(deep, caplog):
    assert deep.n_layers == 3 and deep.pseudo_layers == {3: "embeds"}
    assert deep.vision_layers == {0: 0, 1: 2, 2: 4}
    assert deep.feature_metadata([0, 2, 3]) == {"vision_layers": {"0": 0, "2": 4}}
    assert deep.head_layers("image") == [1, 2] == deep.head_layers("text")
    with caplog.at_level(logging.INFO, logger="brainalign.features.contrastive"):
        _load(deep.spec.id)
    assert "2 text and 4 vision blocks" in caplog.text and "{0: 0, 1: 2, 2: 4}" in caplog.text


def test_image_features_at_layer_l_are_the_vision_hidden_state_at_2l(deep, stim):
    images = stimulus_images(stim)
    states = reference_vision_states(deep.model, images)
    assert len(states) == 5  # the vision tower really is twice as deep
    pooled = deep.encode_images(images, [0, 1, 2, 3])
    for layer in (0, 1, 2):
        hidden = states[2 * layer]
        # CLS token; at hidden state 0 (the same CLS for every image) the mean over tokens
        expected = (hidden.double().mean(dim=1) if layer == 0 else hidden[:, 0]).numpy()
        np.testing.assert_allclose(pooled[layer], expected, atol=1e-5)
        assert not np.allclose(pooled[layer], states[layer][:, 0].numpy(), atol=1e-3) or layer == 0
    # the embeds pseudo-layer: CLIP's own normalised image embedding
    with torch.no_grad():
        pixels = torch.from_numpy(deep.preprocessing(images))
        embeds = deep.model.get_image_features(pixel_values=pixels).pooler_output
    embeds = embeds / embeds.norm(dim=-1, keepdim=True)
    np.testing.assert_allclose(pooled[3], embeds.numpy(), atol=1e-5)


def test_image_heads_at_layer_l_come_from_vision_block_2l(deep, stim):
    images = stimulus_images(stim)[:2]
    blocks = deep.model.vision_model.encoder.layers
    captured = {}
    hooks = [
        blocks[b - 1].self_attn.out_proj.register_forward_hook(
            lambda m, args, out, b=b: captured.__setitem__(b, args[0][:, 0].numpy().copy())
        )
        for b in (2, 4)
    ]
    try:
        reference_vision_states(deep.model, images)
    finally:
        for hook in hooks:
            hook.remove()
    out = deep.encode_images(images, [1, 2])
    for layer in (1, 2):
        assert out[f"heads-{layer:02d}"].shape == (2, 2, 12)  # 2 heads of width 24 / 2
        np.testing.assert_allclose(
            out[f"heads-{layer:02d}"].reshape(2, -1), captured[2 * layer], atol=1e-5
        )


def test_picture_condition_concatenates_text_l_with_vision_2l(deep, stim):
    arrays, meta = extract_concept_features(deep, stim, "picture", layers=[1, 3])
    text, _ = extract_concept_features(deep, stim, "sentence", layers=[1, 3])
    image, _ = extract_concept_features(deep, stim, "image", layers=[1, 3])
    np.testing.assert_array_equal(
        arrays["layer-01"], np.concatenate([text["layer-01"], image["layer-01"]], axis=1)
    )
    assert arrays["layer-01"].shape == (5, 32 + 24) and arrays["layer-03"].shape == (5, 16)
    states = reference_vision_states(deep.model, stimulus_images(stim))
    np.testing.assert_allclose(image["layer-01"], states[2][:, 0].numpy(), atol=1e-5)
    assert meta["pseudo_layers"] == {"3": "embeds"}
    assert meta["vision_layers"] == {"1": 2}  # the feature file says which vision state it read


def test_equal_depth_pairs_each_layer_with_itself(tmp_path, stim):
    clip = _load(_clip_folder(tmp_path, vision_layers=2))
    assert clip.vision_layers == {0: 0, 1: 1, 2: 2}
    images = stimulus_images(stim)
    states = reference_vision_states(clip.model, images)
    pooled = clip.encode_images(images, [1, 2])
    for layer in (1, 2):
        np.testing.assert_allclose(pooled[layer], states[layer][:, 0].numpy(), atol=1e-5)


def test_a_shallower_vision_tower_is_read_at_its_matching_depth(tmp_path, stim):
    # 2 text blocks, 1 vision block: layer 1 -> round(0.5) = 1 (halves up), layer 2 -> 1
    clip = _load(_clip_folder(tmp_path, vision_layers=1), attention_heads=True)
    assert clip.vision_layers == {0: 0, 1: 1, 2: 1}
    images = stimulus_images(stim)[:2]
    pooled = clip.encode_images(images, [1, 2])
    np.testing.assert_array_equal(pooled[1], pooled[2])
    np.testing.assert_array_equal(pooled["heads-01"], pooled["heads-02"])
