"""Per-task feature extraction under each condition, streamed layer by layer.

A condition (:mod:`brainalign.features.conditions`) resolves, for one model, to an
ordered tuple of *streams* ("text", "word", "image", "noise", or a joint stream such
as "text+image" / "text+noise" for a model that reads text and image together). The
features of a condition at layer ``l`` are its streams' features at layer ``l``
concatenated in that order; at a pseudo-layer (a contrastive model's ``embeds``,
which lives in one space shared by the streams) they are summed.

Concept task: one row per concept (concepts.tsv order). The "text" stream pools the
concept word in each of its sentences and averages over the contexts; "word" encodes
the concept word alone; "image"/"noise" the concept's picture or its noise image; a
joint stream pairs each sentence (or the word) with the concept's picture or noise
image; "images" (condition ``wordpicture``) encodes each of the concept's images
(concepts.tsv's ``images`` column, :func:`concept_images`), alone or as a joint
"word+images" pair with the concept word, and averages over the images. Naturalistic task: one row per word (words.tsv) or frame (frames.tsv), each
stream resampled to the TRs of each run with
:func:`~brainalign.features.align.lanczos_resample` (event times at the middle of the
event, TR times at the middle of each volume), runs concatenated in run order. A
joint stream pairs each word, in its sentence, with its *concurrent frame*
(:func:`concurrent_frames`).

Memory stays bounded: stimuli are encoded in chunks whose pooled rows go to a
:class:`~brainalign.features.stream.Spill` (memory-mapped files next to the output
for :func:`write_task_features`); the output is then assembled and written one layer
at a time (:func:`~brainalign.features.stream.write_safetensors`), so the peak holds
one chunk of all layers or one layer of all stimuli, never all layers of all stimuli.
:func:`extract_features_file` adds the content-addressed cache
(:mod:`brainalign.features.cache`): it is read before any model is loaded.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from PIL import Image

from brainalign.datasets.units import ALIGNMENTS, event_ids
from brainalign.features.align import event_times, lanczos_resample, tr_times
from brainalign.features.audio_windows import run_windows
from brainalign.features.cache import FeatureCache, feature_cache_key
from brainalign.features.images import open_rgb
from brainalign.features.conditions import (
    CONDITIONS,
    IMAGE_INPUTS,
    condition_modalities,
    resolve_streams,
)
from brainalign.features.noise import NOISE_TABLE
from brainalign.features.registry import (
    FeatureExtractor,
    ModelSpec,
    load_extractor,
    resolve_layers,
)
from brainalign.features.stream import Spill, write_safetensors
from brainalign.io import read_table, sha256_file

__all__ = [
    "CONDITIONS",
    "TASKS",
    "supported_conditions",
    "check_condition",
    "condition_streams",
    "concurrent_frames",
    "concept_images",
    "extract_concept_features",
    "extract_naturalistic_features",
    "extract_task_features",
    "write_task_features",
    "extract_features_file",
]

logger = logging.getLogger(__name__)

Key = int | str
Outputs = dict[Key, np.ndarray]
Layers = Literal["all"] | Sequence[int] | None
CHUNK_SIZE = 256  # stimuli (sentences, images) encoded between two spills


def condition_streams(extractor: FeatureExtractor, condition: str) -> tuple[str, ...]:
    """The streams ``extractor`` reads under ``condition`` (see module docstring)."""
    return resolve_streams(
        condition,
        bool(getattr(extractor, "requires_image", False)),
        bool(getattr(extractor, "joint", False)),
    )


def supported_conditions(extractor: FeatureExtractor) -> list[str]:
    """Conditions whose inputs the extractor's modalities cover, in CONDITIONS order."""
    requires_image = bool(getattr(extractor, "requires_image", False))
    return [
        name
        for name in CONDITIONS
        if condition_modalities(name, requires_image) <= extractor.modalities
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
    return condition_streams(extractor, condition)


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


def concept_images(concepts: pd.DataFrame) -> list[list[str]]:
    """Each concept's images: concepts.tsv's ``images`` column, else its ``image``.

    Parameters
    ----------
    concepts : DataFrame
        concepts.tsv with ``concept``, ``image`` and optionally ``images`` (a
        ``;``-separated list of image paths relative to the stimuli folder).

    Returns
    -------
    list of list of str
        One non-empty list per concept, in table order: the ``images`` entries
        (blanks dropped, repeats kept), or ``[image]`` when the column is absent or
        the concept's cell is empty.
    """
    if "images" not in concepts.columns:
        return [[str(image)] for image in concepts["image"]]
    result = []
    for image, cell in zip(concepts["image"], concepts["images"], strict=True):
        listed = [] if pd.isna(cell) else [p.strip() for p in str(cell).split(";")]
        result.append([p for p in listed if p] or [str(image)])
    fallback = sum(1 for cell in concepts["images"] if pd.isna(cell) or not str(cell).strip())
    if fallback:
        logger.info("concepts.tsv: %d concepts without 'images' use their 'image'", fallback)
    return result


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
        images.append(open_rgb(path))  # one line naming a truncated or broken file
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


def _image_paths(
    kind: str, images: Sequence[str], stimuli_dir: Path, noise_dir: str | os.PathLike | None
) -> list[Path]:
    # "images" (condition wordpicture) reaches here only outside the concept task
    # (_images_plan handles it there): one image per event, the frame on screen.
    if kind in ("image", "images"):
        return [stimuli_dir / image for image in images]
    if kind == "noise":
        return _noise_paths(noise_dir, images)
    raise ValueError(f"image stream must be 'image' or 'noise'; got {kind!r}")


# --- stream plans -----------------------------------------------------------------


@dataclass
class StreamPlan:
    """How one stream is encoded and reduced to output rows.

    Attributes
    ----------
    name : str
    unit_rows : ndarray of shape (n_units,)
        Pooled rows each encoding unit yields (the spans of a sentence; 1 per image).
    encode : callable
        ``encode(units_slice, keys)`` -> outputs of those units' rows.
    index : ndarray of shape (n_events,)
        Row of the encoded rows holding each event (word, sentence, concept, frame).
    finish : callable
        Event rows (n_events, n) -> output rows (n_out, n): the concept average or the
        resampling to TRs.
    n_out : int
    """

    name: str
    unit_rows: np.ndarray
    encode: Callable[[slice, Sequence[Key]], Outputs]
    index: np.ndarray
    finish: Callable[[np.ndarray], np.ndarray]
    n_out: int


def _split(stream: str) -> tuple[str | None, str | None]:
    parts = stream.split("+")
    text = next((p for p in parts if p in ("text", "word")), None)
    image = next((p for p in parts if p in IMAGE_INPUTS), None)
    return text, image


def _text_plan(
    extractor: FeatureExtractor,
    name: str,
    sentences: Sequence[str],
    spans: Sequence[tuple[int, int]],
    paths: Sequence[Path] | None,
    finish: Callable[[np.ndarray], np.ndarray],
    n_out: int,
) -> StreamPlan:
    """Events (sentence, span[, image]) grouped into units (sentence[, image])."""
    units: dict[tuple[str, Any], int] = {}
    unit_spans: list[list[tuple[int, int]]] = []
    owner = np.empty(len(sentences), dtype=np.int64)
    position = np.empty(len(sentences), dtype=np.int64)
    for i, sentence in enumerate(sentences):
        unit = units.setdefault((sentence, None if paths is None else paths[i]), len(units))
        if unit == len(unit_spans):
            unit_spans.append([])
        owner[i], position[i] = unit, len(unit_spans[unit])
        unit_spans[unit].append((int(spans[i][0]), int(spans[i][1])))
    unit_rows = np.array([len(v) for v in unit_spans], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(unit_rows)])[:-1].astype(np.int64)
    texts = [key[0] for key in units]
    images = [key[1] for key in units]
    if paths is None:

        def encode(part: slice, keys: Sequence[Key]) -> Outputs:
            return extractor.encode_text_spans(texts[part], unit_spans[part], keys)

    else:

        def encode(part: slice, keys: Sequence[Key]) -> Outputs:
            pictures = _load_images(images[part])
            return extractor.encode_text_image(texts[part], unit_spans[part], pictures, keys)

    index = offsets[owner] + position
    return StreamPlan(name, unit_rows, encode, index, finish, n_out)


