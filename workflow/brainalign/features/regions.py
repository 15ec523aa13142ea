"""Region features for the vision-language encoders that read them (VisualBERT, LXMERT).

VisualBERT and LXMERT were trained on the outputs of an object detector: per image a
set of regions, each a feature vector and a box. Two sources are offered:

- **grid** (:class:`GridBackbone`): a vision model (any transformers ``AutoModel``
  vision tower) whose output tokens are taken as regions, one per cell of its patch
  grid, with the cell's normalised box. A ViT-like model returns (tokens, width): its
  prefix tokens (CLS, registers) are dropped; a CNN returns a feature map (width,
  rows, cols): each position is a region. "Grid features" work as region features
  (Jiang et al. 2020, *In Defense of Grid Features for VQA*); with a 2048-wide CNN such
  as ``microsoft/resnet-50`` they have the width the pretrained models expect.
- **precomputed** (:class:`PrecomputedRegions`): one file per image in a folder, made
  by any detector. The file format is described in :func:`load_region_features`;
  files are named by :func:`region_key` of the image (a hash of its pixels), so the
  same pixels find the same file whatever path they were read from.

Config (one mapping per model, see :class:`RegionConfig`)::

    regions: {kind: grid, source: pretrained, id: microsoft/resnet-50}
    regions: {kind: precomputed, folder: resources/regions/visualbert}

Boxes are ``(x0, y0, x1, y1)`` in [0, 1], relative to the image width and height.
With precomputed regions every image the model is shown needs a file: the noise images
of the "noise" condition and of text-only conditions too (the workflow pairs text with
the stimulus's seeded noise image; a direct call with no image uses
:func:`~brainalign.features.vl_encoders.text_only_image`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from brainalign.features.loading import _package_model_path, _seeded, resolve_dtype
from brainalign.features.registry import SOURCES
from brainalign.io import atomic_write

__all__ = [
    "REGION_KINDS",
    "REGION_SUFFIXES",
    "RegionConfig",
    "RegionFeatures",
    "GridBackbone",
    "PrecomputedRegions",
    "build_region_source",
    "grid_boxes",
    "load_region_features",
    "region_key",
    "save_region_features",
    "tiny_backbone_config",
]

logger = logging.getLogger(__name__)

REGION_KINDS = ("grid", "precomputed")
REGION_SUFFIXES = (".npz", ".safetensors")
_REGION_KEYS = frozenset({"kind", "source", "id", "revision", "folder"})


@dataclass(frozen=True)
class RegionFeatures:
    """The regions of one image.

    Attributes
    ----------
    features : ndarray of shape (n_regions, n_features), float32
    boxes : ndarray of shape (n_regions, 4), float32
        ``(x0, y0, x1, y1)`` in [0, 1], relative to the image size.
    """

    features: np.ndarray
    boxes: np.ndarray

    def __post_init__(self) -> None:
        features = np.asarray(self.features, dtype=np.float32)
        boxes = np.asarray(self.boxes, dtype=np.float32)
        n = features.shape[0] if features.ndim == 2 else -1
        if n < 1 or boxes.shape != (n, 4):
            raise ValueError(
                f"region features must be 'features' of shape (n_regions >= 1, n_features) and "
                f"'boxes' of shape (n_regions, 4); got {features.shape} and {boxes.shape}"
            )
        if not (np.isfinite(features).all() and np.isfinite(boxes).all()):
            raise ValueError("region 'features' and 'boxes' must be finite; found NaN or inf")
        inside = (boxes >= 0).all() and (boxes <= 1).all()
        if not inside or (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
            raise ValueError(
                "region 'boxes' must be (x0, y0, x1, y1) normalised to [0, 1] with x0 <= x1 and "
                "y0 <= y1; divide pixel boxes by the image width and height"
            )
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "boxes", boxes)


def grid_boxes(rows: int, cols: int) -> np.ndarray:
    """Normalised boxes of the cells of a ``rows`` x ``cols`` grid, row-major.

    Returns
    -------
    ndarray of shape (rows * cols, 4), float32
        Cell ``(r, c)`` is row ``r * cols + c``: ``(c / cols, r / rows, (c + 1) / cols,
        (r + 1) / rows)``.
    """
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    r, c = r.ravel().astype(np.float64), c.ravel().astype(np.float64)
    return np.stack([c / cols, r / rows, (c + 1) / cols, (r + 1) / rows], axis=1).astype(np.float32)


def region_key(image: Image.Image | str | os.PathLike) -> str:
    """Name (without suffix) of the precomputed region file of ``image``.

    The sha256 hex digest of ``b"RGB"``, the width and height (uint32, little endian)
    and the pixel bytes of the image converted to RGB. Decoded pixels, not file bytes,
    so re-encoding or moving a file keeps its key.
    """
    if not isinstance(image, Image.Image):
        with Image.open(image) as handle:
            image = handle.convert("RGB")
    rgb = image.convert("RGB")
    digest = hashlib.sha256(b"RGB")
    digest.update(np.asarray(rgb.size, dtype="<u4").tobytes())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def save_region_features(
    folder: str | os.PathLike, image: Image.Image | str | os.PathLike, regions: RegionFeatures
) -> Path:
    """Write ``regions`` of ``image`` as ``folder/<region_key(image)>.npz`` (atomically).

    Returns
    -------
    Path
        The written file.
    """
    path = Path(folder) / f"{region_key(image)}.npz"
    with atomic_write(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, features=regions.features, boxes=regions.boxes)
    return path


def load_region_features(path: str | os.PathLike) -> RegionFeatures:
    """Read one precomputed region file.

    Format: a ``.npz`` (numpy) or ``.safetensors`` file holding two arrays,
    ``features`` of shape (n_regions, n_features) and ``boxes`` of shape
    (n_regions, 4), normalised ``(x0, y0, x1, y1)``; any float dtype (read as float32).
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    elif path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        arrays = load_file(str(path))
    else:
        raise ValueError(
            f"region file '{path}' must end in {' or '.join(REGION_SUFFIXES)}; got "
            f"'{path.suffix}'. Save it with save_region_features or as safetensors."
        )
    missing = [key for key in ("features", "boxes") if key not in arrays]
    if missing:
        raise ValueError(
            f"region file '{path}' must hold arrays 'features' and 'boxes'; missing "
            f"{', '.join(missing)} (found {', '.join(sorted(arrays)) or 'none'})"
        )
    try:
        return RegionFeatures(arrays["features"], arrays["boxes"])
    except ValueError as err:
        raise ValueError(f"region file '{path}': {err}") from err


