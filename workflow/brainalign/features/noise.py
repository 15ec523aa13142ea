"""Seeded uniform-noise images for the "noise" condition.

One RGB image of uniform noise per distinct stimulus image, of the same size.
Each image's generator is seeded from the config seed and the image's relative
path through :class:`numpy.random.SeedSequence` (never Python's ``hash``, which is
salted per process), so the noise does not depend on which other images exist or
on the order they are listed in. PNGs are written without text chunks or
timestamps, so the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image

from brainalign.io import atomic_write, read_table, sha256_file, write_table

__all__ = ["make_noise_images", "noise_seed", "NOISE_TABLE"]

logger = logging.getLogger(__name__)

NOISE_TABLE = "noise_images.tsv"


def noise_seed(seed: int, image: str) -> int:
    """Seed of the noise image for ``image`` (a path relative to the stimuli folder).

    Parameters
    ----------
    seed : int
        The config seed (>= 0).
    image : str
        Relative path, e.g. ``"images/apple.png"``.

    Returns
    -------
    int
        A 63-bit integer (fits int64 tables) drawn from
        ``SeedSequence([seed, first 16 bytes of sha256(image) as 4 x 32-bit words])``.
    """
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"'seed' must be a non-negative integer; got {seed!r}")
    digest = hashlib.sha256(image.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    state = np.random.SeedSequence([int(seed), *words]).generate_state(2, dtype=np.uint32)
    return int(state[0]) | ((int(state[1]) & 0x7FFFFFFF) << 32)


def _stimulus_images(stimuli_dir: Path) -> list[str]:
    images = list(read_table(stimuli_dir / "concepts.tsv")["image"])
    frames = stimuli_dir / "naturalistic" / "frames.tsv"
    if frames.exists():
        images += list(read_table(frames)["image"])
    return sorted(set(images))


def _write_png(pixels: np.ndarray, path: Path) -> None:
    with atomic_write(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG", optimize=False, compress_level=6)


def make_noise_images(
    stimuli_dir: str | os.PathLike, out_dir: str | os.PathLike, seed: int
) -> pd.DataFrame:
    """Write one uniform-noise PNG per distinct image of the stimuli, and their table.

    Parameters
    ----------
    stimuli_dir : path
        Stimuli folder with ``concepts.tsv`` and, optionally, ``naturalistic/frames.tsv``.
    out_dir : path
        Noise folder. ``images/apple.png`` becomes ``out_dir/images/apple.png``.
    seed : int
        Config seed; see :func:`noise_seed`.

    Returns
    -------
    pandas.DataFrame
        Columns ``image`` (original relative path), ``noise_image`` (relative to
        ``out_dir``), ``sha256`` (of the PNG), ``seed`` (the config seed) and
        ``image_seed`` (:func:`noise_seed` of the image). Also written to
        ``out_dir/noise_images.tsv``, sorted by ``image``.
    """
    stimuli_dir, out_dir = Path(stimuli_dir), Path(out_dir)
    noise_seed(seed, "")  # validates the seed before anything is written
    images = _stimulus_images(stimuli_dir)
    targets = [PurePosixPath(image).with_suffix(".png").as_posix() for image in images]
    if len(set(targets)) != len(targets):
        raise ValueError(
            "stimulus images differing only in their extension would share a noise PNG; "
            "rename them in concepts.tsv / frames.tsv"
        )
    rows = []
    for image, noise_image in zip(images, targets, strict=True):
        source = stimuli_dir / image
        if not source.exists():
            raise FileNotFoundError(
                f"stimulus image '{source}' listed in the stimuli does not exist"
            )
        with Image.open(source) as handle:
            width, height = handle.size
        image_seed = noise_seed(seed, image)
        pixels = np.random.default_rng(image_seed).integers(
            0, 256, size=(height, width, 3), dtype=np.uint8
        )
        _write_png(pixels, out_dir / noise_image)
        rows.append((image, noise_image, sha256_file(out_dir / noise_image), int(seed), image_seed))
    table = pd.DataFrame(rows, columns=["image", "noise_image", "sha256", "seed", "image_seed"])
    write_table(table, out_dir / NOISE_TABLE)
    logger.info("wrote %d noise images (seed %d) to %s", len(table), seed, out_dir)
    return table
