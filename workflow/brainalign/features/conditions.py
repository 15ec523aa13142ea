"""Input conditions and the streams a model reads under each (torch-free).

A condition names the *inputs* shown to a model:

- "text": the stimulus sentence(s), pooled at the target word (concept task: the
  concept word in each of its sentences, averaged over contexts; naturalistic task:
  every word of the transcript in its sentence);
- "word": the target word alone, without its sentence (concept task: the concept
  word; naturalistic task: each transcript word);
- "image": the stimulus image (concept task: the concept's picture; naturalistic
  task: the video frames);
- "noise": the seeded noise image standing in for the stimulus image (stored with
  its hash by :func:`~brainalign.features.noise.make_noise_images`);
- "images": each of the concept's images (concepts.tsv's optional ``images`` column,
  ``;``-separated; the ``image`` column when it is absent or empty), the features
  averaged over the images (other tasks: the frame on screen, one per word).

===============  ===============  ==================================================
condition        inputs           paper
===============  ===============  ==================================================
``sentence``     text             000: sentence only
``picture``      text + image     000: sentence with picture
``noise``        text + noise     000: picture replaced by a seeded noise image
``image``        image            000: picture only
``word``         word             000: concept word only
``wordpicture``  word + images    000: concept word with each of its images, averaged
``language``     text             002: video, language stream only (transcript words)
``vision``       image            002: video, vision stream only (frames)
``joint``        text + image     002: video, both streams
``audio``        audio            002: video, the soundtrack (naturalistic task only)
===============  ===============  ==================================================

``audio`` reads each naturalistic run's soundtrack (runs.tsv column ``audio``), one
window per TR (:mod:`brainalign.features.audio_windows`); audio models (extractor
``audio_encoder``) run only it, and only on naturalistic tasks. Joint models of vision,
language and audio, and the models that drop one of them, are banded-ridge models over
the three feature spaces (``encoding.joint``).

The video conditions are streams over events: words (words.tsv, each in its
sentence) and frames (frames.tsv), resampled to the TRs. On the concept task they
read the same inputs as ``sentence``, ``image`` and ``picture``.

``wordpicture`` (paper 000's picture input) encodes the pair (concept word, image_k)
for each image k of the concept and averages the features over k: a joint model
reads each pair in one pass; a two-tower model (CLIP, SigLIP, ALIGN) encodes the
word once and each image once, so its features are ``[word, mean_k image_k]`` per
layer (equal to the mean over k of ``[word, image_k]``) and, at the ``embeds``
pseudo-layer, ``word + mean_k image_k`` (the mean of paper 000's summed embeddings).
On the naturalistic and event tasks, where a word has one image (the frame on
screen), it is each transcript word *alone* (the ``word`` input) with its concurrent
frame: a joint model reads the pair, a two-tower model gives ``[word, frame]`` (the
``word`` and ``vision`` features concatenated).

How a model reads the inputs (:func:`resolve_streams`) depends on its family:

- a model that *requires an image* (``requires_image``: e.g. LXMERT) gets the noise
  image in the conditions without one (paper 000's rule);
- a *joint* model (a vision-language encoder) reads text and image in one pass: the
  streams merge into one, ``"text+image"`` (concept task: each sentence with its
  concept's picture; naturalistic task: each word, in its sentence, with the frame on
  screen at the word's time, its *concurrent frame*);
- other models (separate towers: CLIP, SigLIP) read each input separately; the
  features of layer ``l`` concatenate the streams' features (and the contrastive
  ``embeds`` pseudo-layer sums them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "noise_table_input",
    "CONDITIONS",
    "IMAGE_INPUTS",
    "INPUT_MODALITY",
    "condition_modalities",
    "resolve_streams",
    "uses_noise",
    "uses_images",
]

CONDITIONS: dict[str, tuple[str, ...]] = {
    "sentence": ("text",),
    "picture": ("text", "image"),
    "noise": ("text", "noise"),
    "image": ("image",),
    "word": ("word",),
    "language": ("text",),
    "vision": ("image",),
    "joint": ("text", "image"),
    "wordpicture": ("word", "images"),
    "audio": ("audio",),
}
# The model input each condition input needs.
INPUT_MODALITY = {
    "text": "text",
    "word": "text",
    "image": "image",
    "noise": "image",
    "images": "image",
    "audio": "audio",
}
IMAGE_INPUTS = ("image", "images", "noise")


def _check(condition: str) -> tuple[str, ...]:
    if condition not in CONDITIONS:
        raise ValueError(
            f"unknown condition '{condition}'; known: {', '.join(CONDITIONS)}. "
            "Fix the condition in config/config.yaml."
        )
    return CONDITIONS[condition]


def condition_modalities(condition: str, requires_image: bool = False) -> frozenset[str]:
    """Model inputs a condition needs ("image" too for text conditions of a model
    that requires an image)."""
    needed = {INPUT_MODALITY[i] for i in _check(condition)}
    if requires_image and "text" in needed:
        needed.add("image")
    return frozenset(needed)


def resolve_streams(
    condition: str, requires_image: bool = False, joint: bool = False
) -> tuple[str, ...]:
    """The streams a model reads under ``condition``.

    Parameters
    ----------
    condition : str
        A key of :data:`CONDITIONS`.
    requires_image : bool
        Text conditions without an image get "noise".
    joint : bool
        Text and image are read in one pass: ``("text", "image")`` becomes
        ``("text+image",)``.

    Returns
    -------
    tuple of str
        E.g. ``("text",)``, ``("text", "noise")``, ``("word+noise",)``.
    """
    inputs = _check(condition)
    text = [i for i in inputs if INPUT_MODALITY[i] == "text"]
    image = [i for i in inputs if INPUT_MODALITY[i] == "image"]
    if text and not image and requires_image:
        image = ["noise"]
    audio = [i for i in inputs if INPUT_MODALITY[i] == "audio"]
    if text and image and joint:
        return (f"{text[0]}+{image[0]}", *audio)
    return (*text, *image, *audio)


def uses_noise(condition: str, requires_image: bool = False) -> bool:
    """Whether the condition feeds such a model the noise images."""
    return any("noise" in s for s in resolve_streams(condition, requires_image))


def uses_images(condition: str, requires_image: bool = False) -> bool:
    """Whether the condition feeds such a model the stimulus images."""
    streams = resolve_streams(condition, requires_image)
    return any({"image", "images"} & set(s.split("+")) for s in streams)


def noise_table_input(
    models: Mapping[str, Mapping[str, Any]], table: str
) -> Callable[[Any], list[str]]:
    """A Snakemake input function: ``[table]`` when a job shows its model noise images.

    Parameters
    ----------
    models : mapping
        The config's ``models`` section (each entry has ``extractor``).
    table : str
        Path of the noise-image table (the output of rule make_noise_images).

    Returns
    -------
    callable
        ``f(wildcards) -> [table]`` for the "noise" condition and for the text-only
        conditions of a model that requires an image; ``[]`` otherwise.
    """
    from brainalign.features.registry import extractor_requires_image

    def get_noise_table(wildcards: Any) -> list[str]:
        extractor = models[wildcards.model]["extractor"]
        return (
            [table] if uses_noise(wildcards.condition, extractor_requires_image(extractor)) else []
        )

    return get_noise_table
