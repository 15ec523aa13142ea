"""The "llava_next" extractor (LLaVA-NeXT, any-resolution tiling) against transformers.

References: ``LlavaNextProcessor`` built by the test on the extractor's tokenizer and
image processor (its prompt expansion and image-token count), the model's own
``get_image_features`` (the packed features the image tokens are filled with) and its
``output_hidden_states``, pooled by hand over the word's tokens.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from brainalign.features import registry
from tests._features_helpers import span_of, tiny_joint

PAIRS = [
    ("The dog chased the other dog.", "dog", 1),
    ("I found it unbelievably good.", "unbelievably", 0),
    ("We ate an apple, then more apple pie.", "apple", 1),
]
# (width, height): landscape -> 32x64 grid, portrait -> 64x32, larger -> 64x64
SIZES = [(40, 30), (30, 60), (64, 48)]
SENTENCES = [s for s, _, _ in PAIRS]
SPANS = [span_of(*p) for p in PAIRS]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return tiny_joint("llava_next")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(5)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in SIZES]


def processor_inputs(model, text, image):
    """Model inputs as transformers' LlavaNextProcessor builds them."""
    from transformers import LlavaNextProcessor

    proc = LlavaNextProcessor(
        image_processor=model.image_processor,
        tokenizer=copy.deepcopy(model.tokenizer),
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    return dict(proc(images=[image], text=[text], return_tensors="pt"))


def reference_states(model, inputs):
    with torch.no_grad():
        return model.model(**inputs, output_hidden_states=True, use_cache=False).hidden_states


def word_positions(tokenizer, ids, word, occurrence, after=0):
    for piece in (word, " " + word):
        pieces = tokenizer(piece, add_special_tokens=False)["input_ids"]
        hits = [i for i in range(after, len(ids)) if ids[i : i + len(pieces)] == pieces]
        if len(hits) > occurrence:
            return list(range(hits[occurrence], hits[occurrence] + len(pieces)))
    raise AssertionError(f"{word!r} not found in {tokenizer.convert_ids_to_tokens(ids)}")


def test_protocol_and_registry_table(model):
    assert isinstance(model, registry.FeatureExtractor)
    assert (model.modalities, model.n_layers) == (frozenset({"text", "image"}), 3)
    assert model.joint and not model.requires_image
    assert registry.extractor_info("llava_next").module == "brainalign.features.llava_next"
    assert registry.extractor_modalities("llava_next") == {"text", "image"}


def test_image_token_count_follows_the_image_size_as_transformers_computes_it(model, images):
    counts = []
    for image in images[:2]:
        inputs = processor_inputs(model, "<image>\nA dog.", image)
        n_processor = int((inputs["input_ids"] == model.image_token_id).sum())
        with torch.no_grad():
            features = model.model.get_image_features(
                pixel_values=inputs["pixel_values"],
                image_sizes=inputs["image_sizes"],
                vision_feature_layer=-2,
                vision_feature_select_strategy="default",
            ).pooler_output
        ours = model.image_token_count(model._pixels([image]))
        assert ours == [n_processor] == [int(features[0].shape[0])]
        counts.append(n_processor)
    # 30x40 (h x w) -> grid 32x64: 16 base + 4x6 unpadded + 4 newlines; 60x30 -> 64x32
    assert counts == [16 + 24 + 4, 16 + 32 + 8]
    assert len(set(counts)) == 2


def test_word_pooling_matches_the_processor_and_the_models_hidden_states(model, images):
    pooled = model.encode_pairs(SENTENCES, SPANS, images, [0, 1, 2])  # batches of 2 and 1
    for i, (sentence, word, occurrence) in enumerate(PAIRS):
        inputs = processor_inputs(model, "<image>\n" + sentence, images[i])
        ids = inputs["input_ids"][0].tolist()
        assert model._prepare([sentence], [images[i]]).inputs["input_ids"][0].tolist() == ids
        image_end = max(k for k, t in enumerate(ids) if t == model.image_token_id)
        positions = word_positions(model.tokenizer, ids, word, occurrence, after=image_end)
        states = reference_states(model, inputs)
        for layer in (0, 1, 2):
            expected = states[layer][0, positions].numpy().mean(axis=0)
            np.testing.assert_allclose(pooled[layer][i], expected, atol=2e-6, rtol=1e-5)


def test_images_of_different_sizes_batch_together(model, images):
    together = model.encode_pairs(SENTENCES, SPANS, images, [2])[2]  # 3 and 5 tiles in a batch
    for i in range(3):
        alone = model.encode_pairs(SENTENCES[i : i + 1], SPANS[i : i + 1], images[i : i + 1], [2])
        np.testing.assert_allclose(together[i], alone[2][0], atol=2e-6, rtol=1e-5)


def test_image_rows_pool_every_position_as_llava_does(model, images):
    pooled = model.encode_images(images[:2], [0, 2])
    for i in range(2):
        states = reference_states(model, processor_inputs(model, "<image>\n", images[i]))
        for layer in (0, 2):
            expected = states[layer][0].double().mean(dim=0).numpy()
            np.testing.assert_allclose(pooled[layer][i], expected, atol=2e-6, rtol=1e-5)
    assert not np.allclose(pooled[2][0], pooled[2][1], atol=1e-6)


def test_text_only_input_runs_the_language_model_alone(model):
    pooled = model.encode_text(SENTENCES, SPANS, [1, 2])
    for i, (sentence, word, occurrence) in enumerate(PAIRS):
        enc = model.tokenizer(sentence, return_tensors="pt")
        with torch.no_grad():
            states = model.model(**enc, output_hidden_states=True).hidden_states
        positions = word_positions(model.tokenizer, enc["input_ids"][0].tolist(), word, occurrence)
        for layer in (1, 2):
            expected = states[layer][0, positions].numpy().mean(axis=0)
            np.testing.assert_allclose(pooled[layer][i], expected, atol=2e-6, rtol=1e-5)


def test_a_token_count_that_disagrees_with_the_model_is_refused(model):
    broken = copy.copy(model)
    broken.processor = copy.copy(model.processor)
    broken.processor.num_additional_image_tokens = 0
    with pytest.raises(
        ValueError, match=r"count of image tokens \(87\) differs from the model's image features \(88\)"
    ):
        broken._check_token_count()
