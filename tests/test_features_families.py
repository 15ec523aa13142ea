"""Every family of the shared registry (text, decoder, vision, contrastive), built tiny.

Tiny seeded models with nothing downloaded: BERT (WordPiece of all-MiniLM-L6-v2),
RoBERTa and GPT-2 (byte-level BPE), LLaMA (SentencePiece-style BPE), ViT, DINOv2,
CLIP and SigLIP. References: transformers' own ``output_hidden_states`` and
projected embeddings, its image processors, attention computed by hand, and token
positions found by decoding (independently of the offsets the extractors use).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from brainalign.features import (
    TASKS,
    ModelSpec,
    condition_streams,
    extract_concept_features,
    extract_task_features,
    load_extractor,
    supported_conditions,
)
from tests._features_helpers import IMAGES, N_TRS, find_span
from tests.test_features import word_token_positions

FAMILIES = {
    "bert": ("text_encoder", None),
    "roberta": ("text_encoder", "roberta"),
    "gpt2": ("causal_lm", None),
    "llama": ("causal_lm", "llama"),
    "vit": ("vision_encoder", None),
    "dinov2": ("vision_encoder", "dinov2"),
    "clip": ("clip", None),
    "siglip": ("siglip", None),
}
TEXT = {"sentence", "word", "language"}
IMAGE = {"image", "vision"}
EXPECTED_CONDITIONS = {
    "text_encoder": TEXT,
    "causal_lm": TEXT,
    "vision_encoder": IMAGE,
    "clip": TEXT | IMAGE | {"picture", "noise", "joint", "wordpicture"},
    "siglip": TEXT | IMAGE | {"picture", "noise", "joint", "wordpicture"},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def spec_of(name: str, **cfg) -> ModelSpec:
    """A tiny family member, on the CPU unless ``device`` is given (the references the tests
    compare with are computed on CPU tensors, also on a machine with CUDA)."""
    extractor, arch = FAMILIES[name]
    entry = {"extractor": extractor, "source": "tiny", "device": "cpu", **cfg}
    if arch:
        entry["id"] = arch
    return ModelSpec.from_config(name, entry, seed=0)


@pytest.fixture(scope="module")
def models():
    return {
        name: load_extractor(spec_of(name, batch_size=3, attention_heads=True)) for name in FAMILIES
    }


# --- every family x every condition -----------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_runs_every_condition_it_supports(name, models, stim, noise_dir):
    model = models[name]
    assert set(supported_conditions(model)) == EXPECTED_CONDITIONS[model.spec.extractor]
    n_hidden = model.n_layers
    layers = list(range(n_hidden + len(model.pseudo_layers)))
    for task, n_rows in (("concepts", len(IMAGES)), ("naturalistic", 2 * N_TRS)):
        for condition in supported_conditions(model):
            arrays, meta = extract_task_features(model, stim, task, condition, None, noise_dir)
            streams = condition_streams(model, condition)
            heads = [f"heads-{s}-{layer:02d}" for layer in range(1, n_hidden) for s in streams]
            assert [k for k in arrays if k != "run"] == [
                f"layer-{layer:02d}" for layer in layers
            ] + heads
            assert meta["streams"] == list(streams) and meta["layers"] == layers
            for key, array in arrays.items():
                if key == "run":
                    continue
                assert array.dtype == np.float32 and array.shape[0] == n_rows
                assert np.isfinite(array).all()
                assert np.ptp(array, axis=0).max() > 0  # rows differ: stimuli are encoded
            assert set(meta["heads"]) == set(heads)


def test_stream_resolution_per_family(models):
    assert condition_streams(models["clip"], "noise") == ("text", "noise")
    assert condition_streams(models["siglip"], "joint") == ("text", "image")
    assert condition_streams(models["gpt2"], "word") == ("word",)
    assert condition_streams(models["dinov2"], "vision") == ("image",)


# --- hidden states against output_hidden_states -------------------------------------------

TRICKY = [
    ("I found it unbelievably good.", "unbelievably", 0),
    ("The dog chased the other dog.", "dog", 1),
    ("I ate an apple, then (apple) pie.", "apple", 0),
    ("I ate an apple, then (apple) pie.", "apple", 1),
    ("Saxophones, unbelievably, are loud!", "saxophones", 0),
    ('He said: "kiwi".', "kiwi", 0),
    ("A naïve café owner.", "café", 0),
]


def decoded_positions(tokenizer, ids: list[int], span: tuple[int, int]) -> list[int]:
    """Tokens whose decoded characters overlap ``span`` (no offset mapping involved)."""
    ranges, previous = [], 0
    for k in range(len(ids)):
        text = tokenizer.decode(
            ids[: k + 1], skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        ranges.append((previous, len(text)))
        previous = len(text)
    return [k for k, (a, b) in enumerate(ranges) if b > a and a < span[1] and b > span[0]]


def text_states(model, sentence: str) -> tuple[list[int], list[np.ndarray]]:
    """Per-layer (tokens, features) hidden states of one unpadded forward pass."""
    enc = model.tokenizer(sentence, return_tensors="pt")
    tower = model.model.text_model if hasattr(model.model, "text_model") else model.model
    with torch.no_grad():
        states = tower(**enc, output_hidden_states=True).hidden_states
    return enc["input_ids"][0].tolist(), [h[0].double().numpy() for h in states]


@pytest.mark.parametrize("name", ["roberta", "gpt2", "llama", "siglip"])
def test_word_pooling_matches_output_hidden_states(name, models):
    model = models[name]
    sentences = [s for s, _, _ in TRICKY]
    spans = [find_span(s, w, k) for s, w, k in TRICKY]
    pooled = model.encode_text(sentences, spans, [0, 1, 2])  # padded batches of 3, 3, 1
    for i, (sentence, word, occurrence) in enumerate(TRICKY):
        ids, states = text_states(model, sentence)
        if name == "siglip":  # WordPiece: decoding lowercases, so match the word pieces
            positions = word_token_positions(model.tokenizer, ids, word, occurrence)
        else:
            full = model.tokenizer.decode(ids, skip_special_tokens=True)
            assert full == sentence  # byte-level / byte-fallback BPE decodes losslessly
            positions = decoded_positions(model.tokenizer, ids, spans[i])
        for layer in (0, 1, 2):
            expected = states[layer][positions].mean(axis=0)
            np.testing.assert_allclose(pooled[layer][i], expected, atol=3e-6, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["last", "first", "mean"])
@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_decoder_sentence_pooling_matches_hand_pooling(name, pooling, models):
    model = load_extractor(spec_of(name, pooling=pooling, batch_size=4))
    sentences = ["A dog.", "The dog chased the other dog.", "It was unbelievably good, I said."]
    pooled = model.encode_text(sentences, None, [1, 2])
    for i, sentence in enumerate(sentences):
        ids, states = text_states(models[name], sentence)  # same seed, same weights
        special = model.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
        real = [k for k in range(len(ids)) if not special[k]]
        select = {"last": [len(ids) - 1], "first": [0], "mean": real}[pooling]
        for layer in (1, 2):
            expected = states[layer][select].mean(axis=0)
            np.testing.assert_allclose(pooled[layer][i], expected, atol=3e-6, rtol=1e-5)
    assert name != "llama" or special[0] == 1  # LLaMA's <s> is special; "first" pools it


# Tokens the "word" pooling selects, per tokenizer type (the trained vocabularies are fixed).
ALIGNED = {
    "bert": [
        ["un", "##bel", "##ie", "##va", "##bly"],
        ["dog"],
        ["apple"],
        ["apple"],
        ["saxophone", "##s"],
        ["ki", "##wi"],
        ["cafe"],
    ],
    "gpt2": [
        ["Ġunbelievab", "ly"],
        ["Ġdog"],  # the second "dog", with its leading space
        ["Ġapple"],
        ["app", "le"],  # after "(": no leading space, "Ġ(" excluded
        ["Saxophone", "s"],  # "," excluded
        ["k", "i", "w", "i"],  # 'Ġ"' excluded
        ["ĠcafÃ©"],  # byte-level: é is two bytes
    ],
    "llama": [
        ["▁un", "bel", "ie", "vab", "ly"],
        ["▁dog"],
        ["▁apple"],
        ["app", "le"],
        ["▁Saxophone", "s,"],  # SentencePiece merges the comma into the last piece
        ["k", "iw", "i"],
        ["▁café"],
    ],
}


@pytest.mark.parametrize("name", ALIGNED)
def test_word_tokens_are_aligned_on_tricky_words(name, models):
    model = models[name] if name in models else load_extractor(spec_of(name))
    sentences = [s for s, _, _ in TRICKY]
    spans = [[find_span(s, w, k)] for s, w, k in TRICKY]
    encoded = model._tokenize(sentences)
    weights, owners = model.span_weights(encoded, sentences, spans)
    for row, expected in enumerate(ALIGNED[name]):
        chosen = encoded["input_ids"][owners[row]][weights[row] > 0].tolist()
        assert model.tokenizer.convert_ids_to_tokens(chosen) == expected, TRICKY[row]
        np.testing.assert_allclose(weights[row].sum().item(), 1.0)


def test_roberta_offsets_are_trimmed_and_positions_start_after_padding(models):
    roberta = models["roberta"]
    assert roberta.max_tokens == 512  # 514 positions - padding offset 2
    enc = roberta.tokenizer("I ate an apple.", return_offsets_mapping=True)
    tokens = roberta.tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[0] == "<s>" and tokens[-1] == "</s>"
    assert enc["offset_mapping"][tokens.index("Ġapple")] == (9, 14)  # space trimmed


# --- images -----------------------------------------------------------------------------


def processor_for(name: str):
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    return {
        "vit": lambda: ViTImageProcessorPil(size={"height": 32, "width": 32}),
        "dinov2": lambda: BitImageProcessorPil(
            size={"shortest_edge": 32},
            crop_size={"height": 32, "width": 32},
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
            do_convert_rgb=True,
        ),
        "siglip": lambda: SiglipImageProcessorPil(size={"height": 32, "width": 32}),
    }[name]()


@pytest.mark.parametrize("name", ["vit", "dinov2", "siglip"])
def test_image_features_match_processor_and_output_hidden_states(name, models, stim):
    model = models[name]
    images = [Image.open(stim / "images" / f"{c}.png").convert("RGB") for c in IMAGES]
    pixels = processor_for(name)(images=images, return_tensors="np")["pixel_values"]
    np.testing.assert_allclose(model.preprocessing(images), pixels, atol=1e-5)
    tower = model.model.vision_model if name == "siglip" else model.model
    with torch.no_grad():
        states = tower(pixel_values=torch.from_numpy(pixels), output_hidden_states=True)
    pooled = model.encode_images(images, list(range(model.n_layers)))
    for layer in range(model.n_layers):
        hidden = states.hidden_states[layer].double()
        # CLS, but SigLIP has none, and at hidden state 0 CLS is the same for every image
        mean = name == "siglip" or layer == 0
        expected = hidden.mean(dim=1) if mean else hidden[:, 0]
        np.testing.assert_allclose(pooled[layer], expected.numpy(), atol=2e-5)
    grid = model.patch_states(images, 1) if name != "siglip" else None
    if grid is not None:  # grid features for region-based encoders: CLS + 4 x 4 patches
        assert grid.shape == (5, 17, 24)
        np.testing.assert_allclose(grid[:, 0], pooled[1], atol=1e-6)


# --- the contrastive embeds pseudo-layer -------------------------------------------------


def reference_embeds(model, stim):
    """Per-concept mean text embedding and image embedding from the model's forward."""
    sentences = pd.read_csv(stim / "sentences.tsv", sep="\t")
    images = [Image.open(stim / "images" / f"{c}.png").convert("RGB") for c in IMAGES]
    pixels = torch.from_numpy(model.preprocessing(images))
    padding = (
        {"padding": "max_length", "max_length": 64}
        if model.spec.extractor == "siglip"
        else {"padding": True}
    )
    text, image = [], None
    for concept in IMAGES:
        rows = sentences[sentences["concept"] == concept]["sentence"].tolist()
        enc = model.tokenizer(rows, return_tensors="pt", **padding)
        with torch.no_grad():
            out = model.model(**enc, pixel_values=pixels)
        text.append(out.text_embeds.double().mean(dim=0).numpy())
        image = out.image_embeds.double().numpy()
    return np.stack(text), image