def _image_plan(
    extractor: FeatureExtractor,
    name: str,
    paths: Sequence[Path],
    finish: Callable[[np.ndarray], np.ndarray],
    n_out: int,
) -> StreamPlan:
    """Events with an image each; each distinct image is encoded once."""
    unique = list(dict.fromkeys(paths))
    position = {path: i for i, path in enumerate(unique)}

    def encode(part: slice, keys: Sequence[Key]) -> Outputs:
        return extractor.encode_images(_load_images(unique[part]), keys)

    index = np.array([position[p] for p in paths], dtype=np.int64)
    return StreamPlan(name, np.ones(len(unique), dtype=np.int64), encode, index, finish, n_out)


def _identity(rows: np.ndarray) -> np.ndarray:
    return rows


def _averager(codes: np.ndarray, n_groups: int) -> Callable[[np.ndarray], np.ndarray]:
    """Mean of the event rows of each group (float64): the average over contexts."""
    codes = np.asarray(codes, dtype=np.int64)
    counts = np.maximum(np.bincount(codes, minlength=n_groups), 1).astype(np.float64)

    def finish(rows: np.ndarray) -> np.ndarray:
        total = np.zeros((n_groups, rows.shape[1]))
        np.add.at(total, codes, rows.astype(np.float64))
        return total / counts[:, None]

    return finish


# --- concept task -------------------------------------------------------------------


@dataclass
class _Concepts:
    stimuli_dir: Path
    noise_dir: str | os.PathLike | None
    concepts: pd.DataFrame


def _images_plan(extractor: FeatureExtractor, stream: str, ctx: _Concepts) -> StreamPlan:
    """Stream "images" or "word+images": one event per (concept, image k), averaged over k."""
    text, _ = _split(stream)
    n = len(ctx.concepts)
    lists = concept_images(ctx.concepts)
    codes = np.repeat(np.arange(n), [len(images) for images in lists])
    paths = _image_paths("image", [p for images in lists for p in images], ctx.stimuli_dir, None)
    logger.info(
        "%s stream: %d images for %d concepts (%.1f per concept), features averaged per concept",
        stream,
        len(paths),
        n,
        len(paths) / n,
    )
    if text is None:
        return _image_plan(extractor, stream, paths, _averager(codes, n), n)
    words = [str(ctx.concepts["concept"].iloc[c]) for c in codes]
    spans = [(0, len(w)) for w in words]
    return _text_plan(extractor, stream, words, spans, paths, _averager(codes, n), n)


