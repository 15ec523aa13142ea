"""Masking and cleaning of BOLD data with nilearn, into labelled voxel arrays.

Both tasks keep every voxel of the brain mask (``roi`` 0 marks voxels outside the atlas ROIs)
in the mask's C order, which is the order of ``ijk`` and of :func:`nilearn.masking.apply_mask`.

* Naturalistic task, per run: mask, detrend, high-pass (cosine drift regressors by default),
  regress the confounds, z-score each voxel; runs are then concatenated.
* Concept task, per run: mask the single-trial volumes, z-score each voxel across the run's
  trials, average the trials of each concept; the run patterns are then averaged.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import read_json, read_table

__all__ = ["load_atlas", "preprocess_naturalistic", "preprocess_concepts", "cosine_drift"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
_RUN = re.compile(r"_run-(\d+)_")


# ----------------------------------------------------------------------------- grids
def _same_grid(img_a, img_b) -> bool:
    return img_a.shape[:3] == img_b.shape[:3] and np.allclose(img_a.affine, img_b.affine, atol=1e-3)


def _check_grid(img, path: PathLike, mask_img, mask_file: PathLike, what: str) -> None:
    if not _same_grid(img, mask_img):
        raise ValueError(
            f"{what} '{path}' has grid shape {tuple(img.shape[:3])} (affine diagonal "
            f"{np.diag(img.affine)[:3].round(3).tolist()}) but mask '{mask_file}' has shape "
            f"{tuple(mask_img.shape[:3])} (affine diagonal "
            f"{np.diag(mask_img.affine)[:3].round(3).tolist()}); resample it onto the mask grid."
        )


def _read_labels(labels_file: PathLike) -> dict[str, int]:
    table = read_table(labels_file)
    if not {"index", "name"} <= set(table.columns) or (table["index"] <= 0).any():
        raise ValueError(
            f"atlas labels '{labels_file}' must have columns 'index' (int > 0) and 'name'; got "
            f"columns {list(table.columns)}. Write one row per ROI."
        )
    if table["name"].duplicated().any() or table["index"].duplicated().any():
        raise ValueError(
            f"atlas labels '{labels_file}' must have unique indices and names; "
            "got duplicates. Remove them."
        )
    return {str(name): int(index) for name, index in zip(table["name"], table["index"])}


def load_atlas(
    atlas_file: PathLike, labels_file: PathLike, mask_file: PathLike
) -> tuple[Any, Any, dict[str, int]]:
    """Load the brain mask, the ROI atlas on the same grid, and the ROI names.

    Parameters
    ----------
    atlas_file : str or path-like
        3D integer label image (0 = background).
    labels_file : str or path-like
        TSV with columns ``index`` and ``name``.
    mask_file : str or path-like
        3D brain mask; non-zero voxels are in the brain.

    Returns
    -------
    mask_img : Nifti1Image
        uint8 0/1 mask.
    atlas_img : Nifti1Image
        int32 labels, 0 outside the mask.
    rois : dict of str to int
        ROI name -> atlas index.
    """
    import nibabel as nib

    mask_src, atlas_src = nib.load(str(mask_file)), nib.load(str(atlas_file))
    _check_grid(atlas_src, atlas_file, mask_src, mask_file, "atlas")
    mask = np.asarray(mask_src.dataobj) > 0
    if mask.ndim != 3 or not mask.any():
        raise ValueError(
            f"mask '{mask_file}' must be a 3D image with non-zero voxels; got shape "
            f"{mask.shape} with {int(mask.sum())} voxels. Pass a brain mask."
        )
    labels = np.where(mask, np.rint(np.asarray(atlas_src.dataobj)), 0).astype(np.int32)
    rois = _read_labels(labels_file)
    for name, index in rois.items():
        logger.info(
            "atlas ROI %s (index %d): %d voxels in the mask",
            name,
            index,
            int((labels == index).sum()),
        )
    unlisted = sorted(set(np.unique(labels)) - set(rois.values()) - {0})
    if unlisted:
        logger.warning(
            "atlas '%s' labels %s are not in '%s'; kept as-is", atlas_file, unlisted, labels_file
        )
    return (
        nib.Nifti1Image(mask.astype(np.uint8), mask_src.affine),
        nib.Nifti1Image(labels, mask_src.affine),
        rois,
    )


def _voxel_labels(mask_img, atlas_img) -> tuple[np.ndarray, np.ndarray]:
    """(roi int32 (n_voxels,), ijk int32 (n_voxels, 3)) in the mask's C order."""
    mask = np.asarray(mask_img.dataobj) > 0
    roi = np.asarray(atlas_img.dataobj)[mask].astype(np.int32)
    return roi, np.argwhere(mask).astype(np.int32)


