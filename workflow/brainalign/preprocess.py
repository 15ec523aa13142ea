"""Masking and cleaning of BOLD data with nilearn: the steps the dataset readers compose.

:func:`brainalign.datasets.bids_preprocess.preprocess_task` puts these together for one
subject x task; this module holds the steps themselves.

* Geometry: :func:`load_atlas` reads the brain mask and the ROI atlas on its grid;
  :func:`voxel_labels` gives every voxel of the mask (``roi`` 0 marks voxels outside the
  atlas ROIs) in the mask's C order, which is the order of ``ijk`` and of
  :func:`mask_run` (:func:`nilearn.masking.apply_mask`).
* Naturalistic runs (:func:`clean_run`): drop the non-steady-state (and scrubbed) volumes,
  detrend, high-pass (:func:`cosine_drift` regressors, unless fMRIPrep's own cosine
  columns are among the confounds), regress the confounds chosen by
  :mod:`brainalign.datasets.confounds`, z-score each unit.
* Single trials of one run (:func:`concept_means`): z-score each unit across the run's
  trials, average the trials of each concept.

Units (voxels or vertices) whose signal is NaN / infinite or constant are neither dropped
nor silently cleaned by :func:`clean_run`: they are kept in place (so every run has the
same units and the labels stay valid), set to exactly 0 in the output, and listed in the
``qc`` record (``nan_units``, ``constant_units``: unit indices, from :func:`flag_units`)
with a warning in the log.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .io import read_table

__all__ = [
    "load_atlas",
    "load_nifti",
    "mask_run",
    "voxel_labels",
    "cosine_drift",
    "flag_units",
    "clean_run",
    "concept_means",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


# ----------------------------------------------------------------------------- grids
def _same_grid(img_a, img_b) -> bool:
    return img_a.shape[:3] == img_b.shape[:3] and np.allclose(img_a.affine, img_b.affine, atol=1e-3)


def _check_grid(img, path: PathLike, mask_img, mask_file: PathLike, what: str) -> None:
    if not _same_grid(img, mask_img):
        raise ValueError(
            f"{what} '{path}' has grid shape {tuple(img.shape[:3])} (affine diagonal "
            f"{np.diag(img.affine)[:3].round(3).tolist()}) but mask '{mask_file}' has shape "
            f"{tuple(mask_img.shape[:3])} (affine diagonal "
            f"{np.diag(mask_img.affine)[:3].round(3).tolist()}){_affine_difference(img, mask_img)}; "
            "resample it onto the mask grid."
        )


def _affine_difference(img, mask_img) -> str:
    """Origins and rotations, when the diagonals agree: otherwise "expected" and "found"
    would read the same."""
    a, b = np.asarray(img.affine)[:3], np.asarray(mask_img.affine)[:3]
    if not np.allclose(np.diag(a), np.diag(b), atol=1e-3):
        return ""
    if not np.allclose(a[:, 3], b[:, 3], atol=1e-3):
        return f", and origin {a[:, 3].round(3).tolist()} vs {b[:, 3].round(3).tolist()}"
    return f", and affine {a.round(3).tolist()} vs {b.round(3).tolist()}"


def load_nifti(path: PathLike, what: str) -> Any:
    """``nibabel.load`` with the data read now, failing with one line naming the file.

    A truncated or non-gzip ``.nii.gz`` otherwise raises ``EOFError``,
    ``gzip.BadGzipFile`` or ``zlib.error`` naming no file, mid-way through a job.
    """
    import nibabel as nib

    try:
        img = nib.load(str(path))
        img = img.__class__(np.asanyarray(img.dataobj), img.affine, img.header)  # read once
    except Exception as exc:  # nibabel, gzip and zlib raise many types for a broken file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = reason.replace(f'"{path}"', "it").replace(str(path), "it")  # named once
        size = os.path.getsize(path) if os.path.exists(path) else 0
        raise ValueError(
            f"{what} '{path}' is not a readable NIfTI file ({type(exc).__name__}: "
            f"{reason[:160]}; {size} bytes); expected a complete .nii or .nii.gz. Copy or "
            "regenerate the file."
        ) from None
    return img


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

    mask_src, atlas_src = load_nifti(mask_file, "mask"), load_nifti(atlas_file, "atlas")
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
        logger.info("atlas ROI %s (index %d): %d voxels in the mask", name, index,
                    int((labels == index).sum()))
    unlisted = sorted(set(np.unique(labels)) - set(rois.values()) - {0})
    if unlisted:
        logger.warning(
            "atlas '%s' labels %s are not in '%s'; kept as-is", atlas_file, unlisted, labels_file
        )
    affine = mask_src.affine
    return nib.Nifti1Image(mask.astype(np.uint8), affine), nib.Nifti1Image(labels, affine), rois


def voxel_labels(mask_img, atlas_img) -> tuple[np.ndarray, np.ndarray]:
    """(roi int32 (n_voxels,), ijk int32 (n_voxels, 3)) in the mask's C order."""
    mask = np.asarray(mask_img.dataobj) > 0
    roi = np.asarray(atlas_img.dataobj)[mask].astype(np.int32)
    return roi, np.argwhere(mask).astype(np.int32)


