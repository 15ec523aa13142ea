"""Cross-validation splits that respect the structure of brain data.

Time series are autocorrelated: a test sample must never sit next to training
samples from the same stretch of recording, so splits are made of whole runs
(or, inside a single run, of contiguous blocks - never random time points).
Concept designs are split over concepts, so that every repeat or context of a
concept lands on the same side.

Splits are plain lists of ``(train_idx, test_idx)`` index arrays, accepted by
scikit-learn and by himalaya's ``cv=`` argument.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from ._checks import check_groups, check_n_folds, lookup

__all__ = ["KINDS", "outer_splits", "inner_splits"]

logger = logging.getLogger(__name__)

Split = tuple[np.ndarray, np.ndarray]

KINDS = ("concepts", "timeseries")


def outer_splits(
    kind: str,
    groups: np.ndarray,
    n_folds: int | None = None,
    random_state: int | np.random.Generator | None = None,
) -> list[Split]:
    """Outer cross-validation folds; every sample is tested exactly once.

    Parameters
    ----------
    kind : {"timeseries", "concepts"}
        ``"timeseries"``: leave-one-run-out, folds in sorted run order.
        ``"concepts"``: ``n_folds`` folds over shuffled concepts.
    groups : array of shape (n_samples,)
        Run label (timeseries) or concept label (concepts) of every sample.
    n_folds : int or None
        Number of folds for ``"concepts"`` (2 to n_concepts). Ignored for
        ``"timeseries"``, which always has one fold per run (logged when it differs).
    random_state : int, Generator or None
        Seed of the concept shuffle; unused for ``"timeseries"``.

    Returns
    -------
    splits : list of (train_idx, test_idx)
        Sorted int arrays of sample positions; a group is never on both sides.
    """
    make = lookup(_OUTER, kind, "kind")
    groups = check_groups(groups)
    return make(groups, n_folds, random_state)


def inner_splits(kind: str, groups_train: np.ndarray, n_folds: int) -> list[Split]:
    """Deterministic inner folds over a training set, for choosing alphas.

    Parameters
    ----------
    kind : {"timeseries", "concepts"}
        ``"timeseries"``: with >= 2 training runs, folds of whole runs
        (leave-one-run-out when n_runs <= n_folds, else ``n_folds`` groups of
        consecutive runs); with a single run, ``n_folds`` contiguous blocks of
        time points. ``"concepts"``: ``n_folds`` folds over the sorted
        training concepts, concept ``i`` going to fold ``i % n_folds``.
    groups_train : array of shape (n_train,)
        Run or concept label of every training sample.
    n_folds : int
        Number of folds wanted (>= 2).

    Returns
    -------
    splits : list of (train_idx, test_idx)
        Positions within the training set (0 to n_train - 1).
    """
    make = lookup(_INNER, kind, "kind")
    groups_train = check_groups(groups_train, name="groups_train")
    return make(groups_train, check_n_folds(n_folds, "n_folds"))


def _splits_from_blocks(groups: np.ndarray, blocks: list[np.ndarray]) -> list[Split]:
    """One split per block of labels: test = samples whose label is in the block."""
    splits = []
    for block in blocks:
        test = np.isin(groups, block)
        splits.append((np.flatnonzero(~test), np.flatnonzero(test)))
    return splits


def _outer_timeseries(groups: np.ndarray, n_folds: int | None, random_state) -> list[Split]:
    runs = np.unique(groups)
    if runs.size < 2:
        raise ValueError(
            "kind 'timeseries' needs >= 2 runs in 'groups' for leave-one-run-out; "
            f"got {runs.size} ({runs.tolist()}). Supply more runs or use kind 'concepts'"
        )
    if n_folds is not None and n_folds != runs.size:
        logger.info(
            "timeseries: leave-one-run-out over %d runs (n_folds=%s ignored)", runs.size, n_folds
        )
    return _splits_from_blocks(groups, [runs[[i]] for i in range(runs.size)])


def _outer_concepts(groups: np.ndarray, n_folds: int | None, random_state) -> list[Split]:
    n_folds = check_n_folds(n_folds, "n_folds")
    concepts = np.unique(groups)
    if n_folds > concepts.size:
        raise ValueError(
            f"outer 'n_folds' ({n_folds}) exceeds the {concepts.size} concepts in 'groups'; "
            "lower 'n_folds' ('n_outer_folds' of fit_encoding)"
        )
    shuffled = np.random.default_rng(random_state).permutation(concepts)
    return _splits_from_blocks(groups, np.array_split(shuffled, n_folds))


def _inner_timeseries(groups: np.ndarray, n_folds: int) -> list[Split]:
    runs = np.unique(groups)
    if runs.size >= 2:
        return _splits_from_blocks(groups, np.array_split(runs, min(n_folds, runs.size)))
    n_train = groups.shape[0]
    if n_train < n_folds:
        raise ValueError(
            f"inner 'n_folds' ({n_folds}) exceeds the {n_train} training samples of the "
            "single training run; lower 'n_inner_folds'"
        )
    positions = np.arange(n_train)
    return [(np.setdiff1d(positions, block), block) for block in np.array_split(positions, n_folds)]


def _inner_concepts(groups: np.ndarray, n_folds: int) -> list[Split]:
    concepts = np.unique(groups)
    if concepts.size < n_folds:
        raise ValueError(
            f"inner 'n_folds' ({n_folds}) exceeds the {concepts.size} training concepts; "
            "lower 'n_inner_folds'"
        )
    fold_of = np.arange(concepts.size) % n_folds
    return _splits_from_blocks(groups, [concepts[fold_of == k] for k in range(n_folds)])


_OUTER: dict[str, Callable[..., list[Split]]] = {
    "timeseries": _outer_timeseries,
    "concepts": _outer_concepts,
}
_INNER: dict[str, Callable[..., list[Split]]] = {
    "timeseries": _inner_timeseries,
    "concepts": _inner_concepts,
}
