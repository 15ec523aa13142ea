"""Vision-language encoders: VisualBERT, LXMERT, ViLT, BridgeTower and FLAVA.

These models read a sentence and an image *together* (``joint = True``): the
:class:`FeatureExtractor` protocol's separate ``encode_text`` / ``encode_images``
streams are extended by :class:`JointExtractor`:

``encode_text_image(sentences, spans, images, layers)``
    Sentence ``i`` is encoded with ``images[i]`` (a PIL image, an image file, or None)
    and its hidden states are pooled at every span of ``spans[i]`` (per
    ``spec.pooling``); one float32 array of shape (n_spans_total, n_features) per
    layer, rows sentence by sentence, then span by span.
``encode_pairs(sentences, spans, images, layers)``
    The same with one span (or None) per sentence: (n_sentences, n_features).
``requires_image``
    True when the model cannot run without an image (all five encoders here). A None
    image is then replaced by :func:`text_only_image` (seeded uniform noise, the same
    for every sentence); ``encode_text`` / ``encode_text_spans`` are the joint
    methods with every image None. The workflow passes the stimulus's own seeded noise
    image instead (paper 000's rule for LXMERT), so None is for direct callers.
``encode_images(images, layers)``
    The image with an empty sentence, pooled over every real position of each layer's
    sequence (text, image and special tokens). Layers that never see the image (the
    language-only layers of LXMERT, FLAVA's text layers, BridgeTower's hidden state 0)
    give the same row for every image.

What counts as a layer (hidden state ``l``; 0 is the embedding output):

=========== ==========================================================================
VisualBERT  one stream, text then regions: ``hidden_states`` (1 + num_hidden_layers)
LXMERT      the language stream: 0 embeddings, 1..l_layers the language-only layers,
            then the x_layers cross-modality layers (language side): 1 + l + x
ViLT        one stream, text then image patches: ``hidden_states`` (1 + num_hidden_layers)
BridgeTower 0 the text embeddings, 1..num_hidden_layers the cross-modal text layers
FLAVA       the text encoder's hidden states (1 + text layers), then the multimodal
            encoder's layers (its sequence is [CLS, image tokens, text tokens])
=========== ==========================================================================

Single units (``attention_heads``, ``mlp_neurons``): the blocks whose outputs are the
hidden states above (:meth:`JointExtractor._joint_blocks`: VisualBERT's and ViLT's
encoder layers, LXMERT's language layers then the language side of its cross-modality
layers, BridgeTower's cross-modal text layers, FLAVA's text then multimodal layers) are
hooked during the joint forward pass (:mod:`brainalign.features.sites`); their heads
(self-attention; cross-attention is not read) and MLP neurons are pooled with the same
weights at the same positions as the layer's hidden state. The extraction writes them
under the joint stream's name (``heads-text+image-XX``, ``mlp-text+image-XX``) and names
each block in the metadata (``block``).

The word is pooled over its own tokens at their position in each layer's sequence
(after the image tokens where the model puts them first), found with the tokenizer's
offset mapping as for the text extractors. VisualBERT and LXMERT read region features
(:mod:`brainalign.features.regions`); the others read pixels through their own image
processor's PIL backend (``backend="pil"``; no torchvision). ViLT uses every image
patch (``max_image_length = -1``) instead of a random subset of at most 200, so the
features do not depend on a random draw; its forward pass runs under a forked,
seeded RNG all the same.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
from PIL import Image
from transformers import (
    BridgeTowerConfig,
    BridgeTowerModel,
    FlavaConfig,
    FlavaModel,
    LxmertConfig,
    LxmertModel,
    ViltConfig,
    ViltModel,
    VisualBertConfig,
    VisualBertModel,
)

from brainalign.features.extractors import (
    Architecture,
    TinyModel,
    TransformersExtractor,
    _batches,
    _check_spans,
    _weighted_rows,
)
from brainalign.features.sites import UnitSite, unit_sites
from brainalign.features.noise import noise_seed
from brainalign.features.regions import (
    RegionConfig,
    RegionFeatures,
    build_region_source,
    region_key,
)
from brainalign.features.registry import ModelSpec, register_extractor
from brainalign.features.tiny_tokenizers import TINY_VOCAB

__all__ = [
    "ImageInput",
    "JointExtractor",
    "JointStates",
    "Prepared",
    "RegionExtractor",
    "VisualBertExtractor",
    "LxmertExtractor",
    "ViltExtractor",
    "BridgeTowerExtractor",
    "FlavaExtractor",
    "text_only_image",
    "tiny_visualbert_config",
    "tiny_lxmert_config",
    "tiny_vilt_config",
    "tiny_bridgetower_config",
    "tiny_flava_config",
    "TEXT_ONLY_IMAGE_SIZE",
]

logger = logging.getLogger(__name__)

ImageInput = Union[Image.Image, str, os.PathLike, None]  # noqa: UP007 (a runtime alias)
TEXT_ONLY_IMAGE_SIZE = (224, 224)
_TEXT_ONLY_KEY = "brainalign:text-only"
_IMAGE_CACHE_SIZE = 64
_WORDPIECE = {"vocab_size": 30522, "pad_token_id": 0}


def text_only_image(seed: int) -> Image.Image:
    """The stand-in image of text-only input: uniform RGB noise, 224 x 224.

    Drawn with ``numpy.random.default_rng(noise_seed(seed, "brainalign:text-only"))``, so
    it depends on the config seed only.
    """
    rng = np.random.default_rng(noise_seed(seed, _TEXT_ONLY_KEY))
    height, width = TEXT_ONLY_IMAGE_SIZE
    return Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))


@dataclass
class Prepared:
    """One batch ready for the model.

    Attributes
    ----------
    inputs : dict
        Keyword arguments of the family's forward pass (tensors on the model's device).
    pool : dict of str to Tensor
        What :meth:`TransformersExtractor.span_weights` reads: ``attention_mask`` (the
        tokens a text pooling may pick), ``special_tokens_mask`` and ``offset_mapping``
        (character offsets into each sentence), each of shape (batch, n_tokens), over
        the sequence that :attr:`JointStates.text_start` locates in each layer.
    """

    inputs: dict[str, Any]
    pool: dict[str, torch.Tensor]


@dataclass
class JointStates:
    """Per hidden state: the sequence, where the text starts in it, and its real positions.

    Attributes
    ----------
    hidden : sequence of Tensor of shape (batch, positions, features)
    text_start : sequence of int
        Position in ``hidden[l]`` of the first token of :attr:`Prepared.pool`.
    mask : sequence of Tensor of shape (batch, positions), bool
        Real (non-padding) positions of ``hidden[l]``.
    """

    hidden: Sequence[torch.Tensor]
    text_start: Sequence[int]
    mask: Sequence[torch.Tensor]

    @classmethod
    def one_sequence(cls, hidden: Sequence[torch.Tensor], mask: torch.Tensor) -> JointStates:
        """States whose every layer has the text at position 0 and the real positions ``mask``.

        Parameters
        ----------
        hidden : sequence of Tensor of shape (batch, positions, features)
        mask : Tensor of shape (batch, positions), bool
        """
        return cls(hidden, [0] * len(hidden), [mask] * len(hidden))


class _ImageCache:
    """Resolves image inputs to RGB PIL images, reading each file once per window."""

    def __init__(self, stand_in: Image.Image | None) -> None:
        self.stand_in = stand_in
        self.cache: OrderedDict[str, Image.Image] = OrderedDict()

    def get(self, item: ImageInput) -> Image.Image | None:
        if item is None:
            return self.stand_in
        if isinstance(item, Image.Image):
            return item if item.mode == "RGB" else item.convert("RGB")
        key = os.fspath(item)
        if key not in self.cache:
            if not os.path.exists(key):
                raise FileNotFoundError(f"image '{key}' does not exist; check the stimuli tables")
            with Image.open(key) as handle:
                self.cache[key] = handle.convert("RGB")
            if len(self.cache) > _IMAGE_CACHE_SIZE:
                self.cache.popitem(last=False)
        self.cache.move_to_end(key)
        return self.cache[key]


class JointExtractor(TransformersExtractor):
    """Base of the extractors that encode a sentence and an image jointly.

    Subclasses implement ``_count_layers``, ``_text_config``, ``text_width``,
    ``_prepare(sentences, images) -> Prepared`` and ``_joint_states(inputs) ->
    JointStates``; see the module docstring for the public methods.
    """

    modalities = frozenset({"text", "image"})
    requires_image = True
    joint = True

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._text_only_image: Image.Image | None = None

    def unit_sites(self, modality: str) -> dict[int, UnitSite]:
        """The blocks of the joint forward pass (the same for every modality), from
        :meth:`_joint_blocks`: their heads and MLP neurons are pooled like the layer's
        hidden state (same positions, same weights)."""
        if "joint" not in self._sites:
            self._sites["joint"] = unit_sites(self.model, self._joint_blocks())
        return self._sites["joint"]

    def _joint_blocks(self) -> dict[int, tuple[torch.nn.Module, int]]:
        """Layer -> (the block whose output is that hidden state, its attention heads);
        by default the first ModuleList of ``n_layers - 1`` blocks of the model."""
        return TransformersExtractor._unit_blocks(self, "text")

    def _tower(self, modality: str) -> torch.nn.Module:
        return self.model

    def _image_preprocessing(self) -> Any:
        return None  # each family reads pixels through its own image processor

    @property
    def noise_image(self) -> Image.Image:
        """:func:`text_only_image` of the model's seed (paired with text-only input)."""
        if self._text_only_image is None:
            self._text_only_image = text_only_image(self.spec.seed)
        return self._text_only_image

    def encode_text(
        self,
        sentences: Sequence[str],
        spans: Sequence[tuple[int, int]] | None,
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Text-only input: :meth:`encode_pairs` with no image (see ``requires_image``)."""
        return self.encode_pairs(sentences, spans, [None] * len(sentences), layers)

    def encode_text_spans(
        self,
        sentences: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Text-only input: :meth:`encode_text_image` with no image."""
        return self.encode_text_image(sentences, spans, [None] * len(sentences), layers)

    def encode_pairs(
        self,
        sentences: Sequence[str],
        spans: Sequence[tuple[int, int]] | None,
        images: Sequence[ImageInput],
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Encode each sentence together with its image; pool around ``spans[i]``.

        Parameters
        ----------
        sentences : sequence of str
        spans : sequence of (char_start, char_end), or None
            The target word of each sentence; required for pooling "word".
        images : sequence of PIL image, path or None
            One per sentence. None: no image (the stand-in :attr:`noise_image` when
            ``requires_image``). Repeated paths are read once.
        layers : sequence of int

        Returns
        -------
        dict of int to ndarray of shape (n_sentences, n_features), float32
        """
        if spans is None:
            if self.spec.pooling == "word":
                raise ValueError("pooling 'word' needs 'spans' (the target word of each sentence)")
            spans = [(0, len(s)) for s in sentences]
        return self.encode_text_image(sentences, [[tuple(s)] for s in spans], images, layers)

    def encode_text_image(
        self,
        sentences: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        images: Sequence[ImageInput],
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Encode each sentence with ``images[i]`` once and pool every one of its spans.

        Parameters
        ----------
        sentences : sequence of str
        spans : sequence of sequences of (char_start, char_end)
        images : sequence of PIL image, path or None
            As for :meth:`encode_pairs`.
        layers : sequence of int

        Returns
        -------
        dict of int to ndarray of shape (n_spans_total, n_features), float32
            Rows ordered sentence by sentence, then span by span.
        """
        self._require("text")
        sentences, spans, images = list(sentences), [list(s) for s in spans], list(images)
        _check_spans(sentences, spans)
        if len(images) != len(sentences):
            raise ValueError(
                f"'images' must have one entry per sentence (None for no image); got "
                f"{len(images)} for {len(sentences)} sentences"
            )
        if not sentences:
            return self._empty(layers, "text")
        return self._run(sentences, spans, images, layers, whole=False)

    def encode_images(self, images: Sequence[Any], layers: Sequence[int]) -> dict[int, np.ndarray]:
        """Each image with an empty sentence, pooled over all real positions of each layer.

        Returns
        -------
        dict of int to ndarray of shape (n_images, n_features), float32
        """
        self._require("image")
        images = list(images)
        if any(image is None for image in images):
            raise ValueError("encode_images needs an image for every entry; got None")
        if not images:
            return self._empty(layers, "text")
        return self._run([""] * len(images), [[] for _ in images], images, layers, whole=True)

    def image_width(self, layer: int) -> int:
        """Width of :meth:`encode_images` rows: the layer's hidden size, as for text."""
        return self.text_width(layer)

    def _groups(self, images: list[ImageInput]) -> list[np.ndarray]:
        """Indices of the pairs with and without an image, batched apart."""
        has_image = np.array([self.requires_image or image is not None for image in images])
        return [
            np.flatnonzero(has_image == flag) for flag in (False, True) if (has_image == flag).any()
        ]

    def _run(
        self,
        sentences: list[str],
        spans: list[list[tuple[int, int]]],
        images: list[ImageInput],
        layers: Sequence[int],
        whole: bool,
    ) -> dict[int, np.ndarray]:
        counts = np.array([1 if whole else len(s) for s in spans])
        ends = np.cumsum(counts)
        cache = _ImageCache(self.noise_image if self.requires_image else None)
        parts: dict[Any, list[tuple[np.ndarray, np.ndarray]]] = {}
        for group in self._groups(images):
            for part in _batches(len(group), self.spec.batch_size, "text-image batches"):
                index = group[part]
                pooled = self._encode_joint_batch(
                    [sentences[i] for i in index],
                    [spans[i] for i in index],
                    [cache.get(images[i]) for i in index],
                    layers,
                    whole,
                )
                rows = np.concatenate([np.arange(ends[i] - counts[i], ends[i]) for i in index])
                for key, values in pooled.items():
                    parts.setdefault(key, []).append((rows, values))
        out = {}
        for key, chunks in parts.items():
            out[key] = np.zeros((int(ends[-1]), *chunks[0][1].shape[1:]), dtype=np.float32)
            for rows, values in chunks:
                out[key][rows] = values
        return out

    def _encode_joint_batch(
        self,
        sentences: list[str],
        spans: list[list[tuple[int, int]]],
        images: list[Image.Image | None],
        layers: Sequence[int],
        whole: bool,
    ) -> dict[int, np.ndarray]:
        prepared = self._prepare(sentences, images)
        if not whole:
            weights, owners = self.span_weights(prepared.pool, sentences, spans)
        with torch.inference_mode(), self._capture("joint", layers) as units:
            states = self._joint_states(prepared.inputs)
        out: dict[Any, np.ndarray] = {}
        pooled = [(layer, layer, states.hidden[layer]) for layer in layers]
        for key, value in units.items():
            layer = int(key.split("-")[1])
            pooled.append((layer, key, self._unit_tokens(value, states.hidden[layer])))
        for layer, key, hidden in pooled:
            mask = states.mask[layer].to(self.device)
            if whole:
                rows = torch.arange(len(sentences), device=self.device)
                full = mask.double() / mask.sum(dim=1, keepdim=True)
            else:
                rows, start, n_tokens = owners, states.text_start[layer], weights.shape[1]
                full = torch.zeros(
                    len(owners), hidden.shape[1], dtype=torch.float64, device=self.device
                )
                full[:, start : start + n_tokens] = weights
            values = _weighted_rows(hidden, rows, full)
            out[key] = values if isinstance(key, int) else self._unit_rows("joint", key, values)
        return out

    def _prepare(self, sentences: list[str], images: list[Image.Image | None]) -> Prepared:
        raise NotImplementedError

    def _joint_states(self, inputs: dict[str, Any]) -> JointStates:
        raise NotImplementedError

    # --- helpers shared by the encoders ---------------------------------------------

    def _tokenize_text(
        self, sentences: list[str]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Model inputs (input_ids, attention_mask on the device) and the pooling facts."""
        encoded = self._tokenize(sentences)
        inputs = {k: encoded[k].to(self.device) for k in ("input_ids", "attention_mask")}
        return inputs, dict(encoded)

    def _load_image_processor(self, tiny: Any) -> Any:
        """The model's image processor (PIL backend), or ``tiny()`` for tiny models."""
        if self.files is None:
            return tiny()
        from transformers import AutoImageProcessor

        revision = None if self.spec.source == "package" else self.spec.revision
        return AutoImageProcessor.from_pretrained(
            self.files,
            revision=revision,
            local_files_only=True,
            backend="pil",
            trust_remote_code=self.spec.trust_remote_code,
        )

    def _pixels(self, images: list[Any], **kwargs: Any) -> dict[str, torch.Tensor]:
        encoded = self.image_processor(images, return_tensors="pt", **kwargs)
        return {
            key: value.to(self.device, self.dtype if value.is_floating_point() else value.dtype)
            for key, value in encoded.items()
        }


class _OneConfig:
    """Text layers described by ``model.config`` itself: ``num_hidden_layers`` blocks of
    ``hidden_size`` after the embeddings (VisualBERT, ViLT; LXMERT counts its own layers)."""

    model: Any

    def _count_layers(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    def _text_config(self) -> Any:
        return self.model.config

    def text_width(self, layer: int) -> int:
        """Hidden size (the same at every layer)."""
        return int(self.model.config.hidden_size)


class _PixelExtractor(JointExtractor):
    """Base of the encoders that read pixels through their own image processor.

    Subclasses set ``_tiny_image_processor`` (a function building the tiny model's
    processor); ``_prepare`` passes the tokenized sentences and every output of the
    image processor to the model.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.image_processor = self._load_image_processor(self._tiny_image_processor)

    def _tiny_image_processor(self) -> Any:
        raise NotImplementedError

    def _prepare(self, sentences: list[str], images: list[Image.Image | None]) -> Prepared:
        inputs, pool = self._tokenize_text(sentences)
        inputs.update(self._pixels(images))
        return Prepared(inputs, pool)


# --- region-based encoders: VisualBERT, LXMERT ------------------------------------------


def _stack_regions(regions: Sequence[RegionFeatures]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad to the batch's largest region count: features, boxes and mask (1 = real)."""
    n = max(r.features.shape[0] for r in regions)
    width = regions[0].features.shape[1]
    features = np.zeros((len(regions), n, width), dtype=np.float32)
    boxes = np.zeros((len(regions), n, 4), dtype=np.float32)
    mask = np.zeros((len(regions), n), dtype=np.int64)
    for i, r in enumerate(regions):
        k = r.features.shape[0]
        features[i, :k], boxes[i, :k], mask[i, :k] = r.features, r.boxes, 1
    return features, boxes, mask


class RegionExtractor(JointExtractor):
    """Base of the encoders that read region features (see :mod:`.regions`).

    Parameters
    ----------
    spec : ModelSpec
    regions : RegionConfig, mapping or None
        Where the region features come from; None reads ``spec.regions`` when the spec
        has that key, else (tiny models only) a tiny seeded grid backbone.
    """

    def __init__(
        self, spec: ModelSpec, regions: RegionConfig | Mapping[str, Any] | None = None
    ) -> None:
        if not isinstance(regions, RegionConfig):  # validated before the model is loaded
            if regions is None:
                regions = getattr(spec, "regions", None)
            regions = RegionConfig.from_config(spec.name, regions, spec.source)
        self.region_config = regions
        super().__init__(spec)
        self.regions = build_region_source(
            regions, self.region_width, spec.seed, self.device, spec.dtype
        )

    @property
    def region_width(self) -> int:
        """Number of features per region the model reads."""
        raise NotImplementedError

    def _region_arrays(self, images: list[Image.Image]) -> dict[str, torch.Tensor]:
        keys = [region_key(image) for image in images]  # equal pixels: computed once
        unique = dict(zip(keys, images, strict=True))
        computed = dict(zip(unique, self.regions(list(unique.values())), strict=True))
        features, boxes, mask = _stack_regions([computed[key] for key in keys])
        return {
            "features": torch.from_numpy(features).to(self.device, self.dtype),
            "boxes": torch.from_numpy(boxes).to(self.device, self.dtype),
            "mask": torch.from_numpy(mask).to(self.device),
        }


def tiny_visualbert_config() -> VisualBertConfig:
    """A 2-block VisualBERT of width 32 reading 20-wide region features."""
    return VisualBertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        visual_embedding_dim=20,
        max_position_embeddings=128,
        **_WORDPIECE,
    )


@register_extractor("visualbert")
class VisualBertExtractor(_OneConfig, RegionExtractor):
    """VisualBERT (``VisualBertModel``): text tokens then region tokens in one stream."""

    architecture = Architecture(
        model_class=VisualBertModel, from_config=VisualBertModel, tiny_config=tiny_visualbert_config
    )

    @property
    def region_width(self) -> int:
        """``visual_embedding_dim`` (2048 for the released checkpoints)."""
        return int(self.model.config.visual_embedding_dim)

    def _prepare(self, sentences: list[str], images: list[Image.Image | None]) -> Prepared:
        inputs, pool = self._tokenize_text(sentences)
        regions = self._region_arrays(images)
        inputs.update(visual_embeds=regions["features"], visual_attention_mask=regions["mask"])
        return Prepared(inputs, pool)

    def _joint_states(self, inputs: dict[str, Any]) -> JointStates:
        hidden = self.model(**inputs, output_hidden_states=True).hidden_states
        mask = torch.cat([inputs["attention_mask"], inputs["visual_attention_mask"]], dim=1).bool()
        return JointStates.one_sequence(hidden, mask)


def tiny_lxmert_config() -> LxmertConfig:
    """LXMERT of width 32: 2 language, 1 relational (vision), 2 cross-modality layers."""
    return LxmertConfig(
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        l_layers=2,
        x_layers=2,
        r_layers=1,
        visual_feat_dim=20,
        visual_pos_dim=4,
        num_qa_labels=2,
        num_object_labels=2,
        num_attr_labels=2,
        max_position_embeddings=128,
        **_WORDPIECE,
    )


@register_extractor("lxmert")
class LxmertExtractor(_OneConfig, RegionExtractor):
    """LXMERT (``LxmertModel``): the language stream, through the cross-modality layers.

    Hidden state 0 is the embedding output, ``1..l_layers`` the language-only layers and
    ``l_layers + 1 .. l_layers + x_layers`` the language outputs of the cross-modality
    layers (10..14 for the released 9 + 5 layer model).
    """

    architecture = Architecture(
        model_class=LxmertModel, from_config=LxmertModel, tiny_config=tiny_lxmert_config
    )

    def _count_layers(self) -> int:
        config = self.model.config
        return 1 + int(config.l_layers) + int(config.x_layers)

    def _joint_blocks(self) -> dict[int, tuple[torch.nn.Module, int]]:
        """The language layers, then the cross-modality layers (their language side:
        ``lang_self_att`` heads, ``lang_output`` MLP)."""
        encoder, n_heads = self.model.encoder, int(self.model.config.num_attention_heads)
        blocks = [*encoder.layer, *encoder.x_layers]
        return {i + 1: (block, n_heads) for i, block in enumerate(blocks)}

    @property
    def region_width(self) -> int:
        """``visual_feat_dim`` (2048 for the released checkpoint)."""
        return int(self.model.config.visual_feat_dim)

    def _prepare(self, sentences: list[str], images: list[Image.Image | None]) -> Prepared:
        inputs, pool = self._tokenize_text(sentences)
        regions = self._region_arrays(images)
        inputs.update(
            visual_feats=regions["features"],
            visual_pos=regions["boxes"],
            visual_attention_mask=regions["mask"],
        )
        return Prepared(inputs, pool)

    def _joint_states(self, inputs: dict[str, Any]) -> JointStates:
        out = self.model(**inputs, output_hidden_states=True)
        ids = inputs["input_ids"]
        embeddings = self.model.embeddings(ids, torch.zeros_like(ids))  # as LxmertModel calls it
        hidden = (embeddings, *out.language_hidden_states)
        mask = inputs["attention_mask"].bool()
        return JointStates.one_sequence(hidden, mask)


# --- pixel-based encoders: ViLT, BridgeTower, FLAVA ---------------------------------------


def tiny_vilt_config() -> ViltConfig:
    """A 2-block ViLT of width 32 on 8x8 patches of 32-pixel (shortest edge) images."""
    return ViltConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
        max_position_embeddings=40,
        max_image_length=-1,
        **_WORDPIECE,
    )


def _tiny_vilt_processor() -> Any:
    from transformers.models.vilt.image_processing_pil_vilt import ViltImageProcessorPil

    return ViltImageProcessorPil(size={"shortest_edge": 32}, size_divisor=8)


@register_extractor("vilt")
class ViltExtractor(_OneConfig, _PixelExtractor):
    """ViLT (``ViltModel``): text tokens then [CLS] and image patches in one stream."""

    architecture = Architecture(
        model_class=ViltModel, from_config=ViltModel, tiny_config=tiny_vilt_config
    )
    _tiny_image_processor = staticmethod(_tiny_vilt_processor)

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if self.model.config.max_image_length != -1:
            logger.info(
                "ViLT: using every image patch instead of a random %d (max_image_length=-1)",
                self.model.config.max_image_length,
            )
            self.model.config.max_image_length = -1

    def _joint_states(self, inputs: dict[str, Any]) -> JointStates:
        masks: list[torch.Tensor] = []
        hook = self.model.embeddings.register_forward_hook(lambda m, a, out: masks.append(out[1]))
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.spec.seed)
                hidden = self.model(**inputs, output_hidden_states=True).hidden_states
        finally:
            hook.remove()
        mask = masks[0].bool()
        return JointStates.one_sequence(hidden, mask)


def tiny_bridgetower_config() -> BridgeTowerConfig:
    """BridgeTower: 2 text and 2 vision blocks (widths 32 and 64), 2 cross-modal layers.

    For the tiny RoBERTa-style BPE tokenizer (vocabulary 1024, ``<pad>`` = 1).
    """
    return BridgeTowerConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        text_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=66,
            vocab_size=TINY_VOCAB,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        ),
        vision_config=dict(hidden_size=64, num_hidden_layers=2, image_size=32, patch_size=8),
    )


