"""Conditions and per-task feature extraction.

A condition is an ordered tuple of *streams*; the features of a condition at
layer ``l`` are its streams' features at layer ``l`` concatenated in that order:

- "text": the concept word's pooled hidden states in its sentence(s);
- "image": the stimulus image (first/CLS token);
- "noise": the seeded noise image standing in for the stimulus image (a control
  for the image stream that keeps its width and statistics).

Concept task: one row per concept (concepts.tsv order), the text stream averaged
over the concept's sentence contexts. Naturalistic task: one row per word
(words.tsv) and per frame (frames.tsv), each stream resampled to the TRs of each
run with :func:`~brainalign.features.align.lanczos_resample`, event times at the
middle of the event and TR times at the middle of each volume (see
:mod:`brainalign.features.align`), runs concatenated in run order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from PIL import Image

from brainalign.features.align import event_times, lanczos_resample, tr_times
from brainalign.features.noise import NOISE_TABLE
from brainalign.features.registry import FeatureExtractor, resolve_layers
from brainalign.io import read_table

__all__ = [
    "CONDITIONS",
    "supported_conditions",
    "check_condition",
    "extract_concept_features",
    "extract_naturalistic_features",
    "extract_task_features",
    "TASKS",
]

logger = logging.getLogger(__name__)

CONDITIONS: dict[str, tuple[str, ...]] = {
    "sentence": ("text",),
    "picture": ("text", "image"),
    "noise": ("text", "noise"),
    "image": ("image",),
}
# The model input each stream needs.
_STREAM_MODALITY = {"text": "text", "image": "image", "noise": "image"}

Features = dict[int, np.ndarray]
Layers = Literal["all"] | Sequence[int] | None


def supported_conditions(extractor: FeatureExtractor) -> list[str]:
    """Conditions whose streams the extractor's modalities cover, in CONDITIONS order."""
    return [
        name
        for name, streams in CONDITIONS.items()
        if all(_STREAM_MODALITY[s] in extractor.modalities for s in streams)
    ]


def check_condition(extractor: FeatureExtractor, condition: str) -> tuple[str, ...]:
    """The streams of ``condition``; ValueError if unknown or unsupported by the model."""
    if condition not in CONDITIONS:
        raise ValueError(
            f"unknown condition '{condition}'; known: {', '.join(CONDITIONS)}. "
            "Fix the condition in config/config.yaml."
        )
    supported = supported_conditions(extractor)
    if condition not in supported:
        raise ValueError(
            f"model '{extractor.spec.name}' does not support condition '{condition}' "
            f"(modalities: {', '.join(sorted(extractor.modalities))}); supported: "
            f"{', '.join(supported)}. Remove the pair from config/config.yaml."
        )
    return CONDITIONS[condition]


# --- reading stimuli ----------------------------------------------------------------


def _read_checked(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    table = read_table(path)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"table '{path}' must have columns {', '.join(columns)}; missing "
            f"{', '.join(missing)}. Fix the stimuli folder."
        )
    return table


def _read_concepts(stimuli_dir: Path) -> pd.DataFrame:
    concepts = _read_checked(stimuli_dir / "concepts.tsv", ["concept", "image"])
    duplicated = concepts["concept"][concepts["concept"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"concepts.tsv: 'concept' must be unique; repeated: {duplicated}")
    return concepts


def _read_sentences(stimuli_dir: Path, concepts: pd.Series) -> pd.DataFrame:
    columns = ["concept", "context", "sentence", "char_start", "char_end"]
    sentences = _read_checked(stimuli_dir / "sentences.tsv", columns)
    unknown = sorted(set(sentences["concept"]) - set(concepts))
    lacking = [c for c in concepts if c not in set(sentences["concept"])]
    if unknown or lacking:
        raise ValueError(
            "sentences.tsv must give sentences for exactly the concepts of concepts.tsv; "
            f"unknown: {unknown}, without sentences: {lacking}"
        )
    return sentences.sort_values(["concept", "context"], kind="stable").reset_index(drop=True)


def _load_images(paths: Sequence[Path]) -> list[Image.Image]:
    images = []
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"image '{path}' does not exist; check the stimuli tables")
        with Image.open(path) as handle:
            images.append(handle.convert("RGB"))
    return images