def _mask_run(bold_file: PathLike, mask_img, mask_file: PathLike) -> np.ndarray:
    """Masked data of one 4D run, array of shape (n_volumes, n_voxels), float64."""
    import nibabel as nib
    from nilearn.masking import apply_mask

    img = nib.load(str(bold_file))
    _check_grid(img, bold_file, mask_img, mask_file, "BOLD image")
    if img.ndim != 4:
        raise ValueError(
            f"BOLD image '{bold_file}' must be 4D (x, y, z, volumes); got shape "
            f"{img.shape}. Pass the 4D run."
        )
    return apply_mask(img, mask_img, dtype="f").astype(np.float64)


def _run_label(path: PathLike, position: int) -> int:
    match = _RUN.search(Path(path).name)
    return int(match.group(1)) if match else position + 1


# ----------------------------------------------------------------------------- naturalistic
def _sidecar(bold_file: PathLike) -> Path:
    name = Path(bold_file).name
    stem = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else Path(name).stem
    return Path(bold_file).with_name(stem + ".json")


def _check_tr(bold_file: PathLike, tr: float) -> None:
    """Compare the sidecar's RepetitionTime with ``tr``; a missing sidecar is logged."""
    sidecar = _sidecar(bold_file)
    if not sidecar.exists():
        logger.warning("no sidecar '%s'; trusting tr=%.4g s", sidecar, tr)
        return
    found = read_json(sidecar).get("RepetitionTime")
    if found is None or not np.isclose(float(found), tr, rtol=1e-3):
        raise ValueError(
            f"RepetitionTime {found} s in '{sidecar}' does not match tr={tr} s; pass the "
            "dataset's TR (config) or fix the sidecar."
        )


