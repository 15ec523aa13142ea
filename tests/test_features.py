"""Tests of brainalign.features: specs, registry, extractors, conditions, extraction.

Tiny seeded models (text width 32; CLIP text width 32, vision width 24) on a small
stimulus folder: 5 concepts x 2 contexts, 5 images of unequal sizes, 2 naturalistic
runs of 12 TRs. References are transformers' own ``output_hidden_states`` and
hand-written pooling over token positions found without offsets.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from brainalign.features import (
    CONDITIONS,
    ModelSpec,
    extract_concept_features,
    extract_naturalistic_features,
    get_extractor,
    lanczos_resample,
    load_extractor,
    registered_extractors,
    supported_conditions,
)
from brainalign.features import registry
from brainalign.io import load_arrays, save_arrays
from tests._features_helpers import (
    CONCEPT_SENTENCES,
    FRAMES,
    IMAGES,
    N_TRS,
    TR,
    WORD_OF,
    find_span,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(name, extractor, **cfg):
    """A tiny seeded model, on the CPU unless ``device`` is given: the tests compare its
    features with references computed by hand on CPU tensors, also on a machine with CUDA."""
    cfg = {"extractor": extractor, "source": "tiny", "device": "cpu", **cfg}
    return load_extractor(ModelSpec.from_config(name, cfg, seed=0))


@pytest.fixture(scope="module")
def bert():
    return tiny("tiny_bert", "text_encoder", batch_size=3)


@pytest.fixture(scope="module")
def clip():
    return tiny("tiny_clip", "clip", batch_size=2)


@pytest.fixture(scope="module", params=["text_encoder", "clip"])
def extractor(request, bert, clip):
    return {"text_encoder": bert, "clip": clip}[request.param]


# --- specs and registry ------------------------------------------------------------


def test_spec_defaults_and_cache_key():
    spec = ModelSpec.from_config("m", {"extractor": "clip", "id": "openai/clip"}, seed=1)
    assert (spec.source, spec.layers, spec.pooling, spec.dtype) == (
        "pretrained",
        "all",
        "word",
        "float32",
    )
    assert re.fullmatch(r"clip-\d+\.\d+\.\d+-[0-9a-f]{12}", spec.code_version)
    # Runtime settings and the seed of a pretrained model leave the key unchanged ...
    same = ModelSpec.from_config(
        "other", {"extractor": "clip", "id": "openai/clip", "batch_size": 2}, seed=9
    )
    assert same.code_version == spec.code_version
    # ... what changes the features changes it.
    pooled = ModelSpec.from_config(
        "m", {"extractor": "clip", "id": "openai/clip", "pooling": "mean"}, seed=1
    )
    assert pooled.code_version != spec.code_version
    seeds = [
        ModelSpec.from_config("t", {"extractor": "clip", "source": "tiny"}, seed=s) for s in (0, 1)
    ]
    assert seeds[0].code_version != seeds[1].code_version
    layered = ModelSpec.from_config(
        "t", {"extractor": "clip", "source": "tiny", "layers": [2, 0]}, seed=0
    )
    assert layered.layers == (0, 2) and layered.to_dict()["layers"] == [0, 2]


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"source": "tiny"}, r"model 'm': 'extractor' \(a registered extractor name\) is required"),
        (
            {"extractor": "clip", "source": "tiny", "polling": "mean"},
            r"model 'm': unknown key\(s\) polling",
        ),
        (
            {"extractor": "clip", "source": "tiny", "pooling": "max"},
            r"'pooling' must be one of word, mean",
        ),
        (
            {"extractor": "clip", "source": "tiny", "layers": [1, 1]},
            r"'layers' must be \"all\" or a non-empty",
        ),
        ({"extractor": "clip", "source": "tiny", "layers": "last"}, r"'layers' must be \"all\""),
        ({"extractor": "clip"}, r"source 'pretrained' needs 'id'"),
        (
            {"extractor": "clip", "source": "package", "id": "p", "revision": "v1"},
            r"'revision' does not apply",
        ),
        (
            {"extractor": "clip", "source": "tiny", "batch_size": 0},
            r"'batch_size' must be an integer >= 1",
        ),
    ],
)
def test_spec_validation_messages(cfg, message):
    with pytest.raises(ValueError, match=message):
        ModelSpec.from_config("m", cfg, seed=0)


def test_registry_lists_and_rejects_unknown_names():
    mine = {"causal_lm", "clip", "siglip", "text_encoder", "vision_encoder"}
    assert mine <= set(registered_extractors()) == set(registry.BUILTIN_EXTRACTORS)
    assert registered_extractors() == sorted(registered_extractors())
    listed = r"registered: (\w+, )*causal_lm, (\w+, )*clip, (\w+, )*text_encoder"
    with pytest.raises(ValueError, match=rf"^unknown extractor 'foo'; {listed}"):
        get_extractor("foo")
    spec = ModelSpec.from_config("m", {"extractor": "foo", "source": "tiny"}, seed=0)
    with pytest.raises(ValueError, match=rf"unknown extractor 'foo'; {listed}"):
        load_extractor(spec)


def test_pooling_names_match_implementations():
    from brainalign.features.extractors import POOLERS

    assert tuple(POOLERS) == registry.POOLINGS


def test_layers_out_of_range_are_rejected(stim, bert):
    with pytest.raises(
        ValueError, match=r"'layers' must be indices in 0\.\.2 \(the model has 3 hidden"
    ):
        extract_concept_features(bert, stim, "sentence", layers=[0, 3])


def test_extractors_follow_the_protocol(bert, clip):
    assert isinstance(bert, registry.FeatureExtractor) and isinstance(
        clip, registry.FeatureExtractor
    )
    assert (bert.modalities, bert.n_layers) == (frozenset({"text"}), 3)
    assert (clip.modalities, clip.n_layers) == (frozenset({"text", "image"}), 3)


# --- hidden states against transformers' own output_hidden_states ---------------------

TRICKY = [
    ("I found it unbelievably good.", "unbelievably", 0),
    ("The dog chased the other dog.", "dog", 1),
    ("I ate an apple, then (apple) pie.", "apple", 1),
    ("Saxophones, unbelievably, are loud!", "saxophones", 0),
    ('He said: "kiwi".', "kiwi", 0),
]


def word_token_positions(tokenizer, input_ids: list[int], word: str, occurrence: int) -> list[int]:
    """Token positions of the ``occurrence``-th occurrence of ``word``'s word pieces."""
    pieces = tokenizer(word.lower(), add_special_tokens=False)["input_ids"]
    hits = [i for i in range(len(input_ids)) if input_ids[i : i + len(pieces)] == pieces]
    return list(range(hits[occurrence], hits[occurrence] + len(pieces)))


