"""Feature extraction: model hidden states for the concept and naturalistic tasks.

- :mod:`~brainalign.features.registry`: :class:`ModelSpec` (one config entry), the
  :class:`FeatureExtractor` protocol, the extractor registry and the table of
  built-in extractors (:data:`BUILTIN_EXTRACTORS`).
- :mod:`~brainalign.features.loading` and :mod:`~brainalign.features.extractors`:
  shared transformers machinery (sources, device/dtype, tokenisation, pooling,
  batching, pseudo-layers, attention heads); :mod:`~brainalign.features.images` and
  :mod:`~brainalign.features.tiny_tokenizers`: image preprocessing and the tokenizers
  of the tiny models.
- Families: :mod:`~brainalign.features.text` ("text_encoder": BERT, RoBERTa, MiniLM),
  :mod:`~brainalign.features.decoders` ("causal_lm": GPT-2, LLaMA),
  :mod:`~brainalign.features.vision` ("vision_encoder": ViT, DINOv2),
  :mod:`~brainalign.features.clip` ("clip") and :mod:`~brainalign.features.siglip`
  ("siglip") on :mod:`~brainalign.features.contrastive`.
- :mod:`~brainalign.features.conditions`: conditions and the streams each model reads;
  :mod:`~brainalign.features.extract`: per-task extraction, streamed layer by layer
  (:mod:`~brainalign.features.stream`) and cached (:mod:`~brainalign.features.cache`).
- :mod:`~brainalign.features.noise`: seeded noise images for the "noise" condition.
- :mod:`~brainalign.features.align`: Lanczos resampling of event features to TRs.

Importing this package does not import torch or transformers; the built-in
extractors are imported on the first registry lookup.
"""

from brainalign.features.align import event_times, lanczos_kernel, lanczos_resample, tr_times
from brainalign.features.cache import CACHE_ENV, FeatureCache, feature_cache_key
from brainalign.features.conditions import condition_modalities, resolve_streams, uses_noise
from brainalign.features.extract import (
    CONDITIONS,
    TASKS,
    check_condition,
    concurrent_frames,
    condition_streams,
    extract_concept_features,
    extract_features_file,
    extract_event_features,
    extract_naturalistic_features,
    extract_task_features,
    supported_conditions,
    write_task_features,
)
from brainalign.features.noise import make_noise_images, noise_seed
from brainalign.features.registry import (
    BUILTIN_EXTRACTORS,
    ExtractorInfo,
    FeatureExtractor,
    ModelSpec,
    extractor_code_hash,
    extractor_modalities,
    extractor_requires_image,
    get_extractor,
    load_extractor,
    register_extractor,
    registered_extractors,
    resolve_layers,
)

__all__ = [
    "BUILTIN_EXTRACTORS",
    "CACHE_ENV",
    "CONDITIONS",
    "TASKS",
    "ExtractorInfo",
    "FeatureCache",
    "FeatureExtractor",
    "ModelSpec",
    "check_condition",
    "concurrent_frames",
    "condition_modalities",
    "condition_streams",
    "event_times",
    "extract_concept_features",
    "extract_features_file",
    "extract_event_features",
    "extract_naturalistic_features",
    "extract_task_features",
    "extractor_code_hash",
    "extractor_modalities",
    "extractor_requires_image",
    "feature_cache_key",
    "get_extractor",
    "lanczos_kernel",
    "lanczos_resample",
    "load_extractor",
    "make_noise_images",
    "noise_seed",
    "register_extractor",
    "registered_extractors",
    "resolve_layers",
    "resolve_streams",
    "supported_conditions",
    "tr_times",
    "uses_noise",
    "write_task_features",
]
