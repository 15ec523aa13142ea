"""Bounded-memory writing of feature files.

- :func:`write_safetensors` writes a safetensors file tensor by tensor: the header
  (names, dtypes, shapes, offsets, brainalign metadata) first, then each array as it
  is produced, so a file of many layers never has to be held in memory at once. The
  result is an ordinary safetensors file (read by :func:`brainalign.io.load_arrays`),
  written atomically.
- :class:`Spill` holds the pooled rows of one stream, filled chunk by chunk, in
  memory or in memory-mapped ``.npy`` files on disk.
- :func:`read_layout` and :func:`copy_features` read a file's header and copy it
  tensor by tensor with new metadata (used by the feature cache).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from brainalign.io import _META_KEY, _dumps, atomic_write

__all__ = [
    "write_safetensors",
    "SafetensorsWriter",
    "Spill",
    "read_layout",
    "copy_features",
    "DTYPE_CODES",
]

logger = logging.getLogger(__name__)

DTYPE_CODES = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("int16"): "I16",
    np.dtype("int8"): "I8",
    np.dtype("uint8"): "U8",
    np.dtype("bool"): "BOOL",
}
_CODE_DTYPES = {code: dtype for dtype, code in DTYPE_CODES.items()}

Layout = dict[str, tuple[np.dtype, tuple[int, ...]]]


def _header(layout: Layout, metadata: Mapping[str, Any]) -> bytes:
    entries: dict[str, Any] = {"__metadata__": {_META_KEY: _dumps(dict(metadata))}}
    offset = 0
    for name, (dtype, shape) in layout.items():
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        entries[name] = {
            "dtype": DTYPE_CODES[np.dtype(dtype)],
            "shape": [int(n) for n in shape],
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


class SafetensorsWriter:
    """Writes the tensors of an open safetensors file, in the order of its layout."""

    def __init__(self, handle: Any, layout: Layout, path: Path) -> None:
        self._handle = handle
        self.layout = layout
        self.path = path
        self.pending = list(layout)

    def write(self, name: str, array: np.ndarray) -> None:
        """Write the next tensor; its name, dtype and shape must match the layout."""
        if not self.pending or name != self.pending[0]:
            expected = self.pending[0] if self.pending else "nothing more"
            raise ValueError(f"tensor '{name}' written out of order; expected {expected}")
        dtype, shape = self.layout[name]
        if array.dtype != dtype or tuple(array.shape) != shape:
            raise ValueError(
                f"tensor '{name}' must be {dtype} of shape {shape}; got {array.dtype} of "
                f"shape {tuple(array.shape)}"
            )
        self._handle.write(np.ascontiguousarray(array).tobytes())
        self.pending.pop(0)


@contextlib.contextmanager
def write_safetensors(
    path: str | os.PathLike,
    layout: Mapping[str, tuple[Any, tuple[int, ...]]],
    metadata: Mapping[str, Any],
) -> Iterator[SafetensorsWriter]:
    """Open a safetensors file for writing tensor by tensor.

    Parameters
    ----------
    path : path
        Destination; written to a temporary file renamed once every tensor is written
        (an error or a missing tensor leaves no file).
    layout : mapping of str to (dtype, shape)
        Every tensor of the file, in writing order.
    metadata : mapping
        brainalign metadata (stored as :func:`brainalign.io.save_arrays` does).

    Yields
    ------
    SafetensorsWriter
        Call ``writer.write(name, array)`` for each tensor of ``layout``, in order.
    """
    path = Path(path)
    checked: Layout = {k: (np.dtype(d), tuple(int(n) for n in s)) for k, (d, s) in layout.items()}
    unknown = [k for k, (d, _) in checked.items() if d not in DTYPE_CODES]
    if unknown:
        raise ValueError(f"tensors {unknown} have dtypes safetensors cannot store")
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(_header(checked, metadata))
            writer = SafetensorsWriter(handle, checked, path)
            yield writer
        if writer.pending:
            raise ValueError(
                f"file '{path}' was closed before tensors {writer.pending} were written"
            )


def read_layout(path: str | os.PathLike) -> tuple[Layout, dict[str, Any]]:
    """The tensors of a safetensors file in storage order, and its brainalign metadata."""
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
    metadata = json.loads(header.pop("__metadata__", {}).get(_META_KEY, "{}"))
    ordered = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
    layout = {name: (_CODE_DTYPES[e["dtype"]], tuple(e["shape"])) for name, e in ordered}
    return layout, metadata


def copy_features(
    source: str | os.PathLike, dest: str | os.PathLike, metadata: Mapping[str, Any]
) -> None:
    """Copy a safetensors file tensor by tensor (bounded memory) with new metadata."""
    from safetensors import safe_open

    layout, _ = read_layout(source)
    with (
        safe_open(str(source), framework="numpy") as handle,
        write_safetensors(dest, layout, metadata) as writer,
    ):
        for name in layout:
            writer.write(name, handle.get_tensor(name))


class Spill:
    """Rows of named float32 arrays, written chunk by chunk at row offsets.

    Parameters
    ----------
    n_rows : int
    folder : path or None
        None keeps the arrays in memory; a folder holds one memory-mapped ``.npy``
        file per array, so that memory stays bounded by one chunk.
    """

    def __init__(self, n_rows: int, folder: str | os.PathLike | None = None) -> None:
        self.n_rows = int(n_rows)
        self.folder = None if folder is None else Path(folder)
        self.arrays: dict[Any, np.ndarray] = {}

    def _allocate(self, key: Any, row_shape: tuple[int, ...]) -> np.ndarray:
        shape = (self.n_rows, *row_shape)
        if self.folder is None:
            return np.zeros(shape, dtype=np.float32)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{len(self.arrays):04d}.npy"
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)

    def write(self, start: int, outputs: Mapping[Any, np.ndarray]) -> None:
        """Store ``outputs[key]`` at rows ``start:start + len``, for every key."""
        for key, rows in outputs.items():
            if key not in self.arrays:
                self.arrays[key] = self._allocate(key, tuple(rows.shape[1:]))
            self.arrays[key][start : start + len(rows)] = rows

    def keys(self) -> Iterator[Any]:
        """The stored array names, in first-written order."""
        return iter(self.arrays)

    def read(self, key: Any) -> np.ndarray:
        """The whole array ``key`` (a memory map when on disk)."""
        return self.arrays[key]

    def flush(self) -> None:
        """Write memory-mapped pages to disk (frees dirty pages)."""
        for array in self.arrays.values():
            if isinstance(array, np.memmap):
                array.flush()