def reference_text_states(extractor, sentence):
    """Per-layer (tokens, features) hidden states from a plain, unpadded forward pass."""
    enc = extractor.tokenizer(sentence, return_tensors="pt")
    with torch.no_grad():
        if extractor.spec.extractor == "clip":
            pixels = torch.zeros(1, 3, 32, 32)
            out = extractor.model(**enc, pixel_values=pixels, output_hidden_states=True)
            states = out.text_model_output.hidden_states
        else:
            states = extractor.model(**enc, output_hidden_states=True).hidden_states
    return enc["input_ids"][0].tolist(), [h[0].numpy() for h in states]


def test_word_pooling_matches_output_hidden_states(extractor):
    sentences = [s for s, _, _ in TRICKY]
    spans = [find_span(s, w, k) for s, w, k in TRICKY]
    pooled = extractor.encode_text(sentences, spans, [0, 1, 2])  # padded batches of 3 / 2
    for i, (sentence, word, occurrence) in enumerate(TRICKY):
        ids, states = reference_text_states(extractor, sentence)
        positions = word_token_positions(extractor.tokenizer, ids, word, occurrence)
        for layer in (0, 1, 2):
            expected = states[layer][positions].mean(axis=0)
            np.testing.assert_allclose(pooled[layer][i], expected, atol=2e-6, rtol=1e-5)
    # The fixture really exercises sub-words and repeated words.
    ids, _ = reference_text_states(extractor, TRICKY[0][0])
    assert len(word_token_positions(extractor.tokenizer, ids, "unbelievably", 0)) == 5
    assert (
        pooled[2][1].tolist() != extractor.encode_text([TRICKY[1][0]], [(4, 7)], [2])[2][0].tolist()
    )


