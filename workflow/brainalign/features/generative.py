"""Generative vision-language models: BLIP-2, LLaVA, IDEFICS2 and Qwen2-VL.

A vision encoder and an adaptor turn the image into a run of *image tokens* in the
input sequence of a language model; the features are the language model's hidden
states (hidden state 0 = its input embeddings with the image tokens in place,
``l`` = the output of decoder block ``l``), pooled over the target word's own
tokens (or per ``spec.pooling``). The methods are those of
:class:`~brainalign.features.vl_encoders.JointExtractor` (``encode_text_image``,
``encode_pairs``, ``encode_text``, ``encode_images``); ``requires_image`` is False:
a None image, or ``encode_text``, runs the language model on the sentence alone.

The input sequence is what the model's own processor builds from an image
placeholder followed by the sentence (no chat template; in a causal model nothing
after the sentence changes its hidden states):

========== ===================================================================
BLIP-2     ``num_query_tokens`` ``<image>`` tokens, *then* the tokenized sentence
           (its bos included), as ``Blip2Processor`` does
LLaVA      ``"<image>\\n" + sentence`` with ``<image>`` repeated once per image
           feature (the patches, less CLS for the "default" feature strategy)
IDEFICS2   ``"<image>" + sentence`` expanded to ``<fake_token_around_image>``,
           ``image_seq_len`` ``<image>`` tokens per (sub-)image,
           ``<fake_token_around_image>`` and a space, as ``Idefics2Processor`` does
Qwen2-VL   ``<|vision_start|>`` + ``<|image_pad|>`` x (grid t*h*w / merge**2) +
           ``<|vision_end|>`` + sentence
========== ===================================================================

Tokens of the image placeholder and of the prompt around it are never pooled as
text; the sentence's tokens are located by the tokenizer's character offsets in the
prompt, shifted back by the length of the prefix. Images go through the model's own
image processor in its PIL backend (no torchvision). Tiny models use the tiny BPE
tokenizers of :mod:`brainalign.features.tiny_tokenizers` (OPT and Qwen2: byte-level
"gpt2"; LLaMA and Mistral: "llama") with the image tokens added explicitly, in the
order of :attr:`GenerativeExtractor.special_tokens`.

With ``attention_heads`` / ``mlp_neurons`` the heads and MLP neurons of the language
model's decoder blocks (:attr:`GenerativeExtractor.decoder_blocks`) are pooled like the
hidden states, under the joint stream's name (``heads-text+image-XX``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers import (
    AddedToken,
    Blip2Config,
    Blip2ForConditionalGeneration,
    Idefics2Config,
    Idefics2ForConditionalGeneration,
    LlavaConfig,
    LlavaForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)

from brainalign.features.extractors import Architecture, TinyModel
from brainalign.features.registry import ModelSpec, register_extractor
from brainalign.features.tiny_tokenizers import tiny_tokenizer
from brainalign.features.vl_encoders import JointExtractor, JointStates, Prepared

__all__ = [
    "GenerativeExtractor",
    "Blip2Extractor",
    "LlavaExtractor",
    "Idefics2Extractor",
    "Qwen2VLExtractor",
    "Prompt",
    "assemble_prompts",
    "tiny_blip2_config",
    "tiny_llava_config",
    "tiny_idefics2_config",
    "tiny_qwen2vl_config",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prompt:
    """How one sentence is wrapped: token ids before the text, and a text prefix.

    Attributes
    ----------
    ids : tuple of int
        Token ids placed before the tokenized text (BLIP-2's image tokens).
    prefix : str
        Text placed before the sentence in the string that is tokenized.
    """

    ids: tuple[int, ...] = ()
    prefix: str = ""


def _prompt_row(tokenizer: Any, prompt: Prompt, sentence: str) -> dict[str, list]:
    encoded = tokenizer(
        prompt.prefix + sentence, return_offsets_mapping=True, return_special_tokens_mask=True
    )
    n_pre, shift = len(prompt.ids), len(prompt.prefix)
    text, special, offsets = [False] * n_pre, [True] * n_pre, [(0, 0)] * n_pre
    for (start, end), is_special in zip(
        encoded["offset_mapping"], encoded["special_tokens_mask"], strict=True
    ):
        in_prompt = not is_special and end <= shift  # the placeholder and prompt tokens
        text.append(not in_prompt)
        special.append(bool(is_special))
        offsets.append((0, 0) if is_special or in_prompt else (max(start - shift, 0), end - shift))
    return {
        "input_ids": [*prompt.ids, *encoded["input_ids"]],
        "text": text,
        "special": special,
        "offsets": offsets,
    }


def assemble_prompts(
    tokenizer: Any, sentences: Sequence[str], prompts: Sequence[Prompt], pad_id: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Tokenize ``prompt.prefix + sentence`` after ``prompt.ids``, right-padded.

    Parameters
    ----------
    tokenizer : fast tokenizer (with offsets)
    sentences : sequence of str
    prompts : sequence of Prompt
        One per sentence.
    pad_id : int

    Returns
    -------
    inputs : dict of str to Tensor
        ``input_ids`` and ``attention_mask`` (1 on every real token), shape (batch, length).
    pool : dict of str to Tensor
        ``attention_mask`` (the sentence's tokens and the tokenizer's special tokens, not
        the image or prompt tokens), ``special_tokens_mask`` and ``offset_mapping``
        (batch, length, 2): character offsets into the *sentence*.
    """
    rows = [_prompt_row(tokenizer, p, s) for p, s in zip(prompts, sentences, strict=True)]
    length = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    real = torch.zeros((len(rows), length), dtype=torch.long)
    text = torch.zeros((len(rows), length), dtype=torch.long)
    special = torch.ones((len(rows), length), dtype=torch.long)
    offsets = torch.zeros((len(rows), length, 2), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        ids[i, :n] = torch.tensor(row["input_ids"])
        real[i, :n] = 1
        text[i, :n] = torch.tensor(row["text"], dtype=torch.long)
        special[i, :n] = torch.tensor(row["special"], dtype=torch.long)
        offsets[i, :n] = torch.tensor(row["offsets"], dtype=torch.long).reshape(n, 2)
    pool = {"attention_mask": text, "special_tokens_mask": special, "offset_mapping": offsets}
    return {"input_ids": ids, "attention_mask": real}, pool


def _special(token: str) -> AddedToken:
    return AddedToken(token, normalized=False, special=True)


def _tiny_vocab(kind: str, n_added: int) -> int:
    """Vocabulary of a tiny model: the tiny tokenizer's plus the added image tokens."""
    return len(tiny_tokenizer(kind)) + n_added


# The tiny vision tower of BLIP-2, LLaVA and IDEFICS2: width 24, 32 px images, 8 px patches.
_TINY_VISION = dict(
    hidden_size=24,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=32,
    patch_size=8,
)


def _tiny_llama_text(model_type: str, vocab: int) -> dict[str, Any]:
    """The tiny language model of LLaVA ("llama") and IDEFICS2 ("mistral"): 2 blocks of 32."""
    return dict(
        model_type=model_type,
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
    )


class GenerativeExtractor(JointExtractor):
    """Base of the generative VLM extractors.

    Subclasses set ``architecture``, ``special_tokens`` (added to the tokenizer when
    missing, in this order) and ``image_token``, and implement ``_image_inputs``,
    ``_image_prompts`` (one :class:`Prompt` per image of a batch) and ``_forward``.
    """

    requires_image = False
    special_tokens: tuple[str, ...] = ("<image>",)
    image_token = "<image>"
    #: Module path of the language model's decoder blocks (their heads and MLP neurons).
    decoder_blocks = "model.language_model.layers"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self._add_special_tokens()
        self.image_processor = self._load_image_processor(self._tiny_image_processor)

    def _add_special_tokens(self) -> None:
        missing = [t for t in self.special_tokens if t not in self.tokenizer.get_vocab()]
        if missing:
            self.tokenizer.add_special_tokens(
                {"additional_special_tokens": [_special(t) for t in missing]},
                replace_extra_special_tokens=False,
            )
            logger.info("added special tokens %s to the tokenizer", ", ".join(missing))
        found = self.tokenizer.convert_tokens_to_ids(self.image_token)
        if found != self.image_token_id:
            raise ValueError(
                f"model '{self.spec.name}': the tokenizer's id of {self.image_token} is {found}; "
                f"the model's image_token_id is {self.image_token_id}. Use the tokenizer "
                "saved with the checkpoint."
            )

    @property
    def image_token_id(self) -> int:
        """The model's id of the image placeholder token."""
        return int(self.model.config.image_token_id)

    def _tiny_image_processor(self) -> Any:
        raise NotImplementedError

    def _count_layers(self) -> int:
        return int(self.model.config.text_config.num_hidden_layers) + 1

    def _text_config(self) -> Any:
        return self.model.config.text_config

    def _joint_blocks(self) -> dict[int, tuple[torch.nn.Module, int]]:
        """Layer ``l >= 1``: decoder block ``l`` of the language model (:attr:`decoder_blocks`;
        none when the checkpoint's layout differs, which the unit options then refuse)."""
        try:
            blocks = self.model.get_submodule(self.decoder_blocks)
        except AttributeError:
            return {}
        n_heads = int(self._text_config().num_attention_heads)
        return {i + 1: (block, n_heads) for i, block in enumerate(blocks)}

    def text_width(self, layer: int) -> int:
        """Language-model hidden size (the same at every layer)."""
        return int(self.model.config.text_config.hidden_size)

    def _prepare(self, sentences: list[str], images: list[Image.Image | None]) -> Prepared:
        pixels = self._image_inputs(images) if images[0] is not None else {}
        prompts = self._image_prompts(pixels, sentences) if pixels else [Prompt()] * len(sentences)
        inputs, pool = assemble_prompts(
            self.tokenizer, sentences, prompts, int(self.tokenizer.pad_token_id)
        )
        length = inputs["input_ids"].shape[1]
        if length > self.max_tokens:
            i = int(inputs["attention_mask"].sum(dim=1).argmax())
            raise ValueError(
                f"sentence {sentences[i]!r} with its image tokens is {length} tokens long; "
                f"model '{self.spec.name}' accepts at most {self.max_tokens}"
            )
        inputs = {key: value.to(self.device) for key, value in inputs.items()}
        return Prepared({**inputs, "pixels": pixels}, pool)

    def _joint_states(self, inputs: dict[str, Any]) -> JointStates:
        hidden = self._forward(inputs["input_ids"], inputs["attention_mask"], inputs["pixels"])
        mask = inputs["attention_mask"].bool()
        return JointStates.one_sequence(hidden, mask)

    def _image_inputs(self, images: list[Image.Image]) -> dict[str, torch.Tensor]:
        return self._pixels(images)

    def _image_prompts(self, pixels: dict[str, torch.Tensor], sentences: list[str]) -> list[Prompt]:
        raise NotImplementedError

    def _forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixels: dict[str, torch.Tensor]
    ) -> Sequence[torch.Tensor]:
        raise NotImplementedError

    def _model_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **image_inputs: Any
    ) -> Sequence[torch.Tensor]:
        """Hidden states of ``self.model`` run without a key/value cache on the sequence."""
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=True,
            use_cache=False,
            **image_inputs,
        )
        return out.hidden_states


