"""The checksum manifest of a result bundle: ``MANIFEST.tsv`` and ``SHA256SUMS``.

Every file of the bundle is listed except the manifest files themselves and the run
record (:data:`RUN_RECORD`, the RO-Crate metadata: the one file whose bytes differ
between two runs, because it holds the run's times and command line).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from .. import io

__all__ = ["MANIFEST", "SHA256SUMS", "RUN_RECORD", "UNLISTED", "bundle_files", "write_manifest", "read_manifest"]

logger = logging.getLogger(__name__)

MANIFEST = "MANIFEST.tsv"
SHA256SUMS = "SHA256SUMS"
RUN_RECORD = "ro-crate-metadata.json"
UNLISTED = frozenset({MANIFEST, SHA256SUMS, RUN_RECORD})
_STRAY = (".snakemake_timestamp",)


def bundle_files(root: str | os.PathLike) -> list[str]:
    """Every file under ``root`` (POSIX paths relative to it, sorted), manifest files excluded."""
    root = Path(root)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())
    return [f for f in files if f not in UNLISTED]


def write_manifest(root: str | os.PathLike) -> pd.DataFrame:
    """Write ``MANIFEST.tsv`` (path, bytes, sha256) and ``SHA256SUMS`` of every file under ``root``.

    Stray ``.snakemake_timestamp`` markers are removed first. Paths are relative to
    ``root``; rows are sorted by path, so the same files give the same bytes.

    Returns
    -------
    pandas.DataFrame
        One row per file, columns ``path``, ``bytes``, ``sha256``.
    """
    root = Path(root)
    for stray in _STRAY:
        for path in root.rglob(stray):
            logger.info("removed Snakemake's marker %s from the bundle", path.relative_to(root))
            path.unlink()
    rows = [
        {"path": f, "bytes": (root / f).stat().st_size, "sha256": io.sha256_file(root / f)}
        for f in bundle_files(root)
    ]
    table = pd.DataFrame(rows, columns=["path", "bytes", "sha256"])
    with io.atomic_write(root / MANIFEST) as tmp:
        table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
    with io.atomic_write(root / SHA256SUMS) as tmp:
        tmp.write_text("".join(f"{row.sha256}  {row.path}\n" for row in table.itertuples()))
    logger.info("manifest of %d files written to %s", len(table), root / MANIFEST)
    return table


def read_manifest(root: str | os.PathLike) -> pd.DataFrame:
    """``MANIFEST.tsv`` of the bundle at ``root`` (path, bytes, sha256)."""
    return pd.read_csv(Path(root) / MANIFEST, sep="\t", dtype={"path": str, "bytes": "int64", "sha256": str},
                       keep_default_na=False)
