"""Route the library's log records to a Snakemake job's log file."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

__all__ = ["log_to_file"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def log_to_file(path: str | os.PathLike, level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Send every ``brainalign`` log record to ``path`` (and warnings to stderr).

    An exception raised inside the block is logged with its traceback, then re-raised,
    so the job's log says why it failed.

    Parameters
    ----------
    path : str or path-like
        The job's log file (Snakemake's ``log[0]``); truncated.
    level : int
        Lowest level written to the file.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    file_handler = logging.FileHandler(path, mode="w")
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setLevel(logging.WARNING)
    stderr_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(level)
    for handler in (file_handler, stderr_handler):
        root.addHandler(handler)
    logging.captureWarnings(True)
    logger = logging.getLogger("brainalign")
    try:
        yield logger
    except Exception:
        logger.exception("job failed")
        raise
    finally:
        for handler in (file_handler, stderr_handler):
            root.removeHandler(handler)
        file_handler.close()