@dataclass(frozen=True)
class RegionConfig:
    """Where a model's region features come from (the model's ``regions`` config key).

    Attributes
    ----------
    kind : {"grid", "precomputed"}
    source : {"tiny", "pretrained", "package", "random"}
        How the grid backbone is loaded, as for models (``ModelSpec.source``).
    id : str or None
        Hub id, local folder or package of the grid backbone.
    revision : str or None
    folder : str or None
        Folder of the precomputed region files.
    """

    kind: str = "grid"
    source: str = "tiny"
    id: str | None = None
    revision: str | None = None
    folder: str | None = None

    @classmethod
    def from_config(
        cls, name: str, cfg: Mapping[str, Any] | None, model_source: str
    ) -> RegionConfig:
        """Validate the ``regions`` mapping of model ``name``.

        ``None`` is allowed for tiny models only (a tiny seeded grid backbone).
        """
        where = f"model '{name}': 'regions'"
        if cfg is None:
            if model_source == "tiny":
                return cls()
            raise ValueError(
                f"{where} is required for source '{model_source}'; set it to {{kind: grid, id: "
                "<vision model, e.g. microsoft/resnet-50>}} or {kind: precomputed, folder: "
                "<folder of region files>} in config/config.yaml"
            )
        unknown = sorted(set(cfg) - _REGION_KEYS)
        if unknown:
            raise ValueError(
                f"{where} has unknown key(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(sorted(_REGION_KEYS))}. Fix config/config.yaml."
            )
        default_source = "tiny" if model_source == "tiny" else "pretrained"
        config = cls(**{"source": default_source, **cfg})
        config._check(where)
        return config

    def _check(self, where: str) -> None:
        if self.kind not in REGION_KINDS:
            raise ValueError(
                f"{where}.kind must be one of {', '.join(REGION_KINDS)}; got {self.kind!r}"
            )
        if self.kind == "precomputed":
            if not self.folder or not Path(self.folder).is_dir():
                raise ValueError(
                    f"{where}.folder must be an existing folder of region files; got "
                    f"{self.folder!r}. Create it (save_region_features) or fix the path."
                )
            return
        if self.source not in SOURCES:
            raise ValueError(
                f"{where}.source must be one of {', '.join(SOURCES)}; got {self.source!r}"
            )
        if self.source != "tiny" and not self.id:
            raise ValueError(
                f"{where}.id (the grid backbone: hub id, folder or package) is required for "
                f"source '{self.source}'; e.g. microsoft/resnet-50"
            )