def _concept_plan(extractor: FeatureExtractor, stream: str, ctx: _Concepts) -> StreamPlan:
    if stream == "audio":
        raise _no_audio("concept")
    text, image = _split(stream)
    n = len(ctx.concepts)
    if image == "images":
        return _images_plan(extractor, stream, ctx)
    pictures = (
        None
        if image is None
        else _image_paths(image, list(ctx.concepts["image"]), ctx.stimuli_dir, ctx.noise_dir)
    )
    if text is None:
        return _image_plan(extractor, stream, pictures, _identity, n)
    if text == "word":
        words = [str(w) for w in ctx.concepts["concept"]]
        spans = [(0, len(w)) for w in words]
        return _text_plan(extractor, stream, words, spans, pictures, _identity, n)
    sentences = _read_sentences(ctx.stimuli_dir, ctx.concepts["concept"])
    codes = pd.Categorical(sentences["concept"], categories=list(ctx.concepts["concept"])).codes
    spans = list(zip(sentences["char_start"].astype(int), sentences["char_end"].astype(int)))
    paths = None if pictures is None else [pictures[c] for c in codes]
    logger.info(
        "%s stream: %d sentences, %.1f contexts per concept on average",
        stream,
        len(sentences),
        len(sentences) / n,
    )
    return _text_plan(
        extractor, stream, list(sentences["sentence"]), spans, paths, _averager(codes, n), n
    )


# --- naturalistic task --------------------------------------------------------------


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


def concurrent_frames(words: pd.DataFrame, frames: pd.DataFrame) -> np.ndarray:
    """The frame on screen at each word's time, within the word's run.

    A word's time is ``onset + duration / 2``; its frame is the one whose
    ``[onset, onset + duration)`` holds that time (the latest-starting one if several
    do), else the frame whose middle is nearest.

    Parameters
    ----------
    words, frames : DataFrame
        Columns ``run``, ``onset``, ``duration`` (words.tsv and frames.tsv).

    Returns
    -------
    ndarray of shape (n_words,), int64
        Row of ``frames`` for each word.

    Raises
    ------
    ValueError
        When a run with words has no frames.
    """
    times = event_times(words["onset"], words["duration"])
    starts = frames["onset"].to_numpy(float)
    ends = starts + frames["duration"].to_numpy(float)
    middles = event_times(frames["onset"], frames["duration"])
    result = np.empty(len(words), dtype=np.int64)
    for run in pd.unique(words["run"]):
        rows = np.flatnonzero((frames["run"] == run).to_numpy())
        if len(rows) == 0:
            raise ValueError(
                f"run {run} has words but no frames in frames.tsv; a joint model needs the "
                "frame on screen at each word"
            )
        for i in np.flatnonzero((words["run"] == run).to_numpy()):
            covering = rows[(starts[rows] <= times[i]) & (times[i] < ends[rows])]
            if len(covering):
                result[i] = covering[np.argmax(starts[covering])]
            else:
                result[i] = rows[np.argmin(np.abs(middles[rows] - times[i]))]
    return result


def _resampler(
    events: pd.DataFrame, runs: pd.DataFrame, window: int, cutoff_mult: float
) -> Callable[[np.ndarray], np.ndarray]:
    """Event rows -> TR rows: each run's events resampled to its TR midpoints."""
    times = event_times(events["onset"], events["duration"])
    selections = []
    for run, tr, n_trs in runs[["run", "tr", "n_trs"]].itertuples(index=False):
        selected = (events["run"] == run).to_numpy()
        grid = tr_times(int(n_trs), float(tr))
        late = times[selected] > grid[-1] + tr / 2
        if late.any():
            logger.warning("run %s: %d events after the last volume", run, int(late.sum()))
        selections.append((selected, grid))

    def finish(rows: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                lanczos_resample(rows[selected], times[selected], grid, window, cutoff_mult)
                for selected, grid in selections
            ],
            axis=0,
        )

    return finish


@dataclass
class _Naturalistic:
    stimuli_dir: Path
    noise_dir: str | os.PathLike | None
    runs: pd.DataFrame
    window: int
    cutoff_mult: float

    def table(self, name: str, columns: list[str]) -> pd.DataFrame:
        return _read_events(self.stimuli_dir / "naturalistic" / name, columns, self.runs)

    @property
    def n_trs(self) -> int:
        return int(self.runs["n_trs"].sum())


def _audio_plan(extractor: FeatureExtractor, stream: str, ctx: _Naturalistic) -> StreamPlan:
    """One row per TR: each TR's window of the run's soundtrack (runs.tsv column audio)."""
    rate = int(extractor.sampling_rate)
    runs = list(run_windows(ctx.stimuli_dir, ctx.runs, rate))
    windows = [window for run in runs for window in run]
    logger.info("%s stream: %d TR windows at %d Hz", stream, len(windows), rate)

    def encode(part: slice, keys: Sequence[Key]) -> Outputs:
        return extractor.encode_audio(windows[part], keys)

    n = len(windows)
    return StreamPlan(stream, np.ones(n, dtype=np.int64), encode, np.arange(n), _identity, n)


def _no_audio(task: str) -> ValueError:
    return ValueError(
        f"condition 'audio' reads the soundtrack of naturalistic runs (runs.tsv column "
        f"'audio'); the {task} task has none. Drop 'audio' from the task's conditions."
    )