# --- BLIP-2 -----------------------------------------------------------------------------

_BLIP2_TOKENS = ("<image>",)


def tiny_blip2_config() -> Blip2Config:
    """BLIP-2: ViT (24 wide, 32 px, 8 px patches), 2-block Q-Former, 4 queries, 2-block OPT (32)."""
    vocab = _tiny_vocab("gpt2", len(_BLIP2_TOKENS))
    return Blip2Config(
        vision_config=dict(_TINY_VISION),
        qformer_config=dict(
            vocab_size=64,
            hidden_size=24,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=48,
            encoder_hidden_size=24,
            max_position_embeddings=32,
        ),
        text_config=dict(
            model_type="opt",
            vocab_size=vocab,
            hidden_size=32,
            num_hidden_layers=2,
            ffn_dim=64,
            num_attention_heads=2,
            word_embed_proj_dim=32,
            max_position_embeddings=256,
            pad_token_id=0,
            bos_token_id=0,
            eos_token_id=0,
        ),
        num_query_tokens=4,
        image_token_index=vocab - 1,
    )


@register_extractor("blip2")
class Blip2Extractor(GenerativeExtractor):
    """BLIP-2 (``Blip2ForConditionalGeneration``) with a decoder-only (OPT) language model."""

    architecture = Architecture(
        model_class=Blip2ForConditionalGeneration,
        from_config=Blip2ForConditionalGeneration,
        tiny_models={"blip2": TinyModel(tiny_blip2_config, "gpt2")},
        default_tiny="blip2",
    )
    special_tokens = _BLIP2_TOKENS
    decoder_blocks = "language_model.model.decoder.layers"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if not self.model.config.use_decoder_only_language_model:
            raise ValueError(
                f"model '{spec.name}': BLIP-2 with an encoder-decoder language model "
                f"({self.model.config.text_config.model_type}) is not supported; use an "
                "OPT-based checkpoint such as Salesforce/blip2-opt-2.7b"
            )

    def _tiny_image_processor(self) -> Any:
        from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

        return BlipImageProcessorPil(size={"height": 32, "width": 32})

    def _image_prompts(self, pixels: dict[str, torch.Tensor], sentences: list[str]) -> list[Prompt]:
        ids = (self.image_token_id,) * int(self.model.config.num_query_tokens)
        return [Prompt(ids=ids)] * len(sentences)

    def _forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixels: dict[str, torch.Tensor]
    ) -> Sequence[torch.Tensor]:
        if not pixels:
            out = self.model.language_model(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
            )
            return out.hidden_states
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixels["pixel_values"],
            output_hidden_states=True,
        )
        return out.language_model_outputs.hidden_states


