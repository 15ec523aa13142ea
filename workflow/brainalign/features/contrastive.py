"""Shared base of the contrastive extractors (CLIP, SigLIP, ALIGN): two towers, one space.

Text is pooled per ``spec.pooling`` over the text tower's hidden states; images per
the family's image pooling over the vision tower's. Hidden state 0 is each tower's
embedding output.

**Layers index the text tower.** A model's layer ``l`` (0..L, L = the text tower's
blocks) is text hidden state ``l``; its image features come from the vision hidden
state at the same *relative depth*, ``round(l * V / L)`` with halves rounded up
(:func:`relative_depth`; V = the vision tower's blocks), so 0 is each tower's
embedding output and L the last block of both. Towers of equal depth pair ``l`` with
``l``; CLIP ViT-L/14 (12 text, 24 vision blocks) pairs ``l`` with ``2 l``; ALIGN's
EfficientNet (align-base: 55 blocks for 12 text blocks) pairs ``l`` with its block at
that depth. The mapping is logged when the model loads, is
:attr:`ContrastiveExtractor.vision_layers`, and goes into the feature file's metadata
as ``vision_layers`` (:meth:`ContrastiveExtractor.feature_metadata`: layer -> vision
hidden state). Attention heads and MLP neurons of the image stream at layer ``l``
(``heads-image-XX``, ``mlp-image-XX``) are those of the vision block the layer maps to.

Two ways of combining the modalities (paper 000 sums the embeddings):

- hidden states (layer ``l``): the towers have no shared space and their widths
  differ in real models, so conditions with text and image concatenate
  ``[text_l, image_l]`` (in :mod:`brainalign.features.extract`), ``image_l`` taken at
  the matched vision depth above;
- the **embeds pseudo-layer**, index ``n_layers`` (one past the text tower's last
  hidden state): each tower's own pooled output through its projection (the embedding
  the contrastive loss compares), L2-normalised as in the model's forward pass. Text
  and image embeddings share one space, so conditions with both *sum* them, per
  paper 000; text-only conditions give the text embedding, image-only ones the
  image embedding. Pooling does not apply to it (the model's own pooling does:
  CLIP's end-of-text token and CLS token, SigLIP's last position and attention
  pooling head).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from brainalign.features.extractors import TowerOutput, TransformersExtractor, find_blocks
from brainalign.features.registry import ModelSpec

__all__ = ["ContrastiveExtractor", "EMBEDS", "relative_depth"]

logger = logging.getLogger(__name__)

EMBEDS = "embeds"


def relative_depth(layer: int, n_from: int, n_to: int) -> int:
    """Index at the same relative depth in a stack of ``n_to`` blocks.

    Parameters
    ----------
    layer : int
        Hidden state of the first stack, 0..``n_from`` (0 = embedding output).
    n_from, n_to : int
        Blocks of the first and the second stack (``n_from`` >= 1).

    Returns
    -------
    int
        ``round(layer * n_to / n_from)`` with halves rounded up, in 0..``n_to``.
    """
    if n_from < 1 or not 0 <= layer <= n_from:
        raise ValueError(
            f"relative_depth needs 0 <= layer <= n_from and n_from >= 1; got layer {layer}, "
            f"n_from {n_from}"
        )
    return (2 * layer * n_to + n_from) // (2 * n_from)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return x / x.norm(p=2, dim=-1, keepdim=True)


class ContrastiveExtractor(TransformersExtractor):
    """Text and vision towers plus the projected ``embeds`` pseudo-layer.

    Subclasses implement ``_text_embeds(text_output)`` and ``_image_embeds(vision_output)``
    (the projected, unnormalised embeddings) and ``embed_width``; ``_vision_depth`` when
    the vision tower's blocks are not ``vision_config.num_hidden_layers`` (ALIGN).
    """

    modalities = frozenset({"text", "image"})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.pseudo_layers = {self.n_layers: EMBEDS}
        logger.info(
            "model '%s' (%s): %d text and %d vision blocks; layer -> vision hidden state "
            "at the same relative depth: %s",
            spec.name,
            spec.extractor,
            self.n_layers - 1,
            self._vision_depth(),
            self.vision_layers,
        )

    @property
    def embeds_layer(self) -> int:
        """Index of the embeds pseudo-layer (``n_layers``)."""
        return self.n_layers

    def _count_layers(self) -> int:
        return int(self.model.config.text_config.num_hidden_layers) + 1

    def _vision_depth(self) -> int:
        """Blocks of the vision tower (its hidden states are 0..depth)."""
        return int(self.model.config.vision_config.num_hidden_layers)

    def vision_index(self, layer: int) -> int:
        """Vision hidden state paired with text hidden state ``layer`` (:func:`relative_depth`)."""
        return relative_depth(layer, self.n_layers - 1, self._vision_depth())

    @property
    def vision_layers(self) -> dict[int, int]:
        """Layer (text hidden state, 0..n_layers - 1) -> the vision hidden state it reads."""
        return {layer: self.vision_index(layer) for layer in range(self.n_layers)}

    def feature_metadata(self, layers: Sequence[int | str]) -> dict[str, Any]:
        """What a feature file records about ``layers``: ``vision_layers``, layer -> vision
        hidden state (str keys; the embeds pseudo-layer and head keys left out)."""
        mapping = self.vision_layers
        return {"vision_layers": {str(k): mapping[k] for k in layers if k in mapping}}

    def _unit_blocks(self, modality: str) -> dict[int, tuple[torch.nn.Module, int]]:
        """As :meth:`TransformersExtractor._unit_blocks`; image layer ``l`` reads the heads
        and MLP neurons of vision block :meth:`vision_index` (``l``)."""
        if modality != "image":
            return super()._unit_blocks(modality)
        blocks = find_blocks(self._tower("image"), self._vision_depth())
        n_heads = int(getattr(self._image_config(), "num_attention_heads", 0) or 0)
        if not blocks or not n_heads:
            return {}
        return {
            layer: (blocks[index - 1], n_heads)
            for layer, index in self.vision_layers.items()
            if index >= 1
        }

    def _text_config(self) -> Any:
        return self.model.config.text_config

    def _image_config(self) -> Any:
        return self.model.config.vision_config

    def _tower(self, modality: str) -> torch.nn.Module:
        return self.model.text_model if modality == "text" else self.model.vision_model

    @property
    def embed_width(self) -> int:
        """Width of the projected embeddings."""
        raise NotImplementedError

    def text_width(self, layer: int) -> int:
        """Text-tower hidden size; the embedding width at the embeds pseudo-layer."""
        if layer == self.embeds_layer:
            return self.embed_width
        return int(self._text_config().hidden_size)

    def image_width(self, layer: int) -> int:
        """Vision-tower hidden size; the embedding width at the embeds pseudo-layer."""
        if layer == self.embeds_layer:
            return self.embed_width
        return int(self._image_config().hidden_size)

    def _text_outputs(self, inputs: dict[str, torch.Tensor]) -> TowerOutput:
        out = self.model.text_model(**inputs, output_hidden_states=True)
        embeds = _normalise(self._text_embeds(out))
        return TowerOutput(out.hidden_states, {self.embeds_layer: embeds})

    def _image_outputs(self, pixel_values: torch.Tensor) -> TowerOutput:
        out = self.model.vision_model(pixel_values=pixel_values, output_hidden_states=True)
        embeds = _normalise(self._image_embeds(out))
        hidden = [out.hidden_states[index] for index in self.vision_layers.values()]
        return TowerOutput(hidden, {self.embeds_layer: embeds})

    def _text_hidden_states(self, inputs: dict[str, torch.Tensor]) -> Sequence[torch.Tensor]:
        return self._text_outputs(inputs).hidden_states

    def _image_hidden_states(self, pixel_values: torch.Tensor) -> Sequence[torch.Tensor]:
        return self._image_outputs(pixel_values).hidden_states

    def _text_embeds(self, output: Any) -> torch.Tensor:
        raise NotImplementedError

    def _image_embeds(self, output: Any) -> torch.Tensor:
        raise NotImplementedError
