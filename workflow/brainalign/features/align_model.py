"""The "align" extractor: a transformers ``AlignModel`` (ALIGN, ``kakaobrain/align-base``).

Two towers in one space, like CLIP (see :mod:`brainalign.features.contrastive`:
per-layer concatenation of the towers, summed ``embeds`` pseudo-layer), with ALIGN's
own shapes:

- the text tower is a BERT: its hidden states 0..L (0 = embedding output) are the
  model's layers; text is pooled per ``spec.pooling``;
- the vision tower is an EfficientNet whose ``output_hidden_states`` are the stem's
  output followed by the output of every MBConv block, each a feature map of shape
  (batch, channels, height, width) with a width that grows with depth
  (align-base: 1 + 55 maps for 12 text blocks). Image features at layer ``l`` are
  the vision hidden state at the same *relative depth*, ``round(l * n_blocks / L)``
  (the mapping shared by every contrastive family,
  :func:`brainalign.features.contrastive.relative_depth`; 0 = the stem, L = the last
  block), averaged over its spatial positions (the model's own pooling
  at the last block, whose mean is ALIGN's image embedding); the layer's image width is
  that block's number of channels;
- the ``embeds`` pseudo-layer: the text embedding is ``text_projection`` of the last
  hidden state's first ([CLS]) token, the image embedding the vision pooler output
  (no projection), both L2-normalised, as ``AlignModel.forward`` computes them.

EfficientNet has no attention, so ``attention_heads`` is refused (a ValueError when
the extractor is built). Images are preprocessed as ALIGN's ``EfficientNetImageProcessor``
does: resized to a square (289 px for align-base), no crop, rescaled to [-1, 1]
(``rescale_offset``, no normalisation), which is the [0, 1] rescale normalised with
mean = std = 0.5.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AlignConfig, AlignModel

from brainalign.features.contrastive import ContrastiveExtractor
from brainalign.features.extractors import Architecture, TowerOutput
from brainalign.features.images import HALF_MEAN, HALF_STD, ImagePreprocessing
from brainalign.features.registry import ModelSpec, register_extractor

__all__ = ["AlignExtractor", "tiny_align_config"]

logger = logging.getLogger(__name__)


def tiny_align_config() -> AlignConfig:
    """A 2-block BERT (width 32) and a 4-block EfficientNet (8-24 channels), 32x32 images.

    The vision tower's last block has 24 channels, the text projection 24 outputs, so
    the two embeddings share one width as in the real model (640).
    """
    text = dict(
        vocab_size=30522,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    vision = dict(
        image_size=32,
        width_coefficient=1.0,
        depth_coefficient=1.0,
        kernel_sizes=[3, 3, 3],
        in_channels=[32, 8, 16],  # the stem has round_filters(32) channels
        out_channels=[8, 16, 24],
        strides=[1, 2, 2],
        num_block_repeats=[1, 1, 2],
        expand_ratios=[1, 2, 2],
        hidden_dim=64,  # pooling kernel >= the last map: a global average
        depthwise_padding=[],
    )
    return AlignConfig(text_config=text, vision_config=vision, projection_dim=24)


def _half_statistics(files: str, revision: str | None) -> bool:
    """Whether the preprocessor maps pixels to [-1, 1] (no normalisation, offset rescale)."""
    from transformers.utils import cached_file

    path = cached_file(
        files,
        "preprocessor_config.json",
        revision=revision,
        local_files_only=True,
        _raise_exceptions_for_missing_entries=False,
    )
    if path is None:
        return True
    cfg = json.loads(Path(path).read_text())
    if cfg.get("do_normalize", False):
        raise ValueError(
            f"'{files}': preprocessor_config.json sets do_normalize true; the align extractor "
            "reproduces ALIGN's processor (rescale to [-1, 1], no normalisation). Use the "
            "checkpoint's original preprocessor_config.json."
        )
    return bool(cfg.get("rescale_offset", True))


@register_extractor("align")
class AlignExtractor(ContrastiveExtractor):
    """ALIGN text (BERT) and vision (EfficientNet) towers; modalities {"text", "image"}."""

    architecture = Architecture(
        model_class=AlignModel, from_config=AlignModel, tiny_config=tiny_align_config
    )
    image_pooling = "mean"
    image_defaults = ImagePreprocessing(
        289, (289, 289), HALF_MEAN, HALF_STD, int(Image.Resampling.BICUBIC), square=True
    )

    def __init__(self, spec: ModelSpec) -> None:
        if spec.attention_heads:
            raise ValueError(
                f"model '{spec.name}': 'attention_heads' is true but ALIGN's vision tower "
                "(EfficientNet) has no attention heads; set it to false"
            )
        super().__init__(spec)
        widths = self._vision_widths()
        if widths[-1] != self.embed_width:
            raise ValueError(
                f"model '{spec.name}': ALIGN's text embedding ({self.embed_width}) and image "
                f"embedding ({widths[-1]}) must have one width to be summed; got a mismatched "
                "checkpoint"
            )

    def _vision_widths(self) -> list[int]:
        """Channels of each vision hidden state: the stem, then every block."""
        vision = self.model.vision_model
        blocks = vision.encoder.blocks
        stem = int(vision.embeddings.convolution.out_channels)
        return [stem, *(int(b.projection.project_conv.out_channels) for b in blocks)]

    def _vision_depth(self) -> int:
        """EfficientNet blocks (the stem's output is vision hidden state 0)."""
        return len(self._vision_widths()) - 1

    @property
    def embed_width(self) -> int:
        """ALIGN's ``projection_dim`` (= the last vision block's channels)."""
        return int(self.model.config.projection_dim)

    def image_width(self, layer: int) -> int:
        """Channels of the vision hidden state paired with ``layer``; the embedding width
        at the embeds pseudo-layer."""
        if layer == self.embeds_layer:
            return self.embed_width
        return self._vision_widths()[self.vision_index(layer)]

    def _image_preprocessing(self) -> ImagePreprocessing:
        base = super()._image_preprocessing()
        if self.files is None or _half_statistics(self.files, self.spec.revision):
            return replace(base, mean=HALF_MEAN, std=HALF_STD)
        return replace(base, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

    def _image_outputs(self, pixel_values: torch.Tensor) -> TowerOutput:
        out = self.model.vision_model(pixel_values=pixel_values, output_hidden_states=True)
        maps = out.hidden_states
        # (batch, channels, h, w) -> (batch, h * w, channels): positions become tokens,
        # pooled by the mean over them (image_pooling "mean").
        hidden = [maps[index].flatten(2).transpose(1, 2) for index in self.vision_layers.values()]
        embeds = out.pooler_output.double()
        embeds = embeds / embeds.norm(p=2, dim=-1, keepdim=True)
        return TowerOutput(hidden, {self.embeds_layer: embeds})

    def _text_embeds(self, output: Any) -> torch.Tensor:
        return self.model.text_projection(output.last_hidden_state[:, 0, :])

    def _image_embeds(self, output: Any) -> torch.Tensor:
        return output.pooler_output
