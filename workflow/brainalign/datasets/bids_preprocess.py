"""Run time of the ``bids`` reader: one subject x task into the labelled representation.

The geometry (voxels of a brain mask, or vertices of both hemispheres) is loaded once with
its ROI labels; then each run is read as an array of shape (n_volumes, n_units) and turned
into what the task's kind needs (see :mod:`brainalign.datasets.bids_reader`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..io import read_json, read_table
from .registry import DatasetError
from .units import RESPONSES, roi_mask, roi_masks_from_sets

__all__ = ["preprocess_task", "Geometry"]

logger = logging.getLogger(__name__)


@dataclass
class Geometry:
    """Units of one subject: their labels, and how to read one run onto them."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    read_run: Callable[[int], np.ndarray]
    n_runs: int
    qc: dict[str, Any] = field(default_factory=dict)


def _check_nonempty(sets: Mapping[str, np.ndarray], where: str) -> None:
    """Every configured ROI must hold a unit: an empty one would be reported as NaN."""
    empty = [name for name, members in sets.items() if not np.any(members)]
    if empty:
        raise DatasetError(
            f"{where}: ROI {empty} has no voxel or vertex; expected at least one in every "
            f"ROI of config 'dataset.rois'. Remove it from 'dataset.rois' or fix the atlas."
        )


def _volume_geometry(inputs: Mapping[str, Any], rois: Sequence[str]) -> Geometry:
    from ..preprocess import load_atlas, mask_run, voxel_labels

    mask_img, atlas_img, labels = load_atlas(inputs["atlas"], inputs["labels"], inputs["mask"])
    missing = [name for name in rois if name not in labels]
    if missing:
        raise DatasetError(
            f"atlas labels '{inputs['labels']}' have no ROI {missing}; it has "
            f"{sorted(labels)[:10]}. Fix 'dataset.rois' or the atlas."
        )
    roi, ijk = voxel_labels(mask_img, atlas_img)
    sets = {name: roi == labels[name] for name in rois}
    _check_nonempty(sets, f"atlas '{inputs['atlas']}' within mask '{inputs['mask']}'")
    arrays, meta = roi_masks_from_sets(sets, len(roi))
    arrays["ijk"] = ijk
    meta.update(geometry="volume", affine=mask_img.affine.tolist(), shape=list(mask_img.shape))
    bold = list(inputs["bold"])
    return Geometry(arrays, meta, lambda k: mask_run(bold[k], mask_img, inputs["mask"]), len(bold))


def _surface_geometry(inputs: Mapping[str, Any], rois: Sequence[str]) -> Geometry:
    from .surface import load_surface_atlas, load_surface_run

    left, right = list(inputs["bold_L"]), list(inputs["bold_R"])
    first, geometry = load_surface_run(left[0], right[0])
    sets = load_surface_atlas({"L": inputs["atlas_L"], "R": inputs["atlas_R"]}, list(rois))
    _check_nonempty(sets, f"surface atlas '{inputs['atlas_L']}' / '{inputs['atlas_R']}'")
    arrays, meta = roi_masks_from_sets(sets, first.shape[1])
    arrays.update(hemi=geometry["hemi"], vertex=geometry["vertex"])
    meta.update(geometry="surface", n_vertices=geometry["n_vertices"], mesh="fsaverage")
    n_vertices = geometry["n_vertices"]

    def read_run(k: int) -> np.ndarray:
        return first if k == 0 else load_surface_run(left[k], right[k], n_vertices=n_vertices)[0]

    return Geometry(arrays, meta, read_run, len(left))


def _load_geometry(inputs, surface, rois) -> Geometry:
    return (_surface_geometry if surface else _volume_geometry)(inputs, rois)