def _tiny_bridgetower_processor() -> Any:
    from transformers.models.bridgetower.image_processing_pil_bridgetower import (
        BridgeTowerImageProcessorPil,
    )

    return BridgeTowerImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"shortest_edge": 32}, size_divisor=8
    )


@register_extractor("bridgetower")
class BridgeTowerExtractor(_PixelExtractor):
    """BridgeTower (``BridgeTowerModel``; METER's closest relative): cross-modal text layers.

    Hidden state 0 is the text embedding output; ``l >= 1`` the text side of
    cross-modal layer ``l`` (``hidden_states[2][l - 1][0]``).
    """

    architecture = Architecture(
        model_class=BridgeTowerModel,
        from_config=BridgeTowerModel,
        tiny_models={"bridgetower": TinyModel(tiny_bridgetower_config, "roberta")},
        default_tiny="bridgetower",
    )
    _tiny_image_processor = staticmethod(_tiny_bridgetower_processor)

    def _count_layers(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    def _text_config(self) -> Any:
        return self.model.config.text_config

    def _joint_blocks(self) -> dict[int, tuple[torch.nn.Module, int]]:
        """Layer ``l >= 1``: cross-modal text layer ``l - 1`` (its self-attention heads and
        MLP; the cross-attention is not read)."""
        n_heads = int(self.model.config.text_config.num_attention_heads)
        layers = self.model.cross_modal_text_layers
        return {i + 1: (block, n_heads) for i, block in enumerate(layers)}

    def text_width(self, layer: int) -> int:
        """Text hidden size at 0, cross-modal hidden size above."""
        config = self.model.config
        return int(config.text_config.hidden_size if layer == 0 else config.hidden_size)

    def _joint_states(self, inputs: dict[str, Any]) -> JointStates:
        text, _, cross = self.model(**inputs, output_hidden_states=True).hidden_states
        hidden = (text[0], *(pair[0] for pair in cross))
        mask = inputs["attention_mask"].bool()
        return JointStates.one_sequence(hidden, mask)


def tiny_flava_config() -> FlavaConfig:
    """FLAVA: 2-block text (32), image (24, 32 px in 8 px patches), multimodal (40) encoders."""
    return FlavaConfig(
        hidden_size=40,
        projection_dim=16,
        text_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            **_WORDPIECE,
        ),
        image_config=dict(
            hidden_size=24,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=48,
            image_size=32,
            patch_size=8,
        ),
        multimodal_config=dict(
            hidden_size=40, num_hidden_layers=2, num_attention_heads=2, intermediate_size=80
        ),
        image_codebook_config=dict(hidden_size=8, vocab_size=16),
    )


