"""The "clip" extractor: a transformers ``CLIPModel``, text tower and vision tower.

Text is pooled per ``spec.pooling`` over the text tower's hidden states; images
are pooled on the first (CLS) token of the vision tower's hidden states. Hidden
state 0 is the embedding output (for the vision tower: after CLIP's
``pre_layrnorm``, as transformers reports it).

Paper 000 combines the two modalities by summing the *projected* embeddings,
which live in one shared space. Per layer there is no shared space: the towers'
hidden sizes differ in real CLIP (512 text vs 768 vision for ViT-B/32), so the
"picture" condition concatenates ``[text_l, image_l]`` instead (done in
:mod:`brainalign.features.extract`). Layer ``l`` must therefore exist in both
towers: models whose towers differ in depth (e.g. ViT-L/14: 12 text, 24 vision
blocks) are refused with a ValueError.

Images are preprocessed with PIL/numpy exactly as CLIP's image processor does
(shortest edge resized with bicubic resampling, centre crop, rescale to [0, 1],
normalise with the CLIP mean/std), reading the sizes and statistics from the
model's ``preprocessor_config.json``; this keeps the result independent of
whether torchvision is installed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel
from transformers.utils import cached_file

from brainalign.features.extractors import Architecture, TransformersExtractor
from brainalign.features.registry import ModelSpec, register_extractor

__all__ = ["ClipExtractor", "ImagePreprocessing", "tiny_clip_config", "CLIP_MEAN", "CLIP_STD"]

logger = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
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


def _read_sizes(cfg: dict[str, Any], image_size: int) -> tuple[int, bool, tuple[int, int]]:
    """(edge, square, crop) from a preprocessor config.

    ``size`` is either ``{"shortest_edge": n}`` (aspect-preserving resize), ``{"height": h,
    "width": w}`` (resize to a square, ``square=True``) or a bare int (shortest edge).
    """
    size = cfg.get("size", image_size)
    square = isinstance(size, dict) and "shortest_edge" not in size
    if isinstance(size, dict):
        edge = int(size["height"] if square else size["shortest_edge"])
    else:
        edge = int(size)
    crop = cfg.get("crop_size", edge)
    if isinstance(crop, dict):
        return edge, square, (int(crop["height"]), int(crop["width"]))
    return edge, square, (int(crop), int(crop))


@dataclass(frozen=True)
class ImagePreprocessing:
    """CLIP image preprocessing in PIL/numpy.

    Attributes
    ----------
    shortest_edge : int
        The shorter image side is resized to this, keeping the aspect ratio.
    crop : tuple of int
        (height, width) of the centre crop.
    mean, std : tuple of float
        Per-channel statistics of the normalisation (after rescaling to [0, 1]).
    resample : int
        PIL resampling filter (3 = bicubic).
    square : bool
        Resize to ``shortest_edge`` x ``shortest_edge`` ignoring the aspect ratio.
    """

    shortest_edge: int
    crop: tuple[int, int]
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD
    resample: int = int(Image.Resampling.BICUBIC)
    square: bool = False

    @classmethod
    def from_files(cls, files: str, revision: str | None, image_size: int) -> ImagePreprocessing:
        """Read ``preprocessor_config.json`` of a model folder or cached hub id."""
        path = cached_file(
            files,
            "preprocessor_config.json",
            revision=revision,
            local_files_only=True,
            _raise_exceptions_for_missing_entries=False,
        )
        if path is None:
            logger.warning(
                "no preprocessor_config.json for '%s'; using %d px and the CLIP mean/std",
                files,
                image_size,
            )
            return cls(shortest_edge=image_size, crop=(image_size, image_size))
        cfg = json.loads(Path(path).read_text())
        edge, square, crop = _read_sizes(cfg, image_size)
        return cls(
            shortest_edge=edge,
            crop=crop,
            mean=tuple(cfg.get("image_mean", CLIP_MEAN)),
            std=tuple(cfg.get("image_std", CLIP_STD)),
            resample=int(cfg.get("resample", cls.resample)),
            square=square,
        )

    def __call__(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Pixel values, float32 array of shape (n_images, 3, crop_height, crop_width)."""
        return np.stack([self._one(image) for image in images]).astype(np.float32)

    def _one(self, image: Image.Image) -> np.ndarray:
        image = image.convert("RGB")
        width, height = image.size
        short, long = min(width, height), max(width, height)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        size = (new_short, new_long) if width <= height else (new_long, new_short)
        if self.square:
            size = (self.shortest_edge, self.shortest_edge)
        resized = np.asarray(image.resize(size, resample=self.resample))
        top = (resized.shape[0] - self.crop[0]) // 2
        left = (resized.shape[1] - self.crop[1]) // 2
        if top < 0 or left < 0:
            raise ValueError(
                f"crop {self.crop} is larger than the resized image {resized.shape[:2]}; "
                "the preprocessor config's crop_size must not exceed its size"
            )
        crop = resized[top : top + self.crop[0], left : left + self.crop[1]]
        scaled = (crop.astype(np.float64) / 255.0).astype(np.float32)
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        return ((scaled - mean) / std).transpose(2, 0, 1)


@register_extractor("clip")
class ClipExtractor(TransformersExtractor):
    """CLIP text and vision towers; modalities {"text", "image"}."""

    modalities = frozenset({"text", "image"})
    architecture = Architecture(
        model_class=CLIPModel, from_config=CLIPModel, tiny_config=tiny_clip_config
    )

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        image_size = int(self.model.config.vision_config.image_size)
        if self.files is None:
            self.preprocessing = ImagePreprocessing(image_size, (image_size, image_size))
        else:
            self.preprocessing = ImagePreprocessing.from_files(
                self.files, spec.revision, image_size
            )

    def _count_layers(self) -> int:
        text = int(self.model.config.text_config.num_hidden_layers)
        vision = int(self.model.config.vision_config.num_hidden_layers)
        if text != vision:
            raise ValueError(
                f"model '{self.spec.name}': the clip extractor concatenates text and image "
                f"hidden states layer by layer and needs towers of equal depth; got {text} "
                f"text and {vision} vision layers. Use a CLIP whose towers match."
            )
        return text + 1

    def _text_config(self) -> Any:
        return self.model.config.text_config

    def text_width(self, layer: int) -> int:
        """Text-tower hidden size."""
        return int(self.model.config.text_config.hidden_size)

    def image_width(self, layer: int) -> int:
        """Vision-tower hidden size."""
        return int(self.model.config.vision_config.hidden_size)

    def _text_hidden_states(self, inputs: dict[str, torch.Tensor]) -> Sequence[torch.Tensor]:
        return self.model.text_model(**inputs, output_hidden_states=True).hidden_states

    def _pixel_values(self, images: list[Any]) -> np.ndarray:
        return self.preprocessing(images)

    def _image_hidden_states(self, pixel_values: torch.Tensor) -> Sequence[torch.Tensor]:
        outputs = self.model.vision_model(pixel_values=pixel_values, output_hidden_states=True)
        return outputs.hidden_states
