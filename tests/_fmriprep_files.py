"""Small fMRIPrep derivatives trees written in the real formats, for tests and benchmarks.

:func:`write_fmriprep_tree` writes what fMRIPrep (>= 20.2) writes for volumes in a
template space, shrunk to a 7 x 8 x 9 grid and a few dozen volumes:

``dataset_description.json``            DatasetType derivative, GeneratedBy fMRIPrep
``sub-<s>.html``, ``sub-<s>/figures/``   reports (distractors for discovery)
``sub-<s>/anat/sub-<s>_space-<S>_desc-brain_mask.nii.gz``   per-subject mask (each differs)
``sub-<s>/anat/sub-<s>_space-<S>_dseg.nii.gz``              tissue classes (no atlas entity)
``sub-<s>/ses-<x>/func/sub-<s>_ses-<x>_task-<t>_run-<r>_space-<S>_desc-preproc_bold.nii.gz``
    + ``_bold.json`` (RepetitionTime), ``..._space-<S>_desc-brain_mask.nii.gz``,
    ``..._space-T1w_boldref.nii.gz``, ``sub-<s>_ses-<x>_task-<t>_run-<r>_desc-confounds_timeseries.tsv``
    and its ``.json`` (CompCor metadata), optionally ``_events.tsv``,
    optionally ``..._hemi-{L,R}_space-<surface>_bold.func.gii`` (+ ``.json``).

The confounds TSV has fMRIPrep's column names (well over 100 columns): motion
``trans_x`` ... ``rot_z`` with ``_derivative1``, ``_power2`` and ``_derivative1_power2``;
``white_matter``, ``csf``, ``global_signal`` with the same expansions; ``csf_wm``,
``tcompcor``; ``framewise_displacement``, ``dvars``, ``std_dvars``, ``rmsd``;
``a_comp_cor_NN`` (combined, CSF and WM masks), ``t_comp_cor_NN``, ``cosineNN`` (DCT,
128 s cut-off, at least one), ``non_steady_state_outlierNN`` and ``motion_outlierNN``.
Derivative columns, framewise displacement, DVARS and RMSD start with ``n/a``.

The BOLD of a volume run is, per voxel: baseline + white noise + a linear drift + the
standardised motion parameters and WM / CSF means times random loadings (the nuisance
the confound strategies remove) + a decaying burst on the non-steady-state volumes + a
global jump on the motion spikes + the planted signal, if any. The planted signal is a
callable ``plant(subject, session, run, n_volumes)`` returning an additive array of shape
``(*shape, n_volumes)``; :func:`voxel_plant` builds one from voxel weights and per-run
signals, e.g. to drive given voxels by a known feature time series and check recovery.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from brainalign.datasets.naming import bids_name

SPACE = "MNI152NLin2009cAsym"
TR = 2.0
AFFINE = np.array([[3.0, 0, 0, -10], [0, 3.0, 0, -12], [0, 0, 3.0, -8], [0, 0, 0, 1]])
MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
EXPANSIONS = ("", "_derivative1", "_power2", "_derivative1_power2")
ROIS = {"language": 1, "visual": 2, "control": 3}

Plant = Callable[[str, "str | None", int, int], np.ndarray]


def voxel_plant(
    weights: np.ndarray, signals: Callable[[str, str | None, int, int], np.ndarray]
) -> Plant:
    """A ``plant`` callable from voxel weights and per-run signals.

    Parameters
    ----------
    weights : array of shape (*shape, n_signals)
        Weight of each signal in each voxel (0 where nothing is planted).
    signals : callable (subject, session, run, n_volumes) -> array (n_volumes, n_signals)
        The planted time series of one run.

    Returns
    -------
    plant : callable (subject, session, run, n_volumes) -> array (*shape, n_volumes)
    """

    def plant(subject: str, session: str | None, run: int, n_volumes: int) -> np.ndarray:
        series = np.asarray(signals(subject, session, run, n_volumes), dtype=np.float64)
        return np.tensordot(weights, series, axes=(weights.ndim - 1, 1))

    return plant


def _save(data: np.ndarray, path: Path, tr: float | None = None) -> Path:
    img = nib.Nifti1Image(data, AFFINE)
    img.header.set_xyzt_units("mm", "sec")
    if tr is not None:
        img.header.set_zooms((*np.diag(AFFINE)[:3], tr))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def subject_mask(index: int, shape: Sequence[int] = (7, 8, 9)) -> np.ndarray:
    """The brain mask of the ``index``-th subject: a box shifted per subject, bool."""
    mask = np.zeros(shape, dtype=bool)
    dx, dy, dz = index % 2, (index // 2) % 2, index % 2
    mask[1 + dx : shape[0] - 1 - (1 - dx), 1 + dy : shape[1] - 1, 2 : shape[2] - 1 - dz] = True
    return mask


def atlas_volume(mask: np.ndarray) -> np.ndarray:
    """ROI labels on the mask grid: language, visual and control slabs along x, int16."""
    atlas = np.zeros(mask.shape, dtype=np.int16)
    xs = np.flatnonzero(mask.any(axis=(1, 2)))
    for k, chunk in enumerate(np.array_split(xs, 3), start=1):
        atlas[chunk] = k
    return np.where(mask, atlas, 0).astype(np.int16)


# ----------------------------------------------------------------------------- confounds
def _random_walk(rng, n: int, k: int, step: float) -> np.ndarray:
    return np.cumsum(rng.normal(0, step, (n, k)), axis=0)


def _expanded(base: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """fMRIPrep's expansions of each column: raw, derivative1, power2, derivative1_power2."""
    out = {}
    for k, name in enumerate(names):
        x = base[:, k]
        d = np.r_[np.nan, np.diff(x)]
        for suffix, values in zip(EXPANSIONS, (x, d, x**2, d**2)):
            out[name + suffix] = values
    return out