# ----------------------------------------------------------------------------- time series
def _tr(inputs: Mapping[str, Any]) -> float:
    """The TR from the stimuli's runs.tsv, checked against every BOLD sidecar present."""
    runs = read_table(inputs["runs"])
    tr = float(runs["tr"].iloc[0])
    if not np.allclose(runs["tr"], tr):
        raise DatasetError(
            f"'{inputs['runs']}' gives several TRs {sorted(set(runs['tr']))}; expected one for "
            "every run of a task. Fix naturalistic/runs.tsv."
        )
    for sidecar in inputs.get("sidecar", []):
        found = read_json(sidecar).get("RepetitionTime")
        if found is not None and not np.isclose(float(found), tr, rtol=1e-3):
            raise DatasetError(
                f"RepetitionTime {found} s in '{sidecar}' does not match tr={tr} s of "
                f"'{inputs['runs']}'; fix naturalistic/runs.tsv or the sidecar."
            )
    return tr


def _check_run_lengths(inputs: Mapping[str, Any], n_volumes: list[int]) -> None:
    """The BOLD volumes of each run against ``n_trs`` of the stimuli's runs.tsv (the TRs
    the features are resampled to), run by run in (session, run) order."""
    table = read_table(inputs["runs"])
    if "n_trs" not in table.columns or len(table) != len(n_volumes):
        return
    for k, (expected, found) in enumerate(zip(table["n_trs"].astype(int), n_volumes)):
        if expected != found:
            bold = (inputs["bold"] if "bold" in inputs else inputs["bold_L"])[k]
            raise DatasetError(
                f"BOLD '{bold}' has {found} volumes but run {table['run'].iloc[k]} of "
                f"'{inputs['runs']}' has n_trs {expected}; expected the same count. Fix "
                "n_trs in naturalistic/runs.tsv or pass the full run."
            )


def _run_confounds(inputs, params, k: int, n_volumes: int):
    """Run ``k``'s confounds through nilearn's fMRIPrep interface: (matrix, sample mask, report)."""
    from .confounds import select_confounds
    from .confounds_rank import reduce_confounds

    bold = inputs["bold"] if "bold" in inputs else inputs["bold_L"]
    matrix, sample_mask, report = select_confounds(
        bold[k], params["confounds"], n_volumes=n_volumes,
        confounds_file=inputs["confounds"][k] if "confounds" in inputs else None,
    )
    if matrix is not None:  # constant, non-finite and collinear columns out (logged)
        matrix, columns, dropped = reduce_confounds(matrix, report["columns"], sample_mask,
                                                    inputs["confounds"][k] if "confounds" in inputs else bold[k])
        report = {**report, "columns": columns, "n_columns": len(columns),
                  "dropped_columns": dropped}
        matrix = matrix if columns else None
    return matrix, sample_mask, report


def _clean_runs(geo: Geometry, inputs, params, tr) -> tuple[list[np.ndarray], list[dict]]:
    """Each run read, its confounds selected (nilearn's fMRIPrep interface) and cleaned."""
    from ..preprocess import clean_run

    bold = inputs["bold"] if "bold" in inputs else inputs["bold_L"]
    blocks, reports = [], []
    for k in range(geo.n_runs):
        data = geo.read_run(k)
        confounds, sample_mask, report = _run_confounds(inputs, params, k, len(data))
        cleaned, qc = clean_run(
            data, confounds, sample_mask, tr=tr, high_pass=params["high_pass"],
            detrend=params["detrend"], standardize=params["zscore"],
            fmriprep_high_pass=report["fmriprep_high_pass"],
        )
        blocks.append(cleaned)
        reports.append({**report, **qc, "run": k + 1, "file": str(bold[k])})
        logger.info("run %d (%s): %d of %d volumes kept, %d confound columns regressed %s",
                    k + 1, bold[k], qc["n_kept"], qc["n_volumes"], report["n_columns"],
                    report["columns"])
    return blocks, reports


