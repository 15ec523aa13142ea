"""Masking and cleaning of BOLD data with nilearn, into labelled voxel arrays.

Both tasks keep every voxel of the brain mask (``roi`` 0 marks voxels outside the atlas ROIs)
in the mask's C order, which is the order of ``ijk`` and of :func:`nilearn.masking.apply_mask`.

* Naturalistic task, per run (:func:`clean_run`): drop the non-steady-state (and scrubbed)
  volumes, detrend, high-pass (cosine drift regressors, unless fMRIPrep's own cosine
  columns are among the confounds), regress the confounds chosen by
  :mod:`brainalign.datasets.confounds`, z-score each unit; runs are then concatenated.
* Concept task, per run: mask the single-trial volumes, z-score each voxel across the run's
  trials, average the trials of each concept (:func:`concept_means`); the run patterns are
  then averaged.

Units (voxels or vertices) whose signal is NaN / infinite or constant are neither dropped
nor silently cleaned: they are kept in place (so every run has the same units and the
labels stay valid), set to exactly 0 in the output, and listed in the ``qc`` record
(``nan_units``, ``constant_units``: unit indices) with a warning in the log.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .datasets.confounds import DEFAULT_CONFOUNDS, select_confounds
from .io import read_json, read_table

__all__ = [
    "load_atlas",
    "mask_run",
    "voxel_labels",
    "cosine_drift",
    "flag_units",
    "clean_run",
    "concept_means",
    "preprocess_naturalistic",
    "preprocess_concepts",
]

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
    import nibabel as nib
    from nilearn.masking import apply_mask

    img = nib.load(str(bold_file))
    _check_grid(img, bold_file, mask_img, mask_file, "BOLD image")
    if img.ndim != 4:
        raise ValueError(
            f"BOLD image '{bold_file}' must be 4D (x, y, z, volumes); got shape "
            f"{img.shape}. Pass the 4D run."
        )
    return apply_mask(img, mask_img, dtype="f", ensure_finite=False).astype(np.float64)


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


def _check_run_lists(first: Sequence, second: Sequence, names: tuple[str, str]) -> None:
    if isinstance(first, (str, os.PathLike)) or len(first) == 0 or len(first) != len(second):
        raise ValueError(
            f"parameters '{names[0]}' and '{names[1]}' must be non-empty lists of equal length "
            f"(one file per run); got {len(first)} and {len(second)}. Pass one per run."
        )


def _run_labels(bold_files: Sequence[PathLike], run_labels: Sequence[int] | None) -> list[int]:
    """Given labels, else the files' run entities if unique, else 1..n."""
    if run_labels is not None:
        return [int(r) for r in run_labels]
    labels = [_run_label(path, k) for k, path in enumerate(bold_files)]
    return labels if len(set(labels)) == len(labels) else list(range(1, len(labels) + 1))


def _clean_file(bold_file, conf_file, mask_img, mask_file, settings) -> tuple[np.ndarray, dict]:
    data = mask_run(bold_file, mask_img, mask_file)
    regressors, sample_mask, report = select_confounds(
        bold_file, settings["confounds"], n_volumes=len(data), confounds_file=conf_file
    )
    cleaned, qc = clean_run(
        data, regressors, sample_mask, fmriprep_high_pass=report["fmriprep_high_pass"],
        **{key: settings[key] for key in ("tr", "high_pass", "detrend", "standardize",
                                           "high_pass_filter")},
    )
    return cleaned, {**report, **qc, "file": str(bold_file)}


