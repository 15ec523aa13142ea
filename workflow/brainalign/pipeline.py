"""File-level steps of the workflow: read labelled inputs, check they match, compute, write.

Each function here is what one Snakemake rule does. The science is in
:mod:`brainalign.encoding` and :mod:`brainalign.rsa`; this module pairs brain data and
features by their labels (never by file order) and writes labelled results.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from . import io

__all__ = [
    "layer_key",
    "match_features",
    "unmask",
    "run_fit_encoding",
    "run_brain_rdm",
    "run_model_rdms",
    "run_rsa",
    "roi_summary",
    "parse_entities",
    "group_maps_by_unit",
    "average_brain_rdms",
    "deepest_model_rdms",
]

logger = logging.getLogger(__name__)
PathLike = str | os.PathLike


def layer_key(layer: int) -> str:
    """Array name of a layer in a feature file (``layer-06``)."""
    return f"layer-{int(layer):02d}"


def _layer(arrays: Mapping[str, np.ndarray], layer: int, path: PathLike) -> np.ndarray:
    key = layer_key(layer)
    if key not in arrays:
        have = ", ".join(k for k in sorted(arrays) if k.startswith("layer-"))
        raise ValueError(
            f"feature file '{path}' has no {key}; it has {have}. Check 'models.<name>.layers' "
            "in the config and rerun extraction."
        )
    return arrays[key]


def match_features(
    features: Mapping[str, np.ndarray],
    features_meta: Mapping[str, Any],
    brain_meta: Mapping[str, Any],
    layer: int,
    path: PathLike = "<features>",
) -> np.ndarray:
    """Return one layer's features in the row order of the brain data.

    Concept-task rows are matched by concept name; naturalistic rows by run and
    TR count. A stimulus or run present on one side only is an error.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    """
    X = _layer(features, layer, path)
    task = brain_meta["task"]
    if task == "concepts":
        order = {name: i for i, name in enumerate(features_meta["stimuli"])}
        missing = [name for name in brain_meta["stimuli"] if name not in order]
        if missing:
            raise ValueError(
                f"feature file '{path}' lacks concepts present in the brain data: "
                f"{missing[:5]}; extract features for the same stimuli."
            )
        return X[[order[name] for name in brain_meta["stimuli"]]]
    if task == "naturalistic":
        if list(features_meta["runs"]) != list(brain_meta["runs"]):
            raise ValueError(
                f"feature file '{path}' covers runs {features_meta['runs']} but the brain data "
                f"has runs {brain_meta['runs']}; align both to the same runs."
            )
        if X.shape[0] != brain_meta["n_samples"]:
            raise ValueError(
                f"feature file '{path}' has {X.shape[0]} TRs but the brain data has "
                f"{brain_meta['n_samples']}; check naturalistic/runs.tsv against the BOLD files."
            )
        return X
    raise ValueError(f"brain data task must be 'concepts' or 'naturalistic'; got {task!r}")


def unmask(values: np.ndarray, ijk: np.ndarray, meta: Mapping[str, Any]) -> Any:
    """Put per-voxel ``values`` back into a 3D NIfTI image (0 outside the mask)."""
    import nibabel as nib

    volume = np.zeros(tuple(meta["shape"]), dtype=np.float32)
    volume[tuple(ijk.T)] = values
    img = nib.Nifti1Image(volume, np.asarray(meta["affine"], dtype=float))
    img.header.set_xyzt_units("mm")
    return img


def _brain(path: PathLike) -> tuple[np.ndarray, np.ndarray, dict[str, Any], dict[str, np.ndarray]]:
    arrays, meta = io.load_arrays(path)
    Y = arrays["patterns"] if meta["task"] == "concepts" else arrays["bold"]
    groups = np.arange(Y.shape[0]) if meta["task"] == "concepts" else arrays["run"]
    meta["n_samples"] = Y.shape[0]
    return Y.astype(np.float32), groups, meta, arrays


def roi_summary(values: pd.DataFrame, rois: Mapping[str, int]) -> pd.DataFrame:
    """Mean, median and count of per-voxel scores in each ROI."""
    rows = []
    for name, index in rois.items():
        sel = values[values["roi_index"] == index]
        rows.append(
            {
                "roi": name,
                "n_voxels": len(sel),
                "mean_r": float(sel["r"].mean()) if len(sel) else np.nan,
                "median_r": float(sel["r"].median()) if len(sel) else np.nan,
                "mean_r2": float(sel["r2"].mean()) if len(sel) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def run_fit_encoding(
    brain_path: PathLike,
    features_path: PathLike,
    *,
    layer: int,
    params: Mapping[str, Any],
    seed: int,
    out_map: PathLike,
    out_voxels: PathLike,
    out_rois: PathLike,
) -> pd.DataFrame:
    """Fit one subject x task x model x condition x layer encoding model and write its scores.

    Parameters
    ----------
    brain_path, features_path : path-like
        Preprocessed brain data and features (labelled safetensors files).
    layer : int
        Hidden-state index to use.
    params : mapping
        The config's ``encoding`` section (alphas, delays, outer_folds, inner_folds,
        n_targets_batch).
    seed : int
        Random state of the concept folds.
    out_map, out_voxels, out_rois : path-like
        NIfTI map of held-out r, per-voxel Parquet table, per-ROI Parquet summary.

    Returns
    -------
    rois : DataFrame
        The per-ROI summary that was written.
    """
    from .encoding import fit_encoding

    Y, groups, meta, arrays = _brain(brain_path)
    features, fmeta = io.load_arrays(features_path)
    X = match_features(features, fmeta, meta, layer, features_path)
    kind = "concepts" if meta["task"] == "concepts" else "timeseries"
    result = fit_encoding(
        X,
        Y,
        kind=kind,
        groups=groups,
        alphas=params["alphas"],
        delays=tuple(params["delays"]) if kind == "timeseries" else (0,),
        n_outer_folds=params["outer_folds"],
        n_inner_folds=params["inner_folds"],
        random_state=seed,
        n_targets_batch=params["n_targets_batch"],
    )
    voxels = pd.DataFrame(
        {
            "voxel": np.arange(Y.shape[1]),
            "roi_index": arrays["roi"],
            "r": result.r,
            "r2": result.r2,
            "alpha": np.exp(np.log(result.alpha).mean(axis=0)),
        }
    )
    labels = {
        "subject": meta["subject"],
        "task": meta["task"],
        "model": fmeta["model"],
        "condition": fmeta["condition"],
        "layer": int(layer),
    }
    rois = roi_summary(voxels, meta["rois"]).assign(**labels)
    io.save_nifti(unmask(result.r.astype(np.float32), arrays["ijk"], meta), out_map)
    io.write_table(voxels.assign(**labels), out_voxels)
    io.write_table(rois, out_rois)
    for row in rois.itertuples():
        logger.info("ROI %s: mean held-out r = %.3f over %d voxels", row.roi, row.mean_r, row.n_voxels)
    return rois


def run_brain_rdm(patterns_path: PathLike, roi: str, *, metric: str, out: PathLike) -> np.ndarray:
    """Compute one subject's RDM of concept patterns in one ROI and write it."""
    from .rsa import compute_rdm

    arrays, meta = io.load_arrays(patterns_path)
    if roi not in meta["rois"]:
        raise ValueError(
            f"ROI '{roi}' is not in the atlas of '{patterns_path}' (it has "
            f"{', '.join(meta['rois'])}); fix 'dataset.rois' in the config."
        )
    voxels = arrays["roi"] == meta["rois"][roi]
    rdm = compute_rdm(arrays["patterns"][:, voxels], metric=metric)
    logger.info("ROI %s: %d voxels, %d concepts, metric %s", roi, voxels.sum(), len(meta["stimuli"]), metric)
    io.save_arrays(
        out,
        {"rdm": rdm.astype(np.float64)},
        {"subject": meta["subject"], "roi": roi, "metric": metric, "stimuli": meta["stimuli"],
         "n_voxels": int(voxels.sum())},
    )
    return rdm


