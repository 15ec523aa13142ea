"""Image preprocessing in PIL/numpy, shared by every extractor that reads images.

Transformers' image processors are reproduced without torchvision: resize (shortest
edge keeping the aspect ratio, or to a square), centre crop, rescale to [0, 1] and
normalise with per-channel statistics. Sizes, statistics and the resampling filter
are read from a model's ``preprocessor_config.json``; tiny models use the defaults
of their family (:class:`ImagePreprocessing` fields).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "ImagePreprocessing",
    "open_rgb",
    "CLIP_MEAN",
    "CLIP_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "HALF_MEAN",
    "HALF_STD",
]

logger = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)  # ViT, SigLIP
HALF_STD = (0.5, 0.5, 0.5)


def open_rgb(path: str | Path) -> Image.Image:
    """A stimulus image read in full and converted to RGB, or one line naming the file.

    PIL otherwise fails mid-extraction with "image file is truncated" or
    ``UnidentifiedImageError``, naming no stimulus table and no fix.
    """
    try:
        with Image.open(path) as handle:
            return handle.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for a broken file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        size = Path(path).stat().st_size if Path(path).exists() else 0
        raise ValueError(
            f"stimulus image '{path}' is not a readable image ({reason}; {size} bytes); "
            "expected a complete PNG / JPEG file. Replace it or fix its row in the stimuli tables."
        ) from None


def _read_sizes(cfg: Mapping[str, Any], image_size: int) -> tuple[int, bool, tuple[int, int]]:
    """(edge, square, crop) from a preprocessor config.

    ``size`` is either ``{"shortest_edge": n}`` (aspect-preserving resize), ``{"height": h,
    "width": w}`` (resize to a square, ``square=True``) or a bare int (shortest edge).
    Without a centre crop (``do_center_crop: false`` or no ``crop_size``) the crop is
    the resized square.
    """
    size = cfg.get("size", image_size)
    square = isinstance(size, dict) and "shortest_edge" not in size
    if isinstance(size, dict):
        edge = int(size["height"] if square else size["shortest_edge"])
    else:
        edge = int(size)
    crop = cfg.get("crop_size", edge) if cfg.get("do_center_crop", True) else edge
    if isinstance(crop, dict):
        return edge, square, (int(crop["height"]), int(crop["width"]))
    return edge, square, (int(crop), int(crop))


@dataclass(frozen=True)
class ImagePreprocessing:
    """An image processor in PIL/numpy.

    Attributes
    ----------
    shortest_edge : int
        The shorter image side is resized to this, keeping the aspect ratio.
    crop : tuple of int
        (height, width) of the centre crop.
    mean, std : tuple of float
        Per-channel statistics of the normalisation (after rescaling to [0, 1]).
    resample : int
        PIL resampling filter (2 = bilinear, 3 = bicubic).
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
    def from_files(
        cls,
        files: str,
        revision: str | None,
        image_size: int,
        defaults: ImagePreprocessing | None = None,
    ) -> ImagePreprocessing:
        """Read ``preprocessor_config.json`` of a model folder or cached hub id.

        Parameters
        ----------
        files : str
            Local folder or hub id (read from the local cache only).
        revision : str or None
        image_size : int
            The model's input size, used when the file is missing.
        defaults : ImagePreprocessing, optional
            The family's statistics and filter, used for keys the file lacks (CLIP's
            when None).
        """
        from transformers.utils import cached_file

        base = defaults or cls(shortest_edge=image_size, crop=(image_size, image_size))
        path = cached_file(
            files,
            "preprocessor_config.json",
            revision=revision,
            local_files_only=True,
            _raise_exceptions_for_missing_entries=False,
        )
        if path is None:
            logger.warning(
                "no preprocessor_config.json for '%s'; using %d px and the family defaults",
                files,
                image_size,
            )
            return replace(base, shortest_edge=image_size, crop=(image_size, image_size))
        cfg = json.loads(Path(path).read_text())
        edge, square, crop = _read_sizes(cfg, image_size)
        return cls(
            shortest_edge=edge,
            crop=crop,
            mean=tuple(cfg.get("image_mean", base.mean)),
            std=tuple(cfg.get("image_std", base.std)),
            resample=int(cfg.get("resample", base.resample)),
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
