"""File-level step of paper 002's residual encoding (what rule fit_residual_encoding does).

The joint features of a model with the unimodal features regressed out inside each outer
training fold (:func:`brainalign.encoding.residual.fit_residual_encoding`), encoded per
unit with the encoding stage's folds, alphas and delays.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .. import io
from ..contrasts.steps import unit_labels
from ..pipeline import match_features
from .residual import fit_residual_encoding
from .steps import _fit_kwargs, _usable, design_matrices, load_brain, roi_masks

__all__ = ["run_fit_residual_encoding"]

logger = logging.getLogger(__name__)
PathLike = str | os.PathLike


def run_fit_residual_encoding(
    brain_path: PathLike,
    joint: tuple[PathLike, int],
    unimodal: Sequence[tuple[PathLike, int]],
    *,
    params: Mapping[str, Any],
    seed: int,
    out_units: PathLike,
    labels: Mapping[str, Any] | None = None,
    residual_alpha: float = 0.0,
    residual_components: int | None = None,
) -> pd.DataFrame:
    """Held-out r of the residual representation at every unit of one subject x task.

    Parameters
    ----------
    brain_path : path-like
        Preprocessed brain data (any kind and geometry).
    joint : (features path, layer)
        The joint features (e.g. a VLM's ``joint`` condition).
    unimodal : sequence of (features path, layer)
        The unimodal features regressed out (language-only, vision-only...).
    params : mapping
        The config's ``encoding`` section.
    seed : int
        Random state of the folds.
    out_units : path-like
        One row per unit: ``unit``, ``r``, ``r2``, ``excluded``, ROI names and location.
    labels : mapping, optional
        Extra columns (e.g. ``residual``: the analysis name).
    residual_alpha, residual_components
        The residualising regression (config ``paper002.residual_alpha`` /
        ``residual_components``; :func:`~brainalign.encoding.residual.residualize`).
    """
    Y, groups, meta, arrays = load_brain(brain_path)
    spaces = {"joint": joint, **{f"unimodal{k}": space for k, space in enumerate(unimodal)}}
    matrices = {
        key: match_features(*io.load_arrays(path), meta, int(layer), path)
        for key, (path, layer) in spaces.items()
    }
    matrices, params = design_matrices(matrices, arrays, meta, params)
    usable = _usable(arrays, meta)
    kwargs = _fit_kwargs(params, meta["kind"], groups, seed)
    result = fit_residual_encoding(
        matrices.pop("joint"), list(matrices.values()), Y[:, usable], **kwargs,
        alpha=float(residual_alpha), n_components=residual_components,
    )
    table = pd.DataFrame({"unit": range(usable.size), "excluded": ~usable})
    for name in ("r", "r2"):
        full = pd.Series(float("nan"), index=table.index)
        full[usable] = getattr(result, name)
        table[name] = full.to_numpy()
    table = pd.concat([table, unit_labels(arrays, meta, roi_masks(arrays, meta))], axis=1)
    table = table.assign(subject=meta["subject"], task=meta["task"], **(labels or {}))
    io.write_table(table, out_units)
    logger.info("residual encoding: mean held-out r %.3f over %d units",
                float(result.r.mean()), int(usable.sum()))
    return table
