"""The one labelled brain representation every reader writes and every analysis reads.

Whatever the source format (BIDS / fMRIPrep volumes or fsaverage surfaces, Pereira 2018
``.mat`` files, single-trial betas estimated here), preprocessing writes one safetensors
file per subject x task with these arrays (``n_units`` = voxels or vertices):

``roi``        int32 (n_units,): atlas index of each unit's ROI, 0 = none (first match
               when ROIs overlap).
``roi_masks``  uint8 (n_rois, n_units), only when ROIs overlap (Pereira's networks and
               atlas regions): row *k* is the membership of ``meta['roi_names'][k]``.
and, by ``meta['geometry']``:

``volume``     ``ijk`` int32 (n_units, 3) voxel indices; ``meta['affine']`` (4 x 4) and
               ``meta['shape']`` (3 ints) give the grid.
``surface``    ``hemi`` int8 (n_units,) 0 = left, 1 = right; ``vertex`` int32 (n_units,)
               vertex index in its hemisphere; ``meta['n_vertices']`` = {"L": n, "R": n};
               ``meta['mesh']`` e.g. ``fsaverage5``.
``electrodes`` a unit is a channel x time bin (unit = channel position * n_bins + bin):
               ``channel`` int32 (n_units,) index into ``meta['channels']`` (names after
               re-referencing, e.g. ``LA1-LA2``); ``bin`` int32 (n_units,) index into
               ``meta['bins']`` ([start, stop] s from the event); ``xyz`` float32
               (n_units, 3) mm in ``meta['coord_space']`` (a bipolar channel at the midpoint
               of its contacts); ``meta['regions']`` the region of each channel ('' if
               unknown), the listed ones (``dataset.rois``) being the ROIs.

and, by ``meta['kind']``:

``concepts``   ``patterns`` float32 (n_stimuli, n_units), rows in ``meta['stimuli']``
               order; ``patterns_by_run`` float32 (n_runs, n_stimuli, n_units) when there
               are repeats (crossnobis, noise ceilings); ``meta['n_repeats']``.
``timeseries`` ``bold`` float32 (n_trs, n_units); ``run`` int32 (n_trs,) the CV group of
               each TR (a run, or a session x run); ``meta['runs']``, ``meta['tr']``.
``epochs``     event-locked responses (intracranial): ``responses`` float32 (n_events,
               n_units); ``group`` int32 (n_events,) the CV block of each event, contiguous
               in time (a block is never split between training and test);
               ``meta['events']`` event ids in row order (matched to features by id:
               ``word-<row>`` of words.tsv, ``cut-<row>`` of frames.tsv),
               ``meta['event_times']`` (s from the recording start), ``meta['alignment']``
               (``language`` or ``vision``).

``meta`` always has ``subject``, ``task`` (the free task name), ``kind``, ``geometry``,
``rois`` ({name: index}) and ``space``. Readers record what they did (``qc``: dropped
volumes, regressed confounds, units with NaN or constant signal) under ``meta['qc']``.
Units listed in ``meta['qc']['flagged_units']`` (NaN, infinite or constant signal) hold 0 in
the file; the analyses leave them out (:func:`usable_units`): no fit, NaN in maps and
tables, not in ROI summaries, FDR families or RDMs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "KINDS",
    "RESPONSES",
    "ALIGNMENTS",
    "event_ids",
    "GEOMETRIES",
    "check_units",
    "roi_mask",
    "roi_masks_from_sets",
    "usable_units",
    "unit_qc",
    "check_flagged_share",
]

KINDS = ("concepts", "timeseries", "epochs")
GEOMETRIES = ("volume", "surface", "electrodes")
_GEOMETRY_ARRAYS = {"volume": ("ijk",), "surface": ("hemi", "vertex"),
                    "electrodes": ("channel", "bin", "xyz")}
_KIND_ARRAYS = {"concepts": ("patterns",), "timeseries": ("bold", "run"),
                "epochs": ("responses", "group")}
#: Event-locked task kinds and what their events lock to: each word (language-aligned) or
#: each scene cut (vision-aligned) of the film's stimulus tables.
ALIGNMENTS = {"word_events": "language", "scene_events": "vision"}
_EVENT_PREFIX = {"language": "word", "vision": "cut"}
#: The array holding the responses (samples x units) of each kind.
RESPONSES = {"concepts": "patterns", "timeseries": "bold", "epochs": "responses"}


def event_ids(alignment: str, rows) -> list[str]:
    """Event ids shared by the feature and brain sides: ``word-00012`` (row 12 of words.tsv,
    language-aligned), ``cut-00003`` (row 3 of frames.tsv, vision-aligned)."""
    return [f"{_EVENT_PREFIX[alignment]}-{int(row):05d}" for row in rows]


def check_units(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], where: str = "") -> None:
    """Check that ``arrays`` and ``meta`` follow the representation above.

    Raises
    ------
    ValueError
        One line naming the missing or mis-shaped entry (a reader bug, not user input).
    """
    label = f" of {where}" if where else ""
    for key in ("subject", "task", "kind", "geometry", "rois", "space"):
        if key not in meta:
            raise ValueError(f"brain data{label} lacks metadata '{key}'")
    if meta["kind"] not in KINDS or meta["geometry"] not in GEOMETRIES:
        raise ValueError(
            f"brain data{label} has kind {meta['kind']!r} / geometry {meta['geometry']!r}; "
            f"expected one of {KINDS} / {GEOMETRIES}"
        )
    needed = ("roi", *_GEOMETRY_ARRAYS[meta["geometry"]], *_KIND_ARRAYS[meta["kind"]])
    missing = [name for name in needed if name not in arrays]
    if missing:
        raise ValueError(f"brain data{label} lacks arrays {missing}")
    n_units = arrays["roi"].shape[0]
    data = arrays[RESPONSES[meta["kind"]]]
    if data.ndim != 2 or data.shape[1] != n_units:
        raise ValueError(
            f"brain data{label} has responses of shape {data.shape} for {n_units} units"
        )
    if "roi_masks" in arrays and arrays["roi_masks"].shape != (len(meta["roi_names"]), n_units):
        raise ValueError(
            f"brain data{label} has roi_masks of shape {arrays['roi_masks'].shape}; expected "
            f"({len(meta['roi_names'])}, {n_units})"
        )


def roi_mask(
    arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], roi: str
) -> np.ndarray:
    """Boolean membership of one ROI over the units, overlapping ROIs included.

    Parameters
    ----------
    arrays, meta : mapping
        A preprocessed brain file (see the module docstring).
    roi : str
        ROI name, a key of ``meta['rois']``.

    Returns
    -------
    mask : bool array of shape (n_units,)
    """
    if "roi_masks" in arrays and roi in meta.get("roi_names", ()):
        return arrays["roi_masks"][list(meta["roi_names"]).index(roi)].astype(bool)
    if roi not in meta["rois"]:
        raise KeyError(
            f"ROI '{roi}' is not in the brain data (it has {', '.join(meta['rois'])}); "
            "fix 'dataset.rois' in the config."
        )
    return np.asarray(arrays["roi"]) == meta["rois"][roi]


def roi_masks_from_sets(
    sets: Mapping[str, np.ndarray], n_units: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``roi`` / ``roi_masks`` arrays and ``rois`` / ``roi_names`` metadata from ROI sets.

    Parameters
    ----------
    sets : mapping of str to bool array of shape (n_units,)
        Membership of each ROI, in the order they should be numbered (1, 2, ...).
    n_units : int

    Returns
    -------
    arrays : dict
        ``roi`` int32 (first ROI containing each unit, 0 = none) and, only when two ROIs
        share a unit, ``roi_masks`` uint8 (n_rois, n_units).
    meta : dict
        ``rois`` {name: index} and, with ``roi_masks``, ``roi_names``.
    """
    names = list(sets)
    stacked = np.zeros((len(names), n_units), dtype=bool)
    for k, name in enumerate(names):
        stacked[k] = np.asarray(sets[name], dtype=bool)
    roi = np.zeros(n_units, dtype=np.int32)
    for k in range(len(names) - 1, -1, -1):
        roi[stacked[k]] = k + 1
    arrays: dict[str, np.ndarray] = {"roi": roi}
    meta: dict[str, Any] = {"rois": {name: k + 1 for k, name in enumerate(names)}}
    if (stacked.sum(axis=0) > 1).any():
        arrays["roi_masks"] = stacked.astype(np.uint8)
        meta["roi_names"] = names
    return arrays, meta