def _timeseries(geo: Geometry, inputs, params) -> tuple[dict, dict]:
    """Cleaned runs, concatenated in (session, run) order; each run one CV group."""
    tr = _tr(inputs)
    blocks, reports = _clean_runs(geo, inputs, params, tr)
    _check_run_lengths(inputs, [r["n_volumes"] for r in reports])
    runs = list(range(1, len(blocks) + 1))
    flagged = sorted({u for r in reports for u in r["nan_units"] + r["constant_units"]})
    bold = np.concatenate(blocks).astype(np.float32)
    bold[:, flagged] = 0.0  # a unit bad in any run is 0 in every run: counted, never filled
    if flagged:
        logger.warning("%d units with NaN or constant signal set to 0 and listed in qc "
                       "(flagged_units)", len(flagged))
    volumes = [np.setdiff1d(np.arange(r["n_volumes"]), r["dropped_volumes"]) for r in reports]
    arrays = {
        **geo.arrays,
        "bold": bold,
        "run": np.repeat(np.array(runs, dtype=np.int32), [len(b) for b in blocks]),
        "volume": np.concatenate(volumes).astype(np.int32),
    }
    meta = {**geo.meta, "kind": "timeseries", "runs": runs, "tr": tr,
            "n_volumes": [r["n_volumes"] for r in reports],
            "qc": {"runs": reports, "flagged_units": flagged, "n_flagged_units": len(flagged)},
            "preprocess": _settings(params)}
    return arrays, meta


# ----------------------------------------------------------------------------- concepts
def _stimuli(inputs) -> list[str]:
    return [str(c) for c in read_table(inputs["concepts"])["concept"]]


def _patterns(trial_sets: list[tuple[np.ndarray, list[str], str]], concepts, zscore) -> tuple:
    """Per run: z-score trials (optional), average per concept.

    Returns (n_runs, n_concepts, n_units) patterns, trials per concept, and the units whose
    trials are NaN or constant in any run: 0 in every run, counted, never made up.
    """
    from ..preprocess import concept_means, flag_units

    by_run, counts, flagged = [], [], set()
    for data, labels, source in trial_sets:
        flagged.update(u for units in flag_units(data).values() for u in units)
        means, n_trials = concept_means(data, labels, concepts, source, zscore=zscore)
        by_run.append(means)
        counts.append(n_trials)
    repeats = np.sum(counts, axis=0)
    n_repeats = int(repeats[0]) if (repeats == repeats[0]).all() else repeats.tolist()
    stacked, flagged = np.stack(by_run), sorted(flagged)
    stacked[..., flagged] = 0.0
    if flagged:
        logger.warning("%d units with NaN or constant trials set to 0 and listed in qc "
                       "(flagged_units)", len(flagged))
    return stacked, n_repeats, flagged


def _single_trials(geo: Geometry, inputs, params) -> list[tuple[np.ndarray, list[str], str]]:
    """Single-trial volumes: one volume per events row (column ``concept``)."""
    column = params.get("betas", {}).get("stimulus_column", "concept")
    sets = []
    for k in range(geo.n_runs):
        events = read_table(inputs["events"][k])
        data = geo.read_run(k)
        if column not in events.columns or len(events) != len(data):
            raise DatasetError(
                f"events '{inputs['events'][k]}' must have a '{column}' column and one row per "
                f"volume ({len(data)}); got columns {list(events.columns)} and {len(events)} "
                "rows. Pass the events file of this run."
            )
        sets.append((data, [str(c) for c in events[column]], str(inputs["events"][k])))
    return sets


def _glm_confounds(inputs, params, k: int, n_volumes: int) -> tuple[np.ndarray | None, dict]:
    """Confounds of an event-related run's GLM; dropped volumes become spike regressors
    (in OLS, equivalent to leaving them out)."""
    matrix, sample_mask, report = _run_confounds(inputs, params, k, n_volumes)
    columns = [] if matrix is None else [np.asarray(matrix, dtype=np.float64)]
    if sample_mask is not None:
        dropped = np.setdiff1d(np.arange(n_volumes), sample_mask)
        columns.append(np.eye(n_volumes)[:, dropped])
    return (np.hstack(columns) if columns else None), report


