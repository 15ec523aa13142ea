"""Recovery after a crash: the hidden temp files a killed writer leaves behind.

:func:`brainalign.io.atomic_write` writes every output to a hidden temp file next to it
(``.<name>.<8 random characters>.tmp<suffixes>``, from :func:`tempfile.mkstemp`) and renames
it when the writer is done, so a job killed half-way (``kill -9``, out of memory, a node
lost) leaves no file that looks finished, but leaves that temp file. The Snakefile's
``onstart:`` handler calls :func:`remove_orphan_temps` at the start of every run.

A temp file may belong to a writer that is still running: another Snakemake run in the same
folder (Snakemake lets two runs share a folder when their outputs do not overlap). Snakemake 9
keeps its locks in ``.snakemake/locks/<n>.input.lock`` and ``<n>.output.lock``: plain lists
of the files each live run reads and writes, created before that run starts a job and
removed when it ends, with no process id. So a temp file is an orphan when

* no other Snakemake process works in this folder: every temp file is one; or
* it is older than the oldest lock file there and than the start of every other Snakemake
  process of the folder: no live run had started when it was written.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["TEMP_PATTERN", "find_orphan_temps", "remove_orphan_temps", "snakemake_processes"]

logger = logging.getLogger(__name__)

TEMP_PATTERN = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[^/]*)?$")


def _argv(pid: str) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_snakemake(argv: list[str]) -> bool:
    names = [os.path.basename(arg) for arg in argv]
    return "snakemake" in names or any(
        a == "-m" and b == "snakemake" for a, b in zip(argv, argv[1:])
    )


def _ancestors() -> set[int]:
    """This process and its parents (a wrapper such as ``brainalign run`` is one of them)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def _start_time(pid: str) -> float:
    """Wall-clock start of a process, from /proc (seconds since the epoch)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime"))
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def snakemake_processes(workdir: str | os.PathLike) -> dict[int, float]:
    """Other Snakemake processes working in ``workdir``: pid -> start time (epoch seconds).

    This process and its ancestors are left out. Linux only (reads /proc); elsewhere the
    answer is empty and only temp files older than every lock are removed.
    """
    workdir, mine, found = Path(workdir).resolve(), _ancestors(), {}
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid in mine or not _is_snakemake(_argv(entry.name)):
            continue
        try:
            if Path(os.readlink(entry / "cwd")).resolve() == workdir:
                found[pid] = _start_time(entry.name)
        except (OSError, ValueError, StopIteration):
            continue  # ended meanwhile, or not ours to read
    return found


def _temps(folder: Path) -> Iterator[Path]:
    for dirpath, _, files in os.walk(folder):
        for name in files:
            if TEMP_PATTERN.match(name):
                yield Path(dirpath) / name


def find_orphan_temps(
    workdir: str | os.PathLike = ".", folders: tuple[str, ...] = ("results",)
) -> list[Path]:
    """Temp files of :func:`~brainalign.io.atomic_write` under ``workdir/<folders>`` that no
    live writer can own (see the module docstring), sorted."""
    workdir = Path(workdir)
    others = snakemake_processes(workdir)
    if not others:
        cutoff = time.time() + 1.0
    else:
        locks = [p.stat().st_mtime for p in (workdir / ".snakemake" / "locks").glob("*.lock")]
        cutoff = min([*locks, *others.values()])
    return sorted(
        path for folder in folders if (workdir / folder).is_dir()
        for path in _temps(workdir / folder) if path.stat().st_mtime < cutoff
    )


def remove_orphan_temps(
    workdir: str | os.PathLike = ".", folders: tuple[str, ...] = ("results",)
) -> list[Path]:
    """Remove the orphan temp files (:func:`find_orphan_temps`); log and return them.

    Parameters
    ----------
    workdir : path-like
        The Snakemake working directory.
    folders : tuple of str
        Folders under ``workdir`` that the workflow writes (searched recursively).

    Returns
    -------
    removed : list of Path
    """
    removed = []
    for path in find_orphan_temps(workdir, folders):
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # its writer finished or removed it meanwhile
        removed.append(path)
        logger.info("removed %s, a temp file left by an interrupted writer", path)
    return removed
