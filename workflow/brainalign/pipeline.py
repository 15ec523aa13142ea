"""File-level steps of the workflow: read labelled inputs, check they match, compute, write.

Each function here is what one Snakemake rule does. The science is in
:mod:`brainalign.encoding`; this module pairs brain data and
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
    "roi_summary",
    "parse_entities",
    "group_maps_by_unit",
    "map_sidecar",
    "kept_rows",
    "map_image",
    "group_surface_maps_by_unit",
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

    Concept patterns are matched by stimulus name, event-locked responses (epochs) by event
    id; time series by run and TR count (every
    TR of every run, before volumes dropped from the brain data, see :func:`kept_rows`). A
    stimulus or run present on one side only is an error.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        For time series, n_samples counts every acquired TR.
    """
    X = _layer(features, layer, path)
    kind = _kind(brain_meta)
    if kind == "concepts":
        order = {name: i for i, name in enumerate(features_meta["stimuli"])}
        missing = [name for name in brain_meta["stimuli"] if name not in order]
        if missing:
            raise ValueError(
                f"feature file '{path}' lacks concepts present in the brain data: "
                f"{missing[:5]}; extract features for the same stimuli."
            )
        return X[[order[name] for name in brain_meta["stimuli"]]]
    if kind == "epochs":
        order = {name: i for i, name in enumerate(features_meta["stimuli"])}
        missing = [name for name in brain_meta["events"] if name not in order]
        if missing:
            raise ValueError(
                f"feature file '{path}' lacks events present in the brain data: {missing[:5]}; "
                "extract features from the same naturalistic/words.tsv and frames.tsv."
            )
        return X[[order[name] for name in brain_meta["events"]]]
    if kind == "timeseries":
        if list(features_meta["runs"]) != list(brain_meta["runs"]):
            raise ValueError(
                f"feature file '{path}' covers runs {features_meta['runs']} but the brain data "
                f"has runs {brain_meta['runs']}; list the runs 1..n in (session, run) order in "
                "naturalistic/runs.tsv."
            )
        n_acquired = int(sum(brain_meta.get("n_volumes", [brain_meta["n_samples"]])))
        if X.shape[0] != n_acquired:
            raise ValueError(
                f"feature file '{path}' has {X.shape[0]} TRs but the brain data has "
                f"{n_acquired}; check naturalistic/runs.tsv (n_trs) against the BOLD files."
            )
        return X
    raise ValueError(
        f"brain data kind must be 'concepts', 'timeseries' or 'epochs'; got {kind!r}"
    )


def _kind(brain_meta: Mapping[str, Any]) -> str:
    """``concepts`` or ``timeseries`` (files of the first version named the task instead)."""
    if "kind" in brain_meta:
        return brain_meta["kind"]
    return {"concepts": "concepts", "naturalistic": "timeseries"}.get(brain_meta["task"], "?")