def _dct(n: int, tr: float, cutoff_s: float = 128.0) -> np.ndarray:
    order = max(1, int(np.floor(2 * n * tr / cutoff_s)))
    time = np.arange(n)[:, None] + 0.5
    return np.sqrt(2.0 / n) * np.cos(np.pi / n * time * np.arange(1, order + 1))


def _one_hot(n: int, volumes: Sequence[int], prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}{k:02d}": np.eye(n)[v] for k, v in enumerate(volumes)}


def _confounds(rng, n: int, tr: float, n_dummy: int, spikes: Sequence[int], n_acompcor: int):
    """(table with > 100 fMRIPrep columns, its JSON metadata)."""
    motion = np.c_[_random_walk(rng, n, 3, 0.02), _random_walk(rng, n, 3, 0.0004)]
    tissue = 500 + _random_walk(rng, n, 3, 1.0)  # white_matter, csf, global_signal
    columns = {**_expanded(tissue, ("global_signal", "csf", "white_matter"))}
    columns["csf_wm"] = tissue[:, :2].mean(axis=1)
    columns["tcompcor"] = 480 + _random_walk(rng, n, 1, 1.0)[:, 0]
    steps = np.abs(np.diff(motion, axis=0))
    fd = np.r_[np.nan, steps[:, :3].sum(axis=1) + 50 * steps[:, 3:].sum(axis=1)]
    std_dvars = np.r_[np.nan, 1 + 0.1 * rng.random(n - 1)]
    fd[list(spikes)], std_dvars[list(spikes)] = 1.2, 2.0
    columns.update(
        std_dvars=std_dvars,
        dvars=20 * std_dvars,
        framewise_displacement=fd,
        rmsd=np.r_[np.nan, 0.05 * rng.random(n - 1)],
    )
    masks = ("combined", "CSF", "WM")
    comps = _standardize(rng.standard_normal((n, 3 * n_acompcor + 6))) / np.sqrt(n)
    for k in range(3 * n_acompcor):
        columns[f"a_comp_cor_{k:02d}"] = comps[:, k]
    for k in range(6):
        columns[f"t_comp_cor_{k:02d}"] = comps[:, 3 * n_acompcor + k]
    for k, values in enumerate(_dct(n, tr).T):
        columns[f"cosine{k:02d}"] = values
    columns.update(_one_hot(n, range(n_dummy), "non_steady_state_outlier"))
    columns.update(_expanded(motion, MOTION))
    columns.update(_one_hot(n, spikes, "motion_outlier"))
    meta = {}
    for k in range(3 * n_acompcor):
        meta[f"a_comp_cor_{k:02d}"] = _compcor_meta("aCompCor", masks[k // n_acompcor], k)
    for k in range(6):
        meta[f"t_comp_cor_{k:02d}"] = _compcor_meta("tCompCor", None, k)
    meta["dropped_0"] = {**_compcor_meta("aCompCor", "combined", 99), "Retained": False}
    for k in range(len(_dct(n, tr).T)):
        meta[f"cosine{k:02d}"] = {"Method": "DCT", "Cutoff": 128.0}
    return pd.DataFrame(columns), meta


def _compcor_meta(method: str, mask: str | None, k: int) -> dict[str, Any]:
    out = {
        "Method": method,
        "Retained": True,
        "SingularValue": 10.0 / (k + 1),
        "VarianceExplained": 0.02,
        "CumulativeVarianceExplained": 0.02 * (k + 1),
    }
    if mask is not None:
        out["Mask"] = mask
    return out


# ----------------------------------------------------------------------------- BOLD
def _standardize(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)


def _bold(rng, mask, table, n_dummy, spikes, *, noise, nuisance) -> np.ndarray:
    """(*shape, n) float64 BOLD: baseline, noise, drift, nuisance, dummy burst, spikes."""
    n = len(table)
    shape = mask.shape
    regressors = _standardize(table[[*MOTION, "white_matter", "csf"]].to_numpy())
    loadings = rng.normal(0, nuisance, (*shape, regressors.shape[1]))
    data = np.where(mask, 100.0, 10.0)[..., None] + rng.normal(0, noise, (*shape, n))
    data += np.tensordot(loadings, regressors, axes=(3, 1))
    data += rng.normal(0, 0.5, shape)[..., None] * np.linspace(-1, 1, n)
    burst = 30.0 * np.exp(-np.arange(n_dummy))
    data[..., :n_dummy] += mask[..., None] * burst
    data[..., list(spikes)] += 20.0 * mask[..., None]
    return data


def _surface_bold(rng, n_vertices: int, table, noise, nuisance) -> dict[str, np.ndarray]:
    regressors = _standardize(table[[*MOTION, "white_matter", "csf"]].to_numpy())
    out = {}
    for hemi in ("L", "R"):
        loadings = rng.normal(0, nuisance, (n_vertices, regressors.shape[1]))
        out[hemi] = 100 + rng.normal(0, noise, (n_vertices, len(table))) + loadings @ regressors.T
    return out


def _save_func_gii(data: np.ndarray, path: Path) -> None:
    """fMRIPrep's func.gii: one float32 TIME_SERIES data array per volume."""
    arrays = [
        nib.gifti.GiftiDataArray(
            np.ascontiguousarray(col, dtype=np.float32),
            intent="NIFTI_INTENT_TIME_SERIES",
            datatype="NIFTI_TYPE_FLOAT32",
        )
        for col in data.T
    ]
    nib.save(nib.gifti.GiftiImage(darrays=arrays), str(path))


def _save_label_gii(labels: np.ndarray, names: Mapping[str, int], path: Path) -> None:
    table = nib.gifti.GiftiLabelTable()
    for name, key in {"unknown": 0, **names}.items():
        label = nib.gifti.GiftiLabel(key=key, red=0.5, green=0.5, blue=0.5, alpha=1.0)
        label.label = name
        table.labels.append(label)
    darray = nib.gifti.GiftiDataArray(
        labels.astype(np.int32), intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32"
    )
    nib.save(nib.gifti.GiftiImage(darrays=[darray], labeltable=table), str(path))


# ----------------------------------------------------------------------------- tree
def _run_plan(sessions, runs_per_session, n_volumes) -> list[tuple[str | None, int, int]]:
    """[(session, run, n_volumes)] in (session, run) order; n_volumes cycles if shorter."""
    plan = []
    for ses, n_runs in zip(sessions or [None], runs_per_session):
        plan += [(ses, run, 0) for run in range(1, n_runs + 1)]
    lengths = [n_volumes] if isinstance(n_volumes, int) else list(n_volumes)
    return [(ses, run, lengths[k % len(lengths)]) for k, (ses, run, _) in enumerate(plan)]


def _write_description(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps(
            {
                "Name": "fMRIPrep - fMRI PREProcessing workflow",
                "BIDSVersion": "1.4.0",
                "DatasetType": "derivative",
                "GeneratedBy": [
                    {
                        "Name": "fMRIPrep",
                        "Version": "23.2.1",
                        "CodeURL": "https://github.com/nipreps/fmriprep",
                    }
                ],
            },
            indent=2,
        )
    )


def _write_atlas(
    folder: Path, mask: np.ndarray, atlas: str, space: str, subject: str | None
) -> dict:
    stem = folder / bids_name("dseg", "", sub=subject, space=space, atlas=atlas)
    files = {
        "atlas": _save(atlas_volume(mask), Path(f"{stem}.nii.gz")),
        "labels": Path(f"{stem}.tsv"),
    }
    pd.DataFrame({"index": list(ROIS.values()), "name": list(ROIS)}).to_csv(
        files["labels"], sep="\t", index=False
    )
    return files


def _write_run(func: Path, ents: dict, n: int, subject_files: dict, opts: dict, rng) -> dict:
    spikes = sorted(
        rng.choice(np.arange(opts["n_dummy"] + 3, n - 3), opts["fd_spikes"], replace=False).tolist()
    )
    table, meta = _confounds(rng, n, opts["tr"], opts["n_dummy"], spikes, opts["n_acompcor"])
    conf = func / bids_name("timeseries", ".tsv", **ents, desc="confounds")
    table.to_csv(conf, sep="\t", index=False, na_rep="n/a")
    conf.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    mask = subject_files["mask_array"]
    data = _bold(
        rng, mask, table, opts["n_dummy"], spikes, noise=opts["noise"], nuisance=opts["nuisance"]
    )
    if opts["plant"] is not None:
        data += opts["plant"](ents["sub"], ents.get("ses"), ents["run"], n)
    vol = {"space": opts["space"], "desc": "preproc"}
    bold = _save(
        data.astype(np.float32), func / bids_name("bold", ".nii.gz", **ents, **vol), opts["tr"]
    )
    sidecar = func / bids_name("bold", ".json", **ents, **vol)
    sidecar.write_text(
        json.dumps(
            {
                "RepetitionTime": opts["tr"],
                "TaskName": ents["task"],
                "SkullStripped": False,
                "StartTime": 0.0,
            },
            indent=2,
        )
    )
    _save(
        mask.astype(np.uint8),
        func / bids_name("mask", ".nii.gz", **ents, space=opts["space"], desc="brain"),
    )
    _save(
        np.full(mask.shape, 100, np.float32),
        func / bids_name("boldref", ".nii.gz", **ents, space="T1w"),
    )
    run = {
        "session": ents.get("ses"),
        "run": ents["run"],
        "n_volumes": n,
        "bold": bold,
        "sidecar": sidecar,
        "confounds": conf,
        "spikes": spikes,
        "n_dummy": opts["n_dummy"],
    }
    if opts["events"]:
        run["events"] = func / bids_name("events", ".tsv", **ents)
        onsets = np.arange(4, n * opts["tr"] - 8, 6.0)
        pd.DataFrame(
            {
                "onset": onsets,
                "duration": 2.0,
                "trial_type": "stim",
                "concept": [f"c{k % 3}" for k in range(len(onsets))],
            }
        ).to_csv(run["events"], sep="\t", index=False)
    if opts["surface_space"]:
        run["surface"] = {}
        for hemi, values in _surface_bold(
            rng, opts["n_vertices"], table, opts["noise"], opts["nuisance"]
        ).items():
            path = func / bids_name("bold", ".func.gii", **ents, hemi=hemi, space=opts["surface_space"])
            _save_func_gii(values, path)
            path.with_name(path.name.replace(".func.gii", ".json")).write_text(sidecar.read_text())
            run["surface"][hemi] = path
    return run


def write_fmriprep_tree(
    root: str | Path,
    *,
    subjects: Sequence[str] = ("01", "02"),
    sessions: Sequence[str] | None = ("1", "2"),
    runs_per_session: Sequence[int] = (2, 1),
    n_volumes: int | Sequence[int] = (36, 30, 33),
    shape: tuple[int, int, int] = (7, 8, 9),
    space: str = SPACE,
    task: str = "movie",
    tr: float = TR,
    n_dummy: int = 2,
    fd_spikes: int = 0,
    n_acompcor: int = 20,
    noise: float = 1.0,
    nuisance: float = 3.0,
    plant: Plant | None = None,
    atlas: str | None = None,
    per_subject_atlas: bool = False,
    events: bool = False,
    surface_space: str | None = None,
    n_vertices: int = 10242,
    seed: int = 0,
) -> dict[str, Any]:
    """Write a small fMRIPrep derivatives tree (see the module docstring).

    Parameters
    ----------
    root : path
        Output folder (the derivatives root).
    subjects, sessions : sequence of str
        Labels; ``sessions=None`` writes no session level.
    runs_per_session : sequence of int
        Runs of each session (unequal allowed), aligned with ``sessions``.
    n_volumes : int or sequence of int
        Volumes of each run of a subject in (session, run) order, cycled.
    shape, space, task, tr
        Grid (voxels of 3 mm), template space, task entity, repetition time (s).
    n_dummy, fd_spikes
        Non-steady-state volumes at the start of each run; motion spikes per run
        (FD 1.2 mm, std DVARS 2.0, a global BOLD jump, a ``motion_outlierNN`` column).
    n_acompcor : int
        aCompCor components per mask (combined, CSF, WM).
    noise, nuisance : float
        SD of the white noise; SD of the voxel loadings on the standardised motion and
        WM / CSF regressors.
    plant : callable or None
        ``plant(subject, session, run, n_volumes) -> array (*shape, n_volumes)``, added to
        the volume BOLD (see :func:`voxel_plant`).
    atlas : str or None
        Write an atlas with this label (ROIs :data:`ROIS`, a ``.tsv`` of index and name):
        per subject under ``anat/`` if ``per_subject_atlas``, else one shared at the root;
        with ``surface_space``, also ``hemi-{L,R}_space-<surface>_atlas-<atlas>_dseg.label.gii``.
    events : bool
        Write an ``_events.tsv`` per run (onset, duration, trial_type, concept).
    surface_space, n_vertices
        Also write ``_hemi-{L,R}_space-<surface_space>_bold.func.gii`` of ``n_vertices``
        vertices per hemisphere.
    seed : int

    Returns
    -------
    tree : dict
        ``root``, ``space``, ``task``, ``tr``, ``shape``, ``affine``, and ``subjects``:
        per subject ``mask`` (path), ``mask_array`` (bool), ``atlas`` / ``labels`` (if
        written) and ``runs``: per run ``session``, ``run``, ``n_volumes``, ``bold``,
        ``sidecar``, ``confounds``, ``spikes``, ``n_dummy`` (and ``events``, ``surface``).
    """
    root = Path(root)
    _write_description(root)
    rng = np.random.default_rng(seed)
    opts = dict(
        tr=tr,
        n_dummy=n_dummy,
        fd_spikes=fd_spikes,
        n_acompcor=n_acompcor,
        noise=noise,
        nuisance=nuisance,
        plant=plant,
        space=space,
        events=events,
        surface_space=surface_space,
        n_vertices=n_vertices,
    )
    tree: dict[str, Any] = {
        "root": root,
        "space": space,
        "task": task,
        "tr": tr,
        "shape": shape,
        "affine": AFFINE,
        "subjects": {},
    }
    if atlas and not per_subject_atlas:
        tree.update(
            _write_atlas(
                root, np.any([subject_mask(i, shape) for i in range(6)], axis=0), atlas, space, None
            )
        )
    if atlas and surface_space:
        for hemi in ("L", "R"):
            labels = 1 + (np.arange(n_vertices) * 3) // n_vertices
            _save_label_gii(
                labels,
                ROIS,
                root / bids_name("dseg", ".label.gii", hemi=hemi, space=surface_space, atlas=atlas),
            )
    for index, sub in enumerate(subjects):
        tree["subjects"][sub] = _write_subject(
            root,
            index,
            sub,
            sessions,
            runs_per_session,
            n_volumes,
            shape,
            task,
            atlas,
            per_subject_atlas,
            opts,
            rng,
        )
    return tree


def _write_subject(
    root,
    index,
    sub,
    sessions,
    runs_per_session,
    n_volumes,
    shape,
    task,
    atlas,
    per_subject_atlas,
    opts,
    rng,
) -> dict:
    anat = root / f"sub-{sub}" / "anat"
    mask = subject_mask(index, shape)
    files: dict[str, Any] = {"mask_array": mask, "runs": []}
    files["mask"] = _save(
        mask.astype(np.uint8),
        anat / bids_name("mask", ".nii.gz", sub=sub, space=opts["space"], desc="brain"),
    )
    _save(
        atlas_volume(mask).astype(np.uint8),
        anat / bids_name("dseg", ".nii.gz", sub=sub, space=opts["space"]),
    )
    (root / f"sub-{sub}.html").write_text("<html></html>")
    (root / f"sub-{sub}" / "figures").mkdir(parents=True, exist_ok=True)
    (root / f"sub-{sub}" / "figures" / f"sub-{sub}_desc-summary_T1w.html").write_text("")
    if atlas and per_subject_atlas:
        files.update(_write_atlas(anat, mask, atlas, opts["space"], sub))
    for ses, run, n in _run_plan(sessions, runs_per_session, n_volumes):
        func = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
        func.mkdir(parents=True, exist_ok=True)
        ents = {"sub": sub, "ses": ses, "task": task, "run": run}
        files["runs"].append(_write_run(func, ents, n, files, opts, rng))
    return files
