"""The "llava_next" extractor: LLaVA-NeXT (``LlavaNextForConditionalGeneration``).

Paper 000's LLaVA is LLaVA-NeXT (``llava-hf/llama3-llava-next-8b-hf``: a CLIP ViT-L/14
at 336 px and Llama-3-8B). Like LLaVA 1.5 (:mod:`brainalign.features.generative`,
whose machinery this family shares: the prompt ``"<image>" * n + "\\n" + sentence``,
no chat template, word pooling by the tokenizer's offsets, text-only conditions on
the language model alone, image-only rows pooled over every real position of each
layer), with *any-resolution tiling*:

- the image processor picks the best of ``image_grid_pinpoints`` for the image's size,
  cuts the resized, padded image into tiles of the vision tower's size and adds the
  whole image downscaled as a base tile; ``pixel_values`` has shape (batch, tiles, 3,
  size, size), zero-padded to the batch's largest tile count, and ``image_sizes``
  (batch, 2) holds each image's (height, width);
- the model keeps each tile's patch features (less CLS for the "default" feature
  strategy), removes the padding of the tiled grid (``unpad_image``) and appends an
  ``image_newline`` feature per grid row, so the number of image tokens depends on
  the image's size. The count of each image is the one ``LlavaNextProcessor``
  computes (:meth:`LlavaNextExtractor.image_token_count`, through the processor's own
  ``replace_image_token``), checked once against the model's own
  ``get_image_features`` when the extractor is built.

Layers are the language model's hidden states (hidden state 0 = its input embeddings
with the image features in place, ``l`` = decoder block ``l``): 1 + 32 for the 8B
model. The tiny model (source "tiny") is a 2-block LLaMA (width 32) on a 2-block CLIP
ViT (32 px, 8 px patches) with pinpoints 32x64, 64x32 and 64x64, and the tiny "llama"
BPE tokenizer plus ``<image>``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LlavaNextConfig, LlavaNextForConditionalGeneration

from brainalign.features.extractors import Architecture, TinyModel
from brainalign.features.generative import (
    _TINY_VISION,
    GenerativeExtractor,
    Prompt,
    _tiny_llama_text,
    _tiny_vocab,
)
from brainalign.features.registry import ModelSpec, register_extractor

__all__ = ["LlavaNextExtractor", "tiny_llava_next_config", "TINY_PINPOINTS"]

logger = logging.getLogger(__name__)

_LLAVA_NEXT_TOKENS = ("<image>",)
#: Any-resolution grid of the tiny model: (height, width) multiples of its 32 px tiles.
TINY_PINPOINTS = [[32, 64], [64, 32], [64, 64]]
# vision towers whose patch features start with a CLS token (dropped by "default")
_CLS_TOWERS = ("clip_vision_model",)


def tiny_llava_next_config() -> LlavaNextConfig:
    """LLaVA-NeXT: CLIP ViT (24 wide, 32 px tiles, 8 px patches), 2-block LLaMA (32)."""
    vocab = _tiny_vocab("llama", len(_LLAVA_NEXT_TOKENS))
    return LlavaNextConfig(
        vision_config=dict(model_type="clip_vision_model", **_TINY_VISION),
        text_config=_tiny_llama_text("llama", vocab),
        image_token_index=vocab - 1,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        image_grid_pinpoints=[list(p) for p in TINY_PINPOINTS],
    )


@register_extractor("llava_next")
class LlavaNextExtractor(GenerativeExtractor):
    """LLaVA-NeXT: any-resolution tiles of projected vision features as image tokens."""

    architecture = Architecture(
        model_class=LlavaNextForConditionalGeneration,
        from_config=LlavaNextForConditionalGeneration,
        tiny_models={"llava_next": TinyModel(tiny_llava_next_config, "llama")},
        default_tiny="llava_next",
    )
    special_tokens = _LLAVA_NEXT_TOKENS

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.processor = self._token_counter()
        self._check_token_count()

    def _tiny_image_processor(self) -> Any:
        from transformers.models.llava_next.image_processing_pil_llava_next import (
            LlavaNextImageProcessorPil,
        )

        return LlavaNextImageProcessorPil(
            size={"shortest_edge": 32},
            crop_size={"height": 32, "width": 32},
            image_grid_pinpoints=[list(p) for p in self.model.config.image_grid_pinpoints],
        )

    def _token_counter(self) -> Any:
        """A ``LlavaNextProcessor`` on this tokenizer and image processor (for its counts)."""
        from transformers import LlavaNextProcessor

        config = self.model.config
        vision = config.vision_config
        return LlavaNextProcessor(
            image_processor=self.image_processor,
            tokenizer=self.tokenizer,
            patch_size=int(vision.patch_size),
            vision_feature_select_strategy=config.vision_feature_select_strategy,
            num_additional_image_tokens=int(vision.model_type in _CLS_TOWERS),
        )

    def _check_token_count(self) -> None:
        pixels = self._pixels([self.noise_image])
        with torch.inference_mode():
            features = self._image_features(pixels)
        expected, found = int(features[0].shape[0]), self.image_token_count(pixels)[0]
        if expected != found:
            raise ValueError(
                f"model '{self.spec.name}': LlavaNextProcessor's count of image tokens "
                f"({found}) differs from the model's image features ({expected}) for a "
                f"{self.noise_image.size[0]}x{self.noise_image.size[1]} image; the image "
                "processor's image_grid_pinpoints or size do not match the model's config. "
                "Use the checkpoint's own preprocessor_config.json."
            )
        logger.info(
            "llava_next: %d image tokens for a %dx%d image (pinpoints %s)",
            found,
            *self.noise_image.size,
            self.model.config.image_grid_pinpoints,
        )

    def _image_features(self, pixels: dict[str, torch.Tensor]) -> Sequence[torch.Tensor]:
        """The model's own packed image features: one (n_tokens, width) tensor per image."""
        config = self.model.config
        out = self.model.get_image_features(
            pixel_values=pixels["pixel_values"],
            image_sizes=pixels["image_sizes"],
            vision_feature_layer=config.vision_feature_layer,
            vision_feature_select_strategy=config.vision_feature_select_strategy,
        )
        return out.pooler_output

    def image_token_count(self, pixels: dict[str, torch.Tensor]) -> list[int]:
        """Image tokens of each image of a batch, as ``LlavaNextProcessor`` expands ``<image>``.

        Parameters
        ----------
        pixels : dict of str to Tensor
            The image processor's output: ``pixel_values`` of shape (batch, tiles, 3,
            size, size) and ``image_sizes`` of shape (batch, 2), (height, width).

        Returns
        -------
        list of int
            One count per image (depends on its size through the pinpoints grid).
        """
        inputs = {key: pixels[key].cpu() for key in ("pixel_values", "image_sizes")}
        n_images = int(inputs["image_sizes"].shape[0])
        placeholders = [self.processor.replace_image_token(inputs, i) for i in range(n_images)]
        return [len(p) // len(self.image_token) for p in placeholders]

    def _image_prompts(self, pixels: dict[str, torch.Tensor], sentences: list[str]) -> list[Prompt]:
        counts = self.image_token_count(pixels)
        return [Prompt(prefix=self.image_token * n + "\n") for n in counts]

    def _forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixels: dict[str, torch.Tensor]
    ) -> Sequence[torch.Tensor]:
        return self._model_states(
            input_ids,
            attention_mask,
            pixel_values=pixels.get("pixel_values"),
            image_sizes=pixels.get("image_sizes"),
        )
