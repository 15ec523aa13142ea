"""The "vision_encoder" extractor: image-only transformers (ViT, DINOv2, BEiT...).

Images are preprocessed in PIL/numpy (:mod:`brainalign.features.images`) from the
model's ``preprocessor_config.json`` and pooled on the first (CLS) token of each
hidden state; hidden state 0 is the patch embedding output, pooled by the mean over
tokens (its CLS token is the learned CLS embedding, the same for every image). The
model reads images only, so it runs the conditions without text ("image", "vision").

:meth:`VisionEncoderExtractor.patch_states` returns the unpooled token states of one
layer: the grid features a vision-language encoder can take in place of detector
regions.

Tiny architectures (source "tiny", ``id``): ``vit`` (the default; ViT's processor:
square resize, bilinear, mean/std 0.5) and ``dinov2`` (ImageNet mean/std, bicubic).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import AutoModel, Dinov2Config, ViTConfig

from brainalign.features.extractors import (
    Architecture,
    TinyModel,
    TransformersExtractor,
    _batches,
)
from brainalign.features.images import (
    HALF_MEAN,
    HALF_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImagePreprocessing,
)
from brainalign.features.registry import register_extractor

__all__ = ["VisionEncoderExtractor", "tiny_vit_config", "tiny_dinov2_config"]

logger = logging.getLogger(__name__)

VIT_PREPROCESSING = ImagePreprocessing(
    224, (224, 224), HALF_MEAN, HALF_STD, int(Image.Resampling.BILINEAR), square=True
)
DINOV2_PREPROCESSING = ImagePreprocessing(
    256, (224, 224), IMAGENET_MEAN, IMAGENET_STD, int(Image.Resampling.BICUBIC)
)


def tiny_vit_config() -> Any:
    """A 2-block ViT of width 24 on 32x32 images in 8x8 patches."""
    return ViTConfig(
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        image_size=32,
        patch_size=8,
    )


def tiny_dinov2_config() -> Any:
    """A 3-block DINOv2 of width 24 on 32x32 images in 8x8 patches."""
    return Dinov2Config(
        hidden_size=24,
        num_hidden_layers=3,
        num_attention_heads=3,
        mlp_ratio=2,
        image_size=32,
        patch_size=8,
    )


@register_extractor("vision_encoder")
class VisionEncoderExtractor(TransformersExtractor):
    """Image encoder; modalities {"image"}; CLS-token pooling."""

    modalities = frozenset({"image"})
    architecture = Architecture(
        model_class=AutoModel,
        from_config=AutoModel.from_config,
        tiny_models={
            "vit": TinyModel(tiny_vit_config, None, VIT_PREPROCESSING),
            "dinov2": TinyModel(tiny_dinov2_config, None, DINOV2_PREPROCESSING),
        },
        default_tiny="vit",
        reads_text=False,
    )
    image_defaults = VIT_PREPROCESSING

    def _count_layers(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    def image_width(self, layer: int) -> int:
        """Hidden size (the same at every layer)."""
        return int(self.model.config.hidden_size)

    def _image_hidden_states(self, pixel_values: torch.Tensor) -> Sequence[torch.Tensor]:
        return self.model(pixel_values=pixel_values, output_hidden_states=True).hidden_states

    def patch_states(self, images: Sequence[Any], layer: int) -> np.ndarray:
        """Unpooled token states of one layer (CLS first, then patches in raster order).

        Returns
        -------
        ndarray of shape (n_images, n_tokens, n_features), float32
        """
        images = list(images)
        parts = []
        for part in _batches(len(images), self.spec.batch_size, "image batches"):
            pixels = torch.from_numpy(self._pixel_values(images[part]))
            with torch.inference_mode():
                states = self._image_hidden_states(pixels.to(self.device, self.dtype))[layer]
            parts.append(states.float().cpu().numpy())
        return np.concatenate(parts, axis=0)