def _naturalistic_plan(extractor: FeatureExtractor, stream: str, ctx: _Naturalistic) -> StreamPlan:
    if stream == "audio":
        return _audio_plan(extractor, stream, ctx)
    text, image = _split(stream)
    if text is None:
        frames = ctx.table("frames.tsv", ["image"])
        paths = _image_paths(image, list(frames["image"]), ctx.stimuli_dir, ctx.noise_dir)
        finish = _resampler(frames, ctx.runs, ctx.window, ctx.cutoff_mult)
        return _image_plan(extractor, stream, paths, finish, ctx.n_trs)
    words = ctx.table("words.tsv", ["word", "sentence", "char_start", "char_end"])
    if text == "word":
        sentences = [str(w) for w in words["word"]]
        spans = [(0, len(w)) for w in sentences]
    else:
        sentences = list(words["sentence"])
        spans = list(zip(words["char_start"].astype(int), words["char_end"].astype(int)))
    paths = None
    if image is not None:
        frames = ctx.table("frames.tsv", ["image"])
        frame_images = list(frames["image"].iloc[concurrent_frames(words, frames)])
        paths = _image_paths(image, frame_images, ctx.stimuli_dir, ctx.noise_dir)
    finish = _resampler(words, ctx.runs, ctx.window, ctx.cutoff_mult)
    plan = _text_plan(extractor, stream, sentences, spans, paths, finish, ctx.n_trs)
    logger.info("%s stream: %d words in %d encoding units", stream, len(words), len(plan.unit_rows))
    return plan


# --- event-locked tasks (intracranial recordings) -------------------------------------
# One output row per event, no resampling: the brain side bins each event's response.
# Language-aligned events are the words of words.tsv (id word-<row>), each in its
# sentence with the frame on screen (its concurrent frame); vision-aligned events are the
# scene cuts of frames.tsv (rows with scene_cut 1, id cut-<row>), each frame with the
# sentence around it: the sentence of the last word that started before the cut in that
# run (else the run's first sentence), pooled over the whole sentence.


def scene_cut_sentences(words: pd.DataFrame, cuts: pd.DataFrame) -> np.ndarray:
    """Row of ``words`` whose sentence goes with each scene cut (same run, last word starting
    at or before the cut; the run's first word if none does; -1 for a run without words)."""
    result = np.full(len(cuts), -1, dtype=np.int64)
    for k, (run, onset) in enumerate(cuts[["run", "onset"]].itertuples(index=False)):
        rows = np.flatnonzero((words["run"] == run).to_numpy())
        if len(rows) == 0:
            continue
        before = rows[words["onset"].to_numpy(float)[rows] <= float(onset)]
        result[k] = before[-1] if len(before) else rows[0]
    return result


def _word_events_plan(extractor: FeatureExtractor, stream: str, ctx: _Naturalistic) -> StreamPlan:
    if stream == "audio":
        raise _no_audio("word_events")
    text, image = _split(stream)
    words = ctx.table("words.tsv", ["word", "sentence", "char_start", "char_end"])
    n = len(words)
    paths = None
    if image is not None:
        frames = ctx.table("frames.tsv", ["image"])
        frame_images = list(frames["image"].iloc[concurrent_frames(words, frames)])
        paths = _image_paths(image, frame_images, ctx.stimuli_dir, ctx.noise_dir)
    if text is None:
        return _image_plan(extractor, stream, paths, _identity, n)
    if text == "word":
        sentences = [str(w) for w in words["word"]]
        spans = [(0, len(w)) for w in sentences]
    else:
        sentences = list(words["sentence"])
        spans = list(zip(words["char_start"].astype(int), words["char_end"].astype(int)))
    return _text_plan(extractor, stream, sentences, spans, paths, _identity, n)


def _scene_cuts(ctx: _Naturalistic) -> pd.DataFrame:
    frames = ctx.table("frames.tsv", ["image", "scene_cut"])
    cuts = frames[frames["scene_cut"].astype(int) == 1]
    if cuts.empty:
        raise ValueError(
            f"'{ctx.stimuli_dir / 'naturalistic' / 'frames.tsv'}' column 'scene_cut' marks no "
            "scene cut (expected 1 at the first frame of each shot); mark the cuts."
        )
    return cuts


def _scene_events_plan(extractor: FeatureExtractor, stream: str, ctx: _Naturalistic) -> StreamPlan:
    if stream == "audio":
        raise _no_audio("scene_events")
    text, image = _split(stream)
    cuts = _scene_cuts(ctx)
    n = len(cuts)
    paths = None if image is None else _image_paths(
        image, list(cuts["image"]), ctx.stimuli_dir, ctx.noise_dir)
    if text is None:
        return _image_plan(extractor, stream, paths, _identity, n)
    words = ctx.table("words.tsv", ["word", "sentence", "char_start", "char_end"])
    owner = scene_cut_sentences(words, cuts)
    if (owner < 0).any():
        raise ValueError(
            f"scene cuts of runs {sorted(set(cuts['run'][owner < 0]))} have no words in "
            "naturalistic/words.tsv; a text condition needs a sentence for each cut"
        )
    if text == "word":
        sentences = [str(w) for w in words["word"].iloc[owner]]
    else:
        sentences = [str(t) for t in words["sentence"].iloc[owner]]
    spans = [(0, len(t)) for t in sentences]
    return _text_plan(extractor, stream, sentences, spans, paths, _identity, n)