@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_embeds_pseudo_layer_sums_the_projected_embeddings(name, models, stim, noise_dir):
    model = models[name]
    embeds = model.n_layers  # one past the last hidden state
    key = f"layer-{embeds:02d}"
    out = {
        condition: extract_concept_features(model, stim, condition, [embeds], noise_dir)[0][key]
        for condition in ("sentence", "image", "picture", "noise", "joint")
    }
    text, image = reference_embeds(model, stim)
    np.testing.assert_allclose(out["sentence"], text, atol=2e-6)
    np.testing.assert_allclose(out["image"], image, atol=2e-6)
    np.testing.assert_allclose(out["picture"], text + image, atol=4e-6)
    np.testing.assert_array_equal(out["joint"], out["picture"])
    noise_images = [Image.open(noise_dir / "images" / f"{c}.png") for c in IMAGES]
    noise = model.encode_images(noise_images, [embeds])[embeds]
    np.testing.assert_allclose(out["noise"], text + noise, atol=4e-6)
    np.testing.assert_allclose(np.linalg.norm(image, axis=1), 1.0, atol=1e-6)
    assert not np.allclose(noise, image, atol=1e-2)


# --- attention heads against attention computed by hand --------------------------------------


def bert_heads(model, ids: torch.Tensor, layer: int) -> np.ndarray:
    """softmax(q k^T / sqrt(d)) v of block ``layer``, per head: (tokens, heads, head_dim)."""
    with torch.no_grad():
        h = model.model(input_ids=ids, output_hidden_states=True).hidden_states[layer - 1][0]
        attention = model.model.encoder.layer[layer - 1].attention.self
        n_heads = model.model.config.num_attention_heads
        q, k, v = (
            m(h).view(len(h), n_heads, -1).transpose(0, 1)
            for m in (attention.query, attention.key, attention.value)
        )
        probs = torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)
        return (probs @ v).transpose(0, 1).double().numpy()