def kept_rows(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> np.ndarray | None:
    """Rows of the acquired TRs that the brain time series kept, or None if it kept all.

    Readers that drop volumes (non-steady-state, scrubbing) store ``volume`` (the index of
    each kept TR within its run) and ``meta['n_volumes']`` (TRs acquired per run).

    Returns
    -------
    rows : int array of shape (n_kept,) or None
    """
    if "volume" not in arrays or "n_volumes" not in meta:
        return None
    offsets = np.concatenate([[0], np.cumsum(meta["n_volumes"])[:-1]])
    position = {run: k for k, run in enumerate(meta["runs"])}
    rows = offsets[[position[int(r)] for r in arrays["run"]]] + arrays["volume"]
    if rows.size == int(sum(meta["n_volumes"])):
        return None
    return rows.astype(np.int64)


def unmask(values: np.ndarray, ijk: np.ndarray, meta: Mapping[str, Any]) -> Any:
    """Put per-voxel ``values`` back into a NIfTI image (0 outside the mask).

    ``values`` of shape (n_voxels,) gives a 3D image; (n_voxels, n_volumes) a 4D one.
    """
    import nibabel as nib

    values = np.asarray(values, dtype=np.float32)
    volume = np.zeros(tuple(meta["shape"]) + values.shape[1:], dtype=np.float32)
    volume[tuple(ijk.T)] = values
    img = nib.Nifti1Image(volume, np.asarray(meta["affine"], dtype=float))
    img.header.set_xyzt_units("mm")
    return img


def map_image(values: np.ndarray, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
              names: list[str]) -> Any:
    """Per-unit maps as an image: NIfTI for voxels, CIFTI-2 dense scalars for vertices.

    Parameters
    ----------
    values : array of shape (n_units, n_maps)
    arrays, meta : the brain data's (geometry labels)
    names : one name per map (layers)
    """
    values = np.asarray(values, dtype=np.float32).reshape(len(values), -1)
    if meta.get("geometry", "volume") == "volume":
        return unmask(values, arrays["ijk"], meta)
    from .datasets.surface import surface_map_image

    return surface_map_image(values, arrays["hemi"], arrays["vertex"], meta["n_vertices"], names)


def roi_summary(values: pd.DataFrame, rois: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Mean, median and count of per-unit scores in each ROI.

    ``values`` has one row per unit in the brain data's order; ``rois`` maps ROI names to
    boolean memberships over the units (:func:`brainalign.datasets.roi_mask`: ROIs may
    overlap). Units marked ``excluded`` (flagged by preprocessing) are left out and counted
    in ``n_excluded``.
    """
    rows = []
    excluded = values["excluded"].to_numpy(bool) if "excluded" in values else np.zeros(len(values), bool)
    for name, mask in rois.items():
        mask = np.asarray(mask, dtype=bool)
        sel = values[mask & ~excluded]
        rows.append(
            {
                "roi": name,
                "n_voxels": len(sel),
                "n_excluded": int((mask & excluded).sum()),
                "mean_r": float(sel["r"].mean()) if len(sel) else np.nan,
                "median_r": float(sel["r"].median()) if len(sel) else np.nan,
                "mean_r2": float(sel["r2"].mean()) if len(sel) else np.nan,
            }
        )
    return pd.DataFrame(rows)


def parse_entities(path: PathLike) -> dict[str, str]:
    """BIDS-style ``key-value`` entities of a file name (``sub-01_model-clip...``)."""
    stem = os.path.basename(str(path)).split(".")[0]
    return dict(part.split("-", 1) for part in stem.split("_") if "-" in part)


def group_maps_by_unit(paths: list[PathLike], deepest_only: bool = True) -> dict[str, list[Any]]:
    """Group per-subject encoding maps by model / condition / layer, as 3D images.

    Each path is a 4D map of :func:`brainalign.encoding.steps.run_fit_encoding` (one
    volume per layer) next to its JSON sidecar, which lists the layers in volume order;
    model and condition come from the file name. With ``deepest_only`` only each model's
    deepest analysed layer is kept (a display choice, fixed in advance - not a selection
    by score).

    Returns
    -------
    dict
        ``"model / condition / layer L"`` -> the subjects' 3D images of that layer.
    """
    from nilearn import image

    groups: dict[str, list[Any]] = {}
    for path in paths:
        entities = parse_entities(path)
        layers = io.read_json(map_sidecar(path))["layers"]
        keep = [max(layers)] if deepest_only else layers
        for layer in keep:
            label = f"{entities['model']} / {entities['cond']} / layer {int(layer)}"
            groups.setdefault(label, []).append(image.index_img(str(path), layers.index(layer)))
    return dict(sorted(groups.items()))


def group_surface_maps_by_unit(
    paths: list[PathLike], deepest_only: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Subject-average surface maps by model / condition / layer, for the figure.

    Each path is a CIFTI-2 dense scalar map of :func:`map_image` (one map per layer, named
    ``layer-XX``); vertices without a unit in a subject are left out of that subject's mean.

    Returns
    -------
    dict
        ``"model / condition / layer L"`` -> (left, right) arrays of shape (n_vertices_h,).
    """
    from .datasets.surface import read_surface_map

    sums: dict[str, list[list[np.ndarray]]] = {}
    for path in paths:
        entities = parse_entities(path)
        maps, names = read_surface_map(path)
        layers = [int(name.split("-")[1]) for name in names]
        for layer in [max(layers)] if deepest_only else layers:
            label = f"{entities['model']} / {entities['cond']} / layer {layer}"
            k = layers.index(layer)
            sums.setdefault(label, [[], []])
            for h, hemi in enumerate(("L", "R")):
                sums[label][h].append(maps[hemi][:, k])
    return {
        label: tuple(np.nanmean(np.stack(v), axis=0) for v in halves)
        for label, halves in sorted(sums.items())
    }


def save_map(values: np.ndarray, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
             names: list[str], path: PathLike) -> None:
    """Write per-unit maps: NIfTI (voxels), CIFTI-2 dense scalars (vertices), or, for
    electrodes x time bins, a TSV with one row per unit (channel, bin, its window, x, y, z,
    region) and one column per map.

    Parameters
    ----------
    values : array of shape (n_units, n_maps)
    arrays, meta : the brain data's (geometry labels)
    names : one name per map (layers)
    path : where to write, atomically
    """
    values = np.asarray(values, dtype=np.float32).reshape(len(values), -1)
    if meta.get("geometry", "volume") != "electrodes":
        io.save_nifti(map_image(values, arrays, meta, names), path)
        return
    io.write_table(pd.concat([electrode_labels(arrays, meta),
                              pd.DataFrame(values, columns=names)], axis=1), path)


def electrode_labels(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> pd.DataFrame:
    """One row per electrode x time-bin unit: channel, bin, bin_start, bin_stop, x, y, z, region."""
    channel, bin_ = np.asarray(arrays["channel"]), np.asarray(arrays["bin"])
    bins = np.asarray(meta["bins"], dtype=float).reshape(-1, 2)
    xyz = np.asarray(arrays["xyz"], dtype=float)
    return pd.DataFrame({
        "channel": np.asarray(meta["channels"], dtype=object)[channel],
        "bin": bin_, "bin_start": bins[bin_, 0], "bin_stop": bins[bin_, 1],
        "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2],
        "region": np.asarray(meta["regions"], dtype=object)[channel],
    })


def map_sidecar(path: PathLike) -> str:
    """The JSON sidecar of a map: ``x_statmap.nii.gz`` (``.dscalar.nii``, ``.tsv``) -> ``x_statmap.json``."""
    path = str(path)
    for suffix in (".dscalar.nii", ".nii.gz", ".nii", ".tsv"):
        if path.endswith(suffix):
            return path[: -len(suffix)] + ".json"
    raise ValueError(f"'{path}' is not a NIfTI file name (.nii or .nii.gz)")