def mask_run(bold_file: PathLike, mask_img, mask_file: PathLike) -> np.ndarray:
    """Masked data of one 4D run, array of shape (n_volumes, n_voxels), float64."""
    from nilearn.masking import apply_mask

    img = load_nifti(bold_file, "BOLD image")
    _check_grid(img, bold_file, mask_img, mask_file, "BOLD image")
    if img.ndim != 4:
        raise ValueError(
            f"BOLD image '{bold_file}' must be 4D (x, y, z, volumes); got shape "
            f"{img.shape}. Pass the 4D run."
        )
    return apply_mask(img, mask_img, dtype="f", ensure_finite=False).astype(np.float64)


# ----------------------------------------------------------------------------- cleaning
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


def flag_units(data: np.ndarray, kept: np.ndarray | None = None) -> dict[str, list[int]]:
    """Units whose signal is not finite anywhere, or constant over the kept volumes.

    Parameters
    ----------
    data : array of shape (n_volumes, n_units)
    kept : int array of shape (n_kept,) or None
        Indices of the volumes that count (the sample mask); None: all.

    Returns
    -------
    flags : dict
        ``nan_units`` and ``constant_units``: sorted unit indices (disjoint).
    """
    finite = np.isfinite(data).all(axis=0)
    rows = data if kept is None else data[kept]
    safe = np.where(np.isfinite(rows), rows, 0.0)
    constant = finite & (safe.max(axis=0, initial=-np.inf) == safe.min(axis=0, initial=np.inf))
    return {"nan_units": np.flatnonzero(~finite).tolist(),
            "constant_units": np.flatnonzero(constant).tolist()}


def _high_pass_terms(n_volumes, tr, high_pass, high_pass_filter, fmriprep_high_pass):
    """(cosine regressors or None, Butterworth cutoff or None, description for the qc)."""
    if high_pass_filter not in ("cosine", "butterworth", None):
        raise ValueError(
            f"parameter 'high_pass_filter' must be 'cosine', 'butterworth' or None; "
            f"got {high_pass_filter!r}. Pick one of those."
        )
    if fmriprep_high_pass:
        return None, None, "fMRIPrep cosine columns (among the confounds)"
    if not high_pass or high_pass_filter is None:
        return None, None, "none"
    if high_pass_filter == "butterworth":
        return None, high_pass, f"Butterworth above {high_pass} Hz"
    drift = cosine_drift(n_volumes, tr, high_pass)
    return drift, None, f"{drift.shape[1]} cosine drift regressors below {high_pass} Hz"


