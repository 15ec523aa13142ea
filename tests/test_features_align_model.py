"""The "align" extractor (ALIGN) against transformers' own AlignModel outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from brainalign.features import ModelSpec, extract_concept_features, load_extractor
from brainalign.features.registry import extractor_info
from tests._features_helpers import IMAGES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def align():
    spec = ModelSpec.from_config(
        "align", {"extractor": "align", "source": "tiny", "batch_size": 2}, seed=3
    )
    return load_extractor(spec)


def stimulus_images(stim):
    return [Image.open(stim / "images" / f"{c}.png").convert("RGB") for c in IMAGES]


def test_layers_pair_text_blocks_with_vision_blocks_at_the_same_relative_depth(align):
    # tiny: 2 BERT blocks (3 hidden states), stem + 4 EfficientNet blocks (5 hidden states)
    assert align.n_layers == 3 and align.pseudo_layers == {3: "embeds"}
    assert [align.vision_index(layer) for layer in range(3)] == [0, 2, 4]
    assert [align.image_width(layer) for layer in range(4)] == [32, 16, 24, 24]
    assert extractor_info("align").modalities == frozenset({"text", "image"})


def test_image_features_are_spatial_means_of_output_hidden_states(align, stim):
    images = stimulus_images(stim)
    ours = align.encode_images(images, [0, 1, 2, 3])
    pixels = torch.from_numpy(align.preprocessing(images))
    assert pixels.shape == (len(images), 3, 32, 32)
    np.testing.assert_allclose(pixels.numpy().min(), -1.0, atol=0.02)  # [-1, 1], no normalising
    with torch.no_grad():
        out = align.model.vision_model(pixel_values=pixels, output_hidden_states=True)
        reference = align.model.get_image_features(pixel_values=pixels).pooler_output.double()
    for layer, state in zip(range(3), (0, 2, 4), strict=True):
        expected = out.hidden_states[state].double().mean(dim=(2, 3)).numpy()
        np.testing.assert_allclose(ours[layer], expected, rtol=1e-5, atol=1e-6)
    reference = (reference / reference.norm(dim=-1, keepdim=True)).numpy()
    np.testing.assert_allclose(ours[3], reference, atol=2e-6)


def test_text_features_match_output_hidden_states_and_get_text_features(align):
    sentences = ["The dog chased the cat.", "A kiwi"]
    spans = [(4, 7), (2, 6)]
    ours = align.encode_text(sentences, spans, [0, 1, 2, 3])
    for i, (sentence, (start, end)) in enumerate(zip(sentences, spans, strict=True)):
        enc = align.tokenizer(sentence, return_tensors="pt", return_offsets_mapping=True)
        offsets = enc.pop("offset_mapping")[0]
        word = (offsets[:, 0] < end) & (offsets[:, 1] > start) & (offsets[:, 1] > offsets[:, 0])
        with torch.no_grad():
            states = align.model.text_model(**enc, output_hidden_states=True).hidden_states
            embeds = align.model.get_text_features(**enc).pooler_output[0].double()
        for layer in range(3):
            expected = states[layer][0][word].double().mean(dim=0).numpy()
            np.testing.assert_allclose(ours[layer][i], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours[3][i], (embeds / embeds.norm()).numpy(), atol=2e-6)


def test_picture_embeds_are_the_forward_passs_summed_embeddings(align, stim):
    key = f"layer-{align.n_layers:02d}"
    arrays, meta = extract_concept_features(align, stim, "picture", [0, align.n_layers])
    sentences = pd.read_csv(stim / "sentences.tsv", sep="\t")
    pixels = torch.from_numpy(align.preprocessing(stimulus_images(stim)))
    expected = []
    for k, concept in enumerate(IMAGES):
        rows = sentences[sentences["concept"] == concept]["sentence"].tolist()
        enc = align.tokenizer(rows, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = align.model(**enc, pixel_values=pixels[k : k + 1])
        expected.append(out.text_embeds.double().mean(0) + out.image_embeds.double()[0])
    np.testing.assert_allclose(arrays[key], torch.stack(expected).numpy(), atol=4e-6)
    assert arrays["layer-00"].shape == (len(IMAGES), 32 + 32)  # text width + stem channels
    assert meta["pseudo_layers"] == {"3": "embeds"}


def test_attention_heads_are_refused_for_the_efficientnet_tower():
    spec = ModelSpec.from_config(
        "align", {"extractor": "align", "source": "tiny", "attention_heads": True}, seed=0
    )
    with pytest.raises(ValueError, match="EfficientNet.*no attention heads"):
        load_extractor(spec)
