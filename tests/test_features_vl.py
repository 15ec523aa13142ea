"""Tests of the vision-language encoders (brainalign.features.vl_encoders) and regions.

Tiny seeded VisualBERT, LXMERT, ViLT, BridgeTower and FLAVA; three images of unequal
sizes (one greyscale). References are transformers' own forward passes with
``output_hidden_states`` on one unpadded (sentence, image) pair, pooled by hand over
word-piece positions found by searching the word's token ids (not the offsets the
extractors use).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from brainalign.features import ModelSpec, load_extractor
from brainalign.features import registry
from brainalign.features.regions import (
    GridBackbone,
    PrecomputedRegions,
    RegionConfig,
    RegionFeatures,
    build_region_source,
    grid_boxes,
    load_region_features,
    region_key,
    save_region_features,
)
from brainalign.features.vl_encoders import LxmertExtractor, text_only_image
from tests._features_helpers import span_of, tiny_joint

FAMILIES = ["visualbert", "lxmert", "vilt", "bridgetower", "flava"]
N_LAYERS = {"visualbert": 3, "lxmert": 5, "vilt": 3, "bridgetower": 3, "flava": 5}
WIDTHS = {"flava": [32, 32, 32, 40, 40]}  # text layers, then multimodal layers
# (sentence, word, occurrence of the word): repeated words, sub-words, punctuation.
PAIRS = [
    ("The dog chased the other dog.", "dog", 1),
    ("I found it unbelievably good.", "unbelievably", 0),
    ("We ate an apple, then more apple pie.", "apple", 0),
]
SIZES = [(40, 30), (33, 50), (45, 45)]  # (width, height)

SENTENCES = [s for s, _, _ in PAIRS]
SPANS = [span_of(*p) for p in PAIRS]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(5)
    out = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in SIZES]
    out[2] = out[2].convert("L")
    return out


@pytest.fixture(scope="module")
def models():
    return {name: tiny_joint(name) for name in FAMILIES}


@pytest.fixture(params=FAMILIES)
def model(request, models):
    return models[request.param]


def width(model, layer):
    return WIDTHS.get(model.spec.extractor, [32] * 5)[layer]


# --- protocol, shapes, conditions ---------------------------------------------------------


def test_protocol_and_registry_table(model):
    name = model.spec.extractor
    assert isinstance(model, registry.FeatureExtractor)
    assert (model.modalities, model.n_layers) == (frozenset({"text", "image"}), N_LAYERS[name])
    assert model.requires_image and model.joint
    assert registry.extractor_requires_image(name) and registry.extractor_modalities(name) == {
        "text",
        "image",
    }


def test_every_input_condition_gives_float32_rows_per_layer(model, images):
    layers = list(range(model.n_layers))
    sentence_only = model.encode_text(SENTENCES, SPANS, layers)
    picture = model.encode_pairs(SENTENCES, SPANS, images, layers)
    noise = model.encode_pairs(SENTENCES, SPANS, [text_only_image(7)] * 3, layers)
    image_only = model.encode_images(images, layers)
    for out in (sentence_only, picture, noise, image_only):
        assert sorted(out) == layers
        for layer in layers:
            assert out[layer].dtype == np.float32
            assert out[layer].shape == (3, width(model, layer))
            assert np.isfinite(out[layer]).all()
    top = layers[-1]
    assert not np.allclose(picture[top], sentence_only[top], atol=1e-4)  # the image matters
    assert not np.allclose(noise[top], sentence_only[top], atol=1e-4)  # a different noise
    assert not np.allclose(image_only[top][0], image_only[top][1], atol=1e-5)


def test_text_only_input_is_paired_with_the_seeded_noise_image(model):
    stand_in = text_only_image(model.spec.seed)
    assert stand_in.size == (224, 224) and np.asarray(stand_in).std() > 50
    assert np.array_equal(np.asarray(stand_in), np.asarray(text_only_image(0)))
    assert not np.array_equal(np.asarray(stand_in), np.asarray(text_only_image(1)))
    text = model.encode_text(SENTENCES, SPANS, [1])
    paired = model.encode_pairs(SENTENCES, SPANS, [stand_in] * 3, [1])
    assert text[1].tobytes() == paired[1].tobytes()


@pytest.mark.parametrize("family", ["lxmert", "vilt"])
def test_several_spans_and_file_inputs_match_single_calls(family, models, images, tmp_path):
    model = models[family]
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        image.save(paths[-1])
    spans = [[SPANS[0], (0, 3)], [SPANS[1]], [(2, 7), SPANS[2]]]
    joint = model.encode_text_image(SENTENCES, spans, [paths[0], images[1], None], [2])[2]
    expected = [
        model.encode_pairs([SENTENCES[i]], [span], [image], [2])[2][0]
        for i, image in zip(range(3), [images[0], images[1], None])
        for span in spans[i]
    ]
    np.testing.assert_allclose(joint, np.stack(expected), atol=2e-6, rtol=1e-5)


# --- hidden states against transformers' own forward pass ---------------------------------


def word_positions(tokenizer, ids, word, occurrence):
    for piece in (word, " " + word):
        pieces = tokenizer(piece, add_special_tokens=False)["input_ids"]
        hits = [i for i in range(len(ids)) if ids[i : i + len(pieces)] == pieces]
        if len(hits) > occurrence:
            return list(range(hits[occurrence], hits[occurrence] + len(pieces)))
    raise AssertionError(f"{word!r} not found")


def reference_states(model, sentence, image):
    """Per-layer (positions, features) arrays of the language side and the text offset."""
    enc = model.tokenizer(sentence, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    name = model.spec.extractor
    with torch.no_grad():
        if name in ("visualbert", "lxmert"):
            regions = model.regions([image.convert("RGB")])[0]
            feats = torch.from_numpy(regions.features)[None]
            if name == "visualbert":
                states = model.model(input_ids=ids, visual_embeds=feats, output_hidden_states=True)
                return states.hidden_states, 0
            captured = []
            hook = model.model.embeddings.register_forward_hook(lambda m, a, o: captured.append(o))
            out = model.model(
                input_ids=ids,
                visual_feats=feats,
                visual_pos=torch.from_numpy(regions.boxes)[None],
                output_hidden_states=True,
            )
            hook.remove()
            return (captured[0], *out.language_hidden_states), 0
        pixels = model.image_processor([image.convert("RGB")], return_tensors="pt")
        if name == "vilt":
            out = model.model(
                input_ids=ids, attention_mask=mask, **pixels, output_hidden_states=True
            )
            return out.hidden_states, 0
        if name == "bridgetower":
            out = model.model(input_ids=ids, attention_mask=mask, **pixels)
            text, _, cross = out.hidden_states
            return (text[0], *(c[0] for c in cross)), 0
        model.model.multimodal_model.config.output_hidden_states = True
        try:
            out = model.model(
                input_ids=ids, attention_mask=mask, pixel_values=pixels["pixel_values"]
            )
        finally:
            model.model.multimodal_model.config.output_hidden_states = False
        offset = out.image_embeddings.shape[1] + 1  # multimodal CLS + image tokens
        return (*out.text_output.hidden_states, *out.multimodal_output.hidden_states[1:]), offset


def test_word_pooling_matches_the_models_own_hidden_states(model, images):
    layers = list(range(model.n_layers))
    pooled = model.encode_pairs(SENTENCES, SPANS, images, layers)  # padded batches of 2 and 1
    n_text_layers = 3 if model.spec.extractor == "flava" else model.n_layers
    for i, (sentence, word, occurrence) in enumerate(PAIRS):
        states, offset = reference_states(model, sentence, images[i])
        ids = model.tokenizer(sentence)["input_ids"]
        positions = np.array(word_positions(model.tokenizer, ids, word, occurrence))
        for layer in layers:
            shift = 0 if layer < n_text_layers else offset
            expected = states[layer][0, positions + shift].numpy().mean(axis=0)
            np.testing.assert_allclose(pooled[layer][i], expected, atol=2e-6, rtol=1e-5)
    # The unbelievably example spans several word pieces.
    ids = model.tokenizer(PAIRS[1][0])["input_ids"]
    assert len(word_positions(model.tokenizer, ids, "unbelievably", 0)) > 1


def test_flava_word_is_found_after_the_image_tokens(models, images):
    flava = models["flava"]
    states, offset = reference_states(flava, SENTENCES[0], images[0])
    assert offset == 1 + 1 + 16  # multimodal CLS, image CLS, 4 x 4 patches
    ids = flava.tokenizer(SENTENCES[0])["input_ids"]
    positions = np.array(word_positions(flava.tokenizer, ids, "dog", 1))
    pooled = flava.encode_pairs(SENTENCES[:1], SPANS[:1], images[:1], [4])[4][0]
    unshifted = states[4][0, positions].numpy().mean(axis=0)
    assert not np.allclose(pooled, unshifted, atol=1e-3)
    np.testing.assert_allclose(pooled, states[4][0, positions + offset].numpy().mean(0), atol=2e-6)


def test_image_rows_pool_every_real_position(models, images):
    vilt = models["vilt"]
    pixels = vilt.image_processor([images[0]], return_tensors="pt")
    enc = vilt.tokenizer("", return_tensors="pt")
    with torch.no_grad():
        out = vilt.model(**enc, **pixels, output_hidden_states=True)
    expected = out.hidden_states[2][0].numpy().mean(axis=0)  # one image: no padding
    pooled = vilt.encode_images(images, [2])[2]
    np.testing.assert_allclose(pooled[0], expected, atol=2e-6, rtol=1e-5)


# --- regions ------------------------------------------------------------------------------


def test_grid_backbone_gives_patch_tokens_with_cell_boxes(models, images):
    backbone = models["visualbert"].regions
    assert isinstance(backbone, GridBackbone) and backbone.width == 20
    regions = backbone(images)
    pixels = backbone.processor([images[0]], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        tokens = backbone.model(pixel_values=pixels).last_hidden_state[0, 1:].numpy()
    assert regions[0].features.shape == (16, 20) and regions[0].boxes.shape == (16, 4)
    np.testing.assert_allclose(regions[0].features, tokens, atol=1e-6)
    np.testing.assert_array_equal(regions[1].boxes, grid_boxes(4, 4))
    assert grid_boxes(2, 3)[4].tolist() == pytest.approx([1 / 3, 0.5, 2 / 3, 1.0])


def test_cnn_backbone_regions_are_feature_map_cells(tmp_path, images, models):
    from transformers import ResNetConfig
    from transformers.models.convnext.image_processing_pil_convnext import (
        ConvNextImageProcessorPil,
    )

    ResNetConfig(
        embedding_size=8, hidden_sizes=[12, 20], depths=[1, 1], layer_type="basic"
    ).save_pretrained(tmp_path)
    ConvNextImageProcessorPil(size={"shortest_edge": 32}, crop_pct=1.0).save_pretrained(tmp_path)
    config = RegionConfig(kind="grid", source="random", id=str(tmp_path))
    lxmert = models["lxmert"]
    backbone = GridBackbone.load(config, 20, 0, torch.device("cpu"), "float32")
    regions = backbone(images[:2])
    assert regions[0].features.shape == (16, 20)  # 32 px / stride 8 -> 4 x 4 cells
    np.testing.assert_array_equal(regions[0].boxes, grid_boxes(4, 4))
    pixels = backbone.processor([images[0]], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        feature_map = backbone.model(pixel_values=pixels).last_hidden_state[0]  # (20, 4, 4)
    np.testing.assert_allclose(regions[0].features[6], feature_map[:, 1, 2].numpy(), atol=1e-6)
    assert lxmert.region_width == backbone.width
    narrow = RegionConfig(kind="grid", source="random", id=str(tmp_path))
    with pytest.raises(ValueError, match=r"have 20 features per region; the model reads 2048"):
        build_region_source(narrow, 2048, 0, torch.device("cpu"), "float32")


def random_regions(rng, n, width=20):
    x0y0 = rng.uniform(0, 0.5, size=(n, 2))
    return RegionFeatures(rng.normal(size=(n, width)), np.hstack([x0y0, x0y0 + 0.4]))


@pytest.mark.parametrize("family", ["visualbert", "lxmert"])
def test_precomputed_regions_are_read_and_used(family, models, images, tmp_path):
    grid = models[family]
    for image in images:  # the grid backbone's own regions, precomputed
        save_region_features(tmp_path, image, grid.regions([image.convert("RGB")])[0])
    save_region_features(tmp_path, text_only_image(0), grid.regions([text_only_image(0)])[0])
    cls = type(grid)
    stored = cls(grid.spec, regions={"kind": "precomputed", "folder": str(tmp_path)})
    assert stored.region_config.kind == "precomputed"
    layers = [grid.n_layers - 1]
    same = stored.encode_pairs(SENTENCES, SPANS, images, layers)[layers[0]]
    np.testing.assert_allclose(
        same, grid.encode_pairs(SENTENCES, SPANS, images, layers)[layers[0]], atol=1e-6
    )
    text = stored.encode_text(SENTENCES, SPANS, layers)[layers[0]]
    np.testing.assert_allclose(
        text, grid.encode_text(SENTENCES, SPANS, layers)[layers[0]], atol=1e-6
    )
    # Different (and differently many) regions for the second image change its row only.
    save_region_features(tmp_path, images[1], random_regions(np.random.default_rng(1), 7))
    changed = stored.encode_pairs(SENTENCES, SPANS, images, layers)[layers[0]]
    assert not np.allclose(changed[1], same[1], atol=1e-4)
    np.testing.assert_allclose(changed[[0, 2]], same[[0, 2]], atol=1e-6)


def test_region_files_keys_and_errors(models, images, tmp_path):
    from safetensors.numpy import save_file

    images[0].save(tmp_path / "a.png")
    images[0].save(tmp_path / "a.bmp")
    assert region_key(tmp_path / "a.png") == region_key(tmp_path / "a.bmp") == region_key(images[0])
    assert region_key(images[0]) != region_key(images[1])
    folder = tmp_path / "regions"
    rng = np.random.default_rng(0)
    path = save_region_features(folder, images[0], random_regions(rng, 5))
    assert path.name == f"{region_key(images[0])}.npz"
    regions = random_regions(rng, 3)
    save_file(
        {"features": regions.features, "boxes": regions.boxes},
        str(folder / f"{region_key(images[1])}.safetensors"),
    )
    source = PrecomputedRegions(folder)
    read = source(images[:2])
    assert [r.features.shape for r in read] == [(5, 20), (3, 20)]
    np.testing.assert_array_equal(read[1].features, regions.features)
    with pytest.raises(ValueError, match=r"no region file for an image of size \(45, 45\)"):
        source([images[2].convert("RGB")])
    np.savez(folder / "bad.npz", features=np.zeros((2, 20)))
    with pytest.raises(ValueError, match=r"must hold arrays 'features' and 'boxes'; missing boxes"):
        load_region_features(folder / "bad.npz")
    with pytest.raises(ValueError, match=r"'boxes' must be \(x0, y0, x1, y1\) normalised"):
        RegionFeatures(np.zeros((2, 4)), np.array([[0, 0, 2, 1], [0, 0, 1, 1]]))
    with pytest.raises(ValueError, match=r"'features' of shape \(n_regions >= 1, n_features\)"):
        RegionFeatures(np.zeros((2, 4)), np.zeros((3, 4)))


def test_region_config_validation(tmp_path):
    assert RegionConfig.from_config("m", None, "tiny") == RegionConfig()
    with pytest.raises(
        ValueError, match=r"model 'm': 'regions' is required for source 'pretrained'"
    ):
        RegionConfig.from_config("m", None, "pretrained")
    with pytest.raises(ValueError, match=r"'regions' has unknown key\(s\) path; allowed: folder"):
        RegionConfig.from_config("m", {"kind": "precomputed", "path": "x"}, "tiny")
    with pytest.raises(ValueError, match=r"'regions'.folder must be an existing folder"):
        RegionConfig.from_config(
            "m", {"kind": "precomputed", "folder": str(tmp_path / "no")}, "tiny"
        )
    with pytest.raises(ValueError, match=r"'regions'.id \(the grid backbone"):
        RegionConfig.from_config("m", {"kind": "grid"}, "pretrained")
    with pytest.raises(ValueError, match=r"'regions'.kind must be one of grid, precomputed"):
        RegionConfig.from_config("m", {"kind": "boxes"}, "tiny")


# --- seeds, sources, errors ---------------------------------------------------------------


@pytest.mark.parametrize("family", ["lxmert", "vilt"])
def test_tiny_models_are_deterministic_and_seeded(family, models, images):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    again = tiny_joint(family)
    assert torch.equal(torch.rand(3), expected)  # building and running leave the global RNG
    a = models[family].encode_pairs(SENTENCES, SPANS, images, [2])[2]
    b = again.encode_pairs(SENTENCES, SPANS, images, [2])[2]
    assert a.tobytes() == b.tobytes()
    other = tiny_joint(family, seed=1).encode_pairs(SENTENCES, SPANS, images, [2])[2]
    assert not np.allclose(a, other, atol=1e-3)


def test_pretrained_source_reads_a_saved_model_and_image_processor(models, images, tmp_path):
    vilt = models["vilt"]
    vilt.model.save_pretrained(tmp_path)
    vilt.image_processor.save_pretrained(tmp_path)
    vilt.tokenizer.save_pretrained(tmp_path)
    loaded = load_extractor(
        ModelSpec.from_config("v", {"extractor": "vilt", "id": str(tmp_path)}, seed=0)
    )
    assert type(loaded.image_processor).__name__ == "ViltImageProcessorPil"
    np.testing.assert_array_equal(
        loaded.encode_pairs(SENTENCES, SPANS, images, [1])[1],
        vilt.encode_pairs(SENTENCES, SPANS, images, [1])[1],
    )


def test_input_errors(models, images):
    vilt = models["vilt"]
    with pytest.raises(
        ValueError, match=r"'images' must have one entry per sentence .* got 2 for 3"
    ):
        vilt.encode_pairs(SENTENCES, SPANS, images[:2], [0])
    with pytest.raises(FileNotFoundError, match=r"image '/no/such.png' does not exist"):
        vilt.encode_pairs(SENTENCES[:1], SPANS[:1], ["/no/such.png"], [0])
    with pytest.raises(ValueError, match=r"no token of sentence 'A  dog\.' falls in span \(1, 2\)"):
        vilt.encode_pairs(["A  dog."], [(1, 2)], [None], [0])
    with pytest.raises(ValueError, match=r"has \d+ tokens; model 'vilt' accepts at most 40"):
        vilt.encode_text(["word " * 50], [(0, 4)], [0])
    with pytest.raises(ValueError, match=r"model 'lx': 'regions' is required for source 'random'"):
        LxmertExtractor(
            ModelSpec.from_config(
                "lx", {"extractor": "lxmert", "source": "random", "id": "x"}, seed=0
            )
        )