def _read_confounds(path: PathLike, columns: Sequence[str] | None, n_volumes: int) -> np.ndarray:
    """Selected confound columns, array of shape (n_volumes, n_confounds); NaN -> column mean."""
    table = read_table(path)
    columns = list(table.columns) if columns is None else list(columns)
    missing = [c for c in columns if c not in table.columns]
    if missing or len(table) != n_volumes:
        raise ValueError(
            f"confounds '{path}' must have columns {missing or columns} and {n_volumes} rows "
            f"(one per volume); got columns {list(table.columns)} and {len(table)} rows. "
            "Pass matching confound files or column names."
        )
    values = table[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    n_nan = int(np.isnan(values).sum())
    if n_nan:
        logger.info("confounds '%s': filled %d missing values with the column mean", path, n_nan)
        values = np.where(np.isnan(values), np.nanmean(values, axis=0), values)
    if np.isnan(values).any():
        raise ValueError(
            f"confounds '{path}' has a column with no numeric value; got "
            f"{columns}. Drop it via the confounds parameter."
        )
    return values


def cosine_drift(n_volumes: int, tr: float, high_pass: float) -> np.ndarray:
    """DCT-II drift regressors below ``high_pass`` (SPM/fMRIPrep style), without the constant.

    Parameters
    ----------
    n_volumes : int
    tr : float
        Repetition time (s).
    high_pass : float
        Cutoff (Hz): ``floor(2 * n_volumes * tr * high_pass)`` regressors.

    Returns
    -------
    drift : array of shape (n_volumes, n_regressors)
    """
    order = min(n_volumes - 1, int(np.floor(2 * n_volumes * tr * high_pass)))
    time = np.arange(n_volumes)[:, None] + 0.5
    return np.sqrt(2.0 / n_volumes) * np.cos(np.pi / n_volumes * time * np.arange(1, order + 1))


def _clean_run(data, conf, *, tr, high_pass, detrend, standardize, high_pass_filter):
    """nilearn.signal.clean on one run; array of shape (n_volumes, n_voxels).

    Cosine regressors are built here and passed as confounds: nilearn's own ``filter='cosine'``
    silently drops them when a confound correlates > 0.9 with one (motion random walks do).
    """
    from nilearn import signal

    butterworth = False
    if high_pass_filter == "cosine":
        if high_pass:
            conf = np.hstack([conf, cosine_drift(len(data), tr, high_pass)])
    elif high_pass_filter == "butterworth":
        butterworth = bool(high_pass)
    elif high_pass_filter is None:
        pass
    else:
        raise ValueError(
            f"parameter 'high_pass_filter' must be 'cosine', 'butterworth' or None; "
            f"got {high_pass_filter!r}. Pick one of those."
        )
    with warnings.catch_warnings():  # nilearn 0.13 notes a future change of confound scaling
        warnings.filterwarnings(
            "ignore", message=".*confounds will be standardized", category=DeprecationWarning
        )
        return signal.clean(
            data,
            detrend=detrend,
            standardize="zscore_sample" if standardize else None,
            confounds=conf if conf.shape[1] else None,
            standardize_confounds=True,
            filter="butterworth" if butterworth else False,
            high_pass=high_pass if butterworth else None,
            t_r=tr,
        )


def _check_run_lists(first: Sequence, second: Sequence, names: tuple[str, str]) -> None:
    if isinstance(first, (str, os.PathLike)) or len(first) == 0 or len(first) != len(second):
        raise ValueError(
            f"parameters '{names[0]}' and '{names[1]}' must be non-empty lists of equal length "
            f"(one file per run); got {len(first)} and {len(second)}. Pass one per run."
        )


def preprocess_naturalistic(
    bold_files: Sequence[PathLike],
    confounds_files: Sequence[PathLike],
    mask_file: PathLike,
    atlas_file: PathLike,
    labels_file: PathLike,
    *,
    tr: float,
    high_pass: float | None = 0.01,
    detrend: bool = True,
    confounds: Sequence[str] | None = None,
    standardize: bool = True,
    subject: str,
    high_pass_filter: str | None = "cosine",
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Mask and clean naturalistic runs; concatenate them in the given order.

    Parameters
    ----------
    bold_files, confounds_files : list of path-like
        One 4D BOLD image and one confounds TSV per run, in run order. The BIDS sidecar next to
        each image (``*_bold.json``) must give ``RepetitionTime`` equal to ``tr``.
    mask_file, atlas_file, labels_file : path-like
        Brain mask, ROI atlas on the mask grid, and its ``index``/``name`` TSV.
    tr : float
        Repetition time (s).
    high_pass : float or None
        High-pass cutoff (Hz); None or 0 disables it.
    detrend : bool
        Remove each run's linear trend (from data and confounds).
    confounds : list of str or None
        Confound columns to regress; None = every column, [] = none.
    standardize : bool
        Z-score each voxel per run (sample std, nilearn's ``'zscore_sample'``).
    subject : str
        Subject label, recorded in the metadata.
    high_pass_filter : {'cosine', 'butterworth', None}
        How ``high_pass`` is applied: cosine drift regressors fitted together with the
        confounds (cleaned data orthogonal to both), or a Butterworth filter.

    Returns
    -------
    arrays : dict
        ``bold`` float32 (n_trs_total, n_voxels), ``run`` int32 (n_trs_total,), ``roi`` int32
        (n_voxels,), ``ijk`` int32 (n_voxels, 3).
    metadata : dict
        ``subject``, ``task``, ``runs``, ``tr``, ``rois``, ``affine``, ``shape``, and the
        cleaning settings.
    """
    _check_run_lists(bold_files, confounds_files, ("bold_files", "confounds_files"))
    if not (isinstance(tr, (int, float)) and tr > 0):
        raise ValueError(f"parameter 'tr' must be a positive number of seconds; got {tr!r}")
    mask_img, atlas_img, rois = load_atlas(atlas_file, labels_file, mask_file)
    runs, blocks = [], []
    for position, (bold_file, conf_file) in enumerate(zip(bold_files, confounds_files)):
        _check_tr(bold_file, tr)
        data = _mask_run(bold_file, mask_img, mask_file)
        conf = _read_confounds(conf_file, confounds, len(data))
        blocks.append(
            _clean_run(
                data,
                conf,
                tr=tr,
                high_pass=high_pass,
                detrend=detrend,
                standardize=standardize,
                high_pass_filter=high_pass_filter,
            )
        )
        runs.append(_run_label(bold_file, position))
        logger.info(
            "sub-%s run %d: %d volumes x %d voxels; regressed %d confounds, detrend=%s, "
            "high-pass %s Hz (%s), z-score=%s",
            subject,
            runs[-1],
            *data.shape,
            conf.shape[1],
            detrend,
            high_pass,
            high_pass_filter,
            standardize,
        )
    roi, ijk = _voxel_labels(mask_img, atlas_img)
    arrays = {
        "bold": np.concatenate(blocks).astype(np.float32),
        "roi": roi,
        "ijk": ijk,
        "run": np.repeat(np.array(runs, dtype=np.int32), [len(b) for b in blocks]),
    }
    metadata = {
        "subject": subject,
        "task": "naturalistic",
        "runs": runs,
        "tr": float(tr),
        "rois": rois,
        "affine": mask_img.affine.tolist(),
        "shape": list(mask_img.shape),
        "high_pass": high_pass,
        "high_pass_filter": high_pass_filter,
        "detrend": detrend,
        "confounds": None if confounds is None else list(confounds),
        "standardize": standardize,
    }
    return arrays, metadata


# ----------------------------------------------------------------------------- concepts
def _check_events(events: pd.DataFrame, events_file: PathLike, n_volumes: int) -> pd.DataFrame:
    if "concept" not in events.columns or len(events) != n_volumes:
        raise ValueError(
            f"events '{events_file}' must have a 'concept' column and one row per volume "
            f"({n_volumes}); got columns {list(events.columns)} and {len(events)} rows. "
            "Pass the events file of this run."
        )
    events["concept"] = events["concept"].astype(str)
    return events


def _concept_means(data, events, concepts, events_file) -> tuple[np.ndarray, np.ndarray]:
    """Average z-scored trials per concept: (n_concepts, n_voxels) and trials per concept."""
    present = set(events["concept"])
    missing, unknown = sorted(set(concepts) - present), sorted(present - set(concepts))
    if missing or unknown:
        raise ValueError(
            f"events '{events_file}' must contain every concept exactly as listed; missing "
            f"{missing[:5]}, unknown {unknown[:5]}. Check the events or the concept list."
        )
    std = data.std(axis=0, ddof=1) if len(data) > 1 else np.zeros(data.shape[1])
    zscored = (data - data.mean(axis=0)) / np.where(std > 0, std, 1.0)  # as nilearn zscore_sample
    codes = pd.Categorical(events["concept"], categories=concepts).codes
    design = np.zeros((len(concepts), len(codes)))
    design[codes, np.arange(len(codes))] = 1.0
    counts = design.sum(axis=1)
    return design @ zscored / counts[:, None], counts.astype(int)


def preprocess_concepts(
    bold_files: Sequence[PathLike],
    events_files: Sequence[PathLike],
    mask_file: PathLike,
    atlas_file: PathLike,
    labels_file: PathLike,
    *,
    subject: str,
    concepts: Sequence[str] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Concept patterns from single-trial volumes: z-score per run, average per concept.

    Parameters
    ----------
    bold_files, events_files : list of path-like
        Per run, a 4D image with one volume per trial and its events TSV (column ``concept``,
        one row per volume, in order).
    mask_file, atlas_file, labels_file : path-like
        Brain mask, ROI atlas on the mask grid, and its ``index``/``name`` TSV.
    subject : str
        Subject label, recorded in the metadata.
    concepts : list of str or None
        Row order of the patterns (e.g. the stimuli's ``concepts.tsv``); None = sorted unique
        concepts of the events. Every run must show every concept.

    Returns
    -------
    arrays : dict
        ``patterns`` float32 (n_concepts, n_voxels) = mean over runs of ``patterns_by_run``
        float32 (n_runs, n_concepts, n_voxels); ``roi`` int32 (n_voxels,), ``ijk`` int32
        (n_voxels, 3).
    metadata : dict
        ``subject``, ``task``, ``stimuli``, ``rois``, ``affine``, ``shape``, ``runs``,
        ``n_repeats`` (trials per concept over all runs: an int, or a list in stimuli order
        when concepts have unequal counts).
    """
    _check_run_lists(bold_files, events_files, ("bold_files", "events_files"))
    mask_img, atlas_img, rois = load_atlas(atlas_file, labels_file, mask_file)
    tables = [read_table(path) for path in events_files]
    if concepts is None:
        concepts = sorted({str(c) for table in tables for c in table.get("concept", [])})
    concepts = [str(c) for c in concepts]
    by_run, counts, runs = [], [], []
    for position, (bold_file, events_file) in enumerate(zip(bold_files, events_files)):
        data = _mask_run(bold_file, mask_img, mask_file)
        events = _check_events(tables[position], events_file, len(data))
        means, n_trials = _concept_means(data, events, concepts, events_file)
        by_run.append(means)
        counts.append(n_trials)
        runs.append(_run_label(bold_file, position))
    repeats = np.sum(counts, axis=0)
    n_repeats = int(repeats[0]) if (repeats == repeats[0]).all() else repeats.tolist()
    logger.info(
        "sub-%s concepts: %d runs, %d concepts x %d voxels, trials z-scored per run, "
        "%s trials averaged per concept",
        subject,
        len(runs),
        len(concepts),
        by_run[0].shape[1],
        n_repeats,
    )
    roi, ijk = _voxel_labels(mask_img, atlas_img)
    stacked = np.stack(by_run)
    arrays = {
        "patterns": stacked.mean(axis=0).astype(np.float32),
        "roi": roi,
        "ijk": ijk,
        "patterns_by_run": stacked.astype(np.float32),
    }
    metadata = {
        "subject": subject,
        "task": "concepts",
        "stimuli": concepts,
        "rois": rois,
        "affine": mask_img.affine.tolist(),
        "shape": list(mask_img.shape),
        "runs": runs,
        "n_repeats": n_repeats,
    }
    return arrays, metadata
