"""The "static" extractor: static word embeddings (GloVe, word2vec text format) from a file.

The model's ``id`` is a local text file with one word per line followed by its
vector (``word v1 v2 ...``, GloVe's format); a first line of two integers
(``n_words dim``, word2vec's text header) is skipped. Tokens before the last ``dim``
numbers form the word (GloVe 840B has words with spaces). Source "pretrained" reads
the file; source "tiny" needs no file: each word gets a seeded random 16-d vector
(a hash of the word and ``seed``), a stand-in for tests and the demo.

The model has one layer, 0, and reads text only (conditions ``sentence``, ``word``,
``language``). Pooling (paper 000 takes the concept word's own vector):

- "word" (default): the vector of the span's word (``sentence[char_start:char_end]``
  stripped of surrounding punctuation): in the concept task the concept word's
  vector, the same in every context, so ``sentence`` equals ``word``;
- "mean": the mean of the vectors of the sentence's words (``\\w+`` runs, with
  internal apostrophes and hyphens kept); "mean_all" is the same;
- "first"/"last": the first/last word's vector.

Lookup is exact, then lower-cased (GloVe's vocabulary is lower case). Out-of-vocabulary
words raise one ValueError listing them, unless ``oov`` (a constructor argument,
default "error") is "zero" (a zero vector) or "skip" (left out of a mean; a pooled
row with no known word is still an error).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainalign.features.registry import ModelSpec, register_extractor

__all__ = ["StaticExtractor", "read_word_vectors", "sentence_words", "OOV_POLICIES"]

logger = logging.getLogger(__name__)

OOV_POLICIES = ("error", "zero", "skip")
TINY_DIM = 16
_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")


def _is_header(fields: list[str]) -> bool:
    return len(fields) == 2 and all(f.isdigit() for f in fields)


def read_word_vectors(path: str | Path) -> tuple[dict[str, int], np.ndarray]:
    """Read a GloVe-format file (optionally with word2vec's header line).

    Parameters
    ----------
    path : path
        Text file, UTF-8, one ``word v1 ... v_dim`` per line.

    Returns
    -------
    index : dict of str to int
        Row of each word (the first occurrence wins).
    vectors : ndarray of shape (n_words, dim), float32

    Raises
    ------
    ValueError
        When the file is missing, empty, or its lines have different numbers of values.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"static word vectors '{path}' is not a file; set the model's 'id' to a local "
            "GloVe-format text file (word v1 v2 ... per line)"
        )
    index: dict[str, int] = {}
    rows: list[np.ndarray] = []
    dim = None
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").rstrip().split(" ")
            if number == 1 and _is_header(fields) or fields == [""]:
                continue
            if dim is None:
                dim = len(fields) - 1
            if len(fields) < dim + 1 or dim < 1:
                raise ValueError(
                    f"'{path}' line {number}: expected a word and {dim} numbers; got "
                    f"{len(fields)} fields. Fix or regenerate the vector file."
                )
            word = " ".join(fields[:-dim])
            if word not in index:
                index[word] = len(rows)
                rows.append(np.asarray(fields[-dim:], dtype=np.float32))
    if not rows:
        raise ValueError(f"'{path}' holds no word vectors; expected lines 'word v1 v2 ...'")
    logger.info("read %d word vectors of dimension %d from %s", len(rows), dim, path)
    return index, np.stack(rows)


def sentence_words(sentence: str) -> list[tuple[int, int]]:
    """Character spans of the words of ``sentence`` (``\\w+`` runs joined by ' or -)."""
    return [m.span() for m in _WORD.finditer(sentence)]