def run_model_rdms(features_path: PathLike, *, metric: str, out: PathLike) -> None:
    """Compute the RDM of every layer of a concept feature file and write them together."""
    from .rsa import compute_rdm

    features, meta = io.load_arrays(features_path)
    rdms = {key: compute_rdm(features[key], metric=metric) for key in sorted(features) if key.startswith("layer-")}
    io.save_arrays(out, rdms, {**meta, "metric": metric})


def run_rsa(brain_rdm: PathLike, model_rdms: PathLike, *, layer: int, method: str, out: PathLike) -> pd.DataFrame:
    """Compare one subject x ROI brain RDM with one model layer's RDM and write the score."""
    from scipy.spatial.distance import squareform

    from .rsa import compare_rdms

    brain, bmeta = io.load_arrays(brain_rdm)
    models, mmeta = io.load_arrays(model_rdms)
    rdm = _layer(models, layer, model_rdms)
    order = {name: i for i, name in enumerate(mmeta["stimuli"])}
    missing = [name for name in bmeta["stimuli"] if name not in order]
    if missing:
        raise ValueError(f"model RDMs '{model_rdms}' lack concepts {missing[:5]} of '{brain_rdm}'.")
    idx = [order[name] for name in bmeta["stimuli"]]
    rdm = squareform(squareform(rdm, checks=False)[np.ix_(idx, idx)], checks=False)
    score = compare_rdms(brain["rdm"], rdm, method=method)
    table = pd.DataFrame(
        [{"subject": bmeta["subject"], "roi": bmeta["roi"], "model": mmeta["model"],
          "condition": mmeta["condition"], "layer": int(layer), "metric": bmeta["metric"],
          "comparison": method, "score": float(score), "n_voxels": bmeta["n_voxels"]}]
    )
    io.write_table(table, out)
    logger.info("RSA %s vs %s layer %d: %s = %.4f", bmeta["roi"], mmeta["model"], layer, method, score)
    return table


