"""Parameter checks shared by the demo generators (one-line ValueErrors)."""

from __future__ import annotations

import numbers

import numpy as np


def check_positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"parameter '{name}' must be an integer >= {minimum}; got {value!r}. "
            f"Pass a whole number of at least {minimum}."
        )
    return int(value)


def check_positive_float(name: str, value: object, *, upper: float | None = None) -> float:
    """Return ``value`` as a float, or raise if it is not finite, > 0 (and < ``upper``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and bool(np.isfinite(value)) and value > 0 and (upper is None or value < upper)
    if not ok:
        bound = f" and < {upper}" if upper is not None else ""
        raise ValueError(
            f"parameter '{name}' must be a finite number > 0{bound}; got {value!r}. "
            "Pass a number in that range."
        )
    return float(value)


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, or raise if it is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(
            f"parameter 'seed' must be a non-negative integer; got {seed!r}. Pass e.g. seed=0."
        )
    return int(seed)


def seed_streams(seed: object, n_streams: int) -> list[np.random.Generator]:
    """Independent generators derived from one integer seed (``SeedSequence.spawn``)."""
    children = np.random.SeedSequence(check_seed(seed)).spawn(n_streams)
    return [np.random.default_rng(child) for child in children]
