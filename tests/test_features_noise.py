"""Tests of brainalign.features.noise: seeded, hashed, byte-deterministic noise images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from brainalign.features import make_noise_images, noise_seed
from brainalign.io import read_table, sha256_file

SIZES = {"images/a.png": (40, 30), "images/b.png": (33, 50), "frames/c.png": (64, 48)}


@pytest.fixture
def stim(tmp_path):
    root = tmp_path / "stim"
    rng = np.random.default_rng(1)
    for path, (width, height) in SIZES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        mode = "L" if path.endswith("b.png") else "RGB"
        shape = (height, width) if mode == "L" else (height, width, 3)
        Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(root / path)
    concepts = pd.DataFrame(
        {"concept": ["x", "y", "z"], "image": ["images/b.png", "images/a.png", "images/b.png"]}
    )
    concepts.to_csv(root / "concepts.tsv", sep="\t", index=False)
    (root / "naturalistic").mkdir()
    frames = pd.DataFrame(
        {
            "run": [1, 1],
            "onset": [0.0, 2.0],
            "duration": [2.0, 2.0],
            "image": ["frames/c.png", "images/a.png"],
        }
    )
    frames.to_csv(root / "naturalistic" / "frames.tsv", sep="\t", index=False)
    return root


def test_one_noise_image_per_distinct_image_with_its_size(stim, tmp_path):
    table = make_noise_images(stim, tmp_path / "noise", seed=7)
    assert list(table.columns) == ["image", "noise_image", "sha256", "seed", "image_seed"]
    assert list(table["image"]) == sorted(SIZES)
    pd.testing.assert_frame_equal(read_table(tmp_path / "noise" / "noise_images.tsv"), table)
    for row in table.itertuples():
        path = tmp_path / "noise" / row.noise_image
        with Image.open(path) as image:
            assert image.mode == "RGB" and image.size == SIZES[row.image]
            pixels = np.asarray(image)
        assert row.sha256 == sha256_file(path) and row.seed == 7
        expected = np.random.default_rng(row.image_seed).integers(
            0, 256, size=pixels.shape, dtype=np.uint8
        )
        np.testing.assert_array_equal(pixels, expected)  # the recorded seed regenerates the image
        counts = np.bincount(pixels.ravel(), minlength=256)
        assert abs(pixels.mean() - 127.5) < 5 and counts.max() < 5 * pixels.size / 256  # uniform


def test_bytes_are_identical_across_runs_and_differ_across_seeds(stim, tmp_path):
    first = make_noise_images(stim, tmp_path / "one", seed=7)
    second = make_noise_images(stim, tmp_path / "two", seed=7)
    other = make_noise_images(stim, tmp_path / "three", seed=8)
    assert list(first["sha256"]) == list(second["sha256"])
    assert (tmp_path / "one" / "noise_images.tsv").read_bytes() == (
        tmp_path / "two" / "noise_images.tsv"
    ).read_bytes()
    assert not set(first["sha256"]) & set(other["sha256"])
    assert len(set(first["sha256"])) == len(first)  # different images get different noise


def test_seed_depends_on_seed_and_path_only():
    assert noise_seed(7, "images/a.png") == noise_seed(7, "images/a.png")
    assert noise_seed(7, "images/a.png") != noise_seed(7, "images/b.png")
    assert noise_seed(7, "images/a.png") != noise_seed(8, "images/a.png")
    assert 0 <= noise_seed(2**40, "x") < 2**63
    with pytest.raises(ValueError, match=r"'seed' must be a non-negative integer; got -1"):
        noise_seed(-1, "images/a.png")


def test_missing_image_is_an_error(stim, tmp_path):
    (stim / "images" / "a.png").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"stimulus image '.*images/a.png' listed in the stimuli does not exist",
    ):
        make_noise_images(stim, tmp_path / "noise", seed=0)
