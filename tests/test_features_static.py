"""The "static" extractor: word vectors read from a GloVe / word2vec text file."""

from __future__ import annotations

import numpy as np
import pytest

from brainalign.features import ModelSpec, extract_concept_features, load_extractor
from brainalign.features.cache import model_files_version
from brainalign.features.extract import supported_conditions
from brainalign.features.static import StaticExtractor, read_word_vectors
from tests._features_helpers import IMAGES

DIM = 5


def write_vectors(path, words, header=False, seed=0):
    """A GloVe-format file (word2vec's header line when ``header``); returns the vectors."""
    rng = np.random.default_rng(seed)
    vectors = {w: rng.standard_normal(DIM).round(4) for w in words}
    lines = [f"{len(words)} {DIM}"] if header else []
    lines += [f"{w} " + " ".join(f"{x:.4f}" for x in v) for w, v in vectors.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vectors


VOCAB = [
    "dog", "the", "chased", "other", "a", "barked", "i", "ate", "an", "apple", "then", "pie",
    "trees", "grow", "unbelievably", "it", "was", "good", "worked", "kiwi", "is", "green",
    "he", "said", "saxophones", "saxophone", "are", "loud", "play", "new york",
]  # fmt: skip


def static_model(path, pooling="word", **kwargs):
    spec = ModelSpec.from_config(
        "glove", {"extractor": "static", "id": str(path), "pooling": pooling}, seed=0
    )
    return StaticExtractor(spec, **kwargs) if kwargs else load_extractor(spec)


@pytest.mark.parametrize("header", [False, True])
def test_reader_reads_glove_and_word2vec_text_formats(tmp_path, header):
    vectors = write_vectors(tmp_path / "v.txt", VOCAB, header=header)
    index, matrix = read_word_vectors(tmp_path / "v.txt")
    assert matrix.shape == (len(VOCAB), DIM) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix[index["new york"]], vectors["new york"], atol=1e-6)
    np.testing.assert_allclose(matrix[index["kiwi"]], vectors["kiwi"], atol=1e-6)


def test_concept_word_vector_in_word_and_sentence_conditions(tmp_path, stim):
    vectors = write_vectors(tmp_path / "v.txt", VOCAB)
    model = static_model(tmp_path / "v.txt")
    assert supported_conditions(model) == ["sentence", "word", "language"]
    word, meta = extract_concept_features(model, stim, "word")
    sentence, _ = extract_concept_features(model, stim, "sentence")
    expected = np.stack([vectors[c] for c in IMAGES])
    np.testing.assert_allclose(word["layer-00"], expected, atol=1e-6)
    assert meta["layers"] == [0] and list(word) == ["layer-00"]
    # sentence, pooling "word": the span's word, lower-cased ("Saxophones" in one context)
    sax = (vectors["saxophones"] + vectors["saxophone"]) / 2
    np.testing.assert_allclose(sentence["layer-00"][:4], expected[:4], atol=1e-6)
    np.testing.assert_allclose(sentence["layer-00"][4], sax, atol=1e-6)


def test_mean_pooling_averages_the_sentences_word_vectors(tmp_path):
    vectors = write_vectors(tmp_path / "v.txt", VOCAB)
    model = static_model(tmp_path / "v.txt", pooling="mean")
    out = model.encode_text(["The dog chased the other dog.", "A kiwi is green."], None, [0])[0]
    first = np.mean([vectors[w] for w in "the dog chased the other dog".split()], axis=0)
    second = np.mean([vectors[w] for w in "a kiwi is green".split()], axis=0)
    np.testing.assert_allclose(out, np.stack([first, second]), atol=1e-6)


def test_out_of_vocabulary_words_are_listed_unless_a_policy_is_set(tmp_path):
    vectors = write_vectors(tmp_path / "v.txt", VOCAB)
    sentences = ["The zorblat chased the dog.", "A kiwi."]
    with pytest.raises(ValueError, match=r"1 word\(s\) without a vector .*: zorblat; add them"):
        static_model(tmp_path / "v.txt", pooling="mean").encode_text(sentences, None, [0])
    skip = static_model(tmp_path / "v.txt", "mean", oov="skip").encode_text(sentences, None, [0])
    known = np.mean([vectors[w] for w in ("the", "chased", "the", "dog")], axis=0)
    np.testing.assert_allclose(skip[0][0], known, atol=1e-6)
    zero = static_model(tmp_path / "v.txt", "mean", oov="zero").encode_text(sentences, None, [0])
    np.testing.assert_allclose(zero[0][0], known * 4 / 5, atol=1e-6)


def test_bad_inputs_give_one_line_errors(tmp_path):
    (tmp_path / "bad.txt").write_text("dog 1 2 3\ncat 1 2\n")
    with pytest.raises(ValueError, match=r"line 2: expected a word and 3 numbers; got 3 fields"):
        read_word_vectors(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="is not a file"):
        static_model(tmp_path / "missing.txt")
    write_vectors(tmp_path / "v.txt", VOCAB)
    with pytest.raises(ValueError, match="one layer, 0"):
        static_model(tmp_path / "v.txt").encode_text(["A dog."], [(2, 5)], [1])
    with pytest.raises(ValueError, match="has no image input"):
        static_model(tmp_path / "v.txt").encode_images([], [0])


def test_tiny_source_is_seeded_and_the_file_is_in_the_cache_key(tmp_path):
    tiny = {"extractor": "static", "source": "tiny"}
    a = load_extractor(ModelSpec.from_config("s", tiny, seed=1)).encode_text(["dog"], [(0, 3)], [0])
    b = load_extractor(ModelSpec.from_config("s", tiny, seed=2)).encode_text(["dog"], [(0, 3)], [0])
    assert a[0].shape == (1, 16) and not np.allclose(a[0], b[0])
    write_vectors(tmp_path / "v.txt", VOCAB)
    spec = ModelSpec.from_config("g", {"extractor": "static", "id": str(tmp_path / "v.txt")}, 0)
    before = model_files_version(spec)
    write_vectors(tmp_path / "v.txt", VOCAB, seed=1)
    assert before.startswith("sha256:") and model_files_version(spec) != before


def test_static_vectors_have_no_units_to_capture():
    spec = ModelSpec.from_config(
        "glove", {"extractor": "static", "source": "tiny", "mlp_neurons": True}, seed=0
    )
    with pytest.raises(ValueError, match=r"^model 'glove': 'mlp_neurons' is true but static word "
                       r"vectors have no heads or neurons; set it to false$"):
        StaticExtractor(spec)