def gpt2_heads(model, ids: torch.Tensor, layer: int) -> np.ndarray:
    """Causal attention of GPT-2 block ``layer``, per head: (tokens, heads, head_dim)."""
    with torch.no_grad():
        h = model.model(input_ids=ids, output_hidden_states=True).hidden_states[layer - 1][0]
        block = model.model.h[layer - 1]
        n_heads = model.model.config.n_head
        qkv = block.attn.c_attn(block.ln_1(h)).split(h.shape[-1], dim=-1)
        q, k, v = (x.view(len(h), n_heads, -1).transpose(0, 1) for x in qkv)
        scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5
        causal = torch.ones(len(h), len(h), dtype=torch.bool).tril()
        probs = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
        return (probs @ v).transpose(0, 1).double().numpy()


@pytest.mark.parametrize(("name", "by_hand"), [("bert", bert_heads), ("gpt2", gpt2_heads)])
def test_attention_heads_match_attention_computed_by_hand(name, by_hand, models):
    model = models[name]
    sentences = ["The dog chased the other dog.", "It was unbelievably good, I said."]
    spans = [find_span(sentences[0], "dog", 1), find_span(sentences[1], "unbelievably", 0)]
    pooled = model.encode_text(sentences, spans, [1, 2])  # one padded batch
    for i, sentence in enumerate(sentences):
        ids = model.tokenizer(sentence, return_tensors="pt")["input_ids"]
        if name == "gpt2":
            positions = decoded_positions(model.tokenizer, ids[0].tolist(), spans[i])
        else:
            word = sentence[spans[i][0] : spans[i][1]]
            positions = word_token_positions(model.tokenizer, ids[0].tolist(), word, i == 0)
        for layer in (1, 2):
            heads = pooled[f"heads-{layer:02d}"][i]
            assert heads.shape == (2, 16)
            expected = by_hand(model, ids, layer)[positions].mean(axis=0)
            np.testing.assert_allclose(heads, expected, atol=3e-6, rtol=1e-5)


