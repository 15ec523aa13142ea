"""Per-layer contrasts: model A vs model B at every matched layer, not only the best one.

Paper 002 compares a fine-tuned model with its pretrained self layer by layer (the layer
curves of the fine-tuned vs pretrained figure). :func:`run_layer_contrast` does what
:func:`~brainalign.contrasts.steps.run_contrast` does for one pair of spaces, at each
layer pair: both sides are fitted once per layer with the encoding rule's folds, seed,
alphas and delays; the held-out samples are resampled with **one** set of resamples
drawn once and shared by every layer (the folds do not depend on the features, so the
structure is the same; checked), so layer-to-layer differences are not resampling noise;
:func:`~brainalign.contrasts.selection.contrast_statistics` selects units and applies
Benjamini-Hochberg **per layer** across that layer's selected units (each layer is its
own family, as a contrast job is; there is no correction across layers, which are
strongly dependent: read the curve, not a count of significant layers); shares per ROI
come from :func:`~brainalign.contrasts.selection.share_table`, per layer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import io
from ..encoding.steps import _fit_kwargs, load_brain, roi_masks
from ._checks import DEFAULT_SETTINGS
from .bootstrap import bootstrap_scores, fold_strata, save_resamples
from .selection import contrast_statistics, share_table, site_statistics
from .steps import _designs, _fit_side, _resamples, _usable, unit_labels

__all__ = ["matched_layers", "run_layer_contrast"]

logger = logging.getLogger(__name__)
PathLike = str | os.PathLike


def matched_layers(features_a: PathLike, features_b: PathLike) -> list[tuple[int, int]]:
    """Layers present in both feature files, as ``(layer, layer)`` pairs in order.

    Raises
    ------
    ValueError
        When the files share no layer.
    """
    layers = [sorted(int(x) for x in io.load_arrays(p)[1]["layers"]) for p in (features_a, features_b)]
    common = sorted(set(layers[0]) & set(layers[1]))
    if not common:
        raise ValueError(
            f"feature files '{features_a}' (layers {layers[0]}) and '{features_b}' (layers "
            f"{layers[1]}) share no layer; pass 'layers' as (layer_a, layer_b) pairs"
        )
    return [(layer, layer) for layer in common]


def run_layer_contrast(
    brain_path: PathLike,
    features_a: PathLike,
    features_b: PathLike,
    *,
    name: str,
    params: Mapping[str, Any],
    settings: Mapping[str, Any],
    seed: int,
    out_units: PathLike,
    out_shares: PathLike,
    out_resamples: PathLike,
    layers: Sequence[tuple[int, int]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contrast model A with model B (A > B) unit by unit at every matched layer.

    Parameters
    ----------
    brain_path : path-like
        Preprocessed brain data of one subject x task (any kind and geometry).
    features_a, features_b : path-like
        Feature files of the two models (e.g. fine-tuned and pretrained), all layers.
    name : str
        Contrast name.
    params, settings, seed
        As :func:`~brainalign.contrasts.steps.run_contrast`.
    out_units, out_shares : path-like
        Tidy tables (Parquet or TSV): one row per layer x unit (the columns of
        ``run_contrast``'s unit table plus ``layer`` (= ``layer_a``, for the curves),
        ``layer_a``, ``layer_b``), and
        one row per layer x ROI.
    out_resamples : path-like
        ``.npz`` of the one set of resamples every layer used.
    layers : sequence of (layer_a, layer_b) or None
        Layer pairs; None: :func:`matched_layers`.

    Returns
    -------
    units, shares : DataFrame
        The two tables that were written.
    """
    settings = {**DEFAULT_SETTINGS, **settings}
    pairs = _check_layers(layers if layers is not None else matched_layers(features_a, features_b))
    Y, groups, meta, arrays = load_brain(brain_path)
    usable, masks = _usable(arrays, meta), roi_masks(arrays, meta)
    resamples, folds, unit_rows, share_rows = None, None, [], []
    for k, (layer_a, layer_b) in enumerate(pairs):
        sides = {"a": [(features_a, layer_a)], "b": [(features_b, layer_b)]}
        designs, labels, fit_params = _designs(sides, arrays, meta, params)
        kwargs = _fit_kwargs(fit_params, meta["kind"], groups, seed)
        fits = {s: _fit_side(designs[s], Y[:, usable], kwargs, fit_params) for s in ("a", "b")}
        if folds is None:
            folds = fits["a"].fold
            strata = fold_strata(folds, meta["kind"], groups, int(params.get("block_size", 1)))
            resamples = _resamples(strata, settings["n_resamples"], seed, None)
        if not (np.array_equal(fits["a"].fold, folds) and np.array_equal(fits["b"].fold, folds)):
            raise RuntimeError(f"contrast '{name}': layer pair {k} was fitted on other folds")
        units = _layer_units(Y[:, usable], fits, resamples, usable, settings, arrays, meta)
        tags = {"subject": meta["subject"], "task": meta["task"], "contrast": name,
                "layer": int(layer_a), "layer_a": int(layer_a), "layer_b": int(layer_b), **labels}
        share_rows.append(share_table(units, masks, _channel(arrays, meta)).assign(**tags))
        unit_rows.append(pd.concat([units.assign(**tags), unit_labels(arrays, meta, masks)], axis=1))
        _log_layer(name, tags, share_rows[-1])
    save_resamples(out_resamples, resamples)
    units, shares = pd.concat(unit_rows, ignore_index=True), pd.concat(share_rows, ignore_index=True)
    io.write_table(units, out_units)
    io.write_table(shares, out_shares)
    return units, shares


def _layer_units(y, fits, resamples, usable, settings, arrays, meta) -> pd.DataFrame:
    """Per-unit statistics of one layer pair (BH across this layer's selected units)."""
    scores = bootstrap_scores(
        y, fits["a"].predictions, fits["b"].predictions, resamples,
        ci_level=settings["ci_level"], fold_correction=settings["fold_correction"],
    )
    units = contrast_statistics(
        scores, usable, fdr_q=settings["fdr_q"], select=settings["select"],
        alternative=settings["alternative"],
    )
    channel = _channel(arrays, meta)
    return units if channel is None else site_statistics(units, channel, settings["fdr_q"])


def _channel(arrays, meta) -> np.ndarray | None:
    return arrays.get("channel") if meta.get("geometry") == "electrodes" else None


def _check_layers(pairs) -> list[tuple[int, int]]:
    try:
        pairs = [(int(a), int(b)) for a, b in pairs]
    except (TypeError, ValueError):
        raise ValueError(
            f"'layers' must be (layer_a, layer_b) pairs of integers; got {pairs!r}"
        ) from None
    if not pairs:
        raise ValueError("'layers' must hold at least one (layer_a, layer_b) pair; got none")
    return pairs


def _log_layer(name: str, tags: Mapping[str, Any], shares: pd.DataFrame) -> None:
    row = shares.set_index("roi").loc["all"]
    logger.info(
        "contrast %s, layers %d vs %d: %d of %d selected units significant, mean delta %.4f",
        name, tags["layer_a"], tags["layer_b"], row["n_significant"], row["n_selected"],
        row["mean_delta"],
    )
