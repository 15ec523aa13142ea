"""The git commit of the brainalign checkout, wherever the work folder is.

Asking ``git`` in the work folder gives nothing when that folder is outside the checkout
(``snakemake --directory``, a cluster scratch folder), when git refuses a checkout owned by
another user ("dubious ownership"), or when no git binary exists (containers). The
checkout is found from the candidates given and from this package's own location; git is
asked with that folder marked safe, and without git the commit is read from the
repository's files (``HEAD``, loose refs, ``packed-refs``).
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["find_checkout", "git_info"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # workflow/brainalign -> the checkout


def _git_dir(folder: Path) -> Path | None:
    """The repository folder of a work tree root (``.git`` folder, or a ``.git`` file's gitdir)."""
    dot = folder / ".git"
    if dot.is_dir():
        return dot
    if dot.is_file():
        text = dot.read_text().strip()
        if text.startswith("gitdir:"):
            target = Path(text.split(":", 1)[1].strip())
            return target if target.is_absolute() else (folder / target).resolve()
    return None


def find_checkout(*candidates: PathLike | None) -> Path | None:
    """The first work tree containing one of ``candidates`` or this package; None if none."""
    for start in [*(Path(c).resolve() for c in candidates if c), _PACKAGE_ROOT]:
        for folder in (start, *start.parents):
            if _git_dir(folder) is not None:
                return folder
    return None


def _run(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-c", f"safe.directory={folder}", "-C", str(folder), *args],
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _read_commit(git_dir: Path) -> str | None:
    """HEAD's commit from the repository files (no git binary)."""
    head = (git_dir / "HEAD").read_text().strip()
    if not head.startswith("ref:"):
        return head or None
    ref = head.split(":", 1)[1].strip()
    common = git_dir
    if (git_dir / "commondir").is_file():  # a worktree: refs live in the main repository
        common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
    for base in (git_dir, common):
        if (base / ref).is_file():
            return (base / ref).read_text().strip()
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    return None


def git_info(*candidates: PathLike | None) -> dict[str, Any]:
    """Commit, ``git describe`` and dirtiness of the brainalign checkout.

    Parameters
    ----------
    *candidates : path-like or None
        Folders that may lie in the checkout (the workflow's base folder first); this
        package's own location is tried last.

    Returns
    -------
    dict
        ``commit`` (40 hex digits, or None when no checkout is found), ``describe``
        (None without git), ``dirty`` (None without git), ``checkout`` (the folder, or
        None) and ``source`` (``git``, ``files`` or ``none``).
    """
    folder = find_checkout(*candidates)
    if folder is None:
        logger.warning("no git checkout found from %s or the brainalign package; commit "
                       "recorded as null", [str(c) for c in candidates if c])
        return {"commit": None, "describe": None, "dirty": None, "checkout": None,
                "source": "none"}
    commit = _run(folder, "rev-parse", "HEAD")
    if commit:
        status = _run(folder, "status", "--porcelain", "--untracked-files=no")
        return {"commit": commit, "describe": _run(folder, "describe", "--tags", "--always",
                                                   "--dirty"),
                "dirty": bool(status) if status is not None else None,
                "checkout": str(folder), "source": "git"}
    commit = _read_commit(_git_dir(folder))
    logger.info("git unavailable in %s: commit %s read from the repository files", folder, commit)
    return {"commit": commit, "describe": None, "dirty": None, "checkout": str(folder),
            "source": "files"}
