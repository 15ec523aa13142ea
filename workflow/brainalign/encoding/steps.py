"""File-level steps of the encoding rules: read labelled inputs, fit, test, write tables.

Each ``run_*`` function is what one Snakemake rule does. Brain data and features are
paired by their labels (:func:`brainalign.pipeline.match_features`), never by file
order; the ``params`` mapping is the config's ``encoding`` section with its defaults.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import io
from ..labels import joint_space_name
from ..datasets.units import RESPONSES, roi_mask, usable_units
from ..pipeline import kept_rows, map_sidecar, match_features, roi_summary, save_map
from .delays import make_delays
from .banded import variance_partition
from .ceiling import noise_ceiling, normalise_scores
from .ridge import EncodingResult, fit_encoding
from .selection import select_layer_from_fits
from .stats import fdr_bh, permutation_test

__all__ = [
    "load_brain",
    "run_fit_encoding",
    "run_fit_joint_encoding",
    "summarize_joint_tables",
    "summarize_best_layer_tables",
]

logger = logging.getLogger(__name__)
# The array holding each sample's CV group, by kind (concepts: each pattern its own).
_GROUPS = {"concepts": None, "timeseries": "run", "epochs": "group"}
PathLike = str | os.PathLike


def load_brain(
    path: PathLike,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], dict[str, np.ndarray]]:
    """Responses, CV groups, metadata and all arrays of a preprocessed brain file.

    Returns
    -------
    Y : array of shape (n_samples, n_voxels), float32
        ``patterns`` (concepts), ``bold`` (naturalistic) or ``responses`` (epochs).
    groups : array of shape (n_samples,)
        Concept index (concepts), run label (naturalistic) or CV block (epochs).
    meta : dict
        The file's metadata plus ``n_samples`` and ``kind`` (``concepts``, ``timeseries``
        or ``epochs``).
    arrays : dict
        Every array of the file (``roi``, ``ijk``, ``patterns_by_run``...).
    """
    arrays, meta = io.load_arrays(path)
    Y = arrays[RESPONSES[meta["kind"]]]
    groups = arrays[_GROUPS[meta["kind"]]] if _GROUPS[meta["kind"]] else np.arange(Y.shape[0])
    meta.update(n_samples=Y.shape[0])
    return np.asarray(Y, dtype=np.float32), groups, meta, arrays


def roi_masks(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Membership of every ROI of the brain data (ROIs may overlap), by name."""
    return {name: roi_mask(arrays, meta, name) for name in meta["rois"]}


def design_matrices(
    matrices: Mapping[Any, np.ndarray],
    arrays: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
    params: Mapping[str, Any],
) -> tuple[dict[Any, np.ndarray], dict[str, Any]]:
    """Feature matrices (from :func:`match_features`) in the brain data's rows, and the
    encoding parameters to fit them with.

    When the reader dropped volumes (non-steady-state, scrubbing), the FIR delays are
    applied over every acquired TR of each run first and the kept rows taken after, so a
    delayed feature is never shifted across a dropped volume; the fit then uses delay 0.
    """
    rows = kept_rows(arrays, meta) if meta["kind"] == "timeseries" else None
    if rows is None:
        return dict(matrices), dict(params)
    acquired = np.repeat(np.asarray(meta["runs"]), meta["n_volumes"])
    logger.info("%d of %d acquired TRs kept: delays %s applied before dropping volumes",
                rows.size, acquired.size, list(params["delays"]))
    delayed = {key: make_delays(x, params["delays"], acquired)[rows] for key, x in matrices.items()}
    return delayed, {**params, "delays": [0]}


def _fit_kwargs(
    params: Mapping[str, Any], kind: str, groups: np.ndarray, seed: int
) -> dict[str, Any]:
    # Event-locked responses are cross-validated like time series (leave one contiguous
    # block out), with no FIR delays: the time bins are the response's delays.
    return dict(
        kind="timeseries" if kind == "epochs" else kind,
        groups=groups,
        alphas=params["alphas"],
        delays=tuple(params["delays"]) if kind == "timeseries" else (0,),
        n_outer_folds=params["outer_folds"],
        n_inner_folds=params["inner_folds"],
        random_state=seed,
        n_targets_batch=params["n_targets_batch"],
    )