def parse_entities(path: PathLike) -> dict[str, str]:
    """BIDS-style ``key-value`` entities of a file name (``sub-01_model-clip...``)."""
    stem = os.path.basename(str(path)).split(".")[0]
    return dict(part.split("-", 1) for part in stem.split("_") if "-" in part)


def group_maps_by_unit(paths: list[PathLike], deepest_only: bool = True) -> dict[str, list[PathLike]]:
    """Group per-subject map files by model / condition (/ layer), from their file names.

    With ``deepest_only`` only each model's deepest analysed layer is kept (a display
    choice, fixed in advance - not a selection by score).
    """
    entities = [parse_entities(p) for p in paths]
    deepest: dict[str, int] = {}
    for ent in entities:
        deepest[ent["model"]] = max(deepest.get(ent["model"], -1), int(ent["layer"]))
    groups: dict[str, list[PathLike]] = {}
    for path, ent in zip(paths, entities):
        if deepest_only and int(ent["layer"]) != deepest[ent["model"]]:
            continue
        label = f"{ent['model']} / {ent['cond']} / layer {int(ent['layer'])}"
        groups.setdefault(label, []).append(path)
    return dict(sorted(groups.items()))


def average_brain_rdms(paths: list[PathLike]) -> dict[str, np.ndarray]:
    """Average brain RDMs across subjects, per ROI (stimulus orders must agree)."""
    by_roi: dict[str, list[np.ndarray]] = {}
    reference: dict[str, list[str]] = {}
    for path in paths:
        arrays, meta = io.load_arrays(path)
        ref = reference.setdefault(meta["roi"], meta["stimuli"])
        if ref != meta["stimuli"]:
            raise ValueError(f"brain RDM '{path}' orders its concepts differently from the other subjects")
        by_roi.setdefault(meta["roi"], []).append(arrays["rdm"])
    return {roi: np.mean(rdms, axis=0) for roi, rdms in by_roi.items()}


def deepest_model_rdms(paths: list[PathLike]) -> dict[str, np.ndarray]:
    """The RDM of the deepest analysed layer of each model / condition file."""
    out = {}
    for path in paths:
        arrays, meta = io.load_arrays(path)
        key = max(k for k in arrays if k.startswith("layer-"))
        out[f"{meta['model']} / {meta['condition']} / {key}"] = arrays[key]
    return out
