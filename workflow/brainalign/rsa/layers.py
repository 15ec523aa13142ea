"""Layers and models against each other: RDM similarity matrix, best layer vs the others.

- :func:`rdm_similarity_table` - the comparison (Spearman by default) of every pair of
  (model, condition, layer) RDMs, as a tidy table and as a square matrix (paper 000's
  model x model figure; pass only each model's best layer, :func:`best_layer_units`,
  for the best-layer version).
- :func:`best_layer_test` - paired bootstrap of the score difference between a model's
  best layer and each of its other layers: the same samples score every layer, so the
  difference carries the pairing. Stimuli are redrawn, and subjects too when there are
  several. One two-sided p per other layer, Benjamini-Hochberg FDR across them.

Selection: by default the best layer is the one with the highest score on the same data,
and the test asks whether it beats each other layer; a layer that truly ties with it is
then favoured by the selection (its p runs low). Pass ``best`` chosen on other data (e.g.
held-out subjects, :mod:`~brainalign.rsa.selection`) to avoid this.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._checks import check_rdms, check_same_pairs, lookup, n_conditions_from_rdm
from .bootstrap import (
    bootstrap_ci,
    bootstrap_pair_tests,
    bootstrap_scores,
    draw_bootstrap,
    group_bootstrap,
)
from .compare import LINEAR_COMPARISONS, RDM_COMPARISONS, compare_rdm_sets
from .inference import fdr_bh

__all__ = ["rdm_similarity_table", "best_layer_units", "best_layer_test"]

logger = logging.getLogger(__name__)

LABELS: tuple[str, ...] = ("model", "condition", "layer")


def rdm_similarity_table(
    units: pd.DataFrame, *, method: str = "spearman", labels: Sequence[str] = LABELS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Comparison of every pair of RDMs, as a tidy table and a square matrix.

    Parameters
    ----------
    units : DataFrame
        One row per RDM: the label columns and ``rdm`` (array of shape (n_pairs,), every
        row over the same stimuli in the same order; e.g.
        :func:`~brainalign.rsa.steps.load_model_rdms`).
    method : {"spearman", "pearson", "kendall_tau_a", "rho_a"}
    labels : sequence of str
        Columns that name an RDM.

    Returns
    -------
    tidy : DataFrame
        ``n_units ** 2`` rows: ``<label>_a``, ``<label>_b``, ``similarity``, ``comparison``.
    matrix : DataFrame of shape (n_units, n_units)
        Indexed by the labels (a MultiIndex) on both axes.
    """
    lookup(RDM_COMPARISONS, method, "method")
    missing = [c for c in (*labels, "rdm") if c not in units.columns]
    if missing:
        raise ValueError(f"'units' lacks columns {missing}; give one row per RDM with labels and 'rdm'")
    rdms = check_rdms(np.stack(units["rdm"].to_numpy()), "units.rdm")
    similarity = compare_rdm_sets(rdms, rdms, method)
    index = pd.MultiIndex.from_frame(units[list(labels)].reset_index(drop=True))
    matrix = pd.DataFrame(similarity, index=index, columns=index)
    a, b = np.meshgrid(np.arange(len(units)), np.arange(len(units)), indexing="ij")
    names = units[list(labels)].reset_index(drop=True)
    tidy = pd.concat([names.iloc[a.ravel()].add_suffix("_a").reset_index(drop=True),
                      names.iloc[b.ravel()].add_suffix("_b").reset_index(drop=True)], axis=1)
    tidy = tidy.assign(similarity=similarity.ravel(), comparison=method)
    logger.info("RDM similarity (%s) of %d RDMs", method, len(units))
    return tidy, matrix


def best_layer_units(
    units: pd.DataFrame, score: str = "score", by: Sequence[str] = ("model", "condition")
) -> pd.DataFrame:
    """The row with the highest ``score`` of each group (each model's best layer).

    Parameters
    ----------
    units : DataFrame
        One row per layer, with the ``by`` columns and ``score``.

    Returns
    -------
    DataFrame
        One row per group, in the order the groups first appear.
    """
    if score not in units.columns:
        raise ValueError(f"'units' has no column '{score}'; score the layers first")
    best = units.groupby(list(by), sort=False)[score].idxmax()
    return units.loc[best.to_numpy()].reset_index(drop=True)


def _group_evaluations(layers, subjects, n_bootstrap, random_state, method):
    """Group scores (n_layers,) and their bootstrap samples (n_bootstrap, n_layers)."""
    kind = "both" if subjects.shape[0] > 1 else "stimuli"
    samples = draw_bootstrap(subjects.shape[0], n_conditions_from_rdm(layers), n_bootstrap,
                             kind=kind, random_state=random_state)
    boot = group_bootstrap(bootstrap_scores(layers, subjects, samples, method=method), samples)
    return compare_rdm_sets(layers, subjects, method).mean(axis=1), boot, kind


def best_layer_test(
    layer_rdms: np.ndarray,
    subject_rdms: np.ndarray,
    *,
    best: int | None = None,
    method: str = "spearman",
    n_bootstrap: int = 1000,
    level: float = 0.95,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Paired bootstrap test of the best layer's score against each other layer's.

    Parameters
    ----------
    layer_rdms : array of shape (n_layers, n_pairs)
        The RDMs of one model's layers.
    subject_rdms : array of shape (n_subjects, n_pairs)
        Brain RDMs of one ROI; pass the group-mean RDM as one row for paper 000's estimand.
    best : int or None
        Row of the best layer; None picks the highest group score (see the module note).
    method : {"spearman", "pearson", "rho_a"}
    n_bootstrap : int
    level : float
    random_state : int, Generator or None

    Returns
    -------
    DataFrame
        One row per other layer: ``best``, ``other`` (rows of ``layer_rdms``), ``score_best``,
        ``score_other``, ``difference``, ``ci_low``, ``ci_high``, ``p`` (two-sided bootstrap),
        ``q`` (BH across the other layers), ``bootstrap``, ``n_bootstrap``.
    """
    lookup(dict.fromkeys(LINEAR_COMPARISONS), method, "method")
    layers = check_rdms(layer_rdms, "layer_rdms")
    subjects = check_rdms(subject_rdms, "subject_rdms")
    check_same_pairs(layers, subjects, ("layer_rdms", "subject_rdms"))
    if layers.shape[0] < 2:
        raise ValueError(f"'layer_rdms' needs >= 2 layers to compare; got {layers.shape[0]}")
    scores, boot, kind = _group_evaluations(layers, subjects, n_bootstrap, random_state, method)
    best = int(np.argmax(scores)) if best is None else int(best)
    if not 0 <= best < len(layers):
        raise ValueError(f"'best' must be a layer row in [0, {len(layers)}); got {best}")
    others = np.delete(np.arange(len(layers)), best)
    low, high = bootstrap_ci(boot[:, [best]] - boot[:, others], level)
    p = bootstrap_pair_tests(boot)[best, others]
    logger.info("best layer %d (score %.3f) vs %d others, %s bootstrap", best, scores[best],
                len(others), kind)
    return pd.DataFrame({"best": best, "other": others, "score_best": scores[best],
                         "score_other": scores[others], "difference": scores[best] - scores[others],
                         "ci_low": low, "ci_high": high, "p": p, "q": fdr_bh(p), "alternative": "two-sided",
                         "bootstrap": kind, "n_bootstrap": n_bootstrap})
