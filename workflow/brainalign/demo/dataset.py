"""The synthetic demo dataset: BIDS-style fMRI with a planted, known brain-model alignment.

ROIs named in ``generators`` respond to one layer of a model's features (a random linear
projection, scaled to a requested SNR); every other voxel, the ``control`` ROI included, is
pure noise. Two tasks are simulated per subject:

* ``concepts``: single-trial response estimates (one volume per trial), each the concept's
  planted pattern plus Gaussian trial noise, with a per-run offset and a per-voxel gain;
* ``naturalistic``: a BOLD time series = baseline (~1000) + HRF-convolved TR-level signal
  + AR(1) noise + slow drift + motion confounds (loaded at random, written to the confounds
  TSV so that regressing them matters), all in units of 1 % of the baseline.

The ground truth (which model/condition/layer drives which ROI, the SNR, and per subject and
task the planted signal and its variance fraction per voxel) is written to ``ground_truth/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..datasets.naming import demo_files, demo_shared_files
from ..io import load_arrays, save_arrays, save_nifti, sha256_file, write_json, write_table
from ._checks import check_positive_float, check_positive_int, check_seed
from .brain import make_demo_brain
from .signals import (
    ar1_noise,
    convolve_hrf,
    motion_confounds,
    plant_signal,
    random_projection,
    slow_drift,
    standardize_features,
)

__all__ = ["make_demo_dataset", "load_generator_features"]

logger = logging.getLogger(__name__)

_TASKS = ("concepts", "naturalistic")
_STREAMS = {"weights": 0, "concepts": 1, "naturalistic": 2}
_SIGNAL_DEFINITION = (
    "standardised layer features x Gaussian voxel weights (with a shared rank-3 part), "
    "HRF-convolved for the naturalistic task, scaled to variance snr (noise variance 1); "
    "stored for the driven voxels in sub-XX_task-T_desc-signal.safetensors"
)
_FRACTION_DEFINITION = (
    "per voxel var(signal) / (var(signal) + var(noise)) over the realised trials (concepts: "
    "trial noise) or TRs (naturalistic: AR(1) noise, i.e. what perfect removal of drift and "
    "confounds would leave); 0 outside the driven ROIs"
)


# ----------------------------------------------------------------------------- generators
def _load_layer(path: str | os.PathLike, layer: int, task: str) -> tuple[np.ndarray, dict, dict]:
    """One layer of a features file, checked to be of ``task``."""
    arrays, meta = load_arrays(path)
    key = f"layer-{layer:02d}"
    if meta.get("task") != task:
        raise ValueError(
            f"features file '{path}' must have metadata task '{task}'; got {meta.get('task')!r}. "
            f"Pass the {task} features of the model."
        )
    if key not in arrays:
        have = sorted(k for k in arrays if k.startswith("layer-"))
        raise ValueError(
            f"features file '{path}' has no array '{key}'; it has {have}. "
            "Pick one of those layers."
        )
    record = {
        "file": Path(path).name,
        "sha256": sha256_file(path),
        "layer": layer,
        **{k: meta.get(k) for k in ("model", "model_id", "condition")},
    }
    return np.asarray(arrays[key], dtype=np.float64), arrays, {**meta, "record": record}


def _load_concepts(path: str | os.PathLike, layer: int) -> dict[str, Any]:
    features, _, meta = _load_layer(path, layer, "concepts")
    stimuli = [str(c) for c in meta.get("stimuli", [])]
    if len(stimuli) != len(features) or len(set(stimuli)) != len(stimuli):
        raise ValueError(
            f"features file '{path}' must list {len(features)} unique concepts in "
            f"metadata 'stimuli'; got {len(stimuli)}. Re-run the extraction."
        )
    return {"concepts": features, "stimuli": stimuli, "record": meta["record"]}


def _load_naturalistic(path: str | os.PathLike, layer: int) -> dict[str, Any]:
    features, arrays, meta = _load_layer(path, layer, "naturalistic")
    if "run" not in arrays or len(arrays["run"]) != len(features) or "tr" not in meta:
        raise ValueError(
            f"features file '{path}' needs an array 'run' with one entry per row "
            f"({len(features)}) and metadata 'tr'; re-run the TR alignment."
        )
    run = np.asarray(arrays["run"], dtype=np.int64)
    return {
        "naturalistic": features,
        "run": run,
        "runs": [int(r) for r in pd.unique(run)],
        "tr": float(meta["tr"]),
        "record": meta["record"],
    }


_TASK_LOADERS = {"concepts": _load_concepts, "naturalistic": _load_naturalistic}


def load_generator_features(roi: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Read and check one ROI's generator: one layer's features for one or both tasks.

    Parameters
    ----------
    roi : str
        ROI name (for messages).
    spec : mapping
        ``layer`` (int) and at least one of ``concepts`` and ``naturalistic`` (paths to
        features files of that task).

    Returns
    -------
    generator : dict
        ``tasks`` (the tasks given), ``record`` (provenance per task) and, per task,
        concepts: ``concepts`` array (n_concepts, n_features) and ``stimuli`` (list of str);
        naturalistic: ``naturalistic`` array (n_trs_total, n_features), ``run``
        (n_trs_total,), ``runs`` (list of int) and ``tr`` (float).
    """
    is_mapping = isinstance(spec, Mapping)
    tasks = [task for task in _TASKS if is_mapping and task in spec]
    layer = spec.get("layer") if is_mapping else None
    if not tasks or isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise ValueError(
            f"generators['{roi}'] must be a dict with 'layer' (int) and paths under 'concepts' "
            f"and/or 'naturalistic'; got {dict(spec) if isinstance(spec, Mapping) else spec!r}. "
            "Fix the generator."
        )
    generator: dict[str, Any] = {"tasks": tasks, "record": {}}
    for task in tasks:
        loaded = _TASK_LOADERS[task](spec[task], int(layer))
        generator["record"][task] = loaded.pop("record")
        generator.update(loaded)
    return generator


