"""Shared base of the contrastive extractors (CLIP, SigLIP): two towers, one space.

Text is pooled per ``spec.pooling`` over the text tower's hidden states; images per
the family's image pooling over the vision tower's. Hidden state 0 is each tower's
embedding output.

Two ways of combining the modalities (paper 000 sums the embeddings):

- hidden states (layer ``l``): the towers have no shared space and their widths
  differ in real models, so conditions with text and image concatenate
  ``[text_l, image_l]`` (in :mod:`brainalign.features.extract`); layer ``l`` must
  exist in both towers, so towers of unequal depth are refused with a ValueError;
- the **embeds pseudo-layer**, index ``n_layers`` (one past the last hidden state):
  each tower's own pooled output through its projection (the embedding the
  contrastive loss compares), L2-normalised as in the model's forward pass. Text
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

from brainalign.features.extractors import TowerOutput, TransformersExtractor
from brainalign.features.registry import ModelSpec

__all__ = ["ContrastiveExtractor", "EMBEDS"]

logger = logging.getLogger(__name__)

EMBEDS = "embeds"


def _normalise(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return x / x.norm(p=2, dim=-1, keepdim=True)


class ContrastiveExtractor(TransformersExtractor):
    """Text and vision towers plus the projected ``embeds`` pseudo-layer.

    Subclasses implement ``_text_embeds(text_output)`` and ``_image_embeds(vision_output)``
    (the projected, unnormalised embeddings) and ``embed_width``.
    """

    modalities = frozenset({"text", "image"})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.pseudo_layers = {self.n_layers: EMBEDS}

    @property
    def embeds_layer(self) -> int:
        """Index of the embeds pseudo-layer (``n_layers``)."""
        return self.n_layers

    def _count_layers(self) -> int:
        text = int(self.model.config.text_config.num_hidden_layers)
        vision = int(self.model.config.vision_config.num_hidden_layers)
        if text != vision:
            raise ValueError(
                f"model '{self.spec.name}': the {self.spec.extractor} extractor concatenates "
                f"text and image hidden states layer by layer and needs towers of equal "
                f"depth; got {text} text and {vision} vision layers. Use a checkpoint whose "
                "towers match."
            )
        return text + 1

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
        return TowerOutput(out.hidden_states, {self.embeds_layer: embeds})

    def _text_hidden_states(self, inputs: dict[str, torch.Tensor]) -> Sequence[torch.Tensor]:
        return self._text_outputs(inputs).hidden_states

    def _image_hidden_states(self, pixel_values: torch.Tensor) -> Sequence[torch.Tensor]:
        return self._image_outputs(pixel_values).hidden_states

    def _text_embeds(self, output: Any) -> torch.Tensor:
        raise NotImplementedError

    def _image_embeds(self, output: Any) -> torch.Tensor:
        raise NotImplementedError
