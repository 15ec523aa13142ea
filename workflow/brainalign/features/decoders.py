"""The "causal_lm" extractor: decoder-only language models (GPT-2, LLaMA, Mistral...).

The base model (``AutoModel``: no language-model head) is run with
``output_hidden_states``; hidden state 0 is the embedding output, hidden state ``l``
the output of block ``l`` (transformers applies the final norm to the last one).
Pooling "word" averages the target word's own tokens (a causal model's word tokens
see only the words before them); "last" takes the last token of the sentence, the
usual summary of a decoder. Sentences are padded on the right, so the positions of
real tokens do not depend on the batch; the pad token is the end-of-text token when
the tokenizer has none.

Tiny architectures (source "tiny", ``id``): ``gpt2`` (the default; byte-level BPE,
``Ġ`` leading-space tokens, no special tokens) and ``llama`` (LLaMA-2 layout:
grouped-query attention, RMSNorm, rotary positions; SentencePiece-style BPE with
``▁`` leading-space tokens and ``<s>`` prepended); both tokenizers are trained on a
fixed corpus (:mod:`brainalign.features.tiny_tokenizers`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from transformers import AutoModel, GPT2Config, LlamaConfig

from brainalign.features.extractors import Architecture, TinyModel, TransformersExtractor
from brainalign.features.registry import register_extractor
from brainalign.features.tiny_tokenizers import TINY_VOCAB

__all__ = ["CausalLMExtractor", "tiny_gpt2_config", "tiny_llama_config"]

logger = logging.getLogger(__name__)


def tiny_gpt2_config() -> Any:
    """A 2-block GPT-2 of width 32 for the tiny byte-level BPE (<|endoftext|> = 0)."""
    return GPT2Config(
        vocab_size=TINY_VOCAB,
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=128,
        bos_token_id=0,
        eos_token_id=0,
    )


def tiny_llama_config() -> Any:
    """A 2-block LLaMA of width 32: 4 query heads of 8, 2 key/value heads."""
    return LlamaConfig(
        vocab_size=TINY_VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
    )


@register_extractor("causal_lm")
class CausalLMExtractor(TransformersExtractor):
    """Decoder-only language model; modalities {"text"}; pooling per ``spec.pooling``."""

    modalities = frozenset({"text"})
    architecture = Architecture(
        model_class=AutoModel,
        from_config=AutoModel.from_config,
        tiny_models={
            "gpt2": TinyModel(tiny_gpt2_config, "gpt2"),
            "llama": TinyModel(tiny_llama_config, "llama"),
        },
        default_tiny="gpt2",
    )

    def _count_layers(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    def _text_config(self) -> Any:
        return self.model.config

    def text_width(self, layer: int) -> int:
        """Hidden size (the same at every layer)."""
        return int(self.model.config.hidden_size)

    def _text_hidden_states(self, inputs: dict[str, torch.Tensor]) -> Sequence[torch.Tensor]:
        return self.model(**inputs, output_hidden_states=True, use_cache=False).hidden_states