# --- LLaVA ------------------------------------------------------------------------------

_LLAVA_TOKENS = ("<image>",)


def tiny_llava_config() -> LlavaConfig:
    """LLaVA: CLIP ViT (24 wide, 32 px, 8 px patches: 16 image tokens), 2-block LLaMA (32)."""
    vocab = _tiny_vocab("llama", len(_LLAVA_TOKENS))
    return LlavaConfig(
        vision_config=dict(model_type="clip_vision_model", **_TINY_VISION),
        text_config=_tiny_llama_text("llama", vocab),
        image_token_index=vocab - 1,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )


@register_extractor("llava")
class LlavaExtractor(GenerativeExtractor):
    """LLaVA (``LlavaForConditionalGeneration``): projected vision features as image tokens."""

    architecture = Architecture(
        model_class=LlavaForConditionalGeneration,
        from_config=LlavaForConditionalGeneration,
        tiny_models={"llava": TinyModel(tiny_llava_config, "llama")},
        default_tiny="llava",
    )
    special_tokens = _LLAVA_TOKENS

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        probe = self._pixels([self.noise_image])
        with torch.inference_mode():
            features = self._image_features(probe["pixel_values"])
        self.n_image_tokens = int(features[0].shape[0])

    def _tiny_image_processor(self) -> Any:
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        return CLIPImageProcessorPil(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        )

    def _image_features(self, pixel_values: torch.Tensor) -> Sequence[torch.Tensor]:
        config = self.model.config
        out = self.model.get_image_features(
            pixel_values=pixel_values,
            vision_feature_layer=config.vision_feature_layer,
            vision_feature_select_strategy=config.vision_feature_select_strategy,
        )
        return out.pooler_output

    def _image_prompts(self, pixels: dict[str, torch.Tensor], sentences: list[str]) -> list[Prompt]:
        return [Prompt(prefix=self.image_token * self.n_image_tokens + "\n")] * len(sentences)

    def _forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixels: dict[str, torch.Tensor]
    ) -> Sequence[torch.Tensor]:
        return self._model_states(
            input_ids, attention_mask, pixel_values=pixels.get("pixel_values")
        )


