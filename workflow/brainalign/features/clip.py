"""The "clip" extractor: a transformers ``CLIPModel``, text tower and vision tower.

See :mod:`brainalign.features.contrastive` for the layer-wise concatenation of the
towers and the summed ``embeds`` pseudo-layer (paper 000). Layers index the text tower;
towers of unequal depth pair text layer ``l`` with the vision hidden state at the same
relative depth (``openai/clip-vit-large-patch14``: 12 text, 24 vision blocks, so layer
``l`` reads vision hidden state ``2 l``; layer 13 is ``embeds``). Images are pooled on the
first (CLS) token of the vision tower's hidden states (hidden state 0, taken after
CLIP's ``pre_layrnorm`` as transformers reports it, is pooled by the mean over tokens:
its CLS token is the same for every image); text per ``spec.pooling``.

Images are preprocessed with PIL/numpy exactly as CLIP's image processor does
(shortest edge resized with bicubic resampling, centre crop, rescale to [0, 1],
normalise with the CLIP mean/std), reading the sizes and statistics from the
model's ``preprocessor_config.json`` (:mod:`brainalign.features.images`); this
keeps the result independent of whether torchvision is installed.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import CLIPConfig, CLIPModel

from brainalign.features.contrastive import ContrastiveExtractor
from brainalign.features.extractors import Architecture
from brainalign.features.images import CLIP_MEAN, CLIP_STD, ImagePreprocessing
from brainalign.features.registry import register_extractor

__all__ = ["ClipExtractor", "ImagePreprocessing", "tiny_clip_config", "CLIP_MEAN", "CLIP_STD"]

logger = logging.getLogger(__name__)

# The tiny model uses the WordPiece tokenizer of all-MiniLM-L6-v2: [PAD]=0, [CLS]=101, [SEP]=102.
_WORDPIECE_IDS = {"pad_token_id": 0, "bos_token_id": 101, "eos_token_id": 102}


def tiny_clip_config() -> CLIPConfig:
    """A 2-block CLIP: text width 32, vision width 24, 32x32 images in 8x8 patches."""
    text = dict(
        vocab_size=30522,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=16,
        **_WORDPIECE_IDS,
    )
    vision = dict(
        hidden_size=24,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)


@register_extractor("clip")
class ClipExtractor(ContrastiveExtractor):
    """CLIP text and vision towers; modalities {"text", "image"}; embeds pseudo-layer."""

    architecture = Architecture(
        model_class=CLIPModel, from_config=CLIPModel, tiny_config=tiny_clip_config
    )
    image_defaults = ImagePreprocessing(shortest_edge=224, crop=(224, 224))

    @property
    def embed_width(self) -> int:
        """CLIP's ``projection_dim``."""
        return int(self.model.config.projection_dim)

    def _text_embeds(self, output: Any) -> torch.Tensor:
        return self.model.text_projection(output.pooler_output)

    def _image_embeds(self, output: Any) -> torch.Tensor:
        return self.model.visual_projection(output.pooler_output)