def test_attention_heads_need_an_exposed_projection(monkeypatch):
    from brainalign.features import extractors

    monkeypatch.setattr(extractors, "ATTENTION_OUTPUT_NAMES", ("no.such.module",))
    with pytest.raises(
        ValueError, match=r"model 'bert': 'attention_heads' is true but no text block exposes"
    ):
        load_extractor(spec_of("bert", attention_heads=True))


# --- sources: random init, fine-tuned folders, trust_remote_code ------------------------------


def save_checkpoint(model, folder, weights: bool = True) -> None:
    """A checkpoint folder as save_pretrained writes it (config only when not weights)."""
    (model.model.save_pretrained if weights else model.model.config.save_pretrained)(folder)
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(folder)
    if "image" in model.modalities:
        prep = model.preprocessing
        size = (
            {"height": prep.shortest_edge, "width": prep.shortest_edge}
            if prep.square
            else {"shortest_edge": prep.shortest_edge}
        )
        config = {
            "size": size,
            "crop_size": {"height": prep.crop[0], "width": prep.crop[1]},
            "image_mean": list(prep.mean),
            "image_std": list(prep.std),
            "resample": prep.resample,
        }
        (folder / "preprocessor_config.json").write_text(json.dumps(config))


def features(model, stim, noise_dir) -> dict[str, np.ndarray]:
    condition = "picture" if len(model.modalities) == 2 else supported_conditions(model)[0]
    return extract_concept_features(model, stim, condition, [0, model.n_layers - 1], noise_dir)[0]