def tiny_backbone_config(width: int) -> Any:
    """A 1-block ViT of width ``width`` on 32x32 images in 8x8 patches (16 regions)."""
    from transformers import ViTConfig

    return ViTConfig(
        hidden_size=width,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * width,
        image_size=32,
        patch_size=8,
    )


def _tiny_processor() -> Any:
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    return ViTImageProcessorPil(size={"height": 32, "width": 32})


def _load_backbone(
    config: RegionConfig, width: int, seed: int, dtype: torch.dtype
) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    if config.source == "tiny":
        model_config = tiny_backbone_config(width)
        return _seeded(seed, lambda: AutoModel.from_config(model_config)), _tiny_processor()
    location = str(_package_model_path(config.id)) if config.source == "package" else config.id
    revision = None if config.source == "package" else config.revision
    processor = AutoImageProcessor.from_pretrained(
        location, revision=revision, local_files_only=True, backend="pil"
    )
    if config.source == "random":
        model_config = AutoConfig.from_pretrained(
            location, revision=revision, local_files_only=True
        )
        return _seeded(seed, lambda: AutoModel.from_config(model_config)), processor
    model = AutoModel.from_pretrained(
        location, revision=revision, local_files_only=True, dtype=dtype
    )
    return model, processor


class GridBackbone:
    """Grid features of a vision model, one region per cell of its output grid.

    Parameters
    ----------
    model : transformers vision model
        Returns ``last_hidden_state`` of shape (batch, tokens, width) (ViT-like; tokens =
        prefix tokens + rows * cols patches) or (batch, width, rows, cols) (CNN).
    processor : transformers image processor
        Its PIL backend (``backend="pil"``); gives ``pixel_values``.
    device : torch.device
    """

    def __init__(self, model: Any, processor: Any, device: torch.device) -> None:
        self.model = model.to(device).eval().requires_grad_(False)
        self.processor = processor
        self.device = device
        self.dtype = next(self.model.parameters()).dtype
        self.width = self([Image.new("RGB", (32, 32))])[0].features.shape[1]

    @classmethod
    def load(
        cls, config: RegionConfig, width: int, seed: int, device: torch.device, dtype: str
    ) -> GridBackbone:
        """Load (or build, for source "tiny"/"random", seeded) the backbone of ``config``.

        ``width`` sizes the tiny backbone; pretrained backbones have their own width.
        """
        model, processor = _load_backbone(config, width, seed, resolve_dtype(dtype, device))
        return cls(model, processor, device)

    def __call__(self, images: Sequence[Image.Image]) -> list[RegionFeatures]:
        """Region features of each image; the same grid (hence boxes) for every image."""
        if not images:
            return []
        pixels = self.processor([im.convert("RGB") for im in images], return_tensors="pt")
        pixel_values = pixels["pixel_values"].to(self.device, self.dtype)
        with torch.inference_mode():
            state = self.model(pixel_values=pixel_values).last_hidden_state
        tokens, rows, cols = self._as_grid(state, pixel_values.shape[-2:])
        boxes = grid_boxes(rows, cols)
        values = tokens.float().cpu().numpy()
        return [RegionFeatures(value, boxes) for value in values]

    def _as_grid(self, state: torch.Tensor, size: Sequence[int]) -> tuple[torch.Tensor, int, int]:
        if state.ndim == 4:  # CNN: (batch, width, rows, cols)
            return state.flatten(2).transpose(1, 2), int(state.shape[2]), int(state.shape[3])
        patch = getattr(self.model.config, "patch_size", None)
        if state.ndim != 3 or patch is None:
            raise ValueError(
                f"grid backbone {type(self.model).__name__} must return a (batch, width, rows, "
                f"cols) feature map or (batch, tokens, width) with a config 'patch_size'; got "
                f"shape {tuple(state.shape)}. Use a ViT-like or CNN vision model."
            )
        ph, pw = (patch, patch) if isinstance(patch, int) else tuple(patch)
        rows, cols = int(size[0]) // ph, int(size[1]) // pw
        prefix = state.shape[1] - rows * cols
        if prefix < 0:
            raise ValueError(
                f"grid backbone returned {state.shape[1]} tokens for a {rows}x{cols} patch grid"
            )
        return state[:, prefix:], rows, cols


