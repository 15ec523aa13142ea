"""Feature extraction: model hidden states for the concept and naturalistic tasks.

- :mod:`~brainalign.features.registry`: :class:`ModelSpec` (one config entry), the
  :class:`FeatureExtractor` protocol and the extractor registry.
- :mod:`~brainalign.features.extractors`: shared transformers machinery (loading,
  pooling, batching); :mod:`~brainalign.features.text` ("text_encoder") and
  :mod:`~brainalign.features.clip` ("clip") register the extractors.
- :mod:`~brainalign.features.extract`: conditions and per-task extraction.
- :mod:`~brainalign.features.noise`: seeded noise images for the "noise" condition.
- :mod:`~brainalign.features.align`: Lanczos resampling of event features to TRs.

Importing this package does not import torch or transformers; the built-in
extractors are imported on the first registry lookup.
"""

from brainalign.features.align import event_times, lanczos_kernel, lanczos_resample, tr_times
from brainalign.features.extract import (
    CONDITIONS,
    TASKS,
    check_condition,
    extract_concept_features,
    extract_naturalistic_features,
    extract_task_features,
    supported_conditions,
)
from brainalign.features.noise import make_noise_images, noise_seed
from brainalign.features.registry import (
    FeatureExtractor,
    ModelSpec,
    get_extractor,
    load_extractor,
    register_extractor,
    registered_extractors,
    resolve_layers,
)

__all__ = [
    "CONDITIONS",
    "TASKS",
    "FeatureExtractor",
    "ModelSpec",
    "check_condition",
    "event_times",
    "extract_concept_features",
    "extract_naturalistic_features",
    "extract_task_features",
    "get_extractor",
    "lanczos_kernel",
    "lanczos_resample",
    "load_extractor",
    "make_noise_images",
    "noise_seed",
    "register_extractor",
    "registered_extractors",
    "resolve_layers",
    "supported_conditions",
    "tr_times",
]
