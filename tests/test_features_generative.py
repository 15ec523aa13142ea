"""Tests of the generative vision-language extractors (brainalign.features.generative).

Tiny seeded BLIP-2 (OPT), LLaVA (LLaMA), IDEFICS2 (Mistral) and Qwen2-VL with the tiny
BPE tokenizers plus their image tokens. References: transformers' own processors
(``Blip2Processor``, ``LlavaProcessor``, ``Idefics2Processor``; Qwen2-VL's processor
needs torchvision for its video half, so its prompt is expanded by hand as its
``__call__`` does) and the models' own ``output_hidden_states``, pooled by hand over
the word's tokens found by searching its token ids after the image tokens.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from brainalign.features import registry
from brainalign.features.generative import Prompt, assemble_prompts
from tests._features_helpers import span_of, tiny_joint

FAMILIES = ["blip2", "llava", "idefics2", "qwen2_vl"]
PAIRS = [
    ("The dog chased the other dog.", "dog", 1),
    ("I found it unbelievably good.", "unbelievably", 0),
    ("We ate an apple, then more apple pie.", "apple", 1),
]
SIZES = [(40, 30), (33, 50), (45, 45)]  # (width, height): Qwen2-VL gets unequal token counts

SENTENCES = [s for s, _, _ in PAIRS]
SPANS = [span_of(*p) for p in PAIRS]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(11)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in SIZES]


@pytest.fixture(scope="module")
def models():
    return {name: tiny_joint(name) for name in FAMILIES}


@pytest.fixture(params=FAMILIES)
def model(request, models):
    return models[request.param]


# --- references -------------------------------------------------------------------------


def processor_inputs(model, sentence, image):
    """Model inputs as the family's own processor builds them."""
    from transformers import Blip2Processor, Idefics2Processor, LlavaProcessor

    tokenizer, images = copy.deepcopy(model.tokenizer), model.image_processor
    name = model.spec.extractor
    if name == "blip2":
        proc = Blip2Processor(image_processor=images, tokenizer=tokenizer, num_query_tokens=4)
        return dict(proc(images=[image], text=[sentence], return_tensors="pt"))
    if name == "llava":
        proc = LlavaProcessor(
            image_processor=images,
            tokenizer=tokenizer,
            patch_size=8,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,
        )
        return dict(proc(images=[image], text=["<image>\n" + sentence], return_tensors="pt"))
    if name == "idefics2":
        proc = Idefics2Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=4)
        return dict(proc(images=[[image]], text=["<image>" + sentence], return_tensors="pt"))
    pixels = dict(images([image], return_tensors="pt"))
    n = int(pixels["image_grid_thw"].prod()) // 4
    text = "<|vision_start|>" + "<|image_pad|>" * n + "<|vision_end|>" + sentence
    inputs = dict(tokenizer([text], return_tensors="pt"), **pixels)
    inputs["mm_token_type_ids"] = (inputs["input_ids"] == model.image_token_id).long()
    return inputs


def reference_states(model, inputs):
    with torch.no_grad():
        out = model.model(**inputs, output_hidden_states=True)
    if model.spec.extractor == "blip2":
        return out.language_model_outputs.hidden_states
    return out.hidden_states


def word_positions(tokenizer, ids, word, occurrence, after=0):
    for piece in (word, " " + word):
        pieces = tokenizer(piece, add_special_tokens=False)["input_ids"]
        hits = [i for i in range(after, len(ids)) if ids[i : i + len(pieces)] == pieces]
        if len(hits) > occurrence:
            return list(range(hits[occurrence], hits[occurrence] + len(pieces)))
    raise AssertionError(f"{word!r} not found in {tokenizer.convert_ids_to_tokens(ids)}")


# --- tests ------------------------------------------------------------------------------


def test_protocol_and_registry_table(model):
    name = model.spec.extractor
    assert isinstance(model, registry.FeatureExtractor)
    assert (model.modalities, model.n_layers) == (frozenset({"text", "image"}), 3)
    assert model.joint and not model.requires_image
    assert not registry.extractor_requires_image(name)
    assert registry.extractor_modalities(name) == {"text", "image"}


def test_word_pooling_matches_the_processor_and_the_models_hidden_states(model, images):
    pooled = model.encode_pairs(SENTENCES, SPANS, images, [0, 1, 2])  # batches of 2 and 1
    for i, (sentence, word, occurrence) in enumerate(PAIRS):
        inputs = processor_inputs(model, sentence, images[i])
        ids = inputs["input_ids"][0].tolist()
        # The extractor builds exactly the processor's token sequence.
        assert model._prepare([sentence], [images[i]]).inputs["input_ids"][0].tolist() == ids
        image_end = max(k for k, t in enumerate(ids) if t == model.image_token_id)
        positions = word_positions(model.tokenizer, ids, word, occurrence, after=image_end)
        states = reference_states(model, inputs)
        for layer in (0, 1, 2):
            expected = states[layer][0, positions].numpy().mean(axis=0)
            np.testing.assert_allclose(pooled[layer][i], expected, atol=2e-6, rtol=1e-5)
        # Image tokens come first: the word is not at its text-only position.
        alone = word_positions(
            model.tokenizer, model.tokenizer(sentence)["input_ids"], word, occurrence
        )
        assert positions[0] > alone[0]


