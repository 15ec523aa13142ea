"""File-level steps of the contrast rules: fit both sides once, bootstrap, select, write.

:func:`run_contrast` is what one contrast job does (one subject x task x contrast): read
the brain data and the feature spaces of both sides (paired with the brain rows by label,
:func:`brainalign.pipeline.match_features`), fit each side with exactly the encoding
rule's folds, seed, alphas and delays (one space: ridge; two or more: banded ridge, the
linear-integration baseline), bootstrap the held-out scores with shared resamples
(:mod:`.bootstrap`), select units and correct across them (:mod:`.selection`), and write
the per-unit and per-ROI tables and the resamples. :func:`summarize_contrasts` pools the
subjects.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import io
from ..datasets.units import usable_units
from ..encoding.banded import fit_banded_encoding
from ..encoding.ridge import EncodingResult, fit_encoding
from ..encoding.steps import _fit_kwargs, design_matrices, load_brain, roi_masks
from ..pipeline import match_features
from ._checks import DEFAULT_SETTINGS
from .bootstrap import (
    ResampleIndices,
    bootstrap_scores,
    draw_resamples,
    fold_strata,
    load_resamples,
    save_resamples,
)
from .bootstrap import structure_key
from .selection import add_shares, contrast_statistics, share_table, site_statistics

__all__ = ["run_contrast", "summarize_contrasts"]

logger = logging.getLogger(__name__)
PathLike = str | os.PathLike
Side = Sequence[tuple[PathLike, int]]

_COUNTS = ["n_units", "n_excluded", "n_selected", "n_significant"]
_SITE_COUNTS = ["n_sites", "n_sites_selected", "n_sites_significant"]


def run_contrast(
    brain_path: PathLike,
    sides: Mapping[str, Side],
    *,
    name: str,
    params: Mapping[str, Any],
    settings: Mapping[str, Any],
    seed: int,
    out_units: PathLike,
    out_shares: PathLike,
    out_resamples: PathLike,
    resamples_in: PathLike | None = None,
) -> pd.DataFrame:
    """Contrast two sides (A > B) unit by unit for one subject x task.

    Parameters
    ----------
    brain_path : path-like
        Preprocessed brain data (any kind and geometry of :mod:`brainalign.datasets.units`).
    sides : mapping
        ``{"a": [(features_path, layer), ...], "b": [...]}``: one space per side for plain
        ridge, two or more for banded ridge.
    name : str
        Contrast name (the key of ``contrasts.pairs``).
    params : mapping
        The config's ``encoding`` section (alphas, delays, folds, block_size, banded_iterations).
    settings : mapping
        ``contrasts.settings`` (missing keys take :data:`~._checks.DEFAULT_SETTINGS`).
    seed : int
        The encoding seed (folds, random search) and the seed of the resamples.
    out_units, out_shares : path-like
        Per-unit table (:func:`~.selection.contrast_statistics` plus labels) and per-ROI
        shares (:func:`~.selection.share_table`), Parquet or TSV.
    out_resamples : path-like
        ``.npz`` of the resamples used (:func:`~.bootstrap.save_resamples`).
    resamples_in : path-like or None
        Saved resamples to reuse (must match this data's fold/block structure).

    Returns
    -------
    shares : DataFrame
        The share table that was written.
    """
    settings = {**DEFAULT_SETTINGS, **settings}
    if set(sides) != {"a", "b"} or not all(sides.values()):
        raise ValueError(
            f"'sides' must map 'a' and 'b' to non-empty lists of (features, layer); got {sorted(sides)}"
        )
    Y, groups, meta, arrays = load_brain(brain_path)
    designs, labels, params = _designs(sides, arrays, meta, params)
    usable = _usable(arrays, meta)
    kwargs = _fit_kwargs(params, meta["kind"], groups, seed)
    fits = {side: _fit_side(designs[side], Y[:, usable], kwargs, params) for side in ("a", "b")}
    if not np.array_equal(fits["a"].fold, fits["b"].fold):
        raise RuntimeError(f"contrast '{name}': sides a and b were fitted on different folds")
    strata = fold_strata(fits["a"].fold, meta["kind"], groups, int(params.get("block_size", 1)))
    resamples = _resamples(strata, settings["n_resamples"], seed, resamples_in)
    save_resamples(out_resamples, resamples)
    scores = bootstrap_scores(
        Y[:, usable],
        fits["a"].predictions,
        fits["b"].predictions,
        resamples,
        ci_level=settings["ci_level"],
        fold_correction=settings["fold_correction"],
    )
    logger.info("fold correction of the resampled variance: x %.3f", scores["variance_factor"])
    units = contrast_statistics(
        scores,
        usable,
        fdr_q=settings["fdr_q"],
        select=settings["select"],
        alternative=settings["alternative"],
    )
    masks = roi_masks(arrays, meta)
    tags = {"subject": meta["subject"], "task": meta["task"], "contrast": name, **labels}
    channel = arrays.get("channel") if meta.get("geometry") == "electrodes" else None
    if channel is not None:
        units = site_statistics(units, channel, settings["fdr_q"])
    shares = share_table(units, masks, channel).assign(**tags)
    units = pd.concat([units.assign(**tags), unit_labels(arrays, meta, masks)], axis=1)
    io.write_table(units, out_units)
    io.write_table(shares, out_shares)
    for row in shares.itertuples():
        logger.info(
            "contrast %s, ROI %s: %d of %d selected units significant (share %.3f)",
            name,
            row.roi,
            row.n_significant,
            row.n_selected,
            row.share,
        )
    return shares


def _designs(sides, arrays, meta, params):
    """Feature matrices of both sides in the brain rows, side descriptions, fit parameters."""
    matrices, described = {}, {}
    for side, spaces in sides.items():
        names = []
        for i, (path, layer) in enumerate(spaces):
            features, fmeta = io.load_arrays(path)
            matrices[(side, i)] = match_features(features, fmeta, meta, int(layer), path)
            names.append(f"{fmeta.get('model', '?')}/{fmeta.get('condition', '?')}/{int(layer)}")
        described[f"{side}_spaces"] = "+".join(names)
    matrices, params = design_matrices(matrices, arrays, meta, params)
    designs = {
        side: [matrices[(side, i)] for i in range(len(spaces))] for side, spaces in sides.items()
    }
    return designs, described, params


def _fit_side(
    Xs: list[np.ndarray], Y: np.ndarray, kwargs: dict[str, Any], params
) -> EncodingResult:
    """Ridge for one space, banded ridge (linear integration) for two or more."""
    if len(Xs) == 1:
        return fit_encoding(Xs[0], Y, **kwargs)
    return fit_banded_encoding(Xs, Y, n_iter=params.get("banded_iterations", 20), **kwargs)


def _usable(arrays, meta) -> np.ndarray:
    usable = usable_units(arrays, meta)
    if not usable.all():
        logger.warning(
            "%d of %d units flagged by preprocessing are left out of the contrast "
            "(NaN in the tables, in no FDR family or count)",
            (~usable).sum(),
            usable.size,
        )
    return usable


def _resamples(strata, n_resamples: int, seed: int, path: PathLike | None) -> ResampleIndices:
    """Draw the resamples, or reuse saved ones drawn for the same structure and count."""
    if path is None:
        return draw_resamples(strata, n_resamples, seed)
    saved = load_resamples(path)
    rows = np.concatenate([np.concatenate(blocks) for blocks in strata])
    fold = np.concatenate(
        [np.full(sum(len(b) for b in blocks), k) for k, blocks in enumerate(strata)]
    )
    block = np.concatenate(
        [np.repeat(np.arange(len(blocks)), [len(b) for b in blocks]) for blocks in strata]
    )
    if (
        saved.structure_key() != structure_key(rows, fold, block)
        or saved.n_resamples != n_resamples
    ):
        raise ValueError(
            f"resamples file '{path}' was drawn for another fold/block structure or count "
            f"({saved.n_resamples} resamples); delete it to draw new ones"
        )
    logger.info("reusing %d resamples from '%s'", saved.n_resamples, path)
    return saved


def unit_labels(
    arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], masks: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """Where each unit is: ``roi`` (comma-joined names, ROIs may overlap) and, by geometry,
    ``i, j, k`` (volume), ``hemi, vertex`` (surface) or ``channel, channel_index, bin,
    bin_start, bin_stop, x, y, z`` (electrodes)."""
    n_units = arrays["roi"].shape[0]
    names = np.array(
        [",".join(n for n, m in masks.items() if m[u]) for u in range(n_units)], dtype=object
    )
    table = pd.DataFrame({"roi": names})
    geometry = meta.get("geometry")
    if geometry == "volume":
        table[["i", "j", "k"]] = np.asarray(arrays["ijk"])
    elif geometry == "surface":
        table["hemi"] = np.where(np.asarray(arrays["hemi"]) == 0, "L", "R")
        table["vertex"] = np.asarray(arrays["vertex"])
    elif geometry == "electrodes":
        channel, bins = np.asarray(arrays["channel"]), np.asarray(arrays["bin"])
        table["channel"] = np.asarray(meta["channels"], dtype=object)[channel]
        table["channel_index"], table["bin"] = channel, bins
        table["bin_start"], table["bin_stop"] = np.asarray(meta["bins"], dtype=float)[bins].T
        table[["x", "y", "z"]] = np.asarray(arrays["xyz"], dtype=float)
    else:
        raise ValueError(
            f"brain data geometry must be volume, surface or electrodes; got {geometry!r}"
        )
    return table


def summarize_contrasts(
    unit_tables: Sequence[PathLike | pd.DataFrame],
    share_tables: Sequence[PathLike | pd.DataFrame],
    level: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pool the subjects' contrast tables.

    Parameters
    ----------
    unit_tables, share_tables : sequences of paths or DataFrames
        Outputs of :func:`run_contrast` (any subjects, tasks and contrasts).
    level : float
        Level of the Wilson intervals.

    Returns
    -------
    group_shares : DataFrame
        Per task x contrast x ROI: summed counts over subjects, pooled shares
        (``share`` = sum n_significant / sum n_selected, ``share_units``, and for
        electrodes ``share_sites``) with Wilson intervals, ``mean_delta`` and
        ``mean_delta_selected`` (means of the subjects' means) and ``n_subjects``.
    group_units : DataFrame
        The unit tables, concatenated (tidy: one row per subject x task x contrast x unit).
    """
    units = pd.concat([_table(t) for t in unit_tables], ignore_index=True)
    shares = pd.concat([_table(t) for t in share_tables], ignore_index=True)
    keys = ["task", "contrast", "roi"]
    counts = _COUNTS + [c for c in _SITE_COUNTS if c in shares]
    grouped = shares.groupby(keys, sort=False)
    group = grouped[counts].sum().join(grouped[["mean_delta", "mean_delta_selected"]].mean())
    group = group.join(grouped["subject"].nunique().rename("n_subjects")).reset_index()
    return add_shares(group, level), units


def _table(table: PathLike | pd.DataFrame) -> pd.DataFrame:
    return table if isinstance(table, pd.DataFrame) else io.read_table(table)
