"""Synthetic demo stimuli: real words in natural sentences, real images, a naturalistic task.

The words are concrete English nouns shipped in ``brainalign/data/concepts.txt``; each
concept is embedded in natural sentences built from ``brainalign/data/sentence_templates.txt``
and gets an image cut from one of scikit-image's bundled sample photographs. The naturalistic
task is a spoken transcript of those sentences (word onsets at a realistic speaking rate) and
a film of shots showing concept images, chosen independently of the words. Every file is a
deterministic function of the parameters and ``seed``.
"""

from __future__ import annotations

import logging
import os
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_write, write_table
from ._checks import check_positive_float, check_positive_int, seed_streams
from .audio import write_soundtracks

__all__ = ["make_demo_stimuli", "load_concept_words", "load_sentence_templates", "IMAGE_SOURCES"]

logger = logging.getLogger(__name__)

#: scikit-image sample images stored as PNG inside the package (no download, lossless decoding).
IMAGE_SOURCES = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "horse",
    "coins",
    "moon",
    "page",
    "text",
    "clock",
    "brick",
    "grass",
    "gravel",
    "colorwheel",
    "logo",
    "immunohistochemistry",
    "cell",
)

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_SLOT = "{w}"


def _read_data_lines(name: str) -> list[str]:
    text = resources.files("brainalign").joinpath("data", name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def load_concept_words() -> list[str]:
    """The shipped concrete nouns, in file order (categories interleaved).

    Returns
    -------
    words : list of str
        Lowercase, alphabetic, unique nouns (at least 180).
    """
    return _read_data_lines("concepts.txt")


def load_sentence_templates() -> list[str]:
    """The shipped sentence templates; ``{w}`` marks the concept word (exactly once).

    Returns
    -------
    templates : list of str
    """
    return _read_data_lines("sentence_templates.txt")


def make_sentences(
    concepts: list[str], n_contexts: int, *, random_state: np.random.Generator
) -> pd.DataFrame:
    """Embed each concept in ``n_contexts`` distinct templates chosen at random.

    Returns
    -------
    sentences : DataFrame
        Columns ``concept``, ``context``, ``sentence``, ``char_start``, ``char_end``;
        ``n_concepts * n_contexts`` rows, concept-major.
    """
    templates = load_sentence_templates()
    if n_contexts > len(templates):
        raise ValueError(
            f"parameter 'n_contexts' must be <= {len(templates)} (the number of shipped sentence "
            f"templates); got {n_contexts}. Lower n_contexts."
        )
    rows = []
    for concept in concepts:
        for context, index in enumerate(random_state.choice(len(templates), n_contexts, False)):
            template = templates[index]
            start = template.index(_SLOT)
            sentence = template.replace(_SLOT, concept)
            rows.append((concept, context, sentence, start, start + len(concept)))
    return pd.DataFrame(rows, columns=["concept", "context", "sentence", "char_start", "char_end"])


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 RGB from a bool, grey, RGB or RGBA sample image (alpha composited on white)."""
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        raise ValueError(f"sample image must be uint8 or bool; got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:].astype(np.uint32)
        rgb = (image[:, :, :3] * alpha + 255 * (255 - alpha) + 127) // 255
        return rgb.astype(np.uint8)
    return image[:, :, :3]


def _load_source(name: str) -> np.ndarray:
    import skimage.data

    return _to_rgb(np.asarray(getattr(skimage.data, name)()))


def _crop_image(source: np.ndarray, size: int, *, random_state: np.random.Generator) -> np.ndarray:
    """A random square crop (35-90 % of the short side), maybe mirrored, resized to ``size``."""
    from PIL import Image

    height, width = source.shape[:2]
    side = int(min(height, width) * random_state.uniform(0.35, 0.9))
    top = int(random_state.integers(0, height - side + 1))
    left = int(random_state.integers(0, width - side + 1))
    crop = source[top : top + side, left : left + side]
    if random_state.random() < 0.5:
        crop = crop[:, ::-1]
    pil = Image.fromarray(np.ascontiguousarray(crop))
    return np.asarray(pil.resize((size, size), Image.Resampling.LANCZOS))


def _write_concept_images(
    out_dir: Path, concepts: list[str], size: int, *, random_state: np.random.Generator
) -> list[str]:
    """Write ``images/<concept>.png`` for every concept; return the relative paths."""
    from PIL import Image

    order = random_state.permutation(len(IMAGE_SOURCES))
    cache: dict[str, np.ndarray] = {}
    paths = []
    for i, concept in enumerate(concepts):
        name = IMAGE_SOURCES[order[i % len(order)]]
        if name not in cache:
            cache[name] = _load_source(name)
        pixels = _crop_image(cache[name], size, random_state=random_state)
        rel = f"images/{concept}.png"
        with atomic_write(out_dir / rel) as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
        paths.append(rel)
    logger.info(
        "wrote %d images of %dx%d px cut from %d scikit-image samples",
        len(paths),
        size,
        size,
        len(cache),
    )
    return paths


def _time_sentence(sentence: str, *, random_state: np.random.Generator) -> list[tuple]:
    """Word spans with onsets/durations in ms relative to the sentence start (~2.5 words/s)."""
    words, clock = [], 0
    for match in _WORD.finditer(sentence):
        duration = 110 + 48 * len(match.group()) + int(random_state.integers(-30, 31))
        words.append((clock, duration, match.group(), match.start(), match.end()))
        clock += duration + int(random_state.integers(20, 121))
    return words


def make_transcript(
    sentences: pd.DataFrame, n_runs: int, run_ms: int, *, random_state: np.random.Generator
) -> pd.DataFrame:
    """Speak the sentences in a seeded order across runs; no word runs past its run's end.

    Returns
    -------
    words : DataFrame
        Columns ``run``, ``onset``, ``duration`` (s), ``word``, ``sentence``, ``char_start``,
        ``char_end``.
    """
    order = list(random_state.permutation(len(sentences)))
    rows = []
    for run in range(1, n_runs + 1):
        clock = int(random_state.integers(500, 2001))
        while True:
            if not order:
                order = list(random_state.permutation(len(sentences)))
            sentence = sentences["sentence"].iat[order[0]]
            timed = _time_sentence(sentence, random_state=random_state)
            if clock + timed[-1][0] + timed[-1][1] > run_ms:
                break
            order.pop(0)
            rows += [
                (run, (clock + on) / 1000, dur / 1000, w, sentence, s, e)
                for on, dur, w, s, e in timed
            ]
            clock += timed[-1][0] + timed[-1][1] + int(random_state.integers(300, 1001))
    columns = ["run", "onset", "duration", "word", "sentence", "char_start", "char_end"]
    return pd.DataFrame(rows, columns=columns)


def _pick_other(n: int, previous: int | None, *, random_state: np.random.Generator) -> int:
    """A uniform index in ``range(n)``, different from ``previous`` when one is given."""
    if previous is None:
        return int(random_state.integers(n))
    choice = int(random_state.integers(n - 1))
    return choice + (choice >= previous)


def make_frames(
    images: list[str], n_runs: int, run_ms: int, *, random_state: np.random.Generator
) -> pd.DataFrame:
    """Shots of 2-6 s tiling each run exactly, each showing a random concept image.

    Returns
    -------
    frames : DataFrame
        Columns ``run``, ``onset``, ``duration`` (s), ``image``, ``scene_cut`` (1: every
        frame row starts a new shot, the events of vision-aligned analyses).
    """
    rows = []
    for run in range(1, n_runs + 1):
        clock, previous = 0, None
        while clock < run_ms:
            left = run_ms - clock
            longest = min(6000, left - 2000)
            duration = left if left <= 6000 else int(random_state.integers(2000, longest + 1))
            choice = _pick_other(len(images), previous, random_state=random_state)
            rows.append((run, clock / 1000, duration / 1000, images[choice]))
            clock, previous = clock + duration, choice
    frames = pd.DataFrame(rows, columns=["run", "onset", "duration", "image"])
    return frames.assign(scene_cut=1)


def _check_stimuli_params(n_concepts, n_contexts, n_runs, n_trs, tr, image_size) -> None:
    words = load_concept_words()
    check_positive_int("n_concepts", n_concepts, minimum=2)
    if n_concepts > len(words):
        raise ValueError(
            f"parameter 'n_concepts' must be <= {len(words)} (the shipped word list); "
            f"got {n_concepts}. Lower n_concepts."
        )
    check_positive_int("n_contexts", n_contexts)
    check_positive_int("n_runs", n_runs)
    check_positive_int("image_size", image_size, minimum=8)
    check_positive_int("n_trs", n_trs)
    if check_positive_float("tr", tr) * n_trs < 20:
        raise ValueError(
            f"parameters 'n_trs' * 'tr' must give runs of at least 20 s; got {n_trs} x {tr} s. "
            "Use more TRs."
        )


def make_demo_stimuli(
    out_dir: str | os.PathLike,
    *,
    n_concepts: int = 60,
    n_contexts: int = 6,
    n_runs: int = 2,
    n_trs: int = 200,
    tr: float = 2.0,
    image_size: int = 64,
    seed: int = 0,
) -> Path:
    """Write a demo stimuli folder following the brainalign stimuli contract.

    Parameters
    ----------
    out_dir : str or path-like
        The stimuli folder (``stim/``); created if needed.
    n_concepts : int
        How many concepts: the first ``n_concepts`` words of the shipped list.
    n_contexts : int
        Sentences per concept, each from a different template.
    n_runs, n_trs : int
        Naturalistic runs and TRs per run.
    tr : float
        Repetition time in seconds.
    image_size : int
        Side of the square RGB PNG images, in pixels.
    seed : int
        Seeds everything (template choice, image crops, sentence order, timings, shots).

    Returns
    -------
    out_dir : Path
        Holds ``concepts.tsv``, ``sentences.tsv``, ``images/*.png``,
        ``naturalistic/{runs,words,frames}.tsv`` and the runs' soundtracks
        ``naturalistic/audio/run-XX.wav`` (:mod:`brainalign.demo.audio`).
    """
    _check_stimuli_params(n_concepts, n_contexts, n_runs, n_trs, tr, image_size)
    out_dir = Path(out_dir)
    rng_sentences, rng_images, rng_words, rng_frames, rng_audio = seed_streams(seed, 5)
    concepts = load_concept_words()[:n_concepts]
    sentences = make_sentences(concepts, n_contexts, random_state=rng_sentences)
    images = _write_concept_images(out_dir, concepts, image_size, random_state=rng_images)
    run_ms = int(round(n_trs * tr * 1000))
    words = make_transcript(sentences, n_runs, run_ms, random_state=rng_words)
    frames = make_frames(images, n_runs, run_ms, random_state=rng_frames)
    audio = write_soundtracks(out_dir, n_runs, run_ms / 1000, random_state=rng_audio)
    runs = pd.DataFrame(
        {"run": np.arange(1, n_runs + 1), "tr": float(tr), "n_trs": n_trs, "audio": audio})
    write_table(pd.DataFrame({"concept": concepts, "image": images}), out_dir / "concepts.tsv")
    write_table(sentences, out_dir / "sentences.tsv")
    write_table(runs, out_dir / "naturalistic" / "runs.tsv")
    write_table(words, out_dir / "naturalistic" / "words.tsv")
    write_table(frames, out_dir / "naturalistic" / "frames.tsv")
    rate = len(words) / (n_runs * run_ms / 1000)
    logger.info(
        "demo stimuli: %d concepts x %d contexts, %d runs of %d TRs (TR %.2f s), "
        "%d words (%.2f words/s), %d shots -> %s",
        n_concepts,
        n_contexts,
        n_runs,
        n_trs,
        tr,
        len(words),
        rate,
        len(frames),
        out_dir,
    )
    return out_dir
