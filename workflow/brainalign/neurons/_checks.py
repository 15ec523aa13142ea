"""Boundary checks of the unit -> voxel mapping (one-line ValueErrors with the fix).

The checks of the configuration and of the feature files (units requested from a layer
that has none, an atlas without network labels) live with the pipeline side
(:mod:`._checks_config`, :mod:`.units`); these are the checks of the arrays handed to
:func:`~brainalign.neurons.mapping.map_units`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..encoding._checks import check_delays, lookup

__all__ = [
    "check_atoms",
    "check_block_length",
    "check_delays_fit",
    "check_matrix",
    "check_positive_int",
    "check_samples",
    "lookup",
]


def check_matrix(array: Any, name: str) -> np.ndarray:
    """Return ``array`` as a 2D real ndarray with finite values (not copied to float32).

    The finiteness check runs over column chunks, so a large float64 matrix is not
    duplicated here; the mapping casts it to float32 one batch at a time.
    """
    array = np.asarray(array)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"'{name}' must be a non-empty 2D array (n_samples, n_columns); got shape {array.shape}"
        )
    if array.dtype.kind not in "iuf":
        raise ValueError(f"'{name}' must hold real numbers; got dtype {array.dtype}")
    n_bad = sum(
        int(np.count_nonzero(~np.isfinite(array[:, start : start + 4096])))
        for start in range(0, array.shape[1], 4096)
    )
    if n_bad:
        raise ValueError(
            f"'{name}' must be finite; got {n_bad} NaN/inf values. Drop or impute them first"
        )
    return array


def check_samples(units: Any, targets: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check that units, targets and groups describe the same samples, in the same order."""
    units = check_matrix(units, "units")
    targets = check_matrix(targets, "targets")
    groups = np.asarray(groups)
    if units.shape[0] != targets.shape[0] or groups.shape != (units.shape[0],):
        raise ValueError(
            "'units', 'targets' and 'groups' must have the same number of samples (rows); got "
            f"units {units.shape}, targets {targets.shape}, groups {groups.shape}. Align the "
            "units to the brain samples first (same stimuli / TRs, same order)"
        )
    if np.unique(groups).size < 2:
        raise ValueError(
            f"'groups' must hold >= 2 distinct labels (leave-one-group-out folds); got "
            f"{np.unique(groups).tolist()}. Label runs, event blocks or stimulus folds"
        )
    return units, targets, groups


def check_delays_fit(delays: Sequence[int], sizes: np.ndarray) -> tuple[int, ...]:
    """Return the delays; every group must be longer than the longest delay."""
    delays = check_delays(delays)
    longest = max(abs(d) for d in delays)
    if longest >= int(sizes.min()):
        raise ValueError(
            f"'delays' reach {longest} samples but the shortest group has {int(sizes.min())}; "
            "use shorter delays or longer groups (runs)"
        )
    return delays


def check_block_length(block_length: Any, sizes: np.ndarray) -> int:
    """Return the permutation block length; it must fit in the shortest group."""
    block_length = check_positive_int(block_length, "block_length")
    if block_length > int(sizes.min()):
        raise ValueError(
            f"'block_length' ({block_length}) is longer than the shortest group "
            f"({int(sizes.min())} samples); use blocks of at most {int(sizes.min())} samples"
        )
    return block_length


def check_atoms(atoms: Any, n_train: int) -> int | None:
    """Return ``atoms`` (None or an int); no more atoms than training samples of any fold."""
    if atoms is None:
        return None
    atoms = check_positive_int(atoms, "atoms")
    if atoms > n_train:
        raise ValueError(
            f"'atoms' ({atoms}) exceeds the {n_train} training samples of the smallest "
            f"training fold; use at most {n_train} atoms (or atoms: null for the units)"
        )
    return atoms


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"'{name}' must be an integer >= {minimum}; got {value!r}")
    return int(value)
