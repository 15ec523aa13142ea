"""The "audio_encoder" extractor: wav2vec 2.0, HuBERT or Whisper's encoder (transformers).

Modalities {"audio"}: it runs condition ``audio`` only, on naturalistic runs whose
soundtrack ``naturalistic/runs.tsv`` names (:mod:`brainalign.features.audio_windows`).
Each TR's window of audio is encoded on its own; hidden state ``l`` (0 = the output of
the convolutional feature encoder after its projection for wav2vec 2.0 / HuBERT, the
embedded log-mel frames for Whisper) is averaged over the window's frames.

- wav2vec 2.0 and HuBERT (``AutoModel``) read the raw waveform at the feature extractor's
  rate (16 kHz), normalised per window to zero mean and unit variance when the feature
  extractor says so (``do_normalize``).
- Whisper (``WhisperModel``: its encoder only) reads log-mel frames of a fixed chunk
  (30 s for the released models): a window is padded to the chunk and only the encoder
  frames inside the window are averaged (``ceil(window / chunk * n_frames)``).

Tiny architectures (source "tiny", ``id``): ``wav2vec2`` (default), ``hubert``,
``whisper`` (a 4 s chunk instead of 30 s, so that tiny runs stay fast). Pretrained and
random sources read the feature extractor's settings from the model folder
(``preprocessor_config.json``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoModel,
    HubertConfig,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    WhisperConfig,
    WhisperFeatureExtractor,
)

from brainalign.features.extractors import Architecture, TinyModel, TransformersExtractor
from brainalign.features.registry import ModelSpec, register_extractor

__all__ = [
    "AudioEncoderExtractor",
    "tiny_wav2vec2_config",
    "tiny_hubert_config",
    "tiny_whisper_config",
]

logger = logging.getLogger(__name__)

_TINY_CONV = {"conv_dim": (16,) * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2}
_TINY_BLOCKS = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                "intermediate_size": 64}
_TINY_WHISPER_CHUNK = 4  # seconds


def tiny_wav2vec2_config() -> Wav2Vec2Config:
    """A 2-block wav2vec 2.0 of width 32 (16-channel convolutional feature encoder)."""
    return Wav2Vec2Config(**_TINY_BLOCKS, **_TINY_CONV)


def tiny_hubert_config() -> HubertConfig:
    """A 2-block HuBERT of width 32 (16-channel convolutional feature encoder)."""
    return HubertConfig(**_TINY_BLOCKS, **_TINY_CONV)


def tiny_whisper_config() -> WhisperConfig:
    """A Whisper of width 32 with a 2-block encoder reading 4 s chunks (200 positions)."""
    return WhisperConfig(
        vocab_size=64, num_mel_bins=80, d_model=32, encoder_layers=2, encoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=64,
        max_source_positions=_TINY_WHISPER_CHUNK * 50, max_target_positions=32,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
    )


def _tiny_feature_extractor(model_type: str) -> Any:
    if model_type == "whisper":
        return WhisperFeatureExtractor(feature_size=80, chunk_length=_TINY_WHISPER_CHUNK)
    return Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                    do_normalize=True, return_attention_mask=False)


@register_extractor("audio_encoder")
class AudioEncoderExtractor(TransformersExtractor):
    """Audio encoder; modalities {"audio"}; frames averaged over each TR's window."""

    modalities = frozenset({"audio"})
    architecture = Architecture(
        model_class=AutoModel,
        from_config=AutoModel.from_config,
        tiny_models={
            "wav2vec2": TinyModel(tiny_wav2vec2_config, None),
            "hubert": TinyModel(tiny_hubert_config, None),
            "whisper": TinyModel(tiny_whisper_config, None),
        },
        default_tiny="wav2vec2",
        reads_text=False,
    )

    def __init__(self, spec: ModelSpec) -> None:
        if spec.attention_heads:
            raise ValueError(
                f"model '{spec.name}': 'attention_heads' is not read for audio encoders; set "
                "it to false"
            )
        super().__init__(spec)
        self.whisper = self.model.config.model_type == "whisper"
        self.feature_extractor = self._load_feature_extractor()
        self.sampling_rate = int(self.feature_extractor.sampling_rate)
        logger.info("%s: %s encoder at %d Hz", spec.name, self.model.config.model_type,
                    self.sampling_rate)

    def _load_feature_extractor(self) -> Any:
        if self.files is None:
            return _tiny_feature_extractor(self.model.config.model_type)
        from transformers import AutoFeatureExtractor

        return AutoFeatureExtractor.from_pretrained(
            self.files, local_files_only=True, trust_remote_code=self.spec.trust_remote_code)

    def _count_layers(self) -> int:
        config = self.model.config
        blocks = config.encoder_layers if config.model_type == "whisper" else config.num_hidden_layers
        return int(blocks) + 1

    def encode_audio(self, windows: Sequence[np.ndarray], layers: Sequence[int]) -> dict[int, np.ndarray]:
        """Mean hidden states of each window.

        Parameters
        ----------
        windows : sequence of ndarray of shape (n_samples,)
            Mono audio at :attr:`sampling_rate`, all of one length.
        layers : sequence of int

        Returns
        -------
        dict of int to ndarray of shape (n_windows, hidden_size), float32
        """
        outputs: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
        for start in range(0, len(windows), self.spec.batch_size):
            batch = [np.asarray(w, dtype=np.float32) for w in windows[start:start + self.spec.batch_size]]
            with torch.inference_mode():
                states = self._hidden_states(batch)
            for layer in layers:
                outputs[layer].append(states[layer].float().mean(dim=1).cpu().numpy())
        return {layer: np.concatenate(parts).astype(np.float32) for layer, parts in outputs.items()}

    def _hidden_states(self, batch: list[np.ndarray]) -> list[torch.Tensor]:
        """Per hidden state, the frames of the windows: (n_windows, n_frames, width)."""
        inputs = self.feature_extractor(batch, sampling_rate=self.sampling_rate, return_tensors="pt")
        if not self.whisper:
            values = inputs["input_values"].to(self.device, self.dtype)
            return list(self.model(values, output_hidden_states=True).hidden_states)
        chunk = int(self.feature_extractor.n_samples)
        if len(batch[0]) > chunk:
            raise ValueError(
                f"model '{self.spec.name}': Whisper's encoder reads at most "
                f"{chunk / self.sampling_rate:.0f} s; a TR window is "
                f"{len(batch[0]) / self.sampling_rate:.2f} s. Use wav2vec2 or HuBERT"
            )
        features = inputs["input_features"].to(self.device, self.dtype)
        states = self.model.get_encoder()(features, output_hidden_states=True).hidden_states
        n_frames = math.ceil(len(batch[0]) / chunk * states[0].shape[1])
        return [s[:, :n_frames] for s in states]