def preprocess_naturalistic(
    bold_files: Sequence[PathLike], confounds_files: Sequence[PathLike | None],
    mask_file: PathLike, atlas_file: PathLike, labels_file: PathLike, *, tr: float,
    high_pass: float | None = 0.01, detrend: bool = True, confounds: Any = DEFAULT_CONFOUNDS,
    standardize: bool = True, subject: str, high_pass_filter: str | None = "cosine",
    run_labels: Sequence[int] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Mask and clean naturalistic runs (:func:`clean_run`); concatenate them in order.

    Parameters
    ----------
    bold_files, confounds_files : list of path-like
        One 4D BOLD image and one confounds TSV (None when ``confounds`` is ``[]``) per
        run, in (session, run) order. The sidecar next to each image (``*_bold.json``)
        must give ``RepetitionTime`` equal to ``tr``.
    mask_file, atlas_file, labels_file : path-like
        Brain mask, ROI atlas on the mask grid, and its ``index``/``name`` TSV.
    tr : float
        Repetition time (s).
    high_pass : float or None
        High-pass cutoff (Hz); None or 0 disables it.
    detrend : bool
        Remove each run's linear trend (from data and confounds).
    confounds : str, mapping or list of str
        ``preprocess.confounds`` (see :mod:`brainalign.datasets.confounds`); default: 6
        motion parameters, WM and CSF, fMRIPrep's cosines, non-steady-state volumes dropped.
    standardize : bool
        Z-score each voxel per run (sample std, nilearn's ``'zscore_sample'``).
    subject : str
        Subject label, recorded in the metadata.
    high_pass_filter : {'cosine', 'butterworth', None}
        How ``high_pass`` is applied when fMRIPrep's cosines are not regressed.
    run_labels : list of int or None
        CV group of each run (e.g. 1..n over sessions); None: the files' run entities
        when unique, else 1..n.

    Returns
    -------
    arrays : dict
        ``bold`` float32 (n_trs_total, n_voxels), ``run`` int32 (n_trs_total,), ``volume``
        int32 (n_trs_total,) each TR's index in its run (dropped volumes are absent),
        ``roi`` int32 (n_voxels,), ``ijk`` int32 (n_voxels, 3).
    metadata : dict
        ``subject``, ``task``, ``runs``, ``n_volumes`` (per run, before dropping), ``tr``,
        ``rois``, ``affine``, ``shape``, the cleaning settings, and ``qc``: per run the
        confound report and :func:`clean_run`'s record; ``flagged_units`` (NaN or constant
        in any run: 0 in every run).
    """
    _check_run_lists(bold_files, confounds_files, ("bold_files", "confounds_files"))
    if not (isinstance(tr, (int, float)) and tr > 0):
        raise ValueError(f"parameter 'tr' must be a positive number of seconds; got {tr!r}")
    mask_img, atlas_img, rois = load_atlas(atlas_file, labels_file, mask_file)
    settings = {"tr": tr, "high_pass": high_pass, "detrend": detrend, "confounds": confounds,
                "standardize": standardize, "high_pass_filter": high_pass_filter}
    blocks, reports = [], []
    for bold_file, conf_file in zip(bold_files, confounds_files):
        _check_tr(bold_file, tr)
        cleaned, report = _clean_file(bold_file, conf_file, mask_img, mask_file, settings)
        blocks.append(cleaned)
        reports.append(report)
    runs = _run_labels(bold_files, run_labels)
    flagged = sorted({u for r in reports for u in r["nan_units"] + r["constant_units"]})
    bold = np.concatenate(blocks).astype(np.float32)
    bold[:, flagged] = 0.0
    logger.info("sub-%s: %d runs, %d TRs x %d voxels kept; %d units flagged", subject,
                len(runs), *bold.shape, len(flagged))
    roi, ijk = voxel_labels(mask_img, atlas_img)
    volumes = [np.setdiff1d(np.arange(r["n_volumes"]), r["dropped_volumes"]) for r in reports]
    arrays = {"bold": bold, "roi": roi, "ijk": ijk,
              "run": np.repeat(np.array(runs, dtype=np.int32), [len(b) for b in blocks]),
              "volume": np.concatenate(volumes).astype(np.int32)}
    metadata = {"subject": subject, "task": "naturalistic", "runs": runs,
                "n_volumes": [r["n_volumes"] for r in reports], "tr": float(tr), "rois": rois,
                "affine": mask_img.affine.tolist(), "shape": list(mask_img.shape), **settings,
                "qc": {"runs": reports, "flagged_units": flagged}}
    return arrays, metadata


# ----------------------------------------------------------------------------- concepts
def _check_events(events, events_file: PathLike, n_volumes: int):
    if "concept" not in events.columns or len(events) != n_volumes:
        raise ValueError(
            f"events '{events_file}' must have a 'concept' column and one row per volume "
            f"({n_volumes}); got columns {list(events.columns)} and {len(events)} rows. "
            "Pass the events file of this run."
        )
    return [str(c) for c in events["concept"]]


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


def preprocess_concepts(
    bold_files: Sequence[PathLike], events_files: Sequence[PathLike], mask_file: PathLike,
    atlas_file: PathLike, labels_file: PathLike, *, subject: str,
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
    by_run, counts, runs, flagged = [], [], [], set()
    for position, (bold_file, events_file) in enumerate(zip(bold_files, events_files)):
        data = mask_run(bold_file, mask_img, mask_file)
        labels = _check_events(tables[position], events_file, len(data))
        means, n_trials = concept_means(data, labels, concepts, events_file)
        flagged.update(u for values in flag_units(data).values() for u in values)
        by_run.append(means)
        counts.append(n_trials)
        runs.append(_run_label(bold_file, position))
    repeats = np.sum(counts, axis=0)
    n_repeats = int(repeats[0]) if (repeats == repeats[0]).all() else repeats.tolist()
    stacked = np.stack(by_run)
    stacked[..., sorted(flagged)] = 0.0
    logger.info("sub-%s concepts: %d runs, %d concepts x %d voxels, trials z-scored per run, "
                "%s trials averaged per concept; %d NaN or constant voxels set to 0", subject,
                len(runs), len(concepts), stacked.shape[2], n_repeats, len(flagged))
    roi, ijk = voxel_labels(mask_img, atlas_img)
    arrays = {"patterns": stacked.mean(axis=0).astype(np.float32), "roi": roi, "ijk": ijk,
              "patterns_by_run": stacked.astype(np.float32)}
    metadata = {"subject": subject, "task": "concepts", "stimuli": concepts, "rois": rois,
                "affine": mask_img.affine.tolist(), "shape": list(mask_img.shape),
                "runs": runs, "n_repeats": n_repeats, "qc": {"flagged_units": sorted(flagged)}}
    return arrays, metadata