# --- IDEFICS2 ---------------------------------------------------------------------------

_IDEFICS2_TOKENS = ("<fake_token_around_image>", "<image>", "<end_of_utterance>")


def tiny_idefics2_config() -> Idefics2Config:
    """IDEFICS2: SigLIP-like ViT (24 wide, 8 px patches), 4-latent perceiver, 2-block Mistral."""
    vocab = _tiny_vocab("llama", len(_IDEFICS2_TOKENS))
    return Idefics2Config(
        vision_config=dict(_TINY_VISION),
        perceiver_config=dict(
            hidden_act="silu",
            resampler_n_latents=4,
            resampler_depth=1,
            resampler_n_heads=2,
            resampler_head_dim=8,
            num_key_value_heads=1,
            hidden_size=32,
            rms_norm_eps=1e-6,
        ),
        text_config=_tiny_llama_text("mistral", vocab),
        image_token_id=vocab - 2,
    )


@register_extractor("idefics2")
class Idefics2Extractor(GenerativeExtractor):
    """IDEFICS2 (``Idefics2ForConditionalGeneration``): perceiver-resampled image tokens."""

    architecture = Architecture(
        model_class=Idefics2ForConditionalGeneration,
        from_config=Idefics2ForConditionalGeneration,
        tiny_models={"idefics2": TinyModel(tiny_idefics2_config, "llama")},
        default_tiny="idefics2",
    )
    special_tokens = _IDEFICS2_TOKENS
    fake_token = "<fake_token_around_image>"
    decoder_blocks = "model.text_model.layers"

    def _tiny_image_processor(self) -> Any:
        from transformers.models.idefics2.image_processing_pil_idefics2 import (
            Idefics2ImageProcessorPil,
        )

        return Idefics2ImageProcessorPil(
            size={"shortest_edge": 32, "longest_edge": 48}, do_image_splitting=False
        )

    def _image_inputs(self, images: list[Image.Image]) -> dict[str, torch.Tensor]:
        return self._pixels([[image] for image in images])

    def _image_prompts(self, pixels: dict[str, torch.Tensor], sentences: list[str]) -> list[Prompt]:
        n_latents = int(self.model.config.perceiver_config.resampler_n_latents)
        per_image = f"{self.fake_token}{self.image_token * n_latents}{self.fake_token}"
        placeholder = (per_image * int(pixels["pixel_values"].shape[1])).replace(
            self.fake_token * 2, self.fake_token
        )
        closing = re.compile(rf"{re.escape(self.fake_token)}(?=[^\s<])")
        return [
            Prompt(prefix=placeholder + (" " if closing.match(self.fake_token + s) else ""))
            for s in sentences
        ]

    def _forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixels: dict[str, torch.Tensor]
    ) -> Sequence[torch.Tensor]:
        return self._model_states(
            input_ids,
            attention_mask,
            pixel_values=pixels.get("pixel_values"),
            pixel_attention_mask=pixels.get("pixel_attention_mask"),
        )


