"""Boundary checks shared by the RSA modules (one-line ValueErrors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: Any, parameter: str) -> T:
    """Return ``registry[name]``; the error lists the registered names in their order."""
    if isinstance(name, str) and name in registry:
        return registry[name]
    else:
        allowed = ", ".join(repr(key) for key in registry)
        raise ValueError(f"'{parameter}' must be one of {allowed}; got {name!r}")


def n_conditions_from_rdm(rdm: np.ndarray) -> int:
    """Number of conditions of a condensed RDM; raises if the length is not n(n-1)/2.

    Parameters
    ----------
    rdm : array of shape (n_pairs,) or (n_rdms, n_pairs)
        Condensed RDM(s): the last axis holds the pairs.

    Returns
    -------
    n_conditions : int
    """
    n_pairs = np.shape(rdm)[-1]
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(
            f"a condensed RDM has n * (n - 1) / 2 entries; got {n_pairs}, which is not of that "
            "form. Pass the upper triangle of a square RDM"
        )
    return n


def check_rdm(rdm: Any, name: str) -> np.ndarray:
    """A condensed RDM as float64: 1D, finite, non-constant, of length n(n-1)/2."""
    rdm = np.asarray(rdm, dtype=np.float64)
    if rdm.ndim != 1 or rdm.size < 3:
        raise ValueError(
            f"RDM '{name}' must be condensed, 1D with >= 3 entries (scipy squareform "
            f"order); got shape {rdm.shape}. Use compute_rdm or squareform(rdm, checks=False)"
        )
    return check_rdms(rdm[None], name)[0]


def check_rdms(rdms: Any, name: str) -> np.ndarray:
    """A stack of condensed RDMs as float64 (n_rdms, n_pairs): finite, none constant."""
    rdms = np.asarray(rdms, dtype=np.float64)
    if rdms.ndim != 2 or rdms.shape[0] < 1 or rdms.shape[1] < 3:
        raise ValueError(
            f"'{name}' must be a 2D array (n_rdms, n_pairs) of condensed RDMs with >= 3 pairs; "
            f"got shape {rdms.shape}"
        )
    if not np.all(np.isfinite(rdms)):
        raise ValueError(f"RDM '{name}' must be finite; got NaN/inf entries")
    constant = np.flatnonzero(np.ptp(rdms, axis=1) == 0)
    if constant.size:
        which = "" if rdms.shape[0] == 1 else f" (rows {constant.tolist()[:10]})"
        raise ValueError(
            f"RDM '{name}' is constant{which}; its correlation with another RDM is undefined"
        )
    n_conditions_from_rdm(rdms)
    return rdms


def check_same_pairs(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    """Raise unless two RDM stacks have the same number of pairs (same conditions)."""
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"RDMs '{names[0]}' and '{names[1]}' must have the same length (same conditions); "
            f"got shapes {a.shape} and {b.shape}"
        )


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"'{name}' must be an integer >= {minimum}; got {value!r}")
    return int(value)