def clean_run(
    data: np.ndarray, confounds: np.ndarray | None = None,
    sample_mask: np.ndarray | None = None, *, tr: float, high_pass: float | None = 0.01,
    detrend: bool = True, standardize: bool = True, fmriprep_high_pass: bool = False,
    high_pass_filter: str | None = "cosine",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Clean one run with :func:`nilearn.signal.clean`; flag NaN and constant units.

    Parameters
    ----------
    data : array of shape (n_volumes, n_units)
        Masked BOLD of one run (voxels or vertices).
    confounds : array of shape (n_volumes, n_confounds) or None
        Regressors of every volume (:func:`brainalign.datasets.confounds.select_confounds`).
    sample_mask : int array of shape (n_kept,) or None
        Indices of the volumes kept; the others (non-steady-state, scrubbed) are dropped.
    tr : float
        Repetition time (s).
    high_pass : float or None
        Cutoff (Hz) of the high-pass; None or 0 disables it.
    detrend : bool
        Remove the linear trend (from data and confounds).
    standardize : bool
        Z-score each unit over the kept volumes (sample std, nilearn's ``'zscore_sample'``).
    fmriprep_high_pass : bool
        fMRIPrep's cosine columns are among ``confounds`` (nilearn's ``high_pass``
        strategy): no second high-pass is added.
    high_pass_filter : {'cosine', 'butterworth', None}
        How ``high_pass`` is applied: cosine drift regressors fitted together with the
        confounds (cleaned data orthogonal to both), or a Butterworth filter.

    Returns
    -------
    cleaned : array of shape (n_kept, n_units), float64
        NaN and constant units are exactly 0.
    qc : dict
        ``n_volumes``, ``n_kept``, ``dropped_volumes``, ``n_confounds``, ``high_pass``
        (what was applied), ``nan_units``, ``constant_units`` (unit indices).
    """
    n_volumes = len(data)
    kept = np.arange(n_volumes) if sample_mask is None else np.asarray(sample_mask, dtype=int)
    flags = flag_units(data, kept)
    bad = flags["nan_units"] + flags["constant_units"]
    data = np.where(np.isfinite(data), data, 0.0) if flags["nan_units"] else data
    drift, butterworth, applied = _high_pass_terms(n_volumes, tr, high_pass, high_pass_filter,
                                                   fmriprep_high_pass)
    columns = [c for c in (confounds, drift) if c is not None and c.shape[1]]
    regressors = np.hstack(columns) if columns else None
    cleaned = _nilearn_clean(data, regressors, None if sample_mask is None else kept, tr=tr,
                             detrend=detrend, standardize=standardize, butterworth=butterworth)
    cleaned[:, bad] = 0.0
    qc = {"n_volumes": n_volumes, "n_kept": len(kept),
          "dropped_volumes": sorted(set(range(n_volumes)) - set(kept.tolist())),
          "n_confounds": 0 if confounds is None else int(confounds.shape[1]),
          "high_pass": applied, **flags}
    _log_run(qc)
    return cleaned, qc


def _nilearn_clean(data, regressors, sample_mask, *, tr, detrend, standardize, butterworth):
    """nilearn.signal.clean; cosine regressors come in as confounds.

    nilearn's own ``filter='cosine'`` silently drops its cosines when a confound
    correlates > 0.9 with one (motion random walks do), hence explicit regressors.
    """
    from nilearn import signal

    with warnings.catch_warnings():  # nilearn 0.13 notes a future change of confound scaling
        warnings.filterwarnings(
            "ignore", message=".*confounds will be standardized", category=DeprecationWarning
        )
        return signal.clean(
            data, detrend=detrend, standardize="zscore_sample" if standardize else None,
            confounds=regressors, sample_mask=sample_mask, standardize_confounds=True,
            filter="butterworth" if butterworth else False, high_pass=butterworth, t_r=tr,
        )


def _log_run(qc: Mapping[str, Any]) -> None:
    logger.info("dropped %d volumes %s; regressed %d confound columns; high-pass: %s",
                len(qc["dropped_volumes"]), qc["dropped_volumes"][:10], qc["n_confounds"],
                qc["high_pass"])
    if qc["nan_units"] or qc["constant_units"]:
        logger.warning("%d units with NaN / infinite values and %d constant units set to 0 and "
                       "flagged (first: %s)", len(qc["nan_units"]), len(qc["constant_units"]),
                       (qc["nan_units"] + qc["constant_units"])[:10])


# ----------------------------------------------------------------------------- concepts
def concept_means(
    data: np.ndarray, labels: Sequence[str], concepts: Sequence[str], source: PathLike, *,
    zscore: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Average one run's trials per concept, after z-scoring each unit across the trials.

    Parameters
    ----------
    data : array of shape (n_trials, n_units)
    labels : sequence of str, length n_trials
        The concept of each trial.
    concepts : sequence of str
        Row order of the result; every concept must occur, and no other.
    source : path-like
        The events file, named in messages.
    zscore : bool
        Z-score each unit across the run's trials first (sample std; constant units -> 0).

    Returns
    -------
    means : array of shape (n_concepts, n_units)
        NaN / infinite units are 0 (counted in the log).
    counts : int array of shape (n_concepts,)
        Trials per concept.
    """
    present = set(labels)
    missing, unknown = sorted(set(concepts) - present), sorted(present - set(concepts))
    if missing or unknown:
        raise ValueError(
            f"events '{source}' must contain every concept exactly as listed; missing "
            f"{missing[:5]}, unknown {unknown[:5]}. Check the events or the concept list."
        )
    flags = flag_units(data)
    if flags["nan_units"]:
        logger.warning("'%s': %d units with NaN / infinite values set to 0", source,
                       len(flags["nan_units"]))
        data = np.where(np.isfinite(data), data, 0.0)
    if zscore:
        std = data.std(axis=0, ddof=1) if len(data) > 1 else np.zeros(data.shape[1])
        data = (data - data.mean(axis=0)) / np.where(std > 0, std, 1.0)  # as nilearn zscore_sample
    index = {concept: k for k, concept in enumerate(concepts)}
    codes = np.array([index[label] for label in labels])
    design = np.zeros((len(concepts), len(codes)))
    design[codes, np.arange(len(codes))] = 1.0
    counts = design.sum(axis=1)
    return design @ data / counts[:, None], counts.astype(int)
