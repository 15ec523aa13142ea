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


def map_sidecar(path: PathLike) -> str:
    """The JSON sidecar of a NIfTI map: ``x_statmap.nii.gz`` -> ``x_statmap.json``."""
    path = str(path)
    for suffix in (".nii.gz", ".nii"):
        if path.endswith(suffix):
            return path[: -len(suffix)] + ".json"
    raise ValueError(f"'{path}' is not a NIfTI file name (.nii or .nii.gz)")