@pytest.mark.parametrize("name", FAMILIES)
def test_random_init_is_the_architecture_with_seeded_weights(name, models, stim, tmp_path):
    tiny = models[name]
    save_checkpoint(tiny, tmp_path, weights=False)
    extractor = tiny.spec.extractor

    def random(seed):
        cfg = {"extractor": extractor, "source": "random", "id": str(tmp_path), "device": "cpu"}
        return load_extractor(ModelSpec.from_config("r", cfg, seed=seed))

    first, again, other = random(5), random(5), random(6)
    states = [m.model.state_dict() for m in (tiny, first, again, other)]
    assert {k: v.shape for k, v in states[1].items()} == {k: v.shape for k, v in states[0].items()}
    assert all(torch.equal(states[1][k], states[2][k]) for k in states[1])
    assert any(not torch.equal(states[1][k], states[3][k]) for k in states[1])
    assert any(not torch.equal(states[1][k], states[0][k]) for k in states[1])
    a, b = features(first, stim, None), features(again, stim, None)
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)


@pytest.mark.parametrize("name", ["roberta", "gpt2", "llama", "dinov2", "siglip"])
def test_fine_tuned_checkpoint_is_loaded_by_path(name, models, stim, noise_dir, tmp_path):
    tiny = models[name]
    if tiny.tokenizer is not None:
        tiny.tokenizer.padding_side = "left"  # as LLaMA's tokenizers ship; must be overridden
    save_checkpoint(tiny, tmp_path / "base")
    if tiny.tokenizer is not None:
        tiny.tokenizer.padding_side = "right"
    original = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # "fine-tune": move every weight a little, save elsewhere
        for parameter in tiny.model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
        save_checkpoint(tiny, tmp_path / "tuned")
        tiny.model.load_state_dict(original)
    extractor = tiny.spec.extractor
    base, tuned = (
        load_extractor(
            ModelSpec.from_config(
                name,
                {"extractor": extractor, "id": str(tmp_path / f), "batch_size": 3, "device": "cpu"},
                seed=0,
            )
        )
        for f in ("base", "tuned")
    )
    assert base.tokenizer is None or base.tokenizer.padding_side == "right"
    expected, got, changed = (features(m, stim, noise_dir) for m in (tiny, base, tuned))
    assert set(got) == {"layer-00", f"layer-{tiny.n_layers - 1:02d}"}
    for key in got:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6)
    last = f"layer-{tiny.n_layers - 1:02d}"
    assert not np.allclose(changed[last], expected[last], atol=1e-4)


def test_trust_remote_code_is_passed_through_and_off_by_default(monkeypatch, tmp_path):
    import transformers

    calls = []

    def record(*args, **kwargs):
        calls.append(kwargs.get("trust_remote_code"))
        raise RuntimeError("recorded")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", record)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", record)
    for name in ("config.json", "model.safetensors"):  # a complete local folder
        (tmp_path / name).write_text("{}")
    for source, flag in (("pretrained", None), ("pretrained", True), ("random", None)):
        cfg = {"extractor": "causal_lm", "source": source, "id": str(tmp_path)}
        if flag is not None:
            cfg["trust_remote_code"] = flag
        with pytest.raises(RuntimeError, match="recorded"):
            load_extractor(ModelSpec.from_config("m", cfg, seed=0))
    assert calls == [False, True, False]


def test_unknown_tiny_architecture_lists_the_known_ones():
    spec = ModelSpec.from_config(
        "m", {"extractor": "causal_lm", "source": "tiny", "id": "gpt5"}, seed=0
    )
    with pytest.raises(
        ValueError,
        match=r"'id' must name a tiny architecture of this extractor; got 'gpt5'; "
        r"known: gpt2, llama\.",
    ):
        load_extractor(spec)


def test_every_task_has_a_planner():
    from brainalign.features.extract import _PLANNERS

    assert set(_PLANNERS) == set(TASKS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_on_cuda_matches_float32_on_cpu(dtype, models):
    half = load_extractor(spec_of("llama", device="auto", dtype=dtype, batch_size=3))
    assert half.device.type == "cuda" and half.dtype == getattr(torch, dtype)
    sentences = [s for s, _, _ in TRICKY]
    spans = [find_span(s, w, k) for s, w, k in TRICKY]
    cpu = models["llama"].encode_text(sentences, spans, [0, 1, 2])
    gpu = half.encode_text(sentences, spans, [0, 1, 2])
    for layer in (0, 1, 2):
        assert gpu[layer].dtype == np.float32
        np.testing.assert_allclose(gpu[layer], cpu[layer], rtol=0.05, atol=0.05)