def _noise_paths(noise_dir: str | os.PathLike | None, images: Sequence[str]) -> list[Path]:
    if noise_dir is None:
        raise ValueError(
            "condition 'noise' needs 'noise_dir' (the folder written by make_noise_images)"
        )
    table = _read_checked(Path(noise_dir) / NOISE_TABLE, ["image", "noise_image"])
    mapping = dict(zip(table["image"], table["noise_image"], strict=True))
    missing = sorted(set(images) - set(mapping))
    if missing:
        raise ValueError(
            f"{Path(noise_dir) / NOISE_TABLE} has no noise image for {missing}; "
            "rerun make_noise_images on these stimuli"
        )
    return [Path(noise_dir) / mapping[image] for image in images]


def _encode_image_list(
    extractor: FeatureExtractor, paths: Sequence[Path], layers: list[int]
) -> Features:
    """Encode each distinct path once; rows follow ``paths``."""
    unique = list(dict.fromkeys(paths))
    encoded = extractor.encode_images(_load_images(unique), layers)
    index = np.array([unique.index(p) for p in paths], dtype=np.int64)
    return {layer: encoded[layer][index] for layer in layers}


# --- concept task ---------------------------------------------------------------------


def _concept_text(
    extractor: FeatureExtractor, stimuli_dir: Path, concepts: pd.DataFrame, layers: list[int], _
) -> Features:
    sentences = _read_sentences(stimuli_dir, concepts["concept"])
    spans = list(zip(sentences["char_start"].astype(int), sentences["char_end"].astype(int)))
    rows = extractor.encode_text(list(sentences["sentence"]), spans, layers)
    codes = pd.Categorical(sentences["concept"], categories=list(concepts["concept"])).codes
    average = np.zeros((len(concepts), len(sentences)))
    average[codes, np.arange(len(sentences))] = 1.0
    average /= average.sum(axis=1, keepdims=True)
    logger.info(
        "text stream: %d sentences, %.1f contexts per concept on average",
        len(sentences),
        len(sentences) / len(concepts),
    )
    return {layer: (average @ rows[layer].astype(np.float64)) for layer in layers}


def _concept_image(
    extractor: FeatureExtractor, stimuli_dir: Path, concepts: pd.DataFrame, layers: list[int], _
) -> Features:
    return _encode_image_list(extractor, [stimuli_dir / p for p in concepts["image"]], layers)


def _concept_noise(
    extractor: FeatureExtractor,
    stimuli_dir: Path,
    concepts: pd.DataFrame,
    layers: list[int],
    noise_dir: str | os.PathLike | None,
) -> Features:
    return _encode_image_list(extractor, _noise_paths(noise_dir, list(concepts["image"])), layers)


_CONCEPT_STREAMS: dict[str, Callable[..., Features]] = {
    "text": _concept_text,
    "image": _concept_image,
    "noise": _concept_noise,
}


def _concatenate(streams: Sequence[Features], layers: list[int]) -> dict[str, np.ndarray]:
    return {
        f"layer-{layer:02d}": np.concatenate([s[layer] for s in streams], axis=1).astype(np.float32)
        for layer in layers
    }


def _metadata(
    extractor: FeatureExtractor, condition: str, task: str, layers: list[int]
) -> dict[str, Any]:
    spec = extractor.spec
    return {
        "model": spec.name,
        "model_id": spec.id,
        "revision": spec.revision,
        "extractor": spec.extractor,
        "source": spec.source,
        "code_version": spec.code_version,
        "condition": condition,
        "streams": list(CONDITIONS[condition]),
        "task": task,
        "layers": list(layers),
        "pooling": spec.pooling,
        "units": "a.u.",
    }


