"""Reading and writing brainalign's files: atomic, deterministic, labelled.

Every array file is a safetensors file whose metadata carries a JSON record
(stimulus order, model, layer, condition, subject, units...), so that labels
travel with the data and no two files are ever assumed to share an order.
Every writer goes through :func:`atomic_write`: a job killed half-way leaves
no file that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "atomic_write",
    "save_arrays",
    "load_arrays",
    "write_table",
    "read_table",
    "write_json",
    "read_json",
    "save_nifti",
    "sha256_file",
]

_META_KEY = "brainalign"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Parameters
    ----------
    path : str or path-like
        Final destination. Parent folders are created.

    Yields
    ------
    tmp : Path
        Where the caller writes. Removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes files private; give them the usual permissions
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"metadata value of type {type(value).__name__} is not JSON serialisable")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=_jsonable)


def save_arrays(
    path: str | os.PathLike, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any]
) -> None:
    """Write named arrays and their labels to one safetensors file.

    Parameters
    ----------
    path : str or path-like
        Destination ``.safetensors`` file, written atomically.
    arrays : mapping of str to ndarray
        The data. Arrays are stored C-contiguous with their dtype.
    metadata : mapping
        JSON-serialisable labels (stimulus order, model, layer, units...).
    """
    from safetensors.numpy import save_file

    tensors = {name: np.ascontiguousarray(arr) for name, arr in arrays.items()}
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata={_META_KEY: _dumps(dict(metadata))})


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`save_arrays`.

    Returns
    -------
    arrays : dict of str to ndarray
    metadata : dict
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"array file '{path}' does not exist; run the step that writes it")
    arrays = {}
    with safe_open(str(path), framework="numpy") as handle:
        meta = handle.metadata() or {}
        for name in handle.keys():
            arrays[name] = handle.get_tensor(name)
    if _META_KEY not in meta:
        raise ValueError(
            f"array file '{path}' has no '{_META_KEY}' metadata; it was not written by brainalign"
        )
    return arrays, json.loads(meta[_META_KEY])


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a table atomically: Parquet for ``.parquet``, tab-separated for ``.tsv``."""
    path = Path(path)
    with atomic_write(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
        elif path.suffix == ".tsv":
            df.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
        else:
            raise ValueError(f"table '{path}' must end in .parquet or .tsv; got '{path.suffix}'")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``.parquet`` or ``.tsv`` table, naming the file if it is missing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"table '{path}' does not exist")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".tsv":
        return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])
    raise ValueError(f"table '{path}' must end in .parquet or .tsv; got '{path.suffix}'")


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, sort_keys=True, indent=2, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, naming it if it is missing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"JSON file '{path}' does not exist")
    return json.loads(path.read_text())


def save_nifti(img: Any, path: str | os.PathLike) -> None:
    """Save a nibabel image atomically (nibabel's gzip output is byte-deterministic)."""
    import nibabel as nib

    path = Path(path)
    with atomic_write(path) as tmp:
        nib.save(img, str(tmp))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