def _plan_events(planner: Callable[..., StreamPlan], alignment: str):
    def plan(extractor, stimuli_dir: Path, streams: Sequence[str], options: dict):
        runs, _ = _read_runs(stimuli_dir)
        ctx = _Naturalistic(stimuli_dir, options["noise_dir"], runs, 0, 1.0)
        plans = [planner(extractor, stream, ctx) for stream in streams]
        rows = (range(len(ctx.table("words.tsv", []))) if alignment == "language"
                else _scene_cuts(ctx).index)
        ids = event_ids(alignment, rows)
        logger.info("%s-aligned events: %d", alignment, len(ids))
        task = {aligned: kind for kind, aligned in ALIGNMENTS.items()}[alignment]
        return plans, {"task": task, "stimuli": ids, "alignment": alignment}, {}

    return plan


# --- encoding and assembly ------------------------------------------------------------


def _encode_stream(
    extractor: FeatureExtractor,
    plan: StreamPlan,
    keys: Sequence[Key],
    spill: Spill,
    chunk_size: int,
) -> None:
    """Encode the plan's units chunk by chunk into ``spill``."""
    offsets = np.concatenate([[0], np.cumsum(plan.unit_rows)]).astype(np.int64)
    n_units = len(plan.unit_rows)
    for start in range(0, max(n_units, 1), chunk_size):
        part = slice(start, min(start + chunk_size, n_units))
        outputs = plan.encode(part, keys)
        expected = int(offsets[part.stop] - offsets[part.start])
        for key, rows in outputs.items():
            if len(rows) != expected:
                raise ValueError(
                    f"extractor '{extractor.spec.extractor}' returned {len(rows)} rows of "
                    f"{key!r} for {expected} pooled spans/images; it must return one row each"
                )
        spill.write(int(offsets[start]), outputs)
        spill.flush()
    logger.info("%s stream: encoded %d units (%d rows)", plan.name, n_units, offsets[-1])


# Single-unit arrays an extractor may return per block: attention heads, MLP neurons.
_UNIT_ARRAYS = ("heads", "mlp")


@dataclass(frozen=True)
class _Array:
    """One output array: its name, spill key, contributing streams and combination."""

    name: str
    key: Key
    streams: tuple[int, ...]
    combine: str  # "concatenate" (hidden states), "sum" (pseudo-layers), "single" (units)


def _output_arrays(
    extractor: FeatureExtractor, plans: list[StreamPlan], spills: list[Spill], keys: list[int]
) -> list[_Array]:
    pseudo = dict(getattr(extractor, "pseudo_layers", {}) or {})
    everything = tuple(range(len(plans)))
    arrays = [
        _Array(f"layer-{key:02d}", key, everything, "sum" if key in pseudo else "concatenate")
        for key in keys
    ]
    for key in keys:
        for s, (plan, spill) in enumerate(zip(plans, spills, strict=True)):
            for kind in _UNIT_ARRAYS:
                unit = f"{kind}-{key:02d}"
                if unit in spill.arrays:
                    arrays.append(_Array(f"{kind}-{plan.name}-{key:02d}", unit, (s,), "single"))
    return arrays


def _shape(array: _Array, plans: list[StreamPlan], spills: list[Spill]) -> tuple[int, ...]:
    parts = [spills[s].read(array.key).shape[1:] for s in array.streams]
    n_out = plans[array.streams[0]].n_out
    if array.combine == "concatenate":
        return (n_out, sum(int(p[0]) for p in parts))
    if len(set(parts)) != 1:
        raise ValueError(
            f"{array.name}: the streams' widths {parts} differ; a pseudo-layer must have one "
            "width in every stream to be summed"
        )
    return (n_out, *parts[0])


def _compute(array: _Array, plans: list[StreamPlan], spills: list[Spill]) -> np.ndarray:
    """One output array: gather each stream's event rows, reduce, combine (float32)."""
    parts = []
    for s in array.streams:
        rows = spills[s].read(array.key)[plans[s].index]
        reduced = plans[s].finish(rows.reshape(len(rows), -1))
        parts.append(reduced.reshape(plans[s].n_out, *rows.shape[1:]))
    if array.combine == "sum":
        return np.sum([p.astype(np.float64) for p in parts], axis=0).astype(np.float32)
    return np.concatenate(parts, axis=1).astype(np.float32)


def _stream_modality(stream: str) -> str:
    text, image = _split(stream)
    return "text" if text is not None and image is None else "image"


def _unit_metadata(
    extractor: FeatureExtractor, plans: list[StreamPlan], arrays: list[_Array], shapes: dict
) -> dict[str, Any]:
    """``heads`` (name -> layer, stream, n_heads, head_dim) and, when written, ``mlp``
    (name -> layer, stream, n_mlp, block); joint families' heads also name their ``block``."""
    joint = bool(getattr(extractor, "joint", False))
    blocks = getattr(extractor, "unit_blocks", lambda modality: {})
    heads, mlp = {}, {}
    for a in (a for a in arrays if a.combine == "single"):
        kind, layer = str(a.key).split("-")
        stream = plans[a.streams[0]].name
        info: dict[str, Any] = {"layer": int(layer), "stream": stream}
        block = blocks(_stream_modality(stream)).get(int(layer))
        if kind == "heads":
            info.update(n_heads=int(shapes[a.name][1]), head_dim=int(shapes[a.name][2]))
            heads[a.name] = {**info, "block": block} if joint else info
        else:
            mlp[a.name] = {**info, "n_mlp": int(shapes[a.name][1]), "block": block}
    return {"heads": heads, **({"mlp": mlp} if mlp else {})}