def _tiny_vector(word: str, seed: int) -> np.ndarray:
    digest = hashlib.sha256(f"{seed}\0{word.lower()}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return rng.standard_normal(TINY_DIM).astype(np.float32)


@register_extractor("static")
class StaticExtractor:
    """Static word vectors; modalities {"text"}; one layer (0).

    Parameters
    ----------
    spec : ModelSpec
        Source "pretrained" (``id``: the vector file) or "tiny".
    oov : {"error", "zero", "skip"}
        Out-of-vocabulary policy (see the module docstring).
    """

    modalities = frozenset({"text"})
    n_layers = 1

    def __init__(self, spec: ModelSpec, oov: str = "error") -> None:
        if oov not in OOV_POLICIES:
            raise ValueError(f"'oov' must be one of {', '.join(OOV_POLICIES)}; got {oov!r}")
        if spec.source not in ("pretrained", "tiny"):
            raise ValueError(
                f"model '{spec.name}': the static extractor reads a vector file (source "
                f"'pretrained', id: the file) or makes tiny vectors (source 'tiny'); got "
                f"source '{spec.source}'. Edit the model's entry in config/config.yaml."
            )
        units = [key for key in ("attention_heads", "mlp_neurons") if getattr(spec, key, False)]
        if units:
            raise ValueError(
                f"model '{spec.name}': {', '.join(repr(k) for k in units)} is true but static "
                "word vectors have no heads or neurons; set it to false"
            )
        self.spec, self.oov = spec, oov
        self.pseudo_layers: dict[int, str] = {}
        if spec.source == "tiny":
            self.index, self.vectors, self.dim = None, None, TINY_DIM
        else:
            self.index, self.vectors = read_word_vectors(spec.id)
            self.dim = int(self.vectors.shape[1])

    def text_width(self, layer: int) -> int:
        """The vectors' dimension."""
        return self.dim

    def lookup(self, word: str) -> np.ndarray | None:
        """The vector of ``word`` (exact, then lower case), or None when unknown."""
        if self.index is None:
            return _tiny_vector(word, self.spec.seed)
        for key in (word, word.lower()):
            if key in self.index:
                return self.vectors[self.index[key]]
        return None

    def _span_words(self, sentence: str, span: tuple[int, int]) -> list[str]:
        start, end = span
        pooling = self.spec.pooling
        if pooling == "word":
            target = sentence[start:end]
            words = [target[s:e] for s, e in sentence_words(target)]
            return [" ".join(words)] if words else []
        words = [sentence[s:e] for s, e in sentence_words(sentence)]
        if pooling in ("first", "last") and words:
            return [words[0] if pooling == "first" else words[-1]]
        return words

    def _pool(self, words: list[str], unknown: list[str], where: str) -> np.ndarray:
        found = [self.lookup(w) for w in words]
        unknown += [w for w, v in zip(words, found, strict=True) if v is None]
        if self.oov == "zero":
            found = [np.zeros(self.dim, np.float32) if v is None else v for v in found]
        known = [v for v in found if v is not None]
        if not known:
            if self.oov == "error":
                return np.zeros(self.dim, np.float32)  # reported with the others
            raise ValueError(
                f"model '{self.spec.name}': no word of {where!r} has a vector (pooling "
                f"'{self.spec.pooling}'); add the words to the vector file or change the stimulus"
            )
        return np.mean(np.stack(known).astype(np.float64), axis=0).astype(np.float32)

    def encode_text_spans(
        self,
        sentences: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """One pooled vector per span, per ``spec.pooling``.

        Returns
        -------
        dict of int to ndarray of shape (n_spans_total, dim), float32
            The single layer 0; rows ordered sentence by sentence, then span by span.
        """
        self._check_layers(layers)
        rows, unknown = [], []
        for sentence, sentence_spans in zip(sentences, spans, strict=True):
            for span in sentence_spans:
                rows.append(self._pool(self._span_words(sentence, span), unknown, sentence))
        if unknown and self.oov == "error":
            missing = sorted(set(unknown))
            raise ValueError(
                f"model '{self.spec.name}': {len(missing)} word(s) without a vector in "
                f"'{self.spec.id}': {', '.join(missing[:20])}; add them to the file or "
                "choose an out-of-vocabulary policy ('zero' or 'skip')"
            )
        if unknown:
            logger.warning("%d out-of-vocabulary words (policy %s)", len(unknown), self.oov)
        matrix = np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)
        return {0: matrix.astype(np.float32)} if 0 in layers else {}

    def encode_text(
        self,
        sentences: Sequence[str],
        spans: Sequence[tuple[int, int]] | None,
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """One row per sentence (around ``spans[i]`` for pooling "word")."""
        if spans is None:
            if self.spec.pooling == "word":
                raise ValueError("pooling 'word' needs 'spans' (the target word of each sentence)")
            spans = [(0, len(s)) for s in sentences]
        return self.encode_text_spans(sentences, [[tuple(s)] for s in spans], layers)

    def encode_images(self, images: Sequence[Any], layers: Sequence[int]) -> dict[int, np.ndarray]:
        """Not available: static word vectors read text only."""
        raise ValueError(
            f"model '{self.spec.name}' (extractor 'static') has no image input; its "
            "modalities are text"
        )

    def _check_layers(self, layers: Sequence[int]) -> None:
        if any(int(layer) != 0 for layer in layers):
            raise ValueError(
                f"model '{self.spec.name}': static word vectors have one layer, 0; got "
                f"{list(layers)}. Set the model's 'layers' to [0] or \"all\"."
            )