class PrecomputedRegions:
    """Region features read from ``folder/<region_key(image)>.npz|.safetensors``.

    Parameters
    ----------
    folder : path
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ValueError(f"region folder '{self.folder}' does not exist; fix 'regions.folder'")
        first = next(
            (p for p in sorted(self.folder.iterdir()) if p.suffix in REGION_SUFFIXES), None
        )
        if first is None:
            raise ValueError(
                f"region folder '{self.folder}' holds no {' or '.join(REGION_SUFFIXES)} files; "
                "write them with save_region_features"
            )
        self.width = load_region_features(first).features.shape[1]

    def __call__(self, images: Sequence[Image.Image]) -> list[RegionFeatures]:
        """The stored regions of each image; ValueError naming the key if one is missing."""
        return [self._one(image) for image in images]

    def _one(self, image: Image.Image) -> RegionFeatures:
        key = region_key(image)
        for suffix in REGION_SUFFIXES:
            path = self.folder / f"{key}{suffix}"
            if path.exists():
                regions = load_region_features(path)
                if regions.features.shape[1] != self.width:
                    raise ValueError(
                        f"region file '{path}' has {regions.features.shape[1]} features per "
                        f"region; the folder's other files have {self.width}"
                    )
                return regions
        raise ValueError(
            f"no region file for an image of size {image.size} in '{self.folder}' (expected "
            f"{key}.npz or .safetensors); compute it and save it with save_region_features"
        )


def build_region_source(
    config: RegionConfig, width: int, seed: int, device: torch.device, dtype: str
) -> GridBackbone | PrecomputedRegions:
    """The region source of ``config``; its feature width must equal ``width``.

    Raises
    ------
    ValueError
        If the source's width differs from the width the model reads.
    """
    sources = {
        "grid": lambda: GridBackbone.load(config, width, seed, device, dtype),
        "precomputed": lambda: PrecomputedRegions(config.folder),
    }
    if config.kind not in sources:
        raise ValueError(f"'regions.kind' must be one of {', '.join(sources)}; got {config.kind!r}")
    source = sources[config.kind]()
    if source.width != width:
        raise ValueError(
            f"region features ({config.kind}, {config.id or config.folder}) have {source.width} "
            f"features per region; the model reads {width}. Use a backbone or detector of "
            f"width {width} (e.g. microsoft/resnet-50 for 2048)."
        )
    logger.info(
        "region features: %s (%s), width %d", config.kind, config.id or config.folder, width
    )
    return source