def _stream_widths(plans: list[StreamPlan], spills: list[Spill], arrays: list[_Array]) -> dict:
    """``stream_widths``: layer array -> each stream's columns in it (several streams only)."""
    widths = {
        a.name: [int(spills[s].read(a.key).shape[1]) for s in a.streams]
        for a in arrays
        if a.combine == "concatenate" and len(a.streams) > 1
    }
    return {"stream_widths": widths} if widths else {}


def _metadata(
    extractor: FeatureExtractor,
    condition: str,
    keys: list[int],
    plans: list[StreamPlan],
    arrays: list[_Array],
    shapes: dict[str, tuple[int, ...]],
    spills: list[Spill],
) -> dict[str, Any]:
    spec = extractor.spec
    pseudo = dict(getattr(extractor, "pseudo_layers", {}) or {})
    units = _unit_metadata(extractor, plans, arrays, shapes)
    return {
        "model": spec.name,
        "model_id": spec.id,
        "revision": spec.revision,
        "extractor": spec.extractor,
        "source": spec.source,
        "code_version": spec.code_version,
        "condition": condition,
        "streams": [plan.name for plan in plans],
        "layers": list(keys),
        "pseudo_layers": {str(k): pseudo[k] for k in keys if k in pseudo},
        "combine": "streams concatenated per hidden state; summed at pseudo-layers",
        "heads": units["heads"],
        "pooling": spec.pooling,
        "units": "a.u.",
        **{k: v for k, v in units.items() if k != "heads"},
        **_stream_widths(plans, spills, arrays),
        **_family_metadata(extractor, keys),
    }


def _family_metadata(extractor: FeatureExtractor, keys: list[int]) -> dict[str, Any]:
    """What a family adds about its layers (contrastive towers: the vision hidden state
    each layer index reads, ``vision_layers``)."""
    described = getattr(extractor, "feature_metadata", None)
    return described(keys) if described is not None else {}


def _plan_concepts(
    extractor: FeatureExtractor, stimuli_dir: Path, streams: Sequence[str], options: dict
) -> tuple[list[StreamPlan], dict[str, Any], dict[str, np.ndarray]]:
    concepts = _read_concepts(stimuli_dir)
    ctx = _Concepts(stimuli_dir, options["noise_dir"], concepts)
    plans = [_concept_plan(extractor, stream, ctx) for stream in streams]
    return plans, {"task": "concepts", "stimuli": list(concepts["concept"])}, {}


def _plan_naturalistic(
    extractor: FeatureExtractor, stimuli_dir: Path, streams: Sequence[str], options: dict
) -> tuple[list[StreamPlan], dict[str, Any], dict[str, np.ndarray]]:
    runs, tr = _read_runs(stimuli_dir)
    window, cutoff_mult = options["window"], options["cutoff_mult"]
    ctx = _Naturalistic(stimuli_dir, options["noise_dir"], runs, window, cutoff_mult)
    plans = [_naturalistic_plan(extractor, stream, ctx) for stream in streams]
    meta = {
        "task": "naturalistic",
        "runs": [int(r) for r in runs["run"]],
        "tr": tr,
        "n_trs": [int(n) for n in runs["n_trs"]],
        "resampling": {
            "method": "lanczos",
            "window": window,
            "cutoff_mult": cutoff_mult,
            "event_time": "onset + duration / 2",
            "tr_time": "(k + 0.5) * tr",
        },
    }
    run = np.repeat(runs["run"].to_numpy(), runs["n_trs"].to_numpy()).astype(np.int32)
    return plans, meta, {"run": run}


_PLANNERS: dict[str, Callable[..., tuple[list[StreamPlan], dict, dict]]] = {
    "concepts": _plan_concepts,
    "naturalistic": _plan_naturalistic,
    "word_events": _plan_events(_word_events_plan, "language"),
    "scene_events": _plan_events(_scene_events_plan, "vision"),
}


