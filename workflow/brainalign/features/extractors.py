"""Shared machinery of the transformers-based extractors.

Token pooling, batching, ``output_hidden_states`` extraction, pseudo-layers and
attention-head capture, on top of :mod:`brainalign.features.loading` (sources,
device, dtype). The registered extractors subclass :class:`TransformersExtractor`:
:mod:`~brainalign.features.text` ("text_encoder"), :mod:`~brainalign.features.decoders`
("causal_lm"), :mod:`~brainalign.features.vision` ("vision_encoder"),
:mod:`~brainalign.features.clip` ("clip") and :mod:`~brainalign.features.siglip` ("siglip").

Keys of the encoders' outputs: an int is a hidden-state index (0 = embedding output)
or a pseudo-layer past them (e.g. a contrastive model's projected embedding,
:attr:`TransformersExtractor.pseudo_layers`); with ``spec.attention_heads`` the output
also holds ``"heads-XX"``: the per-head outputs of block ``XX`` (the input of its
attention output projection), an array of shape (n_rows, n_heads, head_dim), and with
``spec.mlp_neurons`` ``"mlp-XX"``: the MLP neurons of block ``XX`` (the input of its MLP
output projection, after the activation), shape (n_rows, n_mlp); both are captured with
forward hooks (:mod:`brainalign.features.sites`) and pooled like the hidden states.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from brainalign.features.images import ImagePreprocessing
from brainalign.features.loading import (
    Architecture,
    LoadedModel,
    TinyModel,
    _package_model_path,  # noqa: F401  (re-exported for older imports)
    load_model,
    resolve_device,
    resolve_dtype,
    tiny_tokenizer_path,
)
from brainalign.features.registry import ModelSpec
from brainalign.features.sites import (
    ATTENTION_OUTPUT_NAMES,
    MLP_OUTPUT_NAMES,
    UnitSite,
    attention_output,
    capture_units,
    find_blocks,
    heads_key,
    mlp_key,
    mlp_output,
    unit_sites,
)

__all__ = [
    "Architecture",
    "TinyModel",
    "LoadedModel",
    "TransformersExtractor",
    "TowerOutput",
    "TokenInfo",
    "load_model",
    "resolve_device",
    "resolve_dtype",
    "tiny_tokenizer_path",
    "heads_key",
    "mlp_key",
    "find_blocks",
    "attention_output",
    "mlp_output",
    "POOLERS",
    "IMAGE_POOLERS",
    "ATTENTION_OUTPUT_NAMES",
    "MLP_OUTPUT_NAMES",
]

logger = logging.getLogger(__name__)

Key = int | str
Outputs = dict[Key, np.ndarray]


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

# Image token pooling: "first" = the CLS token (ViT, DINOv2, CLIP); "mean" = every
# token (models without a CLS token, e.g. SigLIP). Sums run in float64.
IMAGE_POOLERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "first": lambda hidden: hidden[:, 0].double(),
    "mean": lambda hidden: hidden.double().mean(dim=1),
}

@dataclass
class TowerOutput:
    """One forward pass of a tower.

    Attributes
    ----------
    hidden_states : sequence of Tensor
        One (batch, tokens, features) tensor per hidden state.
    pooled : dict of int to Tensor
        Pseudo-layers: one (batch, features) tensor per pseudo-layer index.
    """

    hidden_states: Sequence[torch.Tensor]
    pooled: dict[int, torch.Tensor] = field(default_factory=dict)


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


def _concatenate(parts: list[Outputs]) -> Outputs:
    return {key: np.concatenate([part[key] for part in parts], axis=0) for key in parts[0]}


class TransformersExtractor:
    """Base class: batched, pooled hidden states of a transformers model.

    Subclasses set ``modalities`` and ``architecture`` and implement ``_count_layers``;
    for text ``_text_config``, ``text_width`` and ``_text_hidden_states`` (or
    ``_text_outputs`` for pseudo-layers); for images ``_image_config``, ``image_width``
    and ``_image_hidden_states`` (or ``_image_outputs``). ``_tower(modality)`` names the
    module whose blocks hold the attention heads (the whole model by default).

    Class attributes
    ----------------
    requires_image : bool
        The model cannot read text without an image: text-only conditions feed it the
        seeded noise image (see :mod:`brainalign.features.extract`).
    joint : bool
        Text and image are encoded together (``encode_text_image``) rather than by
        separate towers whose features are concatenated.
    image_pooling : {"first", "mean"}
        Image token pooling (:data:`IMAGE_POOLERS`); "first" (CLS) pools the mean over
        all tokens at hidden state 0, where the CLS token holds no image information
        (:meth:`image_pooler`).
    text_padding : {"longest", "max_length"}
        "max_length" pads every sentence to the model's length (SigLIP, whose text
        embedding is read at the last position).
    image_defaults : ImagePreprocessing
        Family statistics used for tiny models and for keys a preprocessor file lacks.
    """

    modalities: frozenset[str] = frozenset()
    architecture: Architecture
    requires_image: bool = False
    joint: bool = False
    image_pooling: str = "first"
    text_padding: str = "longest"
    image_defaults: ImagePreprocessing = ImagePreprocessing(shortest_edge=224, crop=(224, 224))

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        loaded, self.device = load_model(spec, self.architecture)
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.files = loaded.files
        self.tiny = loaded.tiny
        self.dtype = next(self.model.parameters()).dtype
        self.n_layers = self._count_layers()
        self.pseudo_layers: dict[int, str] = {}
        self._sites: dict[str, dict[int, UnitSite]] = {}
        if "image" in self.modalities:
            self.preprocessing = self._image_preprocessing()
        self._check_units()

    def _count_layers(self) -> int:
        raise NotImplementedError

    @property
    def max_tokens(self) -> int:
        """Longest token sequence the text model accepts (tokenizer and positions)."""
        positions = getattr(self._text_config(), "max_position_embeddings", None) or 10**9
        return int(min(self.tokenizer.model_max_length, positions))

    def _text_config(self) -> Any:
        raise NotImplementedError

    def _image_config(self) -> Any:
        return self.model.config

    def _tower(self, modality: str) -> torch.nn.Module:
        return self.model

    def _require(self, modality: str) -> None:
        if modality not in self.modalities:
            raise ValueError(
                f"model '{self.spec.name}' (extractor '{self.spec.extractor}') has no "
                f"{modality} input; its modalities are {', '.join(sorted(self.modalities))}"
            )

    # --- single units: attention heads and MLP neurons ------------------------------

    def _unit_blocks(self, modality: str) -> dict[int, tuple[torch.nn.Module, int]]:
        """Layer (1-based hidden state) -> (its block, attention heads) for ``modality``.

        By default the first ModuleList of ``n_layers - 1`` blocks under
        :meth:`_tower` (:func:`~brainalign.features.sites.find_blocks`).
        """
        config = self._text_config() if modality == "text" else self._image_config()
        n_heads = int(getattr(config, "num_attention_heads", 0) or 0)
        blocks = find_blocks(self._tower(modality), self.n_layers - 1, ATTENTION_OUTPUT_NAMES)
        return {i + 1: (block, n_heads) for i, block in enumerate(blocks)}

    def unit_sites(self, modality: str) -> dict[int, UnitSite]:
        """The unit sites (:class:`~brainalign.features.sites.UnitSite`) of ``modality``."""
        if modality not in self._sites:
            self._sites[modality] = unit_sites(self.model, self._unit_blocks(modality))
        return self._sites[modality]

    def head_layers(self, modality: str) -> list[int]:
        """Blocks (1-based, as hidden states) whose attention heads are captured.

        Raises
        ------
        ValueError
            When ``spec.attention_heads`` is set and no block exposes its heads.
        """
        layers = [k for k, site in self.unit_sites(modality).items() if site.heads is not None]
        if self.spec.attention_heads and not layers:
            raise ValueError(
                f"model '{self.spec.name}': 'attention_heads' is true but no {modality} "
                "block exposes an attention output projection; set it to false"
            )
        return sorted(layers)

    def mlp_layers(self, modality: str) -> list[int]:
        """Blocks (1-based, as hidden states) whose MLP neurons are captured.

        Raises
        ------
        ValueError
            When ``spec.mlp_neurons`` is set and no block exposes an MLP output projection.
        """
        layers = [k for k, site in self.unit_sites(modality).items() if site.mlp is not None]
        if self.spec.mlp_neurons and not layers:
            raise ValueError(
                f"model '{self.spec.name}': 'mlp_neurons' is true but no {modality} block "
                f"exposes an MLP output projection (one of {', '.join(MLP_OUTPUT_NAMES)}); "
                "set it to false"
            )
        return sorted(layers)

    def unit_blocks(self, modality: str) -> dict[int, str]:
        """Layer -> the module path of the block its heads and MLP neurons come from."""
        return {k: site.block for k, site in self.unit_sites(modality).items()}

    def _check_units(self) -> None:
        for modality in sorted(self.modalities):
            if modality not in ("text", "image") and self.spec.mlp_neurons:
                raise ValueError(
                    f"model '{self.spec.name}': 'mlp_neurons' is not read for {modality} "
                    "encoders; set it to false"
                )
            if self.spec.attention_heads:
                self.head_layers(modality)
            if self.spec.mlp_neurons:
                self.mlp_layers(modality)

    def _capture(self, modality: str, keys: Sequence[Key]) -> Any:
        """Context recording the wanted blocks' heads and MLP neurons (a dict by key)."""
        spec = self.spec
        if not (spec.attention_heads or spec.mlp_neurons):
            return contextlib.nullcontext({})
        sites = self.unit_sites(modality)
        return capture_units(sites, keys, spec.attention_heads, spec.mlp_neurons)

    @staticmethod
    def _unit_tokens(captured: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Captured units as (batch, tokens, n): a block that flattens its tokens before the
        projection (OPT) gives (batch * tokens, n), reshaped like ``hidden``."""
        if captured.dim() == 2:
            return captured.reshape(hidden.shape[0], hidden.shape[1], -1)
        return captured

    def _unit_rows(self, modality: str, key: str, rows: np.ndarray) -> np.ndarray:
        """Pooled captured rows as written: heads (n, n_heads, head_dim), MLP (n, n_mlp)."""
        if not key.startswith("heads-"):
            return rows
        n_heads = self.unit_sites(modality)[int(key.split("-")[1])].n_heads
        return rows.reshape(rows.shape[0], n_heads, rows.shape[1] // n_heads)

    # --- text ----------------------------------------------------------------------

    def encode_text(
        self,
        sentences: Sequence[str],
        spans: Sequence[tuple[int, int]] | None,
        layers: Sequence[int],
    ) -> Outputs:
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
            Plus ``"heads-XX"`` arrays of shape (n_sentences, n_heads, head_dim) when
            ``spec.attention_heads`` is set, ``"mlp-XX"`` arrays of shape (n_sentences,
            n_mlp) when ``spec.mlp_neurons`` is set.
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
    ) -> Outputs:
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
            return self._empty(layers, "text")
        parts = [
            self._encode_text_batch(sentences[part], spans[part], layers)
            for part in _batches(len(sentences), self.spec.batch_size, "text batches")
        ]
        return _concatenate(parts)

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
        padding: dict[str, Any] = {"padding": True}
        if self.text_padding == "max_length":
            padding = {"padding": "max_length", "max_length": self.max_tokens}
        return self.tokenizer(
            sentences,
            return_tensors="pt",
            return_offsets_mapping=bool(getattr(self.tokenizer, "is_fast", False)),
            return_special_tokens_mask=True,
            **padding,
        )

    def _token_info(self, encoded: dict[str, torch.Tensor], i: int) -> TokenInfo:
        if "offset_mapping" not in encoded:
            if self.spec.pooling == "word":
                raise ValueError(
                    f"model '{self.spec.name}': pooling 'word' needs a fast tokenizer (with "
                    f"offsets); {type(self.tokenizer).__name__} has none. Use pooling 'mean' "
                    "or 'last', or a checkpoint with a fast tokenizer."
                )
            zeros = torch.zeros_like(encoded["input_ids"][i])
            offsets = torch.stack([zeros, zeros], dim=-1)
        else:
            offsets = encoded["offset_mapping"][i]
        return TokenInfo(
            attention=encoded["attention_mask"][i].bool(),
            special=encoded["special_tokens_mask"][i].bool(),
            starts=offsets[:, 0],
            ends=offsets[:, 1],
        )

    def span_weights(
        self,
        encoded: dict[str, torch.Tensor],
        sentences: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Token weights of each pooled row, per ``spec.pooling``.

        Parameters
        ----------
        encoded : tokenizer output with ``attention_mask``, ``special_tokens_mask`` and,
            for pooling "word", ``offset_mapping`` (of a fast tokenizer).
        sentences, spans : as for :meth:`encode_text_spans`.

        Returns
        -------
        weights : Tensor of shape (n_rows, n_tokens), float64, or None when no rows
            Each row sums to 1 over the pooled tokens.
        owners : Tensor of shape (n_rows,), int64
            The sentence (batch index) of each row.
        """
        pooler = POOLERS[self.spec.pooling]
        weights, owners = [], []
        for i, sentence_spans in enumerate(spans):
            tokens = self._token_info(encoded, i)
            for span in sentence_spans:
                mask = pooler(tokens, span)
                if not bool(mask.any()):
                    raise ValueError(
                        f"no token of sentence {sentences[i]!r} falls in span {tuple(span)} "
                        f"(pooling '{self.spec.pooling}'); check char_start/char_end"
                    )
                weights.append(mask.double() / mask.sum())
                owners.append(i)
        weight = torch.stack(weights).to(self.device) if weights else None
        return weight, torch.tensor(owners, dtype=torch.long, device=self.device)

    def pool_rows(
        self,
        output: TowerOutput,
        units: dict[str, torch.Tensor],
        weights: torch.Tensor | None,
        owners: torch.Tensor,
        keys: Sequence[Key],
        modality: str = "text",
    ) -> Outputs:
        """Pool a forward pass's hidden states (and captured units) with :meth:`span_weights`."""
        out: Outputs = {}
        for key in keys:
            if key in output.pooled:
                out[key] = output.pooled[key][owners].float().cpu().numpy()
            else:
                out[key] = _weighted_rows(output.hidden_states[key], owners, weights)
        for key, captured in units.items():
            captured = self._unit_tokens(captured, output.hidden_states[int(key.split("-")[1])])
            out[key] = self._unit_rows(modality, key, _weighted_rows(captured, owners, weights))
        return out

    def _encode_text_batch(
        self, sentences: list[str], spans: list[Sequence[tuple[int, int]]], layers: Sequence[int]
    ) -> Outputs:
        encoded = self._tokenize(sentences)
        weights, owners = self.span_weights(encoded, sentences, spans)
        inputs = {k: encoded[k].to(self.device) for k in ("input_ids", "attention_mask")}
        with torch.inference_mode(), self._capture("text", layers) as units:
            output = self._text_outputs(inputs)
        return self.pool_rows(output, units, weights, owners, layers, "text")

    def _text_outputs(self, inputs: dict[str, torch.Tensor]) -> TowerOutput:
        return TowerOutput(self._text_hidden_states(inputs))

    def _text_hidden_states(self, inputs: dict[str, torch.Tensor]) -> Sequence[torch.Tensor]:
        raise NotImplementedError

    # --- images --------------------------------------------------------------------

    def _image_preprocessing(self) -> ImagePreprocessing:
        size = int(self._image_config().image_size)
        defaults = (self.tiny.image_defaults if self.tiny else None) or self.image_defaults
        if self.files is None:
            return replace(defaults, shortest_edge=size, crop=(size, size))
        return ImagePreprocessing.from_files(self.files, self.spec.revision, size, defaults)

    def encode_images(self, images: Sequence[Any], layers: Sequence[int]) -> Outputs:
        """Encode PIL images, pooled per :attr:`image_pooling` at each layer.

        Returns
        -------
        dict of int to ndarray of shape (n_images, n_features), float32
            Plus ``"heads-XX"`` arrays of shape (n_images, n_heads, head_dim) when
            ``spec.attention_heads`` is set, ``"mlp-XX"`` (n_images, n_mlp) when
            ``spec.mlp_neurons`` is set.
        """
        self._require("image")
        images = list(images)
        if not images:
            return self._empty(layers, "image")
        parts = [
            self._encode_image_batch(images[part], layers)
            for part in _batches(len(images), self.spec.batch_size, "image batches")
        ]
        return _concatenate(parts)

    def _encode_image_batch(self, images: list[Any], layers: Sequence[int]) -> Outputs:
        pixels = torch.from_numpy(self._pixel_values(images)).to(self.device, self.dtype)
        with torch.inference_mode(), self._capture("image", layers) as units:
            output = self._image_outputs(pixels)
        out: Outputs = {}
        for key in layers:
            if key in output.pooled:
                pooled = output.pooled[key].double()
            else:
                pooled = self.image_pooler(key)(output.hidden_states[key])
            out[key] = pooled.float().cpu().numpy()
        for key, captured in units.items():
            captured = self._unit_tokens(captured, output.hidden_states[int(key.split("-")[1])])
            rows = IMAGE_POOLERS[self.image_pooling](captured).float().cpu().numpy()
            out[key] = self._unit_rows("image", key, rows)
        return out

    def image_pooler(self, layer: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """Image token pooling at hidden state ``layer``.

        :attr:`image_pooling`, except that "first" becomes "mean" at hidden state 0:
        there the CLS token is the learned CLS embedding plus its position embedding,
        the same vector for every image, so it would give constant features.
        """
        if layer == 0 and self.image_pooling == "first":
            return IMAGE_POOLERS["mean"]
        return IMAGE_POOLERS[self.image_pooling]

    def image_width(self, layer: int) -> int:
        """Number of image features at ``layer``."""
        raise NotImplementedError

    def _pixel_values(self, images: list[Any]) -> np.ndarray:
        return self.preprocessing(images)

    def _image_outputs(self, pixel_values: torch.Tensor) -> TowerOutput:
        return TowerOutput(self._image_hidden_states(pixel_values))

    def _image_hidden_states(self, pixel_values: torch.Tensor) -> Sequence[torch.Tensor]:
        raise NotImplementedError

    # --- joint ---------------------------------------------------------------------

    def encode_text_image(
        self,
        sentences: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        images: Sequence[Any],
        layers: Sequence[int],
    ) -> Outputs:
        """Encode each sentence together with ``images[i]``; pool every span.

        Only for extractors with ``joint = True`` (vision-language encoders and
        generative models): one forward pass per (sentence, image) pair.

        Returns
        -------
        dict of int to ndarray of shape (n_spans_total, n_features), float32
            Rows ordered sentence by sentence, then span by span.
        """
        raise ValueError(
            f"extractor '{self.spec.extractor}' encodes text and images separately "
            "(joint = False); encode_text_image is for joint vision-language encoders"
        )

    def _empty(self, layers: Sequence[int], modality: str) -> Outputs:
        width = self.text_width if modality == "text" else self.image_width
        return {layer: np.zeros((0, width(layer)), dtype=np.float32) for layer in layers}
