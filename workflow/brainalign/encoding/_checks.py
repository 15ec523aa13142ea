"""Boundary checks shared by the encoding modules (one-line ValueErrors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: Any, parameter: str) -> T:
    """Return ``registry[name]``; the error lists the registered names."""
    if isinstance(name, str) and name in registry:
        return registry[name]
    else:
        allowed = ", ".join(repr(key) for key in sorted(registry))
        raise ValueError(f"'{parameter}' must be one of {allowed}; got {name!r}")


def check_2d(array: Any, name: str) -> np.ndarray:
    """Return ``array`` as a 2D float32 ndarray with finite values."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(
            f"'{name}' must be a 2D array (n_samples, n_columns); got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"'{name}' must hold real numbers; got dtype {array.dtype}")
    if 0 in array.shape:
        raise ValueError(
            f"'{name}' must have at least one row and one column; got shape {array.shape}"
        )
    array = np.asarray(array, dtype=np.float32)
    n_bad = sum(  # in chunks of columns: no full-size temporary
        int(
            array[:, start : start + 4096].size
            - np.count_nonzero(np.isfinite(array[:, start : start + 4096]))
        )
        for start in range(0, array.shape[1], 4096)
    )
    if n_bad:
        raise ValueError(
            f"'{name}' must be finite; got {n_bad} NaN/inf values. Drop or impute them first"
        )
    return array


def check_groups(groups: Any, n_samples: int | None = None, name: str = "groups") -> np.ndarray:
    """Return ``groups`` as a 1D array of labels, of length ``n_samples`` if given."""
    groups = np.asarray(groups)
    expected = "n_samples" if n_samples is None else str(n_samples)
    if groups.ndim != 1 or (n_samples is not None and groups.shape[0] != n_samples):
        raise ValueError(
            f"'{name}' must have shape ({expected},), one label per sample; "
            f"got shape {groups.shape}"
        )
    return groups


def check_n_folds(n_folds: Any, name: str) -> int:
    """Return ``n_folds`` as an int >= 2."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"'{name}' must be an integer >= 2; got {n_folds!r}")
    return int(n_folds)


def check_alphas(alphas: Any) -> np.ndarray:
    """Return ``alphas`` as a sorted, unique 1D float64 array of positive numbers."""
    try:
        grid = np.asarray(alphas, dtype=np.float64)
    except (TypeError, ValueError):
        grid = np.empty(0)
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(
            "'alphas' must be a non-empty list of positive finite numbers; "
            f"got {alphas!r}. Use e.g. np.logspace(-2, 6, 17)"
        )
    return np.unique(grid)


def check_delays(delays: Any) -> tuple[int, ...]:
    """Return ``delays`` as a tuple of unique ints (in the order given)."""
    values = np.asarray(delays)
    if (
        values.ndim != 1
        or values.size == 0
        or values.dtype.kind not in "iu"
        or np.unique(values).size != values.size
    ):
        raise ValueError(
            f"'delays' must be a non-empty sequence of unique integers (in samples); got {delays!r}"
        )
    return tuple(int(v) for v in values)


def check_blocks(groups: np.ndarray, block_size: int) -> None:
    """Stop when block permutation within these runs cannot reach p < 0.05."""
    from ..datasets.stimuli_checks import MIN_BLOCK_ORDERS, block_orders

    lengths = [int(np.sum(groups == run)) for run in np.unique(groups)]
    if block_orders(lengths, block_size) < MIN_BLOCK_ORDERS:
        raise ValueError(
            f"'block_size' {block_size} leaves runs of {lengths} samples with fewer than "
            f"{MIN_BLOCK_ORDERS} distinct block permutations, so no p can reach 0.05; use "
            "shorter blocks (config 'encoding.block_size')"
        )