def test_text_only_input_runs_the_language_model_alone(model):
    pooled = model.encode_text(SENTENCES, SPANS, [1, 2])
    for i, (sentence, word, occurrence) in enumerate(PAIRS):
        enc = model.tokenizer(sentence, return_tensors="pt")
        lm = model.model.language_model if model.spec.extractor == "blip2" else model.model
        with torch.no_grad():
            states = lm(**enc, output_hidden_states=True).hidden_states
        positions = word_positions(model.tokenizer, enc["input_ids"][0].tolist(), word, occurrence)
        for layer in (1, 2):
            expected = states[layer][0, positions].numpy().mean(axis=0)
            np.testing.assert_allclose(pooled[layer][i], expected, atol=2e-6, rtol=1e-5)


def test_conditions_give_float32_rows_and_mixed_batches_split(model, images):
    layers = [0, 1, 2]
    picture = model.encode_pairs(SENTENCES, SPANS, images, layers)
    text = model.encode_text(SENTENCES, SPANS, layers)
    image_only = model.encode_images(images, layers)
    mixed = model.encode_text_image(
        SENTENCES,
        [[SPANS[0]], [SPANS[1], (0, 1)], [SPANS[2]]],
        [images[0], None, images[2]],
        layers,
    )
    for out, n in ((picture, 3), (text, 3), (image_only, 3), (mixed, 4)):
        for layer in layers:
            assert out[layer].dtype == np.float32 and out[layer].shape == (n, 32)
    np.testing.assert_allclose(mixed[2][[0, 3]], picture[2][[0, 2]], atol=2e-6)
    np.testing.assert_allclose(mixed[2][1], text[2][1], atol=2e-6)
    assert not np.allclose(picture[2], text[2], atol=1e-4)
    assert not np.allclose(image_only[2][0], image_only[2][1], atol=1e-6)


def test_assembled_offsets_point_into_the_sentence(models):
    tokenizer = models["llava"].tokenizer
    sentences = ["A dog.", "The saxophone, unbelievably, is loud!"]
    prompts = [Prompt(ids=(5, 5), prefix="<image><image>\n"), Prompt(prefix="USER: ")]
    inputs, pool = assemble_prompts(tokenizer, sentences, prompts, pad_id=0)
    assert inputs["input_ids"][0, :2].tolist() == [5, 5]
    assert pool["attention_mask"][0, :2].tolist() == [0, 0]  # image ids are not text
    for i, sentence in enumerate(sentences):
        text = pool["attention_mask"][i].bool() & ~pool["special_tokens_mask"][i].bool()
        pieces = []
        for position in torch.nonzero(text).flatten().tolist():
            start, end = pool["offset_mapping"][i, position].tolist()
            token = tokenizer.decode([int(inputs["input_ids"][i, position])])
            assert sentence[start:end].strip() == token.strip()
            pieces.append(sentence[start:end])
        assert "".join(pieces).replace(" ", "") == sentence.replace(" ", "")
    assert int(inputs["attention_mask"][0].sum()) < inputs["input_ids"].shape[1]  # padded


def test_tiny_models_are_deterministic_and_seeded(models, images):
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    again = tiny_joint("llava")
    assert torch.equal(torch.rand(2), expected)
    a = models["llava"].encode_pairs(SENTENCES, SPANS, images, [2])[2]
    assert a.tobytes() == again.encode_pairs(SENTENCES, SPANS, images, [2])[2].tobytes()
    other = tiny_joint("llava", seed=3).encode_pairs(SENTENCES, SPANS, images, [2])[2]
    assert not np.allclose(a, other, atol=1e-3)


def test_errors(models, images):
    llava = models["llava"]
    with pytest.raises(ValueError, match=r"is \d+ tokens long; model 'llava' accepts at most 256"):
        llava.encode_pairs(["dog " * 300], [(0, 3)], [images[0]], [0])
    broken = copy.copy(llava)
    broken.model = copy.deepcopy(llava.model)
    broken.model.config.image_token_id = 5
    with pytest.raises(
        ValueError, match=r"the tokenizer's id of <image> is \d+; the model's image_token_id is 5"
    ):
        broken._add_special_tokens()