def _estimated_trials(geo: Geometry, inputs, params) -> list[tuple[np.ndarray, list[str], str]]:
    """Event-related runs: single-trial betas (LSS / LSA, nilearn's GLM) per run."""
    from .betas import estimate_betas
    from .events import read_events

    settings = params["betas"]
    tr = _run_tr(inputs)
    sets = []
    for k in range(geo.n_runs):
        source = str(inputs["events"][k])
        events = read_events(source, stimulus_column=settings["stimulus_column"],
                             trial_types=settings["trial_types"])
        data = geo.read_run(k)
        confounds, report = _glm_confounds(inputs, params, k, len(data))
        # fMRIPrep's cosines among the confounds already model the drift
        drift = None if report["fmriprep_high_pass"] else settings["drift_model"]
        betas, trials = estimate_betas(
            data, events, tr=tr, method=settings["method"], hrf_model=settings["hrf_model"],
            drift_model=drift, high_pass=params["high_pass"],
            stimulus_column=settings["stimulus_column"], trial_types=settings["trial_types"],
            confounds=confounds, events_file=source,
        )
        logger.info("run %d: %d single-trial betas (%s, %s HRF), %d confound columns, %d "
                    "volumes censored", k + 1, len(betas), settings["method"],
                    settings["hrf_model"], report["n_columns"], len(report["dropped_volumes"]))
        sets.append((betas, [str(s) for s in trials["stimulus"]], source))
    return sets


def _run_tr(inputs) -> float:
    """TR of event-related runs, from their sidecars (all equal)."""
    trs = {float(read_json(s)["RepetitionTime"]) for s in inputs.get("sidecar", [])}
    if len(trs) != 1:
        raise DatasetError(
            f"event-related runs need one RepetitionTime in their sidecars "
            f"{inputs.get('sidecar', [])}; found {sorted(trs)}. Add the _bold.json sidecars."
        )
    return trs.pop()


def _concepts(geo: Geometry, inputs, params, trial_sets) -> tuple[dict, dict]:
    concepts = _stimuli(inputs)
    stacked, n_repeats, flagged = _patterns(trial_sets, concepts, params["zscore"])
    arrays = {**geo.arrays, "patterns": stacked.mean(axis=0).astype(np.float32),
              "patterns_by_run": stacked.astype(np.float32)}
    meta = {**geo.meta, "kind": "concepts", "stimuli": concepts,
            "runs": list(range(1, len(trial_sets) + 1)), "n_repeats": n_repeats,
            "qc": {"flagged_units": flagged, "n_flagged_units": len(flagged)},
            "preprocess": _settings(params)}
    return arrays, meta


def _settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The preprocessing settings a brain file was made with (its provenance)."""
    keys = ("high_pass", "detrend", "confounds", "zscore", "betas")
    return {key: params[key] for key in keys if key in params}


def preprocess_task(
    inputs: Mapping[str, Any],
    *,
    subject: str,
    task: str,
    kind: str,
    surface: bool,
    rois: Sequence[str],
    params: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One subject x task of a BIDS dataset as the labelled representation.

    Parameters
    ----------
    inputs : mapping
        The files of :meth:`BidsReader.inputs`, by name.
    subject, task : str
    kind : {"concepts", "events", "naturalistic"}
    surface : bool
        Vertices of fsaverage hemispheres rather than voxels of a mask.
    rois : sequence of str
        ROI names of the atlas to label.
    params : mapping
        The ``preprocess`` section (``zscore`` resolved to a bool).

    Returns
    -------
    arrays, meta : dict
        See :mod:`brainalign.datasets.units`.
    """
    geo = _load_geometry(inputs, surface, rois)
    if kind == "naturalistic":
        arrays, meta = _timeseries(geo, inputs, params)
    elif kind == "concepts":
        arrays, meta = _concepts(geo, inputs, params, _single_trials(geo, inputs, params))
    elif kind == "events":
        arrays, meta = _concepts(geo, inputs, params, _estimated_trials(geo, inputs, params))
    else:
        raise DatasetError(f"task '{task}' has kind {kind!r}; expected concepts, events or naturalistic")
    _log_units(arrays, meta, subject, task)
    return arrays, {**meta, "subject": subject, "task": task}


def _log_units(arrays, meta, subject, task) -> None:
    data = arrays[RESPONSES[meta["kind"]]]
    logger.info("sub-%s task %s: %s, %d samples x %d %s; ROIs %s", subject, task, meta["kind"],
                data.shape[0], data.shape[1], "vertices" if meta["geometry"] == "surface" else "voxels",
                {name: int(roi_mask(arrays, meta, name).sum()) for name in meta["rois"]})

