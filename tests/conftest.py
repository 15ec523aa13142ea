"""Shared fixtures: a tiny end-to-end run of the workflow, made once per test session."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def tiny_config() -> dict:
    """The demo configuration shrunk so the whole workflow runs in about a minute."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["dataset"]["subjects"] = ["01", "02", "03"]
    config["demo"].update(n_concepts=60, n_contexts=2, n_trs=120, voxel_size=12.0, snr=2.0)
    config["models"]["minilm"]["layers"] = [3, 6]
    config["models"]["clip"]["layers"] = [1, 2]
    config["models"]["bert"]["layers"] = [2]
    config["encoding"].update(alphas=[1.0, 100.0, 10000.0], delays=[1, 2, 3], outer_folds=4, inner_folds=3)
    config["figures"]["formats"] = ["png"]
    return config


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile in ``workdir``."""
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned_jobs(workdir: Path, *args: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run would execute."""
    out = snakemake(workdir, "--dry-run", "--cores", "1", *args).stdout
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        match = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not match:
            continue
        wc = re.search(r"wildcards: (.*)", block)
        wildcards = dict(kv.split("=", 1) for kv in wc.group(1).split(", ")) if wc else {}
        jobs.append((match.group(1), wildcards))
    return jobs


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """A finished tiny run of the whole workflow; returns its working directory."""
    workdir = tmp_path_factory.mktemp("demo")
    write_config(workdir, tiny_config())
    snakemake(workdir, "--cores", "2")
    return workdir


@pytest.fixture()
def copy_of_run(demo_run, tmp_path) -> Path:
    """A private copy of the finished run, for tests that change the configuration."""
    dest = tmp_path / "run"
    shutil.copytree(demo_run, dest, symlinks=True)
    return dest


# --- the feature tests (tests/test_features*.py) ---------------------------------------


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread; OpenMP spin-waits on a loaded machine.

    Feature test modules use it for all their tests with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def stim(tmp_path_factory) -> Path:
    """The tiny stimulus folder of tests/_features_helpers.py, written once per module."""
    from tests._features_helpers import write_stimuli

    return write_stimuli(tmp_path_factory.mktemp("stim"))


@pytest.fixture(scope="module")
def noise_dir(stim, tmp_path_factory) -> Path:
    """The seeded noise images of ``stim`` (seed 3), written once per module."""
    from brainalign.features import make_noise_images

    out = tmp_path_factory.mktemp("noise")
    make_noise_images(stim, out, seed=3)
    return out