@pytest.mark.parametrize(
    ("pooling", "select"),
    [
        ("mean", lambda n: slice(1, n - 1)),
        ("mean_all", lambda n: slice(0, n)),
        ("first", lambda n: slice(0, 1)),
        ("last", lambda n: slice(n - 1, n)),
    ],
)
def test_sentence_poolings_match_hand_pooling(pooling, select, bert):
    model = tiny("tiny_bert", "text_encoder", pooling=pooling, batch_size=4)
    sentences = ["A dog.", "The dog chased the other dog.", "It was unbelievably good, I said."]
    pooled = model.encode_text(sentences, None, [1, 2])
    for i, sentence in enumerate(sentences):
        ids, states = reference_text_states(bert, sentence)  # same seed, same weights
        for layer in (1, 2):
            expected = states[layer][select(len(ids))].mean(axis=0)
            np.testing.assert_allclose(pooled[layer][i], expected, atol=2e-6, rtol=1e-5)


def test_image_tower_matches_output_hidden_states_and_clip_processor(stim, clip):
    # the PIL processor, which brainalign reproduces; CLIPImageProcessor is the torchvision
    # one where torchvision is installed, and its resize differs by one grey level here and there
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    images = [Image.open(stim / "images" / f"{c}.png").convert("RGB") for c in IMAGES]
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    pixels = processor(images=images, return_tensors="np")["pixel_values"]
    np.testing.assert_allclose(clip.preprocessing(images), pixels, atol=1e-5)
    with torch.no_grad():
        ids = clip.tokenizer(["a"], return_tensors="pt")
        out = clip.model(**ids, pixel_values=torch.from_numpy(pixels), output_hidden_states=True)
    pooled = clip.encode_images(images, [0, 1, 2])
    for layer in (0, 1, 2):
        hidden = out.vision_model_output.hidden_states[layer]
        # CLS token; at hidden state 0 (where CLS is the same for every image) the mean
        expected = (hidden.double().mean(dim=1) if layer == 0 else hidden[:, 0]).numpy()
        assert pooled[layer].shape == (5, 24)
        np.testing.assert_allclose(pooled[layer], expected, atol=1e-5)


def test_word_span_outside_tokens_is_an_error(bert):
    with pytest.raises(ValueError, match=r"span \(3, 40\) must satisfy 0 <= start < end <= 6"):
        bert.encode_text(["A dog."], [(3, 40)], [0])
    with pytest.raises(ValueError, match=r"no token of sentence 'A  dog\.' falls in span \(1, 2\)"):
        bert.encode_text(["A  dog."], [(1, 2)], [0])  # a span on whitespace only


def test_too_long_sentence_is_an_error(clip):
    with pytest.raises(ValueError, match=r"has \d+ tokens; model 'tiny_clip' accepts at most 77"):
        clip.encode_text(["word " * 100], [(0, 4)], [0])


# --- seeds, sources, devices --------------------------------------------------------


def test_tiny_models_are_identical_across_builds_and_differ_across_seeds(clip):
    again = tiny("tiny_clip", "clip")
    other = load_extractor(
        ModelSpec.from_config("t", {"extractor": "clip", "source": "tiny", "device": "cpu"}, seed=1)
    )
    state, state2, state3 = (m.model.state_dict() for m in (clip, again, other))
    assert all(torch.equal(state[k], state2[k]) for k in state)
    assert not torch.equal(
        state["text_model.embeddings.token_embedding.weight"],
        state3["text_model.embeddings.token_embedding.weight"],
    )
    a = clip.encode_text(["A dog."], [(2, 5)], [2])[2]
    assert a.tobytes() == again.encode_text(["A dog."], [(2, 5)], [2])[2].tobytes()


def test_building_a_tiny_model_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny("t", "text_encoder")
    assert torch.equal(torch.rand(3), expected)


def copy_tokenizer(folder):
    from brainalign.features.extractors import tiny_tokenizer_path

    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(tiny_tokenizer_path() / name, folder / name)


