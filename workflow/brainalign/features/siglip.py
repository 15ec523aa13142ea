"""The "siglip" extractor: a transformers ``SiglipModel`` (SigLIP, fixed-resolution SigLIP 2).

Like CLIP (see :mod:`brainalign.features.contrastive`: per-layer concatenation of
the towers, summed ``embeds`` pseudo-layer), with SigLIP's own conventions:

- the vision tower has no CLS token: images are pooled by the mean over patches at
  every hidden state (the embeds pseudo-layer uses SigLIP's attention-pooling head);
- sentences are padded to the model's length (``padding="max_length"``, as SigLIP was
  trained and as its documentation requires), because the text embedding is read at
  the last position; real tokens attend only to real tokens, so the hidden states of
  the words do not depend on the padding;
- pooling "word" needs offsets, i.e. a fast tokenizer: the original SigLIP checkpoints
  ship a slow SentencePiece tokenizer (use pooling "mean" or "last" with them); the
  fixed-resolution SigLIP 2 checkpoints (e.g. ``google/siglip2-base-patch16-224``)
  load as ``SiglipModel`` with a fast tokenizer.

The tiny model (source "tiny") uses the WordPiece tokenizer of all-MiniLM-L6-v2.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from PIL import Image
from transformers import SiglipConfig, SiglipModel

from brainalign.features.contrastive import ContrastiveExtractor
from brainalign.features.extractors import Architecture
from brainalign.features.images import HALF_MEAN, HALF_STD, ImagePreprocessing
from brainalign.features.registry import ModelSpec, register_extractor

__all__ = ["SiglipExtractor", "tiny_siglip_config"]

logger = logging.getLogger(__name__)


def tiny_siglip_config() -> SiglipConfig:
    """A 2-block SigLIP: text width 32 (projected to 24), vision width 24, 32x32 images."""
    text = dict(
        vocab_size=30522,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
        projection_size=24,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
    )
    vision = dict(
        hidden_size=24,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    return SiglipConfig(text_config=text, vision_config=vision)


@register_extractor("siglip")
class SiglipExtractor(ContrastiveExtractor):
    """SigLIP text and vision towers; modalities {"text", "image"}; embeds pseudo-layer."""

    architecture = Architecture(
        model_class=SiglipModel, from_config=SiglipModel, tiny_config=tiny_siglip_config
    )
    image_pooling = "mean"
    text_padding = "max_length"
    image_defaults = ImagePreprocessing(
        224, (224, 224), HALF_MEAN, HALF_STD, int(Image.Resampling.BICUBIC), square=True
    )

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        text = int(getattr(self._text_config(), "projection_size", 0) or 0)
        vision = int(self._image_config().hidden_size)
        if text != vision:
            raise ValueError(
                f"model '{spec.name}': SigLIP's text embedding ({text}) and image embedding "
                f"({vision}) must have one width to be summed; got a mismatched checkpoint"
            )

    @property
    def embed_width(self) -> int:
        """The vision hidden size (= the text head's ``projection_size``)."""
        return int(self._image_config().hidden_size)

    def _text_embeds(self, output: Any) -> torch.Tensor:
        return output.pooler_output

    def _image_embeds(self, output: Any) -> torch.Tensor:
        return output.pooler_output