def _same_design(gen: dict, first: dict) -> bool:
    """Two generators describe the same stimuli in every task both cover."""
    same = True
    if "concepts" in gen["tasks"] and "concepts" in first["tasks"]:
        same = sorted(gen["stimuli"]) == sorted(first["stimuli"])
    if same and "naturalistic" in gen["tasks"] and "naturalistic" in first["tasks"]:
        same = np.array_equal(gen["run"], first["run"]) and gen["tr"] == first["tr"]
    return same


def _tasks(loaded: Mapping[str, dict]) -> list[str]:
    """The simulated tasks: those of any generator (an audio generator drives only the
    naturalistic task; in the others its ROI is noise)."""
    return [task for task in _TASKS if any(task in gen["tasks"] for gen in loaded.values())]


def _driving(loaded: Mapping[str, dict], task: str) -> dict[str, dict]:
    """The generators that drive ``task``."""
    return {roi: gen for roi, gen in loaded.items() if task in gen["tasks"]}


def _load_generators(generators: Mapping[str, Mapping], rois: dict[str, int]) -> dict[str, dict]:
    """Every generator, checked to share tasks, concepts, runs and TR; concepts realigned."""
    allowed = sorted(name for name in rois if name != "control")
    if not isinstance(generators, Mapping) or not generators or set(generators) - set(allowed):
        got = sorted(generators) if isinstance(generators, Mapping) else type(generators).__name__
        raise ValueError(
            f"parameter 'generators' must map some of the ROIs {allowed} to feature files; got "
            f"{got}. The 'control' ROI is never driven."
        )
    loaded = {roi: load_generator_features(roi, generators[roi]) for roi in sorted(generators)}
    for roi, gen in loaded.items():
        for first_roi, first in loaded.items():
            if not _same_design(gen, first):
                raise ValueError(
                    f"generators '{roi}' and '{first_roi}' must describe the same stimuli; got "
                    "different concept sets, runs or TR. Extract both from the same stimuli."
                )
    concepts = _driving(loaded, "concepts")
    if concepts:  # realign rows to the first concept generator's order
        order_of = next(iter(concepts.values()))["stimuli"]
        for gen in concepts.values():
            order = [gen["stimuli"].index(c) for c in order_of]
            gen["concepts"], gen["stimuli"] = gen["concepts"][order], list(order_of)
    return loaded


# ----------------------------------------------------------------------------- simulation
def _rng(seed: int, subject: int, stream: str, roi: int = 0) -> np.random.Generator:
    """Independent generator per (seed, subject, stream, roi): adding one changes no other."""
    return np.random.default_rng([seed, subject, _STREAMS[stream], roi])