def run_fit_encoding(
    brain_path: PathLike,
    features_path: PathLike,
    *,
    layers: Sequence[int],
    params: Mapping[str, Any],
    seed: int,
    out_map: PathLike,
    out_voxels: PathLike,
    out_rois: PathLike,
    out_best_layer: PathLike,
) -> pd.DataFrame:
    """Fit every layer of one subject x task x model x condition; test, select, write.

    One call (one job) per model and condition rather than per layer: the brain data and
    the feature file are read once, and the fixed cost of a job (starting Python and
    importing the numerical stack, about 2 s) is paid once instead of once per layer.
    Each layer is fitted exactly as it would be alone (same folds and seed).

    Parameters
    ----------
    brain_path, features_path : path-like
        Preprocessed brain data and features (labelled safetensors files).
    layers : sequence of int
        Hidden-state indices to fit (the model's ``layers`` in the config).
    params : mapping
        The config's ``encoding`` section.
    seed : int
        Random state of the concept folds and the permutations.
    out_map : path-like
        4D NIfTI map of held-out r, one volume per layer in the order of ``layers``; its
        JSON sidecar (:func:`~brainalign.pipeline.map_sidecar`) lists the layers and labels.
    out_voxels : path-like
        Per-voxel table, one row per layer and voxel: r, R^2, alpha and alpha_fold<k>,
        alpha_edge, inner-CV R^2, p, p_perm, q, significant, ceiling, r_norm, r2_norm.
    out_rois : path-like
        Per-ROI summary, one row per layer and ROI.
    out_best_layer : path-like
        Nested best-layer choice per ROI and outer fold
        (:func:`~brainalign.encoding.selection.select_layer_nested`) and its held-out scores.

    Returns
    -------
    rois : DataFrame
        The per-ROI summary that was written.
    """
    layers = [int(layer) for layer in layers]
    if not layers or len(set(layers)) != len(layers):
        raise ValueError(f"'layers' must be distinct layer indices; got {layers}")
    Y, groups, meta, arrays = load_brain(brain_path)
    features, fmeta = io.load_arrays(features_path)
    candidates, params = design_matrices(
        {layer: match_features(features, fmeta, meta, layer, features_path) for layer in layers},
        arrays,
        meta,
        params,
    )
    kind = meta["kind"]
    masks = roi_masks(arrays, meta)
    usable = _usable(arrays, meta)
    kwargs = _fit_kwargs(params, kind, groups, seed)
    labels = {
        "subject": meta["subject"],
        "task": meta["task"],
        "model": fmeta["model"],
        "condition": fmeta["condition"],
    }
    ceiling = _ceiling(arrays, meta)[usable]
    voxel_tables, roi_tables, maps, fits = [], [], [], {}
    for layer, X in candidates.items():
        logger.info("layer %d: %d samples x %d features", layer, *X.shape)
        result = fits[layer] = fit_encoding(X, Y[:, usable], **kwargs)
        significance = _significance(result, X, Y[:, usable], kind, groups, params, seed)
        voxels = _all_units(
            _voxel_table(result, arrays, significance, params, ceiling, usable),
            usable,
            arrays["roi"],
        )
        voxel_tables.append(voxels.assign(**labels, layer=layer))
        roi_tables.append(_roi_table(voxels, masks).assign(**labels, layer=layer))
        maps.append(voxels["r"].to_numpy(dtype=np.float32))
        for row in roi_tables[-1].itertuples():
            logger.info(
                "layer %d, ROI %s: mean held-out r = %.3f, %d of %d voxels significant (q <= %g)",
                *(layer, row.roi, row.mean_r, row.n_significant, row.n_voxels, params["fdr_q"]),
            )
    best = select_layer_from_fits(fits, {k: m[usable] for k, m in masks.items()}).assign(**labels)
    roi_table = pd.concat(roi_tables, ignore_index=True)
    names = [f"layer-{layer:02d}" for layer in layers]
    save_map(np.stack(maps, axis=1), arrays, meta, names, out_map)
    io.write_json(
        {**labels, "layers": layers, "measure": "held-out Pearson r, one volume per layer"},
        map_sidecar(out_map),
    )
    io.write_table(pd.concat(voxel_tables, ignore_index=True), out_voxels)
    io.write_table(roi_table, out_rois)
    io.write_table(best, out_best_layer)
    return roi_table


