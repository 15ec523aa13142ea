"""The content-addressed feature cache and the extractor code version."""

from __future__ import annotations

import logging
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from brainalign.features import (
    CACHE_ENV,
    FeatureCache,
    ModelSpec,
    extract_features_file,
    extractor_code_hash,
    feature_cache_key,
    load_extractor,
    make_noise_images,
)
from brainalign.features import cache as cache_module
from brainalign.features import extract as extract_module
from brainalign.features.codehash import source_closure, source_hash
from brainalign.io import load_arrays


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny BERT saved with save_pretrained: a local model folder."""
    folder = tmp_path_factory.mktemp("bert")
    tiny = load_extractor(
        ModelSpec.from_config("t", {"extractor": "text_encoder", "source": "tiny"}, seed=0)
    )
    tiny.model.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    return folder


def spec(folder, name="bert", **cfg):
    entry = {"extractor": "text_encoder", "id": str(folder), "layers": [0, 2], **cfg}
    return ModelSpec.from_config(name, entry, seed=0)


def no_model_loading(monkeypatch):
    def refuse(spec):
        raise RuntimeError(f"model '{spec.name}' was loaded")

    monkeypatch.setattr(extract_module, "load_extractor", refuse)


# --- the code version ---------------------------------------------------------------------


def test_code_hash_follows_imports_and_ignores_unrelated_files(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from fakepkg import b\nfrom .c import thing\nimport os\n")
    (package / "b.py").write_text("X = 1\n")
    (package / "c.py").write_text("from fakepkg.d import y\nthing = 2\n")
    (package / "d.py").write_text("y = 3\n")
    (package / "unrelated.py").write_text("z = 4\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("fakepkg", "fakepkg.a", "fakepkg.b", "fakepkg.c", "fakepkg.d"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert source_closure(["fakepkg.a"], "fakepkg") == [
        "fakepkg.a",
        "fakepkg.b",
        "fakepkg.c",
        "fakepkg.d",
    ]
    before = source_hash(["fakepkg.a"], "fakepkg")
    (package / "unrelated.py").write_text("z = 5  # edited\n")
    assert source_hash(["fakepkg.a"], "fakepkg") == before
    (package / "d.py").write_text("y = 30  # edited, two imports away\n")
    assert source_hash(["fakepkg.a"], "fakepkg") != before
    assert not [m for m in sys.modules if m.startswith("fakepkg")]  # nothing was imported


def test_extractor_code_versions_cover_their_own_modules():
    text = source_closure(["brainalign.features.text", "brainalign.features.extract"])
    assert {
        "brainalign.features.text",
        "brainalign.features.extractors",
        "brainalign.features.loading",
        "brainalign.features.extract",
        "brainalign.features.stream",
        "brainalign.features.align",
    } <= set(text)
    assert "brainalign.features.clip" not in text and "brainalign.encoding" not in text
    clip = source_closure(["brainalign.features.clip"])
    assert "brainalign.features.contrastive" in clip
    hashes = {name: extractor_code_hash(name) for name in ("text_encoder", "clip", "siglip")}
    assert len(set(hashes.values())) == 3 and all(len(h) == 64 for h in hashes.values())


# --- keys -------------------------------------------------------------------------------


def test_key_ignores_the_name_and_runtime_settings_but_not_the_science(stim, checkpoint):
    key = feature_cache_key(spec(checkpoint), stim, "concepts", "sentence")[0]
    same = [
        spec(checkpoint, name="renamed"),
        spec(checkpoint, batch_size=2, device="cpu"),
    ]
    for other in same:
        assert feature_cache_key(other, stim, "concepts", "sentence")[0] == key
    different = [
        spec(checkpoint, revision="v2"),
        spec(checkpoint, pooling="mean"),
        spec(checkpoint, layers=[0, 1]),
        spec(checkpoint, dtype="bfloat16"),
        spec(checkpoint, attention_heads=True),
        spec(checkpoint, trust_remote_code=True),
        spec(checkpoint, extractor="causal_lm"),
    ]
    keys = {feature_cache_key(s, stim, "concepts", "sentence")[0] for s in different}
    assert len(keys) == len(different) and key not in keys
    assert feature_cache_key(spec(checkpoint), stim, "concepts", "word")[0] != key
    assert feature_cache_key(spec(checkpoint), stim, "naturalistic", "sentence")[0] != key


def test_key_follows_the_stimuli_the_condition_reads(stim, noise_dir, tmp_path):
    clip = ModelSpec.from_config("c", {"extractor": "clip", "source": "tiny"}, seed=0)
    copy = shutil.copytree(stim, tmp_path / "stim")

    def keys(root, noise):
        return {
            c: feature_cache_key(clip, root, "concepts", c, noise)[0]
            for c in ("sentence", "picture", "noise")
        }

    before = keys(stim, noise_dir)
    assert keys(copy, noise_dir) == before  # a copy has the same content
    image = copy / "images" / "dog.png"
    image.write_bytes(image.read_bytes() + b"\0")
    after = keys(copy, noise_dir)
    assert after["sentence"] == before["sentence"]  # text only: images are not read
    assert after["picture"] != before["picture"]
    noise2 = tmp_path / "noise2"
    make_noise_images(stim, noise2, seed=4)
    assert keys(stim, noise2)["noise"] != before["noise"]
    assert keys(stim, noise2)["picture"] == before["picture"]
    sentences = pd.read_csv(copy / "sentences.tsv", sep="\t")
    sentences.loc[0, "sentence"] = sentences.loc[0, "sentence"].replace(".", "!")
    sentences.to_csv(copy / "sentences.tsv", sep="\t", index=False)
    assert keys(copy, noise_dir)["sentence"] != before["sentence"]
    with pytest.raises(ValueError, match=r"condition 'noise' shows model 'c' the noise images"):
        feature_cache_key(clip, stim, "concepts", "noise")


def test_key_of_a_local_folder_follows_its_content(stim, checkpoint, tmp_path):
    folder = shutil.copytree(checkpoint, tmp_path / "bert")
    key = feature_cache_key(spec(folder), stim, "concepts", "sentence")[0]
    assert feature_cache_key(spec(checkpoint), stim, "concepts", "sentence")[0] != key  # path
    random = feature_cache_key(spec(folder, source="random"), stim, "concepts", "sentence")[0]
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\1\1\1\1")  # "fine-tuned" again
    assert feature_cache_key(spec(folder), stim, "concepts", "sentence")[0] != key
    # a random init reads the configuration only
    assert (
        feature_cache_key(spec(folder, source="random"), stim, "concepts", "sentence")[0] == random
    )


def test_key_of_a_hub_id_follows_the_cached_snapshot(stim, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--tiny"
    commits = ["a" * 40, "b" * 40]
    for commit in commits:
        (repo / "snapshots" / commit).mkdir(parents=True)
        (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    hub = ModelSpec.from_config("h", {"extractor": "text_encoder", "id": "org/tiny"}, seed=0)
    keys = []
    for commit in commits:
        (repo / "refs" / "main").write_text(commit)
        key, record = feature_cache_key(hub, stim, "concepts", "sentence")
        assert record["model_files"] == f"commit:{commit}"
        keys.append(key)
    assert keys[0] != keys[1]  # "main" moved: the features are stale
    pinned = ModelSpec.from_config(
        "h", {"extractor": "text_encoder", "id": "org/tiny", "revision": commits[0]}, seed=0
    )
    assert feature_cache_key(pinned, stim, "concepts", "sentence")[1]["model_files"] == (
        f"commit:{commits[0]}"
    )
    missing = ModelSpec.from_config("m", {"extractor": "text_encoder", "id": "org/none"}, seed=0)
    with pytest.raises(
        ValueError, match=r"model id 'org/none' \(revision main\) is not in the local"
    ):
        feature_cache_key(missing, stim, "concepts", "sentence")


# --- hits and misses ----------------------------------------------------------------------


def test_same_inputs_hit_and_revision_or_code_changes_miss(
    stim, checkpoint, tmp_path, monkeypatch, caplog
):
    cache = FeatureCache(tmp_path / "cache")
    first = tmp_path / "first.safetensors"
    meta = extract_features_file(spec(checkpoint), stim, "concepts", "sentence", first, cache=cache)
    assert cache.path(meta["cache_key"]).is_file()
    assert cache.path(meta["cache_key"]).with_suffix(".json").is_file()
    plain = tmp_path / "plain.safetensors"
    extract_features_file(spec(checkpoint), stim, "concepts", "sentence", plain)  # no cache
    assert plain.read_bytes() == first.read_bytes()

    no_model_loading(monkeypatch)
    hit = tmp_path / "hit.safetensors"
    with caplog.at_level(logging.INFO):
        extract_features_file(spec(checkpoint), stim, "concepts", "sentence", hit, cache=cache)
    assert "feature cache hit" in caplog.text
    assert hit.read_bytes() == first.read_bytes()  # a hit writes what a miss writes
    renamed = tmp_path / "renamed.safetensors"
    extract_features_file(
        spec(checkpoint, name="other"), stim, "concepts", "sentence", renamed, cache=cache
    )
    arrays, metadata = load_arrays(renamed)
    assert metadata["model"] == "other"
    assert np.array_equal(arrays["layer-02"], load_arrays(first)[0]["layer-02"])

    with pytest.raises(RuntimeError, match="model 'bert' was loaded"):  # a miss loads the model
        extract_features_file(
            spec(checkpoint, revision="v2"), stim, "concepts", "sentence", hit, cache=cache
        )
    monkeypatch.setattr(cache_module, "extractor_code_hash", lambda name: "0" * 64)
    with pytest.raises(RuntimeError, match="model 'bert' was loaded"):
        extract_features_file(spec(checkpoint), stim, "concepts", "sentence", hit, cache=cache)


def test_unreadable_entry_is_a_miss(stim, checkpoint, tmp_path, caplog):
    cache = FeatureCache(tmp_path / "cache")
    out = tmp_path / "out.safetensors"
    key = extract_features_file(spec(checkpoint), stim, "concepts", "sentence", out, cache=cache)[
        "cache_key"
    ]
    expected = out.read_bytes()
    cache.path(key).write_bytes(b"\x05\x00\x00")  # truncated
    with caplog.at_level(logging.WARNING):
        extract_features_file(spec(checkpoint), stim, "concepts", "sentence", out, cache=cache)
    assert "is unreadable" in caplog.text
    assert out.read_bytes() == expected and cache.path(key).read_bytes() == expected


def test_cache_folder_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert FeatureCache.from_env() is None
    monkeypatch.setenv(CACHE_ENV, "  ")
    assert FeatureCache.from_env() is None
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert FeatureCache.from_env().root == tmp_path
    assert FeatureCache(tmp_path).path("ab" + "0" * 62) == tmp_path / "ab" / (
        "ab" + "0" * 62 + ".safetensors"
    )
