"""Streaming feature files to disk layer by layer, with bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from safetensors import safe_open

from brainalign.features import (
    ModelSpec,
    extract_task_features,
    load_extractor,
    write_task_features,
)
from brainalign.features.stream import Spill, copy_features, read_layout, write_safetensors
from brainalign.features.text import tiny_text_config
from brainalign.io import load_arrays


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clip():
    cfg = {"extractor": "clip", "source": "tiny", "attention_heads": True, "batch_size": 2}
    return load_extractor(ModelSpec.from_config("c", cfg, seed=0))


# --- the writer ---------------------------------------------------------------------------


def test_streamed_file_is_a_plain_safetensors_file(tmp_path):
    arrays = {
        "layer-00": np.arange(12, dtype=np.float32).reshape(3, 4),
        "heads-text-01": np.linspace(0, 1, 18, dtype=np.float32).reshape(3, 2, 3),
        "run": np.array([1, 1, 2], dtype=np.int32),
    }
    path = tmp_path / "f.safetensors"
    with write_safetensors(path, {k: (v.dtype, v.shape) for k, v in arrays.items()}, {"a": 1}) as w:
        for name, array in arrays.items():
            w.write(name, array)
    with safe_open(str(path), framework="numpy") as handle:  # the reference reader
        assert sorted(handle.keys()) == sorted(arrays)
        for name, array in arrays.items():
            np.testing.assert_array_equal(handle.get_tensor(name), array)
    loaded, meta = load_arrays(path)
    assert meta == {"a": 1} and list(read_layout(path)[0]) == list(arrays)
    copy_features(path, tmp_path / "g.safetensors", {"a": 2})
    copied, meta = load_arrays(tmp_path / "g.safetensors")
    assert meta == {"a": 2} and all(np.array_equal(copied[k], arrays[k]) for k in arrays)


def test_writer_refuses_wrong_order_shape_and_unfinished_files(tmp_path):
    layout = {"a": (np.float32, (2, 2)), "b": (np.float32, (1,))}
    with pytest.raises(ValueError, match=r"tensor 'b' written out of order; expected a"):
        with write_safetensors(tmp_path / "x.safetensors", layout, {}) as w:
            w.write("b", np.zeros(1, np.float32))
    with pytest.raises(ValueError, match=r"tensor 'a' must be float32 of shape \(2, 2\)"):
        with write_safetensors(tmp_path / "x.safetensors", layout, {}) as w:
            w.write("a", np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"closed before tensors \['b'\] were written"):
        with write_safetensors(tmp_path / "x.safetensors", layout, {}) as w:
            w.write("a", np.zeros((2, 2), np.float32))
    assert list(tmp_path.iterdir()) == []  # nothing that looks finished


def test_spill_on_disk_equals_spill_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    chunks = [{0: rng.normal(size=(n, 3)), "heads-01": rng.normal(size=(n, 2, 2))} for n in (4, 3)]
    spills = [Spill(7), Spill(7, tmp_path / "spill")]
    for spill in spills:
        spill.write(0, chunks[0])
        spill.write(4, chunks[1])
    for key in (0, "heads-01"):
        expected = np.concatenate([c[key] for c in chunks]).astype(np.float32)
        for spill in spills:
            np.testing.assert_array_equal(spill.read(key), expected)
    assert (
        isinstance(spills[1].read(0), np.memmap) and len(list((tmp_path / "spill").iterdir())) == 2
    )


# --- streamed extraction = in-memory extraction -----------------------------------------------


@pytest.mark.parametrize(("task", "condition"), [("concepts", "noise"), ("naturalistic", "joint")])
def test_streamed_extraction_equals_in_memory_extraction(
    task, condition, clip, stim, noise_dir, tmp_path
):
    arrays, meta = extract_task_features(clip, stim, task, condition, None, noise_dir)
    paths = [tmp_path / f"{x}.safetensors" for x in "abc"]
    streamed = write_task_features(clip, stim, task, condition, paths[0], None, noise_dir)
    write_task_features(clip, stim, task, condition, paths[1], None, noise_dir)
    write_task_features(clip, stim, task, condition, paths[2], None, noise_dir, chunk_size=1)
    loaded, stored = load_arrays(paths[0])
    assert stored == streamed == meta
    assert list(read_layout(paths[0])[0]) == list(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)
    assert paths[0].read_bytes() == paths[1].read_bytes()  # same inputs, same bytes
    # chunks of one stimulus: batches of one, no padding; equal up to float rounding
    for name, array in load_arrays(paths[2])[0].items():
        np.testing.assert_allclose(array, arrays[name], atol=2e-6)
    assert "heads-image-02" in arrays or "heads-noise-02" in arrays
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]  # no spill left


# --- bounded memory ---------------------------------------------------------------------------

N_CONCEPTS, N_CONTEXTS, N_LAYERS, WIDTH = 150, 4, 24, 64


@pytest.fixture(scope="module")
def deep_bert(tmp_path_factory):
    """A tiny-but-deep BERT: 24 blocks of width 64 (25 hidden states)."""
    folder = tmp_path_factory.mktemp("deep")
    config = tiny_text_config()
    config.update({"num_hidden_layers": N_LAYERS, "hidden_size": WIDTH, "intermediate_size": 64})
    config.save_pretrained(folder)
    from brainalign.features.extractors import tiny_tokenizer_path

    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (folder / name).write_bytes((tiny_tokenizer_path() / name).read_bytes())
    cfg = {"extractor": "text_encoder", "source": "random", "id": str(folder), "batch_size": 32}
    return load_extractor(ModelSpec.from_config("deep", cfg, seed=0))


@pytest.fixture(scope="module")
def many_sentences(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    concepts = [f"thing{i}" for i in range(N_CONCEPTS)]
    pd.DataFrame({"concept": concepts, "image": [f"images/{c}.png" for c in concepts]}).to_csv(
        root / "concepts.tsv", sep="\t", index=False
    )
    rows = []
    for concept in concepts:
        for context in range(N_CONTEXTS):
            sentence = f"In context {context} the {concept} was seen near a door."
            start = sentence.index(concept)
            rows.append((concept, context, sentence, start, start + len(concept)))
    pd.DataFrame(rows, columns=["concept", "context", "sentence", "char_start", "char_end"]).to_csv(
        root / "sentences.tsv", sep="\t", index=False
    )
    return root


def traced_peak(run) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_streaming_keeps_memory_below_one_copy_of_all_layers(deep_bert, many_sentences, tmp_path):
    all_layers = N_CONCEPTS * N_CONTEXTS * (N_LAYERS + 1) * WIDTH * 4  # every sentence, every layer
    out = tmp_path / "deep.safetensors"
    result = {}
    # warm-up: one-time allocations (imports, tokenizer and code-hash caches) are not the data
    write_task_features(deep_bert, many_sentences, "concepts", "sentence", out, chunk_size=32)
    streamed = traced_peak(
        lambda: write_task_features(
            deep_bert, many_sentences, "concepts", "sentence", out, chunk_size=32
        )
    )
    in_memory = traced_peak(
        lambda: result.update(
            arrays=extract_task_features(deep_bert, many_sentences, "concepts", "sentence")[0]
        )
    )
    assert in_memory > all_layers  # the measure sees the arrays ...
    assert streamed < 0.3 * all_layers  # ... and streaming never holds them all
    loaded, meta = load_arrays(out)
    assert len(meta["layers"]) == N_LAYERS + 1
    for name, array in result["arrays"].items():
        np.testing.assert_array_equal(loaded[name], array)