def _usable(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> np.ndarray:
    """Units to fit: all but those the reader flagged (NaN or constant signal), logged."""
    usable = usable_units(arrays, meta)
    if not usable.all():
        logger.warning("%d of %d units flagged by preprocessing (NaN or constant signal) are left "
                       "out: NaN in the map and tables, not in ROI means or FDR", (~usable).sum(),
                       usable.size)
    return usable


def _all_units(voxels: pd.DataFrame, usable: np.ndarray, roi: np.ndarray) -> pd.DataFrame:
    """The table of the fitted units, with a NaN row for each unit left out (``excluded``)."""
    if not usable.all():
        voxels = voxels.set_index("voxel").reindex(np.arange(usable.size))
        if "significant" in voxels:
            significant = voxels["significant"].astype("boolean").fillna(False)
            voxels["significant"] = significant.astype(bool)
        voxels = voxels.rename_axis("voxel").reset_index()
        voxels["roi_index"] = roi
    return voxels.assign(excluded=~usable)


def _voxel_table(result, arrays, significance, params, ceiling, usable=None) -> pd.DataFrame:
    """Per-voxel scores, chosen alphas (geometric mean and per outer fold), significance and
    noise-ceiling-normalised scores, for the fitted units (``usable``; None: all)."""
    usable = np.ones(arrays["roi"].shape[0], dtype=bool) if usable is None else usable
    r_norm, r2_norm = normalise_scores(result.r, result.r2, ceiling, params["min_ceiling"])
    return pd.DataFrame(
        {
            "voxel": np.flatnonzero(usable),
            "roi_index": arrays["roi"][usable],
            "r": result.r,
            "r2": result.r2,
            "alpha": np.exp(np.log(result.alpha).mean(axis=0)),
            **{f"alpha_fold{k}": alpha for k, alpha in enumerate(result.alpha)},
            "alpha_edge": _edge_share(result.alpha, params["alphas"]),
            "cv_r2": result.cv_r2.mean(axis=0),
            **significance,
            "significant": significance["q"] <= params["fdr_q"],
            "ceiling": ceiling,
            "r_norm": r_norm,
            "r2_norm": r2_norm,
        }
    )


def _significance(
    result: EncodingResult, X, Y, kind, groups, params, seed
) -> dict[str, np.ndarray]:
    """Permutation p (normal fit, empirical) and BH q per voxel; NaN if ``n_permutations`` is 0."""
    if params["n_permutations"] == 0:
        logger.info("n_permutations is 0: no permutation test")
        nan = np.full(Y.shape[1], np.nan)
        return {"p": nan, "p_perm": nan, "q": nan}
    test = permutation_test(
        result,
        X,
        Y,
        kind="timeseries" if kind == "epochs" else kind,  # blocks of events within a CV block
        groups=groups,
        n_permutations=params["n_permutations"],
        block_size=params["block_size"],
        random_state=seed,
        n_targets_batch=params["n_targets_batch"],
        tail=params.get("tail", "normal"),
    )
    return {"p": test.p, "p_perm": test.p_perm, "q": fdr_bh(test.p)}


def _ceiling(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> np.ndarray:
    """Noise ceiling of the concept task from its runs; NaN without repeats."""
    by_run = arrays.get("patterns_by_run")
    if by_run is None or by_run.shape[0] < 2:
        logger.info("task %s: no repeated presentations, no noise ceiling", meta["task"])
        return np.full(arrays["roi"].shape[0], np.nan)
    return noise_ceiling(by_run)


def _edge_share(alpha: np.ndarray, grid: Sequence[float]) -> np.ndarray:
    """Per voxel, the share of outer folds whose alpha is the grid's min or max."""
    grid = np.unique(np.asarray(grid, dtype=float))
    if grid.size < 2:
        return np.zeros(alpha.shape[1])
    edge = np.isclose(alpha, grid[0], rtol=1e-6) | np.isclose(alpha, grid[-1], rtol=1e-6)
    return edge.mean(axis=0)


def _roi_table(voxels: pd.DataFrame, rois: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The shared ROI summary plus significance, ceiling and alpha-edge columns."""
    base = roi_summary(voxels, rois)
    extra = []
    for name, mask in rois.items():
        sel = voxels[mask & ~voxels["excluded"]] if "excluded" in voxels else voxels[mask]
        extra.append(
            {
                "n_significant": int(sel["significant"].sum()),
                "share_significant": float(sel["significant"].mean()) if len(sel) else np.nan,
                "mean_ceiling": float(sel["ceiling"].mean()) if len(sel) else np.nan,
                "n_ceiling": int(sel["r_norm"].notna().sum()),
                "mean_r_norm": (
                    float(sel["r_norm"].mean()) if sel["r_norm"].notna().any() else np.nan
                ),
                "share_alpha_edge": float(sel["alpha_edge"].mean()) if len(sel) else np.nan,
            }
        )
    return pd.concat([base, pd.DataFrame(extra)], axis=1)


# ----------------------------------------------------------------------------- joint models


def run_fit_joint_encoding(
    brain_path: PathLike,
    feature_paths: Sequence[PathLike],
    *,
    joint: Mapping[str, Any],
    params: Mapping[str, Any],
    seed: int,
    out_map: PathLike,
    out_voxels: PathLike,
    out_rois: PathLike,
) -> pd.DataFrame:
    """Fit one subject x task joint model (banded ridge) and partition its explained variance.

    Parameters
    ----------
    brain_path : path-like
        Preprocessed brain data.
    feature_paths : sequence of path-like
        One feature file per space of ``joint["spaces"]``, in that order.
    joint : mapping
        ``{name, spaces: [{model, condition, layer}, ...]}`` (an entry of ``encoding.joint``).
    params : mapping
        The config's ``encoding`` section (``banded_iterations`` draws of space weights).
    seed : int
        Random state of the concept folds and the random search.
    out_map, out_voxels, out_rois : path-like
        NIfTI map of the joint model's held-out r; per-voxel table (``joint_r``,
        ``joint_r2``, ``r2_without_<space>``, ``unique_<space>``, ``shared``); per-ROI
        table in long form (``measure``, ``space``, ``value``: mean over the ROI).

    Returns
    -------
    rois : DataFrame
        The per-ROI table that was written.
    """
    if len(feature_paths) != len(joint["spaces"]):
        raise ValueError(
            f"joint model '{joint['name']}' has {len(joint['spaces'])} spaces but "
            f"{len(feature_paths)} feature files were given; pass one per space, in order"
        )
    Y, groups, meta, arrays = load_brain(brain_path)
    Xs, names = [], []
    for space, path in zip(joint["spaces"], feature_paths):
        features, fmeta = io.load_arrays(path)
        if fmeta["model"] != space["model"] or fmeta["condition"] != space["condition"]:
            raise ValueError(
                f"feature file '{path}' holds {fmeta['model']}/{fmeta['condition']} but joint "
                f"model '{joint['name']}' expects {space['model']}/{space['condition']}; check "
                "the rule's inputs"
            )
        Xs.append(match_features(features, fmeta, meta, space["layer"], path))
        names.append(joint_space_name(space))
    Xs, params = design_matrices(dict(enumerate(Xs)), arrays, meta, params)
    Xs = [Xs[i] for i in range(len(names))]
    kwargs = _fit_kwargs(params, meta["kind"], groups, seed)
    usable = _usable(arrays, meta)
    result = variance_partition(Xs, Y[:, usable], names=names, n_iter=params["banded_iterations"],
                                **kwargs)
    columns = {
        "voxel": np.flatnonzero(usable),
        "roi_index": arrays["roi"][usable],
        "joint_r": result.joint.r,
        "joint_r2": result.joint.r2,
    }
    for i, name in enumerate(names):
        columns[f"r2_without_{name}"] = result.without[name].r2
        columns[f"unique_{name}"] = result.unique[i]
    columns["shared"] = result.shared
    voxels = _all_units(pd.DataFrame(columns), usable, arrays["roi"])
    labels = {"subject": meta["subject"], "task": meta["task"], "joint": joint["name"]}
    rois = _joint_roi_table(voxels, roi_masks(arrays, meta), names).assign(**labels)
    save_map(voxels["joint_r"].to_numpy()[:, None], arrays, meta, ["joint_r"], out_map)
    io.write_table(voxels.assign(**labels), out_voxels)
    io.write_table(rois, out_rois)
    for roi, sub in rois[rois["measure"] == "unique"].groupby("roi", sort=False):
        logger.info("ROI %s: unique R^2 %s", roi, dict(zip(sub["space"], sub["value"].round(4))))
    return rois


def _joint_roi_table(
    voxels: pd.DataFrame, rois: Mapping[str, np.ndarray], names: Sequence[str]
) -> pd.DataFrame:
    """Mean of every joint-model measure over each ROI, in long form."""
    measures = [("joint_r", "joint_r", ""), ("joint_r2", "joint_r2", ""), ("shared", "shared", "")]
    measures += [(f"unique_{n}", "unique", n) for n in names]
    measures += [(f"r2_without_{n}", "r2_without", n) for n in names]
    rows = []
    for roi, mask in rois.items():
        sel = voxels[mask & ~voxels["excluded"]]
        for column, measure, space in measures:
            value = float(sel[column].mean()) if len(sel) else np.nan
            rows.append(
                {
                    "roi": roi,
                    "measure": measure,
                    "space": space,
                    "value": value,
                    "n_voxels": len(sel),
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- group tables


def summarize_joint_tables(paths: Sequence[PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-subject joint-model ROI tables and one-sample t-tests of every measure across subjects.

    Returns
    -------
    subjects : DataFrame
        The per-subject tables, concatenated.
    group : DataFrame
        Per task, joint model, ROI, measure and space: ``mean``, ``sem``, ``t``, ``p``
        (against 0: e.g. ``unique`` > 0 is the joint-vs-reduced contrast), ``n_subjects``.
    """
    from ..group import collect_tables, group_ttest

    subjects = collect_tables(paths)
    group = group_ttest(subjects, "value", ["task", "joint", "roi", "measure", "space"])
    return subjects, group


def summarize_best_layer_tables(
    paths: Sequence[PathLike],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Nested best-layer scores per subject, group t-tests, and paired tests between models.

    Returns
    -------
    subjects : DataFrame
        One row per subject, task, model, condition and ROI: ``mean_r``, ``mean_r2``
        over outer folds, ``layer`` (modal choice), ``layers`` (choice per fold).
    group : DataFrame
        One-sample t-tests of ``mean_r`` across subjects per task, model, condition, ROI.
    paired : DataFrame
        Paired t-tests of ``mean_r`` between models (per task, condition, ROI) and
        between conditions (per task, model, ROI), with BH ``q`` over all rows.
    """
    from ..group import collect_tables, group_paired_ttest, group_ttest
    from .selection import summarize_layer_selection

    folds = collect_tables(paths)
    keys = ["subject", "task", "model", "condition"]
    subjects = pd.concat(
        [summarize_layer_selection(sub) for _, sub in folds.groupby(keys, sort=True)],
        ignore_index=True,
    )
    group = group_ttest(subjects, "mean_r", ["task", "model", "condition", "roi"])
    paired = pd.concat(
        [
            group_paired_ttest(subjects, "mean_r", "model", ["task", "condition", "roi"]),
            group_paired_ttest(subjects, "mean_r", "condition", ["task", "model", "roi"]),
        ],
        ignore_index=True,
    )
    paired["q"] = fdr_bh(paired["p"].to_numpy(dtype=float))
    return subjects, group, paired
