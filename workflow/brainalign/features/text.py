"""The "text_encoder" extractor: any transformers ``AutoModel`` text encoder.

BERT, RoBERTa, MiniLM, MPNet... Hidden state 0 is the embedding output, hidden
state ``l`` the output of transformer block ``l``. Tiny architectures (source
"tiny", ``id``): ``bert`` (the default; the real WordPiece tokenizer of
all-MiniLM-L6-v2) and ``roberta`` (a byte-level BPE tokenizer trained on a fixed
corpus, see :mod:`brainalign.features.tiny_tokenizers`). Decoder-only models have
their own extractor, "causal_lm" (:mod:`brainalign.features.decoders`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from transformers import AutoModel, BertConfig, RobertaConfig

from brainalign.features.extractors import Architecture, TinyModel, TransformersExtractor
from brainalign.features.registry import register_extractor
from brainalign.features.tiny_tokenizers import TINY_VOCAB

__all__ = ["TextEncoderExtractor", "tiny_text_config", "tiny_roberta_config"]

logger = logging.getLogger(__name__)


def tiny_text_config() -> Any:
    """A 2-block BERT of width 32, sized for the 30522-token WordPiece vocabulary."""
    return BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=0,
    )


def tiny_roberta_config() -> Any:
    """A 2-block RoBERTa of width 32 for the tiny byte-level BPE (RoBERTa's token ids)."""
    return RobertaConfig(
        vocab_size=TINY_VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=514,  # 512 tokens + RoBERTa's padding offset of 2
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )


@register_extractor("text_encoder")
class TextEncoderExtractor(TransformersExtractor):
    """Text encoder; modalities {"text"}; pooling per ``spec.pooling``."""

    modalities = frozenset({"text"})
    architecture = Architecture(
        model_class=AutoModel,
        from_config=AutoModel.from_config,
        tiny_config=tiny_text_config,
        tiny_models={
            "bert": TinyModel(tiny_text_config, "wordpiece"),
            "roberta": TinyModel(tiny_roberta_config, "roberta"),
        },
        default_tiny="bert",
    )

    def _count_layers(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    def _text_config(self) -> Any:
        return self.model.config

    @property
    def max_tokens(self) -> int:
        """Longest input; RoBERTa-style position ids start after the padding index."""
        limit = super().max_tokens
        if getattr(self.model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            positions = int(self.model.config.max_position_embeddings)
            limit = min(limit, positions - int(self.model.config.pad_token_id) - 1)
        return limit

    def text_width(self, layer: int) -> int:
        """Hidden size (the same at every layer)."""
        return int(self.model.config.hidden_size)

    def _text_hidden_states(self, inputs: dict[str, torch.Tensor]) -> Sequence[torch.Tensor]:
        return self.model(**inputs, output_hidden_states=True).hidden_states