# --- Qwen2-VL ---------------------------------------------------------------------------

_QWEN2VL_TOKENS = ("<|vision_start|>", "<|image_pad|>", "<|vision_end|>")


def tiny_qwen2vl_config() -> Qwen2VLConfig:
    """Qwen2-VL: ViT (16 wide, 4 px patches, 2x2 merge), 2-block Qwen2 (32) with M-RoPE."""
    vocab = _tiny_vocab("gpt2", len(_QWEN2VL_TOKENS))
    return Qwen2VLConfig(
        vision_config=dict(
            depth=2,
            embed_dim=16,
            hidden_size=32,
            num_heads=2,
            mlp_ratio=2,
            patch_size=4,
            spatial_merge_size=2,
            temporal_patch_size=2,
        ),
        text_config=dict(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=256,
            rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
            bos_token_id=0,
            eos_token_id=0,
        ),
        vision_start_token_id=vocab - 3,
        image_token_id=vocab - 2,
        vision_end_token_id=vocab - 1,
    )


@register_extractor("qwen2_vl")
class Qwen2VLExtractor(GenerativeExtractor):
    """Qwen2-VL (``Qwen2VLForConditionalGeneration``): merged patch tokens, M-RoPE positions."""

    architecture = Architecture(
        model_class=Qwen2VLForConditionalGeneration,
        from_config=Qwen2VLForConditionalGeneration,
        tiny_models={"qwen2_vl": TinyModel(tiny_qwen2vl_config, "gpt2")},
        default_tiny="qwen2_vl",
    )
    special_tokens = _QWEN2VL_TOKENS
    image_token = "<|image_pad|>"

    def _tiny_image_processor(self) -> Any:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil,
        )

        return Qwen2VLImageProcessorPil(
            min_pixels=16 * 16,
            max_pixels=32 * 32,
            patch_size=4,
            merge_size=2,
            temporal_patch_size=2,
        )

    def _image_prompts(self, pixels: dict[str, torch.Tensor], sentences: list[str]) -> list[Prompt]:
        merge = int(self.model.config.vision_config.spatial_merge_size) ** 2
        counts = (pixels["image_grid_thw"].prod(dim=1) // merge).tolist()
        start, end = _QWEN2VL_TOKENS[0], _QWEN2VL_TOKENS[2]
        return [Prompt(prefix=f"{start}{self.image_token * int(n)}{end}") for n in counts]

    def _forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixels: dict[str, torch.Tensor]
    ) -> Sequence[torch.Tensor]:
        extra = {}
        if pixels:
            extra = {
                "pixel_values": pixels["pixel_values"],
                "image_grid_thw": pixels["image_grid_thw"],
                "mm_token_type_ids": (input_ids == self.image_token_id).long(),
            }
        return self._model_states(input_ids, attention_mask, **extra)