def usable_units(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> np.ndarray:
    """Units the analyses use: all but those the reader flagged (NaN or constant signal).

    Returns
    -------
    usable : bool array of shape (n_units,)
    """
    usable = np.ones(arrays["roi"].shape[0], dtype=bool)
    usable[list(meta.get("qc", {}).get("flagged_units", []))] = False
    return usable


def unit_qc(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]):
    """Per ROI: units, units flagged (NaN or constant signal) and their share, as a table.

    Flagged units are those of ``meta['qc']['flagged_units']`` (kept, stored as 0) plus those
    a reader dropped (``meta['qc']['dropped_by_roi']``, e.g. Pereira's NaN voxels). The runs
    in which they are bad are listed when the reader recorded them per run.

    Returns
    -------
    DataFrame
        Columns ``subject``, ``task``, ``roi``, ``n_units``, ``n_flagged``, ``share_flagged``,
        ``runs`` (comma-separated run numbers, or empty).
    """
    import pandas as pd

    qc = meta.get("qc", {})
    flagged = ~usable_units(arrays, meta)
    dropped = qc.get("dropped_by_roi", {})
    per_run = [(r.get("run", k + 1), set(r.get("nan_units", [])) | set(r.get("constant_units", [])))
               for k, r in enumerate(qc.get("runs", []))]
    rows = []
    for name in meta["rois"]:
        mask = roi_mask(arrays, meta, name)
        n_flagged = int((mask & flagged).sum()) + int(dropped.get(name, 0))
        n_units = int(mask.sum()) + int(dropped.get(name, 0))
        members = set(np.flatnonzero(mask & flagged).tolist())
        runs = [str(run) for run, bad in per_run if bad & members]
        rows.append({"subject": meta["subject"], "task": meta["task"], "roi": name,
                     "n_units": n_units, "n_flagged": n_flagged,
                     "share_flagged": n_flagged / n_units if n_units else float("nan"),
                     "runs": ",".join(runs)})
    return pd.DataFrame(rows)


def check_flagged_share(table, max_share: float, where: str = "") -> None:
    """Stop when an ROI has more flagged units than ``max_share`` (a table of :func:`unit_qc`).

    Raises
    ------
    ValueError
        One line naming subject, task, ROI, the runs and the threshold.
    """
    over = table[table["share_flagged"] > max_share]
    if len(over):
        row = over.iloc[0]
        runs = f" (in run(s) {row['runs']})" if row["runs"] else ""
        raise ValueError(
            f"sub-{row['subject']} task {row['task']} ROI {row['roi']}{where}: {row['n_flagged']} "
            f"of {row['n_units']} units ({row['share_flagged']:.0%}) have NaN or constant "
            f"signal{runs}, more than config 'preprocess.max_flagged_share' "
            f"{max_share:g}; check the data and brain mask of that run, or raise the threshold."
        )