def _tiny_flava_processor() -> Any:
    from transformers.models.flava.image_processing_pil_flava import FlavaImageProcessorPil

    return FlavaImageProcessorPil(
        size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32}
    )


@register_extractor("flava")
class FlavaExtractor(_PixelExtractor):
    """FLAVA (``FlavaModel``): text encoder layers, then the multimodal encoder's layers.

    Hidden states ``0..T`` are the text encoder's (T text layers, text only);
    ``T + k`` (k = 1..M) is multimodal layer k, whose sequence is [multimodal CLS,
    image CLS, image patches, text tokens]: the word is pooled after the image tokens.
    The forward pass is ``FlavaModel.forward``'s, with the multimodal hidden states kept.
    """

    architecture = Architecture(
        model_class=FlavaModel, from_config=FlavaModel, tiny_config=tiny_flava_config
    )
    _tiny_image_processor = staticmethod(_tiny_flava_processor)

    def _count_layers(self) -> int:
        config = self.model.config
        return (
            1
            + int(config.text_config.num_hidden_layers)
            + int(config.multimodal_config.num_hidden_layers)
        )

    def _text_config(self) -> Any:
        return self.model.config.text_config

    def _joint_blocks(self) -> dict[int, tuple[torch.nn.Module, int]]:
        """The text encoder's layers, then the multimodal encoder's."""
        model, config = self.model, self.model.config
        text = [(b, config.text_config.num_attention_heads) for b in model.text_model.encoder.layer]
        fused = [
            (b, config.multimodal_config.num_attention_heads)
            for b in model.multimodal_model.encoder.layer
        ]
        return {i + 1: (block, int(n)) for i, (block, n) in enumerate([*text, *fused])}

    def text_width(self, layer: int) -> int:
        """Text hidden size for the text layers, multimodal hidden size above."""
        config = self.model.config
        text_layers = int(config.text_config.num_hidden_layers)
        return int(
            (config.text_config if layer <= text_layers else config.multimodal_config).hidden_size
        )

    def _prepare(self, sentences: list[str], images: list[Image.Image | None]) -> Prepared:
        inputs, pool = self._tokenize_text(sentences)
        inputs.update(pixel_values=self._pixels(images)["pixel_values"])
        return Prepared(inputs, pool)

    def _joint_states(self, inputs: dict[str, Any]) -> JointStates:
        model, attention = self.model, inputs["attention_mask"]
        image = model.image_model(pixel_values=inputs["pixel_values"], output_hidden_states=True)
        text = model.text_model(
            input_ids=inputs["input_ids"], attention_mask=attention, output_hidden_states=True
        )
        image_part = model.image_to_mm_projection(image.hidden_states[-1])
        prefix = image_part.shape[1] + int(model.multimodal_model.use_cls_token)
        ones = torch.ones(
            attention.shape[0], prefix, dtype=attention.dtype, device=attention.device
        )
        mm_mask = torch.cat([ones, attention], dim=1)
        fused = model.multimodal_model(
            torch.cat([image_part, model.text_to_mm_projection(text.hidden_states[-1])], dim=1),
            attention_mask=mm_mask,
            output_hidden_states=True,
        )
        hidden = (*text.hidden_states, *fused.hidden_states[1:])
        n_text = len(text.hidden_states)
        starts = [0] * n_text + [prefix] * (len(hidden) - n_text)
        masks = [attention.bool()] * n_text + [mm_mask.bool()] * (len(hidden) - n_text)
        return JointStates(hidden, starts, masks)