def extract_concept_features(
    extractor: FeatureExtractor,
    stimuli_dir: str | os.PathLike,
    condition: str,
    layers: Layers = None,
    noise_dir: str | os.PathLike | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Concept-task features of one condition.

    Parameters
    ----------
    extractor : FeatureExtractor
    stimuli_dir : path
        Stimuli folder (concepts.tsv, sentences.tsv, images/).
    condition : str
        A key of :data:`CONDITIONS` supported by the extractor.
    layers : "all", sequence of int, or None
        Hidden states to extract; None uses ``extractor.spec.layers``.
    noise_dir : path, optional
        Folder written by :func:`~brainalign.features.noise.make_noise_images`; needed
        for condition "noise".

    Returns
    -------
    arrays : dict of str to ndarray
        ``layer-XX``: float32 array of shape (n_concepts, n_features), rows in
        concepts.tsv order, columns the condition's streams concatenated.
    metadata : dict
        Contract keys (model, model_id, revision, extractor, condition, task, layers,
        stimuli, pooling, units) plus source, code_version and streams.
    """
    streams = check_condition(extractor, condition)
    layer_list = resolve_layers(
        extractor.spec.layers if layers is None else layers, extractor.n_layers
    )
    stimuli_dir = Path(stimuli_dir)
    concepts = _read_concepts(stimuli_dir)
    features = [
        _CONCEPT_STREAMS[s](extractor, stimuli_dir, concepts, layer_list, noise_dir)
        for s in streams
    ]
    metadata = _metadata(extractor, condition, "concepts", layer_list)
    metadata["stimuli"] = list(concepts["concept"])
    logger.info(
        "extracted %s features of model '%s' for %d concepts, %d layers",
        condition,
        extractor.spec.name,
        len(concepts),
        len(layer_list),
    )
    return _concatenate(features, layer_list), metadata


# --- naturalistic task ----------------------------------------------------------------


def _read_runs(stimuli_dir: Path) -> tuple[pd.DataFrame, float]:
    path = stimuli_dir / "naturalistic" / "runs.tsv"
    runs = _read_checked(path, ["run", "tr", "n_trs"]).sort_values("run", kind="stable")
    if runs["run"].duplicated().any() or (runs["n_trs"] < 1).any():
        raise ValueError(f"'{path}': 'run' must be unique and 'n_trs' >= 1")
    if not np.allclose(runs["tr"], runs["tr"].iloc[0]) or not runs["tr"].iloc[0] > 0:
        raise ValueError(
            f"'{path}': all runs must share one positive 'tr'; got {sorted(set(runs['tr']))}"
        )
    return runs.reset_index(drop=True), float(runs["tr"].iloc[0])


def _read_events(path: Path, columns: list[str], runs: pd.DataFrame) -> pd.DataFrame:
    events = _read_checked(path, ["run", "onset", "duration", *columns])
    unknown = sorted(set(events["run"]) - set(runs["run"]))
    if unknown:
        raise ValueError(f"'{path}' has events of runs {unknown} that runs.tsv does not list")
    return events.reset_index(drop=True)


def _words_stream(
    extractor: FeatureExtractor, stimuli_dir: Path, runs: pd.DataFrame, layers: list[int], _
) -> tuple[pd.DataFrame, Features]:
    columns = ["word", "sentence", "char_start", "char_end"]
    words = _read_events(stimuli_dir / "naturalistic" / "words.tsv", columns, runs)
    groups = words.groupby("sentence", sort=False).indices
    order = np.concatenate([groups[s] for s in groups]) if groups else np.zeros(0, int)
    spans = [
        list(
            zip(
                words["char_start"].iloc[rows].astype(int), words["char_end"].iloc[rows].astype(int)
            )
        )
        for rows in groups.values()
    ]
    encoded = extractor.encode_text_spans(list(groups), spans, layers)
    features = {}
    for layer in layers:
        features[layer] = np.empty_like(encoded[layer])
        features[layer][order] = encoded[layer]
    logger.info("text stream: %d words from %d distinct sentences", len(words), len(groups))
    return words, features


def _frames_stream(
    extractor: FeatureExtractor, stimuli_dir: Path, runs: pd.DataFrame, layers: list[int], _
) -> tuple[pd.DataFrame, Features]:
    frames = _read_events(stimuli_dir / "naturalistic" / "frames.tsv", ["image"], runs)
    paths = [stimuli_dir / p for p in frames["image"]]
    return frames, _encode_image_list(extractor, paths, layers)


def _noise_frames_stream(
    extractor: FeatureExtractor,
    stimuli_dir: Path,
    runs: pd.DataFrame,
    layers: list[int],
    noise_dir: str | os.PathLike | None,
) -> tuple[pd.DataFrame, Features]:
    frames = _read_events(stimuli_dir / "naturalistic" / "frames.tsv", ["image"], runs)
    paths = _noise_paths(noise_dir, list(frames["image"]))
    return frames, _encode_image_list(extractor, paths, layers)


_NATURALISTIC_STREAMS: dict[str, Callable[..., tuple[pd.DataFrame, Features]]] = {
    "text": _words_stream,
    "image": _frames_stream,
    "noise": _noise_frames_stream,
}


def _to_trs(
    events: pd.DataFrame,
    features: Features,
    runs: pd.DataFrame,
    window: int,
    cutoff_mult: float,
) -> Features:
    """Resample each run's events to its TR midpoints; runs stacked in order."""
    times = event_times(events["onset"], events["duration"])
    out: dict[int, list[np.ndarray]] = {layer: [] for layer in features}
    for run, tr, n_trs in runs[["run", "tr", "n_trs"]].itertuples(index=False):
        selected = (events["run"] == run).to_numpy()
        grid = tr_times(int(n_trs), float(tr))
        late = times[selected] > grid[-1] + tr / 2
        if late.any():
            logger.warning("run %s: %d events after the last volume", run, int(late.sum()))
        for layer, data in features.items():
            out[layer].append(
                lanczos_resample(data[selected], times[selected], grid, window, cutoff_mult)
            )
    return {layer: np.concatenate(parts, axis=0) for layer, parts in out.items()}


def extract_naturalistic_features(
    extractor: FeatureExtractor,
    stimuli_dir: str | os.PathLike,
    condition: str,
    layers: Layers = None,
    noise_dir: str | os.PathLike | None = None,
    window: int = 3,
    cutoff_mult: float = 1.0,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Naturalistic-task features of one condition, resampled to the TRs.

    Each distinct sentence of words.tsv is encoded once and pooled at every word span
    it holds; each distinct frame image is encoded once. Each stream is resampled per
    run with :func:`~brainalign.features.align.lanczos_resample` (event times at
    ``onset + duration / 2``, TR times at ``(k + 0.5) * tr``, seconds from the run's
    first volume); a run without events of a stream gets zeros for it.

    Parameters
    ----------
    extractor, condition, layers, noise_dir
        As for :func:`extract_concept_features`.
    stimuli_dir : path
        Stimuli folder with naturalistic/runs.tsv, words.tsv and/or frames.tsv.
    window, cutoff_mult
        Lanczos parameters.

    Returns
    -------
    arrays : dict of str to ndarray
        ``layer-XX``: float32 array of shape (n_trs_total, n_features), runs concatenated
        in run order; ``run``: int32 array of shape (n_trs_total,).
    metadata : dict
        As for the concept task with task "naturalistic", plus ``runs``, ``tr``,
        ``n_trs`` (per run) and ``resampling``.
    """
    streams = check_condition(extractor, condition)
    layer_list = resolve_layers(
        extractor.spec.layers if layers is None else layers, extractor.n_layers
    )
    stimuli_dir = Path(stimuli_dir)
    runs, tr = _read_runs(stimuli_dir)
    features = []
    for stream in streams:
        events, encoded = _NATURALISTIC_STREAMS[stream](
            extractor, stimuli_dir, runs, layer_list, noise_dir
        )
        features.append(_to_trs(events, encoded, runs, window, cutoff_mult))
    arrays = _concatenate(features, layer_list)
    arrays["run"] = np.repeat(runs["run"].to_numpy(), runs["n_trs"].to_numpy()).astype(np.int32)
    logger.info(
        "extracted %s features of model '%s' for %d runs (%d TRs of %.3g s), %d layers",
        condition,
        extractor.spec.name,
        len(runs),
        len(arrays["run"]),
        tr,
        len(layer_list),
    )
    metadata = _metadata(extractor, condition, "naturalistic", layer_list)
    metadata.update(
        runs=[int(r) for r in runs["run"]],
        tr=tr,
        n_trs=[int(n) for n in runs["n_trs"]],
        resampling={
            "method": "lanczos",
            "window": window,
            "cutoff_mult": cutoff_mult,
            "event_time": "onset + duration / 2",
            "tr_time": "(k + 0.5) * tr",
        },
    )
    return arrays, metadata


TASKS: dict[str, Callable[..., tuple[dict[str, np.ndarray], dict[str, Any]]]] = {
    "concepts": extract_concept_features,
    "naturalistic": extract_naturalistic_features,
}


def extract_task_features(
    extractor: FeatureExtractor,
    stimuli_dir: str | os.PathLike,
    task: str,
    condition: str,
    layers: Layers = None,
    noise_dir: str | os.PathLike | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Dispatch to :func:`extract_concept_features` or :func:`extract_naturalistic_features`.

    Parameters
    ----------
    task : {"concepts", "naturalistic"}
        A key of :data:`TASKS`.
    extractor, stimuli_dir, condition, layers, noise_dir
        As for the task's function.
    """
    if task not in TASKS:
        raise ValueError(
            f"'task' must be one of {', '.join(TASKS)}; got {task!r}. Fix dataset.tasks in "
            "config/config.yaml."
        )
    return TASKS[task](extractor, stimuli_dir, condition, layers, noise_dir)