def test_pretrained_source_reads_a_saved_model(tmp_path, stim, clip):
    from transformers import CLIPImageProcessor

    clip.model.save_pretrained(tmp_path)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(tmp_path)
    copy_tokenizer(tmp_path)
    spec = ModelSpec.from_config(
        "saved", {"extractor": "clip", "id": str(tmp_path), "device": "cpu"}, seed=0
    )
    loaded = load_extractor(spec)
    image = [Image.open(stim / "images" / "dog.png")]
    np.testing.assert_array_equal(
        loaded.encode_images(image, [2])[2], clip.encode_images(image, [2])[2]
    )
    np.testing.assert_array_equal(
        loaded.encode_text(["A dog."], [(2, 5)], [1])[1],
        clip.encode_text(["A dog."], [(2, 5)], [1])[1],
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_half_precision_falls_back_to_float32_on_cpu(caplog):
    with caplog.at_level("WARNING"):
        model = tiny("t", "text_encoder", dtype="float16")
    assert model.dtype == torch.float32
    assert "dtype float16 requested on cpu; using float32 instead" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_half_precision_matches_float32(bert):
    half = tiny("t", "text_encoder", device="cuda", dtype="float16")
    cpu = bert.encode_text(["The dog chased the other dog."], [(4, 7)], [2])[2]
    gpu = half.encode_text(["The dog chased the other dog."], [(4, 7)], [2])[2]
    assert gpu.dtype == np.float32
    np.testing.assert_allclose(gpu, cpu, atol=1e-2)


# --- conditions and concept extraction ------------------------------------------------


def test_supported_conditions(bert, clip):
    assert supported_conditions(bert) == ["sentence", "word", "language"]
    assert supported_conditions(clip) == [c for c in CONDITIONS if c != "audio"]


def test_unsupported_and_unknown_conditions_are_errors(stim, bert, clip):
    message = (
        r"model 'tiny_bert' does not support condition 'picture' \(modalities: text\); "
        r"supported: sentence, word, language\."
    )
    with pytest.raises(ValueError, match=message):
        extract_concept_features(bert, stim, "picture")
    with pytest.raises(
        ValueError,
        match=r"unknown condition 'video'; known: sentence, picture, noise, image, word, "
        r"language, vision, joint, wordpicture, audio\.",
    ):
        extract_naturalistic_features(clip, stim, "video")
    with pytest.raises(ValueError, match=r"condition 'noise' needs 'noise_dir'"):
        extract_concept_features(clip, stim, "noise")


def expected_widths(extractor):
    text, image = 32, (24 if extractor.spec.extractor == "clip" else None)
    return {
        "sentence": text,
        "word": text,
        "language": text,
        "picture": text + (image or 0),
        "noise": text + (image or 0),
        "joint": text + (image or 0),
        "wordpicture": text + (image or 0),
        "image": image,
        "vision": image,
    }


def test_every_supported_condition_has_shapes_and_metadata(stim, noise_dir, extractor, tmp_path):
    clip = extractor.spec.extractor == "clip"
    for condition in supported_conditions(extractor):
        arrays, meta = extract_concept_features(extractor, stim, condition, noise_dir=noise_dir)
        assert sorted(arrays) == ["layer-00", "layer-01", "layer-02"] + ["layer-03"] * clip
        for name, array in arrays.items():
            assert array.dtype == np.float32
            width = 16 if name == "layer-03" else expected_widths(extractor)[condition]
            assert array.shape == (5, width)
        assert meta["stimuli"] == list(IMAGES)  # concepts.tsv order, not sentences.tsv order
        assert (meta["condition"], meta["task"], meta["layers"], meta["units"]) == (
            condition,
            "concepts",
            [0, 1, 2] + [3] * clip,
            "a.u.",
        )
        assert meta["pseudo_layers"] == ({"3": "embeds"} if clip else {})
        assert (meta["model"], meta["extractor"], meta["pooling"]) == (
            extractor.spec.name,
            extractor.spec.extractor,
            "word",
        )
        save_arrays(tmp_path / f"{condition}.safetensors", arrays, meta)
        assert load_arrays(tmp_path / f"{condition}.safetensors")[1] == meta


def test_concept_text_stream_averages_contexts(stim, clip):
    arrays, _ = extract_concept_features(clip, stim, "sentence", layers=[1])
    for row, concept in enumerate(IMAGES):
        contexts = CONCEPT_SENTENCES[concept]
        spans = [find_span(s, WORD_OF.get(concept, concept), k) for s, k in contexts]
        rows = [clip.encode_text([s], [span], [1])[1][0] for (s, _), span in zip(contexts, spans)]
        np.testing.assert_allclose(arrays["layer-01"][row], np.mean(rows, axis=0), atol=2e-6)


def test_picture_and_noise_concatenate_text_then_image(stim, noise_dir, clip):
    sentence, _ = extract_concept_features(clip, stim, "sentence", layers=[2])
    image, _ = extract_concept_features(clip, stim, "image", layers=[2])
    picture, _ = extract_concept_features(clip, stim, "picture", layers=[2])
    noise, meta = extract_concept_features(clip, stim, "noise", layers=[2], noise_dir=noise_dir)
    np.testing.assert_array_equal(
        picture["layer-02"], np.hstack([sentence["layer-02"], image["layer-02"]])
    )
    np.testing.assert_array_equal(noise["layer-02"][:, :32], sentence["layer-02"])
    noise_images = [Image.open(noise_dir / "images" / f"{c}.png") for c in IMAGES]
    np.testing.assert_allclose(
        noise["layer-02"][:, 32:], clip.encode_images(noise_images, [2])[2], atol=1e-6
    )
    assert not np.allclose(noise["layer-02"][:, 32:], image["layer-02"])
    assert meta["streams"] == ["text", "noise"] and meta["layers"] == [2]


# --- naturalistic extraction ----------------------------------------------------------


def direct_lanczos(data, old, new, window=3):
    """Huth's lanczosinterp2D written out with explicit loops."""
    cutoff = 1 / np.mean(np.diff(new))
    out = np.zeros((len(new), data.shape[1]))
    for i, t_new in enumerate(new):
        for j, t_old in enumerate(old):
            t = (t_new - t_old) * cutoff
            weight = (
                1.0
                if t == 0
                else window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi**2 * t**2)
            )
            out[i] += (0.0 if abs(t) > window else weight) * data[j]
    return out


