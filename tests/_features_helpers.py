"""Shared data and helpers of the feature tests: the tiny stimulus folder and tiny models.

The fixtures built on them (``one_torch_thread``, ``stim``, ``noise_dir``) are in
``tests/conftest.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from PIL import Image

from brainalign.features import ModelSpec, load_extractor

CONCEPT_SENTENCES = {
    "dog": [("The dog chased the other dog.", 1), ("A dog barked.", 0)],
    "apple": [("I ate an apple, then (apple) pie.", 1), ("Apple trees grow.", 0)],
    "unbelievably": [("It was unbelievably good.", 0), ("Unbelievably, it worked!", 0)],
    "kiwi": [("A kiwi is green.", 0), ('He said: "kiwi".', 0)],
    "saxophone": [("Saxophones, unbelievably, are loud!", 0), ("Play the saxophone.", 0)],
}
WORD_OF = {"dog": "dog", "apple": "apple", "unbelievably": "unbelievably", "kiwi": "kiwi"}
# Concept order deliberately not alphabetical; image sizes (width, height) all different.
IMAGES = {
    "dog": (40, 30),
    "apple": (33, 50),
    "unbelievably": (64, 48),
    "kiwi": (45, 45),
    "saxophone": (37, 41),
}
NATURALISTIC = {
    1: ["The dog chased the other dog.", "I found it unbelievably good."],
    2: ["Saxophones, unbelievably, are loud!", "The dog chased the other dog."],
}
FRAMES = {
    1: [
        ("images/apple.png", 0.0, 8.0),
        ("images/dog.png", 8.0, 8.0),
        ("images/apple.png", 16.0, 8.0),
    ],
    2: [("images/kiwi.png", 0.0, 12.0), ("images/dog.png", 12.0, 12.0)],
}
N_TRS, TR = 12, 2.0


def find_span(sentence: str, word: str, occurrence: int) -> tuple[int, int]:
    """Character span of the ``occurrence``-th case-insensitive match of ``word``."""
    starts = [m.start() for m in re.finditer(re.escape(word), sentence, flags=re.IGNORECASE)]
    start = starts[occurrence]
    end = start + len(word)
    while end < len(sentence) and sentence[end].isalpha():  # "Saxophones" for "saxophone"
        end += 1
    return start, end


def write_stimuli(root):
    """Write a stimulus folder following the contract; returns its path."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (concept, (width, height)) in enumerate(IMAGES.items()):
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        (image.convert("L") if i == 3 else image).save(root / "images" / f"{concept}.png")
    pd.DataFrame({"concept": list(IMAGES), "image": [f"images/{c}.png" for c in IMAGES]}).to_csv(
        root / "concepts.tsv", sep="\t", index=False
    )
    rows = []
    for concept, contexts in CONCEPT_SENTENCES.items():
        for context, (sentence, occurrence) in enumerate(contexts):
            start, end = find_span(sentence, WORD_OF.get(concept, concept), occurrence)
            rows.append((concept, context, sentence, start, end))
    sentences = pd.DataFrame(
        rows, columns=["concept", "context", "sentence", "char_start", "char_end"]
    )
    sentences.iloc[::-1].to_csv(root / "sentences.tsv", sep="\t", index=False)
    write_naturalistic(root / "naturalistic")
    return root


def write_naturalistic(folder):
    folder.mkdir()
    pd.DataFrame({"run": [1, 2], "tr": [TR, TR], "n_trs": [N_TRS, N_TRS]}).to_csv(
        folder / "runs.tsv", sep="\t", index=False
    )
    words = []
    for run, sentences in NATURALISTIC.items():
        onset = 1.0
        for sentence in sentences:
            for match in re.finditer(r"\w+", sentence):
                words.append((run, onset, 0.3, match.group(), sentence, match.start(), match.end()))
                onset += 0.45
            onset += 2.0
    columns = ["run", "onset", "duration", "word", "sentence", "char_start", "char_end"]
    pd.DataFrame(words, columns=columns).to_csv(folder / "words.tsv", sep="\t", index=False)
    frames = [
        (run, onset, dur, image) for run, rows in FRAMES.items() for image, onset, dur in rows
    ]
    pd.DataFrame(frames, columns=["run", "onset", "duration", "image"]).to_csv(
        folder / "frames.tsv", sep="\t", index=False
    )


def span_of(sentence: str, word: str, occurrence: int) -> tuple[int, int]:
    """Character span of the ``occurrence``-th case-sensitive match of ``word``."""
    start = -1
    for _ in range(occurrence + 1):
        start = sentence.index(word, start + 1)
    return start, start + len(word)


def tiny_joint(extractor: str, seed: int = 0, **cfg):
    """A tiny seeded joint (vision-language) model, two sentences or images per batch."""
    spec = ModelSpec.from_config(
        extractor, {"extractor": extractor, "source": "tiny", "batch_size": 2, **cfg}, seed=seed
    )
    return load_extractor(spec)
