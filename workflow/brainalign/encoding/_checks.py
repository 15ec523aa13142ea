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


# ----------------------------------------------------------------------------- config
#: Distinct block orders below which a permutation p can never reach 0.05.
MIN_BLOCK_ORDERS = 20


def run_lengths(config: Mapping[str, Any], workdir: Any = ".") -> tuple[list[int], str]:
    """TRs of each naturalistic run as known before any job, and where they come from.

    ``demo.n_trs`` for the synthetic demo, else the ``n_trs`` column of the stimuli's
    ``naturalistic/runs.tsv`` (empty when it does not exist yet).
    """
    from pathlib import Path

    if config["dataset"]["format"] == "synthetic":
        return [int(config["demo"]["n_trs"])] * len(config["dataset"]["naturalistic_runs"]), \
            "config 'demo.n_trs'"
    path = Path(workdir) / config["stimuli"]["root"] / "naturalistic" / "runs.tsv"
    if not path.is_file():
        return [], str(path)
    import pandas as pd

    table = pd.read_csv(path, sep="\t")
    if "n_trs" not in table:
        return [], str(path)
    return [int(n) for n in table["n_trs"]], f"'{path}' (column n_trs)"


def block_orders(n_trs: list[int], block_size: int) -> float:
    """Distinct block permutations of runs of ``n_trs`` TRs (product of n_blocks!)."""
    from math import lgamma

    return float(np.exp(sum(lgamma(-(-n // block_size) + 1) for n in n_trs)))


def check_encoding_config(config: Mapping[str, Any], source: str, workdir: Any = ".") -> None:
    """Config-time checks of ``encoding`` against the runs: FIR delays and permutation blocks.

    Raises
    ------
    ValueError
        One line naming the key, what was expected, what was found and the fix.
    """
    tasks = config["dataset"]["tasks"].values()
    if not any(spec["kind"] == "naturalistic" for spec in tasks):
        return
    encoding = config["encoding"]
    lengths, where = run_lengths(config, workdir)
    if not lengths:
        return
    shortest, delays = min(lengths), list(encoding["delays"])
    if max(delays) >= shortest:
        raise ValueError(
            f"config 'encoding.delays' must be shorter than every naturalistic run "
            f"({shortest} TRs in {where}); got delays {delays}. Use delays of a few TRs "
            f"(e.g. [1, 2, 3, 4]) in {source}."
        )
    block = int(encoding["block_size"])
    if encoding["n_permutations"] and block_orders(lengths, block) < MIN_BLOCK_ORDERS:
        raise ValueError(
            f"config 'encoding.block_size' must cut the runs ({lengths} TRs in {where}) into "
            f"blocks that give at least {MIN_BLOCK_ORDERS} distinct permutations, or no p can "
            f"reach 0.05; got {block} (blocks per run {[-(-n // block) for n in lengths]}). "
            f"Use shorter blocks (10-25 TRs) in {source}."
        )


def check_blocks(groups: np.ndarray, block_size: int) -> None:
    """Stop when block permutation within these runs cannot reach p < 0.05."""
    lengths = [int(np.sum(groups == run)) for run in np.unique(groups)]
    if block_orders(lengths, block_size) < MIN_BLOCK_ORDERS:
        raise ValueError(
            f"'block_size' {block_size} leaves runs of {lengths} samples with fewer than "
            f"{MIN_BLOCK_ORDERS} distinct block permutations, so no p can reach 0.05; use "
            "shorter blocks (config 'encoding.block_size')"
        )