def test_naturalistic_shapes_runs_and_metadata(stim, noise_dir, extractor):
    for condition in supported_conditions(extractor):
        arrays, meta = extract_naturalistic_features(extractor, stim, condition, [0, 2], noise_dir)
        assert sorted(arrays) == ["layer-00", "layer-02", "run"]
        assert arrays["layer-02"].shape == (2 * N_TRS, expected_widths(extractor)[condition])
        assert arrays["layer-02"].dtype == np.float32 and arrays["run"].dtype == np.int32
        np.testing.assert_array_equal(arrays["run"], [1] * N_TRS + [2] * N_TRS)
        assert (meta["task"], meta["runs"], meta["tr"], meta["n_trs"]) == (
            "naturalistic",
            [1, 2],
            TR,
            [N_TRS] * 2,
        )


def test_naturalistic_words_match_per_word_encoding_and_lanczos(stim, clip):
    arrays, _ = extract_naturalistic_features(clip, stim, "sentence", layers=[1])
    words = pd.read_csv(stim / "naturalistic" / "words.tsv", sep="\t")
    grid = (np.arange(N_TRS) + 0.5) * TR
    for run, offset in ((1, 0), (2, N_TRS)):
        rows = words[words["run"] == run]
        per_word = np.vstack(
            [
                clip.encode_text([r.sentence], [(r.char_start, r.char_end)], [1])[1]
                for r in rows.itertuples()
            ]
        )
        expected = direct_lanczos(
            per_word.astype(np.float64), rows["onset"] + rows["duration"] / 2, grid
        )
        np.testing.assert_allclose(arrays["layer-01"][offset : offset + N_TRS], expected, atol=1e-5)
        assert np.abs(expected).max() > 0.1  # the check is not vacuous


def test_naturalistic_frames_match_per_frame_encoding(stim, clip):
    arrays, _ = extract_naturalistic_features(clip, stim, "image", layers=[2])
    grid = (np.arange(N_TRS) + 0.5) * TR
    for run, offset in ((1, 0), (2, N_TRS)):
        frames = [(image, onset + dur / 2) for image, onset, dur in FRAMES[run]]
        encoded = clip.encode_images([Image.open(stim / image) for image, _ in frames], [2])[2]
        expected = lanczos_resample(encoded, np.array([t for _, t in frames]), grid)
        np.testing.assert_allclose(arrays["layer-02"][offset : offset + N_TRS], expected, atol=1e-5)


def test_extract_task_features_dispatches_on_task(stim, bert):
    from brainalign.features import extract_task_features

    arrays, meta = extract_task_features(bert, stim, "naturalistic", "sentence", layers=[1])
    direct, _ = extract_naturalistic_features(bert, stim, "sentence", layers=[1])
    np.testing.assert_array_equal(arrays["layer-01"], direct["layer-01"])
    assert meta["task"] == "naturalistic"
    concept, meta = extract_task_features(bert, stim, "concepts", "sentence", layers=(0, 2))
    assert sorted(concept) == ["layer-00", "layer-02"] and meta["task"] == "concepts"
    with pytest.raises(
        ValueError, match=r"'task' must be one of concepts, naturalistic, word_events, scene_events; got 'story'"
    ):
        extract_task_features(bert, stim, "story", "sentence")