@dataclass
class _Extraction:
    plans: list[StreamPlan]
    spills: list[Spill]
    arrays: list[_Array]
    shapes: dict[str, tuple[int, ...]]
    metadata: dict[str, Any]
    extra: dict[str, np.ndarray]

    def computed(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every output array, one at a time, then the extra arrays (``run``)."""
        for array in self.arrays:
            yield array.name, _compute(array, self.plans, self.spills)
        yield from self.extra.items()


def _stand_in(extractor: FeatureExtractor, condition: str, streams: Sequence[str]) -> dict:
    """Record (and log) the image a model that cannot read text alone gets in a text-only
    condition: paper 002's ``language`` ablation is then not a true ablation."""
    if "image" in condition_modalities(condition) or not any("noise" in s for s in streams):
        return {}
    logger.warning(
        "model '%s' (%s) cannot read text without an image: condition '%s' shows it the "
        "seeded noise image as a stand-in (recorded in the file's 'stand_in')",
        extractor.spec.name, extractor.spec.extractor, condition,
    )
    return {"stand_in": {"image": "seeded noise image (make_noise_images)",
                         "why": "the architecture requires an image input"}}


def _noise_record(streams: Sequence[str], noise_dir: str | os.PathLike | None) -> dict:
    if noise_dir is None or not any("noise" in s for s in streams):
        return {}
    return {"noise_table_sha256": sha256_file(Path(noise_dir) / NOISE_TABLE)}


def _extract(
    extractor: FeatureExtractor,
    stimuli_dir: str | os.PathLike,
    task: str,
    condition: str,
    layers: Layers,
    options: dict[str, Any],
) -> _Extraction:
    """Plan the streams, encode them into spills, and describe the output arrays."""
    if task not in _PLANNERS:
        raise ValueError(
            f"'task' must be one of {', '.join(_PLANNERS)}; got {task!r}. Fix dataset.tasks in "
            "config/config.yaml."
        )
    streams = check_condition(extractor, condition)
    pseudo = dict(getattr(extractor, "pseudo_layers", {}) or {})
    keys = resolve_layers(
        extractor.spec.layers if layers is None else layers, extractor.n_layers, pseudo
    )
    stand_in = _stand_in(extractor, condition, streams)
    plans, task_meta, extra = _PLANNERS[task](extractor, Path(stimuli_dir), streams, options)
    spills = []
    for s, plan in enumerate(plans):
        folder = None if options["spill_dir"] is None else Path(options["spill_dir"]) / f"s{s}"
        spills.append(Spill(int(plan.unit_rows.sum()), folder))
        _encode_stream(extractor, plan, keys, spills[-1], options["chunk_size"])
    arrays = _output_arrays(extractor, plans, spills, keys)
    shapes = {a.name: _shape(a, plans, spills) for a in arrays}
    metadata = _metadata(extractor, condition, keys, plans, arrays, shapes, spills)
    metadata.update(task_meta, **_noise_record(streams, options["noise_dir"]), **stand_in)
    logger.info(
        "extracting %s features of model '%s' (%s task): streams %s, %d layers, %d arrays",
        condition,
        extractor.spec.name,
        task,
        ", ".join(streams),
        len(keys),
        len(arrays),
    )
    return _Extraction(plans, spills, arrays, shapes, metadata, extra)


def _options(
    noise_dir: str | os.PathLike | None,
    window: int = 3,
    cutoff_mult: float = 1.0,
    chunk_size: int = CHUNK_SIZE,
    spill_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"'chunk_size' must be an integer >= 1; got {chunk_size!r}")
    return {
        "noise_dir": noise_dir,
        "window": window,
        "cutoff_mult": cutoff_mult,
        "chunk_size": chunk_size,
        "spill_dir": spill_dir,
    }


# --- public API -------------------------------------------------------------------------


def extract_concept_features(
    extractor: FeatureExtractor,
    stimuli_dir: str | os.PathLike,
    condition: str,
    layers: Layers = None,
    noise_dir: str | os.PathLike | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Concept-task features of one condition, in memory.

    Parameters
    ----------
    extractor : FeatureExtractor
    stimuli_dir : path
        Stimuli folder (concepts.tsv, sentences.tsv, images/).
    condition : str
        A key of :data:`CONDITIONS` supported by the extractor.
    layers : "all", sequence of int, or None
        Hidden states (and pseudo-layers) to extract; None uses ``extractor.spec.layers``.
    noise_dir : path, optional
        Folder written by :func:`~brainalign.features.noise.make_noise_images`; needed
        when the condition shows the model noise images.

    Returns
    -------
    arrays : dict of str to ndarray
        ``layer-XX``: float32 array of shape (n_concepts, n_features), rows in
        concepts.tsv order, columns the condition's streams concatenated (summed at a
        pseudo-layer); with ``spec.attention_heads``, ``heads-<stream>-XX`` arrays of
        shape (n_concepts, n_heads, head_dim); with ``spec.mlp_neurons``,
        ``mlp-<stream>-XX`` arrays of shape (n_concepts, n_mlp) (MLP neurons).
    metadata : dict
        Contract keys (model, model_id, revision, extractor, condition, task, layers,
        stimuli, pooling, units) plus source, code_version, streams, pseudo_layers,
        heads (array -> layer, stream, n_heads, head_dim; joint families: block), with
        MLP neurons ``mlp`` (array -> layer, stream, n_mlp, block), for layers that
        concatenate several streams ``stream_widths`` (``layer-XX`` -> each stream's
        columns) and, with noise, noise_table_sha256.
    """
    run = _extract(extractor, stimuli_dir, "concepts", condition, layers, _options(noise_dir))
    return dict(run.computed()), run.metadata


def extract_naturalistic_features(
    extractor: FeatureExtractor,
    stimuli_dir: str | os.PathLike,
    condition: str,
    layers: Layers = None,
    noise_dir: str | os.PathLike | None = None,
    window: int = 3,
    cutoff_mult: float = 1.0,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Naturalistic-task features of one condition, resampled to the TRs, in memory.

    Each distinct sentence of words.tsv (with, for a joint stream, each distinct
    concurrent frame) is encoded once and pooled at every word span it holds; each
    distinct frame image is encoded once. Each stream is resampled per run with
    :func:`~brainalign.features.align.lanczos_resample` (event times at
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
        in run order; ``heads-<stream>-XX`` as for the concept task; ``run``: int32
        array of shape (n_trs_total,).
    metadata : dict
        As for the concept task with task "naturalistic", plus ``runs``, ``tr``,
        ``n_trs`` (per run) and ``resampling``.
    """
    options = _options(noise_dir, window, cutoff_mult)
    run = _extract(extractor, stimuli_dir, "naturalistic", condition, layers, options)
    return dict(run.computed()), run.metadata


def extract_event_features(
    extractor: FeatureExtractor,
    stimuli_dir: str | os.PathLike,
    condition: str,
    layers: Layers = None,
    noise_dir: str | os.PathLike | None = None,
    *,
    alignment: str = "language",
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Event-locked features (one row per event, no resampling), in memory.

    ``alignment="language"``: one row per word of naturalistic/words.tsv (the word in its
    sentence, with its concurrent frame for image streams), ids ``word-<row>``;
    ``"vision"``: one row per scene cut of naturalistic/frames.tsv (``scene_cut`` 1), the
    frame with the sentence around it, ids ``cut-<row>``. ``metadata['stimuli']`` holds the
    ids in row order; the rest is as for :func:`extract_concept_features`.
    """
    task = {aligned: kind for kind, aligned in ALIGNMENTS.items()}[alignment]
    run = _extract(extractor, stimuli_dir, task, condition, layers, _options(noise_dir))
    return dict(run.computed()), run.metadata


TASKS: dict[str, Callable[..., tuple[dict[str, np.ndarray], dict[str, Any]]]] = {
    "concepts": extract_concept_features,
    "naturalistic": extract_naturalistic_features,
    "word_events": partial(extract_event_features, alignment="language"),
    "scene_events": partial(extract_event_features, alignment="vision"),
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


def write_task_features(
    extractor: FeatureExtractor,
    stimuli_dir: str | os.PathLike,
    task: str,
    condition: str,
    out: str | os.PathLike,
    layers: Layers = None,
    noise_dir: str | os.PathLike | None = None,
    *,
    window: int = 3,
    cutoff_mult: float = 1.0,
    chunk_size: int = CHUNK_SIZE,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Extract one task x condition and stream it to a safetensors file, layer by layer.

    Pooled rows are spilled chunk by chunk to memory-mapped files in a temporary
    folder beside ``out``; then each output array is computed and written in turn.
    Peak memory: one chunk of ``chunk_size`` stimuli at every layer, or one layer of
    every stimulus, whichever is larger (plus the model).

    Parameters
    ----------
    extractor, stimuli_dir, task, condition, layers, noise_dir
        As for :func:`extract_task_features`.
    out : path
        The ``.safetensors`` file (written atomically; same arrays and metadata as the
        in-memory functions return).
    window, cutoff_mult
        Lanczos parameters (naturalistic task).
    chunk_size : int
        Encoding units (sentences, images) per spill.
    metadata : dict, optional
        Extra metadata (e.g. the cache key).

    Returns
    -------
    dict
        The file's metadata.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.spill-") as spill:
        options = _options(noise_dir, window, cutoff_mult, chunk_size, spill)
        run = _extract(extractor, stimuli_dir, task, condition, layers, options)
        run.metadata.update(metadata or {})
        layout = {a.name: (np.float32, run.shapes[a.name]) for a in run.arrays}
        layout.update({name: (a.dtype, a.shape) for name, a in run.extra.items()})
        with write_safetensors(out, layout, run.metadata) as writer:
            for name, array in run.computed():
                writer.write(name, array)
        run.spills.clear()
    logger.info("wrote %s (%d arrays)", out, len(layout))
    return run.metadata


def extract_features_file(
    spec: ModelSpec,
    stimuli_dir: str | os.PathLike,
    task: str,
    condition: str,
    out: str | os.PathLike,
    noise_dir: str | os.PathLike | None = None,
    cache: FeatureCache | None = None,
    *,
    window: int = 3,
    cutoff_mult: float = 1.0,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, Any]:
    """The extraction of one rule: read the cache, else load the model and extract.

    The cache key (:func:`~brainalign.features.cache.feature_cache_key`) is computed
    from the spec, the model's files, the code and the stimuli before any model is
    loaded; on a hit the cached file is copied to ``out`` with this model's name, on a
    miss the model is loaded, :func:`write_task_features` writes ``out`` and the file
    is stored in the cache. A hit and a miss write the same bytes.

    Parameters
    ----------
    spec : ModelSpec
    stimuli_dir, task, condition, out, noise_dir, window, cutoff_mult, chunk_size
        As for :func:`write_task_features` (layers come from ``spec.layers``).
    cache : FeatureCache or None
        None: no cache (see :meth:`FeatureCache.from_env`).

    Returns
    -------
    dict
        The file's metadata (with ``cache_key``).
    """
    resampling = {"window": window, "cutoff_mult": cutoff_mult}
    key, record = feature_cache_key(spec, stimuli_dir, task, condition, noise_dir, resampling)
    if cache is not None and cache.fetch(key, out, {"model": spec.name}):
        from brainalign.features.stream import read_layout

        logger.info("feature cache hit: %s (%s)", key, cache.path(key))
        return read_layout(out)[1]
    logger.info("feature cache %s: key %s", "miss" if cache is not None else "off", key)
    metadata = write_task_features(
        load_extractor(spec),
        stimuli_dir,
        task,
        condition,
        out,
        noise_dir=noise_dir,
        window=window,
        cutoff_mult=cutoff_mult,
        chunk_size=chunk_size,
        metadata={"cache_key": key},
    )
    if cache is not None:
        logger.info("stored features in the cache: %s", cache.store(key, out, record))
    return metadata