def _planted(task, loaded, roi_of_voxel, rois, seed, subject, snr) -> np.ndarray:
    """Signal (n_samples, n_mask_voxels), in units of the noise sd; 0 outside driven ROIs."""
    driving = _driving(loaded, task)
    any_gen = next(iter(driving.values()))
    signal = np.zeros((len(any_gen[task]), len(roi_of_voxel)))
    for roi, gen in driving.items():
        columns = np.flatnonzero(roi_of_voxel == rois[roi])
        rng = _rng(seed, subject, "weights", rois[roi])  # same weights for both tasks
        weights = random_projection(gen[task].shape[1], len(columns), random_state=rng)
        planted = plant_signal(gen[task], weights)
        if task == "naturalistic":
            planted = standardize_features(convolve_hrf(planted, gen["run"], gen["tr"]))
        signal[:, columns] = np.sqrt(snr) * planted
    return signal


def _signal_fraction(signal: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Per voxel var(signal) / (var(signal) + var(noise)), over the realised samples."""
    var_signal, var_noise = signal.var(axis=0), noise.var(axis=0)
    return var_signal / (var_signal + var_noise)


def _simulate_concepts(loaded, signal, n_runs, n_contexts, *, random_state) -> dict[str, Any]:
    """Single-trial volumes per run: offset_run + gain * (signal[concept] + trial noise)."""
    concepts = next(iter(loaded.values()))["stimuli"]
    n_voxels = signal.shape[1]
    gain = random_state.uniform(0.5, 2.0, n_voxels)
    runs, planted, noises = [], [], []
    for run in range(n_runs):
        contexts = [k for k in range(n_contexts) if k % n_runs == run]
        trials = [(c, k) for c in range(len(concepts)) for k in contexts]
        trials = [trials[i] for i in random_state.permutation(len(trials))]
        rows = np.array([c for c, _ in trials])
        noise = random_state.standard_normal((len(trials), n_voxels))
        offset = random_state.normal(0.0, 2.0, n_voxels)
        events = pd.DataFrame(
            {
                "trial": np.arange(1, len(trials) + 1),
                "concept": [concepts[c] for c in rows],
                "context": [k for _, k in trials],
            }
        )
        runs.append((events, offset + gain * (signal[rows] + noise)))
        planted.append(signal[rows])
        noises.append(noise)
    fraction = _signal_fraction(np.concatenate(planted), np.concatenate(noises))
    return {"runs": runs, "fraction": fraction}


def _simulate_naturalistic(loaded, signal, phi, *, random_state) -> dict[str, Any]:
    """BOLD per run: baseline + sd * (signal + AR(1) noise + drift + confounds @ loadings)."""
    gen = next(iter(loaded.values()))
    n_voxels = signal.shape[1]
    baseline = 1000.0 * random_state.uniform(0.8, 1.2, n_voxels)
    loadings = random_state.normal(0.0, 1.0, (6, n_voxels))
    runs, noises = [], []
    for label in gen["runs"]:
        rows = gen["run"] == label
        n_trs = int(rows.sum())
        noise = ar1_noise(n_trs, n_voxels, phi, random_state=random_state)
        drift = slow_drift(n_trs, n_voxels, gen["tr"], random_state=random_state)
        confounds = motion_confounds(n_trs, random_state=random_state)
        nuisance = drift + standardize_features(confounds.to_numpy()) @ loadings
        bold = baseline + 0.01 * baseline * (signal[rows] + noise + nuisance)
        runs.append((label, bold, confounds))
        noises.append(noise)
    return {"runs": runs, "fraction": _signal_fraction(signal, np.concatenate(noises))}


# ----------------------------------------------------------------------------- writing
def _volume(values: np.ndarray, mask: np.ndarray, affine: np.ndarray, zoom_t: float | None):
    """4D (or 3D for 1-D ``values``) float32 image with ``values`` scattered into ``mask``."""
    import nibabel as nib

    data = np.zeros(mask.shape + values.shape[:-1], dtype=np.float32)
    data[mask] = values.T
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=4)
    img.set_qform(affine, code=4)
    img.header.set_xyzt_units("mm", "sec")
    if zoom_t is not None:
        img.header.set_zooms(img.header.get_zooms()[:3] + (zoom_t,))
    return img


def _write_concepts(out, sub, sim, mask, affine) -> None:
    runs = list(range(1, len(sim["runs"]) + 1))
    files = demo_files(str(out), sub, "concepts", "concepts", runs)
    for k, (events, values) in enumerate(sim["runs"]):
        save_nifti(_volume(values, mask, affine, 1.0), files["bold"][k])
        write_table(events, files["events"][k])


def _write_naturalistic(out, sub, sim, mask, affine, tr) -> None:
    labels = [label for label, _, _ in sim["runs"]]
    files = demo_files(str(out), sub, "naturalistic", "naturalistic", labels)
    for k, (_, bold, confounds) in enumerate(sim["runs"]):
        save_nifti(_volume(bold, mask, affine, tr), files["bold"][k])
        write_json({"RepetitionTime": tr, "TaskName": "naturalistic"}, files["sidecar"][k])
        write_table(confounds, files["confounds"][k])


def _write_truth_arrays(out, sub, task, signal, roi_of_voxel, ijk, loaded, rois, snr) -> None:
    """The planted signal of the driven voxels, labelled (units: noise sd)."""
    driving = _driving(loaded, task)
    gen = next(iter(driving.values()))
    driven = np.isin(roi_of_voxel, [rois[name] for name in driving])
    arrays = {
        "signal": signal[:, driven].astype(np.float32),
        "roi": roi_of_voxel[driven].astype(np.int32),
        "ijk": ijk[driven].astype(np.int32),
    }
    meta = {"subject": sub, "task": task, "rois": rois, "snr": snr, "units": "noise sd"}
    if task == "concepts":
        meta["stimuli"] = gen["stimuli"]
    else:
        arrays["run"] = gen["run"].astype(np.int32)
        meta.update(runs=gen["runs"], tr=gen["tr"])
    save_arrays(
        out / "ground_truth" / f"sub-{sub}_task-{task}_desc-signal.safetensors", arrays, meta
    )


def _simulate_subject(out, index, loaded, brain, params) -> None:
    mask, affine, roi_of_voxel, ijk, rois = brain
    sub, seed, snr = f"{index + 1:02d}", params["seed"], params["snr"]
    for task in _tasks(loaded):
        signal = _planted(task, loaded, roi_of_voxel, rois, seed, index, snr)
        rng = _rng(seed, index, task)
        driving = _driving(loaded, task)
        if task == "concepts":
            sim = _simulate_concepts(
                driving, signal, params["n_concept_runs"], params["n_contexts"], random_state=rng
            )
            _write_concepts(out, sub, sim, mask, affine)
        else:
            sim = _simulate_naturalistic(driving, signal, params["ar1_phi"], random_state=rng)
            _write_naturalistic(out, sub, sim, mask, affine, next(iter(driving.values()))["tr"])
        _write_truth_arrays(out, sub, task, signal, roi_of_voxel, ijk, loaded, rois, snr)
        save_nifti(
            _volume(sim["fraction"], mask, affine, None),
            out / "ground_truth" / f"sub-{sub}_task-{task}_desc-signalfraction_map.nii.gz",
        )
        logger.info(
            "sub-%s task-%s: mean planted signal fraction %.3f in driven voxels",
            sub,
            task,
            sim["fraction"][signal.any(axis=0)].mean(),
        )


def _write_ground_truth(out: Path, loaded: dict, rois: dict, params: dict) -> None:
    truth = {
        "generators": {roi: gen["record"] for roi, gen in loaded.items()},
        "tasks": _tasks(loaded),
        "driven_tasks": {roi: gen["tasks"] for roi, gen in loaded.items()},
        "undriven_rois": sorted(set(rois) - set(loaded)),
        "rois": rois,
        **params,
        "signal": _SIGNAL_DEFINITION,
        "signalfraction": _FRACTION_DEFINITION,
        "generated_by": f"brainalign {__version__} make_demo_dataset",
    }
    write_json(truth, out / "ground_truth" / "ground_truth.json")


def _write_brain(out: Path, mask_img, atlas_img, rois: dict[str, int]):
    """Mask, atlas and labels; returns (mask, affine, roi_of_voxel, ijk, rois)."""
    shared = demo_shared_files(str(out), "demo")
    save_nifti(mask_img, shared["mask"])
    save_nifti(atlas_img, shared["atlas"])
    write_table(
        pd.DataFrame({"index": list(rois.values()), "name": list(rois)}), shared["labels"]
    )
    mask = np.asarray(mask_img.dataobj) > 0
    roi_of_voxel = np.asarray(atlas_img.dataobj)[mask].astype(np.int64)
    return mask, mask_img.affine, roi_of_voxel, np.argwhere(mask), rois


def _check_dataset_params(n_subjects, n_concept_runs, n_contexts, snr, ar1_phi) -> None:
    check_positive_int("n_subjects", n_subjects)
    check_positive_int("n_concept_runs", n_concept_runs)
    if check_positive_int("n_contexts", n_contexts) % n_concept_runs:
        raise ValueError(
            f"parameter 'n_contexts' must be a multiple of n_concept_runs ({n_concept_runs}); "
            f"got {n_contexts}. Each run shows every concept in n_contexts / n_concept_runs "
            "contexts."
        )
    check_positive_float("snr", snr)
    if not (isinstance(ar1_phi, (int, float)) and 0.0 <= ar1_phi < 1.0):
        raise ValueError(
            f"parameter 'ar1_phi' must be a number in [0, 1); got {ar1_phi!r}. Use e.g. 0.5."
        )


def make_demo_dataset(
    out_dir: str | os.PathLike,
    *,
    generators: Mapping[str, Mapping[str, Any]],
    n_subjects: int = 3,
    n_concept_runs: int = 2,
    n_contexts: int = 6,
    voxel_size: float = 8.0,
    snr: float = 0.5,
    ar1_phi: float = 0.5,
    seed: int = 0,
) -> Path:
    """Write a BIDS-style synthetic dataset whose ROIs are driven by known model features.

    Parameters
    ----------
    out_dir : str or path-like
        Dataset root (``ds/``); created if needed.
    generators : mapping of str to mapping
        ROI name (``language``, ``visual``) -> ``dict(concepts=path, naturalistic=path,
        layer=int)``: features files per the contract (concept features of shape
        (n_concepts, n_features); TR-aligned features of shape (n_trs_total, n_features) with
        array ``run``). Concepts, runs and TR of the dataset come from these files. A task
        left out of every generator is not simulated. ROIs not listed (always ``control``)
        are pure noise.
    n_subjects : int
        Subjects ``01``, ``02``...; each has its own voxel weights and noise.
    n_concept_runs : int
        Runs of the concept task; each shows every concept once per context it holds.
    n_contexts : int
        Contexts per concept (a multiple of ``n_concept_runs``); run ``r`` holds contexts
        ``k`` with ``k % n_concept_runs == r - 1``.
    voxel_size : float
        Isotropic voxel side (mm) of the MNI152 grid.
    snr : float
        Variance of the planted signal over variance of the noise (trial noise, or AR(1)
        noise for the naturalistic task) in every driven voxel.
    ar1_phi : float
        AR(1) coefficient of the naturalistic noise, in [0, 1).
    seed : int
        Seeds weights and noise; (seed, subject, stream, ROI) streams are independent.

    Returns
    -------
    out_dir : Path
    """
    _check_dataset_params(n_subjects, n_concept_runs, n_contexts, snr, ar1_phi)
    seed, out = check_seed(seed), Path(out_dir)
    mask_img, atlas_img, rois = make_demo_brain(check_positive_float("voxel_size", voxel_size))
    loaded = _load_generators(generators, rois)
    brain = _write_brain(out, mask_img, atlas_img, rois)
    params = {
        "seed": seed,
        "snr": float(snr),
        "ar1_phi": float(ar1_phi),
        "n_subjects": n_subjects,
        "n_concept_runs": n_concept_runs,
        "n_contexts": n_contexts,
        "voxel_size": float(voxel_size),
    }
    write_json(
        {
            "Name": "brainalign synthetic demo",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "brainalign", "Version": __version__}],
        },
        out / "dataset_description.json",
    )
    for index in range(n_subjects):
        _simulate_subject(out, index, loaded, brain, params)
    _write_ground_truth(out, loaded, brain[4], params)
    logger.info(
        "demo dataset: %d subjects, driven ROIs %s, snr %.3g, phi %.2f, seed %d -> %s",
        n_subjects,
        sorted(loaded),
        snr,
        ar1_phi,
        seed,
        out,
    )
    return out
