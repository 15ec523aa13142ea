"""Array operations on the device of himalaya's backend (numpy, torch, torch_cuda, cupy).

The encoding solver and the permutation test keep a job's responses on one device: one
transfer in (:meth:`Device.put`), every fold, alpha, score and permutation computed
there, one transfer out (:meth:`Device.get`). numpy and cupy share numpy's API; torch
differs in names (``dim``, ``topk``, ``index_select``), which this module hides behind a
few methods, so that the science modules hold one code path for every backend.

Precision: the responses, the products with them and the per-sample passes (gathers,
sums of products) are float32 on every backend; what the alpha choice and the
correlations are combined from (per-fold norms, the validation-error terms of
:mod:`.solver`, the permutation statistics) is float64, on the device.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

__all__ = ["GPU_BACKENDS", "Device", "get_device"]

logger = logging.getLogger(__name__)

#: himalaya backends whose arrays live on a GPU.
GPU_BACKENDS = ("torch_cuda", "torch_mps", "cupy")


class Device:
    """The current backend's arrays and the operations that differ between numpy and torch.

    Parameters
    ----------
    backend : himalaya backend module or None
        None: ``himalaya.backend.get_backend()``.
    """

    def __init__(self, backend: Any = None):
        if backend is None:
            from himalaya.backend import get_backend

            backend = get_backend()
        self.backend = backend
        self.name = backend.name
        self.is_torch = backend.name.startswith("torch")
        self.on_gpu = backend.name in GPU_BACKENDS
        if self.is_torch:  # imported already by himalaya's torch backend
            self._torch = _backend_module("torch")

    def put(self, array: Any, dtype: str | None = "float32") -> Any:
        """``array`` on the device (no copy when it is already there in ``dtype``)."""
        if dtype is None:
            return self.backend.asarray(array)
        return self.backend.asarray(array, dtype=dtype)

    def index(self, positions: np.ndarray) -> Any:
        """Integer positions as a device array (int64), for gathers and scatters."""
        positions = np.asarray(positions, dtype=np.int64)
        if self.is_torch:
            return self.backend.asarray(positions)
        return self.backend.asarray(positions) if self.on_gpu else positions

    def get(self, array: Any) -> np.ndarray:
        """A numpy copy of a device array (the one transfer out)."""
        return np.asarray(self.backend.to_numpy(array))

    def zeros(self, shape: tuple[int, ...], dtype: str = "float32") -> Any:
        """Zeros on the device."""
        return self.backend.zeros(shape, dtype=dtype)

    def full(self, shape: tuple[int, ...], value: float, dtype: str = "float64") -> Any:
        """An array of ``value`` on the device."""
        out = self.backend.zeros(shape, dtype=dtype)
        out[...] = value
        return out

    def cast(self, array: Any, dtype: str) -> Any:
        """``array`` converted to ``dtype`` on its device."""
        if self.is_torch:
            return array.to(getattr(self._torch, dtype))
        return array.astype(dtype, copy=False)

    def sum(self, array: Any, axis: int, dtype: str | None = None) -> Any:
        """Sum along ``axis`` (accumulated in ``dtype``)."""
        if self.is_torch:
            dtype = None if dtype is None else getattr(self._torch, dtype)
            return self._torch.sum(array, dim=axis, dtype=dtype)
        return array.sum(axis=axis, dtype=dtype)

    def dot_last(self, a: Any, b: Any) -> Any:
        """``sum(a * b)`` along the last axis of two equal-shaped arrays, in float64."""
        if self.is_torch:
            return self._torch.einsum("...k,...k->...", a, b).to(self._torch.float64)
        return np.einsum("...k,...k->...", a, b).astype(np.float64)

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        """Elementwise ``a`` where ``condition`` else ``b`` (arrays of one shape)."""
        if self.is_torch:
            return self._torch.where(condition, a, b)
        xp = np if not self.on_gpu else _cupy()
        return xp.where(condition, a, b)

    def sqrt(self, array: Any) -> Any:
        """Elementwise square root."""
        return self.backend.sqrt(array)

    def largest(self, top: Any, values: Any) -> Any:
        """The ``len(top)`` largest values per column of ``top`` and ``values`` together."""
        k = top.shape[0]
        if self.is_torch:
            both = self._torch.cat([top, values], dim=0)
            return self._torch.topk(both, k, dim=0).values
        xp = np if not self.on_gpu else _cupy()
        both = xp.concatenate([top, values], axis=0)
        return xp.partition(both, both.shape[0] - k, axis=0)[-k:]


def get_device() -> Device:
    """The :class:`Device` of the backend set by the running script."""
    return Device()


def _cupy():
    return _backend_module("cupy")


def _backend_module(name: str) -> Any:
    """The array library of a GPU backend (torch, cupy), imported by name: it is only reached
    when himalaya's backend of that name is set, which has imported it already, so no rule's
    environment needs it unless it runs on that backend."""
    import importlib

    return importlib.import_module(name)
