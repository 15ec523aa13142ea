"""The "text_encoder" extractor: any transformers ``AutoModel`` text encoder.

BERT, RoBERTa, MiniLM, MPNet... (and decoder-only models such as GPT-2, whose
tokenizer then pads with its end-of-text token). Hidden state 0 is the embedding
output, hidden state ``l`` the output of transformer block ``l``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from transformers import AutoModel, BertConfig

from brainalign.features.extractors import Architecture, TransformersExtractor
from brainalign.features.registry import register_extractor

__all__ = ["TextEncoderExtractor", "tiny_text_config"]

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


@register_extractor("text_encoder")
class TextEncoderExtractor(TransformersExtractor):
    """Text encoder; modalities {"text"}; pooling per ``spec.pooling``."""

    modalities = frozenset({"text"})
    architecture = Architecture(
        model_class=AutoModel, from_config=AutoModel.from_config, tiny_config=tiny_text_config
    )

    def _count_layers(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    def _text_config(self) -> Any:
        return self.model.config

    def text_width(self, layer: int) -> int:
        """Hidden size (the same at every layer)."""
        return int(self.model.config.hidden_size)

    def _text_hidden_states(self, inputs: dict[str, torch.Tensor]) -> Sequence[torch.Tensor]:
        return self.model(**inputs, output_hidden_states=True).hidden_states
