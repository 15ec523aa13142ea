"""Nested choice of a model's best layer, and its held-out score.

Choosing the layer with the highest held-out score and reporting that score reuses
the test data twice: the maximum over layers of noisy scores is biased upwards even
when no layer predicts anything. Here the choice is part of the training: in every
outer fold, each layer's ridge model is cross-validated on the outer training set
only (the inner CV that also picks the alphas), each ROI takes the layer with the
highest mean inner-CV R^2 over its voxels, and the reported score is the held-out
score of that layer on the outer test fold. Different folds may choose different
layers; the chosen layer of every fold is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .ridge import EncodingResult, fit_encoding

__all__ = ["select_layer_from_fits", "select_layer_nested", "summarize_layer_selection"]

logger = logging.getLogger(__name__)


def select_layer_nested(
    layers: Mapping[int, np.ndarray],
    Y: np.ndarray,
    rois: Mapping[str, np.ndarray],
    **kwargs: Any,
) -> pd.DataFrame:
    """Choose the best layer per ROI inside every outer fold; score it on the test fold.

    Parameters
    ----------
    layers : mapping of int to array of shape (n_samples, n_features_l)
        Features of each candidate layer, rows matching ``Y``.
    Y : array of shape (n_samples, n_voxels)
        Brain responses.
    rois : mapping of str to bool array of shape (n_voxels,)
        Voxels of each ROI (empty ROIs are skipped).
    **kwargs
        Passed to :func:`~brainalign.encoding.fit_encoding` for every layer (kind,
        groups, alphas, delays, folds, random_state...); the same ``random_state``
        gives every layer the same outer folds.

    Returns
    -------
    table : DataFrame
        One row per ROI and outer fold: ``roi``, ``fold``, ``layer`` (the choice),
        ``inner_cv_r2`` (its mean inner-CV R^2 over the ROI, training data only),
        ``r`` and ``r2`` (mean over the ROI's voxels of the chosen layer's held-out
        scores on that fold), ``n_voxels``.
    """
    if not layers:
        raise ValueError("'layers' must hold at least one layer's features; got none")
    fits = {int(layer): fit_encoding(X, Y, **kwargs) for layer, X in sorted(layers.items())}
    return select_layer_from_fits(fits, rois)


def select_layer_from_fits(
    fits: Mapping[int, EncodingResult], rois: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """:func:`select_layer_nested` on layers already fitted with the same outer folds.

    Parameters
    ----------
    fits : mapping of int to EncodingResult
        Each candidate layer's :func:`~brainalign.encoding.fit_encoding` result.
    rois : mapping of str to bool array of shape (n_voxels,)
        Voxels of each ROI (empty ROIs are skipped).

    Returns
    -------
    table : DataFrame
        As :func:`select_layer_nested`.
    """
    if not fits:
        raise ValueError("'fits' must hold at least one layer's fit; got none")
    fits = {int(layer): fits[layer] for layer in sorted(fits)}
    _check_same_folds(fits)
    candidates = np.array(list(fits))
    rows = []
    for roi, mask in rois.items():
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            logger.info("ROI %s has no voxels: no layer chosen", roi)
            continue
        inner = np.stack([fit.cv_r2[:, mask].mean(axis=1) for fit in fits.values()])
        for k in range(inner.shape[1]):
            best = int(np.argmax(inner[:, k]))
            fit = fits[int(candidates[best])]
            rows.append(
                {
                    "roi": roi,
                    "fold": k,
                    "layer": int(candidates[best]),
                    "inner_cv_r2": float(inner[best, k]),
                    "r": float(np.mean(fit.r_folds[k, mask])),
                    "r2": float(np.mean(fit.r2_folds[k, mask])),
                    "n_voxels": int(mask.sum()),
                }
            )
        logger.info(
            "ROI %s: layers chosen per fold %s", roi, [r["layer"] for r in rows if r["roi"] == roi]
        )
    return pd.DataFrame(rows)


def summarize_layer_selection(table: pd.DataFrame) -> pd.DataFrame:
    """One row per ROI: the nested held-out score (mean over folds) and the layers chosen.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`select_layer_nested` (extra label columns are kept).

    Returns
    -------
    DataFrame
        ``roi``, ``mean_r``, ``mean_r2`` (means over folds), ``layer`` (most often
        chosen, the smallest on ties), ``layers`` (the choices, comma-separated, in
        fold order), ``n_folds``, ``n_voxels``, and the label columns.
    """
    labels = [
        c
        for c in table.columns
        if c not in {"roi", "fold", "layer", "inner_cv_r2", "r", "r2", "n_voxels"}
    ]
    rows = []
    for roi, sub in table.sort_values("fold").groupby("roi", sort=False):
        counts = sub["layer"].value_counts()
        rows.append(
            {
                **{c: sub[c].iloc[0] for c in labels},
                "roi": roi,
                "mean_r": float(sub["r"].mean()),
                "mean_r2": float(sub["r2"].mean()),
                "layer": int(min(counts.index[counts == counts.max()])),
                "layers": ",".join(str(v) for v in sub["layer"]),
                "n_folds": len(sub),
                "n_voxels": int(sub["n_voxels"].iloc[0]),
            }
        )
    return pd.DataFrame(rows)


def _check_same_folds(fits: Mapping[int, EncodingResult]) -> None:
    folds = [fit.fold for fit in fits.values()]
    if any(not np.array_equal(folds[0], f) for f in folds[1:]):
        raise ValueError(
            "layers were fitted on different outer folds; pass the same 'random_state' and "
            "'n_outer_folds' for every layer"
        )
