"""The neuron-level demo (format ``synthetic_neurons``): fMRI driven by chosen model units.

A BIDS-style naturalistic fMRI dataset, written in the layout of the fMRI demo (read by the
same BIDS reader), whose voxels are driven by single units of tiny models instead of whole
layers. The atlas's ROIs are functional networks: spheres for ``language`` (left IFG, left
pSTG), ``visual`` (occipital poles), ``dorsalattention`` (intraparietal sulci),
``defaultmode`` (posterior cingulate, medial prefrontal) and ``control`` (right motor
cortex, never driven); its labels table carries a ``network`` column.

Each *plant* ``{model, layer, modality, network}`` draws ``group_size`` units of that
modality (``text``, ``vision`` or ``cross``, see :mod:`brainalign.neurons.units`) from the
layer, and splits the network's voxels into two halves fixed across subjects:

* every unit of the group drives every voxel of the network (units sharing a voxel set:
  redundancy), with a positive weight on one half and a negative weight on the other
  (polarity);
* the voxel's signal is the weighted sum of the group's standardised units, HRF-convolved
  per run, scaled to ``snr`` (noise variance 1), plus AR(1) noise, slow drift and motion
  confounds as in the fMRI demo.

The ground truth (``ground_truth/ground_truth.json``: the plants, their units as column
indices of ``layer-XX``; ``ground_truth/plants.safetensors``: per plant the sign of every
mask voxel, +1 / -1 / 0, with the voxels' ``ijk``) is written next to the data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..datasets.bids_reader import BidsReader
from ..datasets.naming import demo_shared_files
from ..datasets.registry import register_reader
from ..io import save_arrays, save_nifti, write_json, write_table
from ._checks import check_positive_float, check_positive_int, check_seed
from .dataset import _simulate_naturalistic, _write_naturalistic
from .signals import convolve_hrf, standardize_features

__all__ = ["NETWORK_SPHERES", "SyntheticNeuronsReader", "make_neurons_dataset"]

logger = logging.getLogger(__name__)

#: ROI name -> (atlas index, network label, sphere centres in MNI mm)
NETWORK_SPHERES: dict[str, tuple[int, str, tuple[tuple[float, float, float], ...]]] = {
    "language": (1, "language", ((-50.0, 22.0, 8.0), (-56.0, -44.0, 6.0))),
    "visual": (2, "visual", ((-18.0, -92.0, 2.0), (18.0, -92.0, 2.0))),
    "dorsalattention": (3, "dorsal attention", ((-28.0, -60.0, 52.0), (28.0, -60.0, 52.0))),
    "defaultmode": (4, "default mode", ((0.0, -54.0, 28.0), (0.0, 52.0, -4.0))),
    "control": (5, "somatomotor", ((38.0, -22.0, 56.0),)),
}
RADIUS_MM = 16.0


@register_reader("synthetic_neurons")
class SyntheticNeuronsReader(BidsReader):
    """The BIDS reader on the neuron-level demo's files (named as the fMRI demo's)."""

    def __init__(self, dataset, stimuli_root, source="config/config.yaml", *, preprocess=None):
        super().__init__(dataset, stimuli_root, source, preprocess=preprocess)
        self.synthetic = True


def _network_brain(voxel_size: float) -> tuple[Any, Any, pd.DataFrame]:
    """Mask, network atlas and its labels (index, name, network) on the demo grid."""
    import nibabel as nib

    from .brain import _world_coordinates, make_demo_brain

    mask_img, _, _ = make_demo_brain(voxel_size)
    mask = np.asarray(mask_img.dataobj) > 0
    xyz = _world_coordinates(mask_img.affine, mask.shape)
    labels = np.zeros(mask.shape, dtype=np.int16)
    for name, (index, _, centres) in NETWORK_SPHERES.items():
        for centre in centres:
            inside = np.linalg.norm(xyz - np.asarray(centre), axis=-1) <= RADIUS_MM
            labels[inside & mask & (labels == 0)] = index
        if not (labels == index).any():
            raise ValueError(f"demo network ROI '{name}' has no voxel at {voxel_size} mm; "
                             "use a 'voxel_size' of at most 12 mm")
    atlas = nib.Nifti1Image(labels, mask_img.affine, mask_img.header)
    table = pd.DataFrame([(i, name, net) for name, (i, net, _) in NETWORK_SPHERES.items()],
                         columns=["index", "name", "network"])
    return mask_img, atlas, table


def _load_plant_units(features: Mapping[str, str], plants: Sequence[Mapping[str, Any]]):
    """Per (model, layer): the unit matrix, its labels, the run array and the TR."""
    from ..neurons.units import read_units

    loaded = {}
    for plant in plants:
        key = (plant["model"], int(plant["layer"]))
        if key not in loaded:
            units, labels, extra, meta = read_units(features[plant["model"]], [key[1]])
            if meta.get("task") != "naturalistic" or "run" not in extra:
                raise ValueError(f"features file '{features[plant['model']]}' must hold TR-aligned "
                                 "naturalistic features with an array 'run'; re-run the extraction")
            loaded[key] = (standardize_features(units.astype(np.float64)), labels,
                           np.asarray(extra["run"], dtype=np.int64), float(meta["tr"]))
    return loaded


def _pick_distinct(pool: list[int], units: np.ndarray, chosen: list[np.ndarray], n: int,
                   rng: np.random.Generator) -> list[int]:
    """``n`` units of ``pool``, one at a time, each drawn among the 3 candidates least
    correlated (max |r|) with every unit picked so far in the model (``chosen``)."""
    picked: list[int] = []
    for _ in range(n):
        candidates = [u for u in pool if u not in picked]
        others = chosen + [units[:, picked]]
        other = np.concatenate(others, axis=1) if any(o.size for o in others) else None
        if other is None or other.shape[1] == 0:
            picked.append(int(rng.choice(candidates)))
            continue
        r = np.abs(units[:, candidates].T @ other).max(axis=1) / len(units)  # standardised
        best = np.argsort(r, kind="stable")[:3]
        picked.append(int(candidates[int(rng.choice(best))]))
    return sorted(picked)


def _choose_units(plants, loaded, group_size: int, seed: int) -> list[dict[str, Any]]:
    """Draw each plant's group of units of its modality (seeded), each among the units
    least correlated with those planted before it in the same model, so that a group's
    units do not cancel and each group's network stays its own."""
    rng = np.random.default_rng([seed, 101])
    used: dict[tuple[str, int], set[int]] = {}
    planted: dict[str, list[np.ndarray]] = {}
    chosen = []
    for k, plant in enumerate(plants):
        key = (plant["model"], int(plant["layer"]))
        values, labels = loaded[key][0], loaded[key][1]
        taken = used.setdefault(key, set())
        pool = [int(i) for i in labels.index[labels["modality"] == plant["modality"]]
                if int(i) not in taken]
        if len(pool) < group_size + 2:
            raise ValueError(
                f"plant {k} ({plant['model']} layer {plant['layer']}): {len(pool)} free units of "
                f"modality '{plant['modality']}' for a group of {group_size} (2 more needed to choose from); "
                f"modalities there: {sorted(labels['modality'].unique())}. Fix neurons.demo.plants"
            )
        units = _pick_distinct(pool, values, planted.get(plant["model"], []), group_size, rng)
        taken.update(units)
        planted.setdefault(plant["model"], []).append(values[:, units])
        chosen.append({**dict(plant), "layer": int(plant["layer"]), "units": units,
                       "index": [int(labels.loc[u, "index"]) for u in units]})
    return chosen


def _plant_signs(chosen, roi_of_voxel, rois: dict[str, int], seed: int) -> np.ndarray:
    """int8 (n_plants, n_voxels): +1 / -1 on the two halves of each plant's network."""
    signs = np.zeros((len(chosen), len(roi_of_voxel)), dtype=np.int8)
    for k, plant in enumerate(chosen):
        voxels = np.flatnonzero(roi_of_voxel == rois[plant["network"]])
        order = np.random.default_rng([seed, 202, k]).permutation(voxels)
        half = len(order) // 2
        signs[k, order[:half]], signs[k, order[half:]] = 1, -1
    return signs


def _signal(chosen, signs, loaded, snr: float, seed: int, subject: int) -> np.ndarray:
    """(n_trs, n_voxels) planted signal in noise sd; 0 outside the planted networks."""
    first = next(iter(loaded.values()))
    run, tr = first[2], first[3]
    raw = np.zeros((len(run), signs.shape[1]))
    rng = np.random.default_rng([seed, subject, 303])
    for k, plant in enumerate(chosen):
        units = loaded[(plant["model"], plant["layer"])][0][:, plant["units"]]
        gains = rng.uniform(0.7, 1.3, (len(plant["units"]), signs.shape[1]))
        raw += (units @ gains) * signs[k]
    driven = signs.any(axis=0)
    signal = np.zeros_like(raw)
    signal[:, driven] = standardize_features(convolve_hrf(raw[:, driven], run, tr))
    return np.sqrt(snr) * signal


def _check_params(n_subjects, group_size, snr, ar1_phi, voxel_size) -> None:
    check_positive_int("n_subjects", n_subjects)
    check_positive_int("group_size", group_size)
    check_positive_float("snr", snr)
    check_positive_float("voxel_size", voxel_size)
    if not (isinstance(ar1_phi, (int, float)) and 0.0 <= ar1_phi < 1.0):
        raise ValueError(f"parameter 'ar1_phi' must be a number in [0, 1); got {ar1_phi!r}")


def make_neurons_dataset(
    out_dir: str | os.PathLike,
    *,
    features: Mapping[str, str | os.PathLike],
    plants: Sequence[Mapping[str, Any]],
    n_subjects: int = 1,
    group_size: int = 3,
    voxel_size: float = 12.0,
    snr: float = 2.0,
    ar1_phi: float = 0.3,
    seed: int = 0,
) -> Path:
    """Write the neuron-level demo: naturalistic BOLD driven by planted model units.

    Parameters
    ----------
    out_dir : path-like
        Dataset root; created if needed.
    features : mapping of str to path-like
        Model name -> its TR-aligned naturalistic feature file (the plants' layers in it).
    plants : sequence of mapping
        ``{model, layer, modality, network}``: a group of ``group_size`` units of that
        modality of the layer drives the network (a ROI of :data:`NETWORK_SPHERES`).
    n_subjects : int
        Subjects ``01``...: same planted units and voxel halves, own gains and noise.
    group_size : int
        Units per plant (they share the network's voxels).
    voxel_size : float
        Isotropic voxel side (mm) of the MNI grid.
    snr : float
        Planted signal variance over noise variance in every driven voxel.
    ar1_phi : float
        AR(1) coefficient of the noise, in [0, 1).
    seed : int
        Seeds the units drawn, the voxel halves, the gains and the noise.

    Returns
    -------
    out_dir : Path
    """
    _check_params(n_subjects, group_size, snr, ar1_phi, voxel_size)
    seed, out = check_seed(seed), Path(out_dir)
    unknown = [p.get("network") for p in plants if p.get("network") not in NETWORK_SPHERES]
    if not plants or unknown:
        raise ValueError(f"parameter 'plants' must drive networks among {list(NETWORK_SPHERES)}; "
                         f"got {unknown or 'none'}. Fix neurons.demo.plants")
    mask_img, atlas_img, table = _network_brain(voxel_size)
    shared = demo_shared_files(str(out), "networks")
    save_nifti(mask_img, shared["mask"])
    save_nifti(atlas_img, shared["atlas"])
    write_table(table, shared["labels"])
    mask = np.asarray(mask_img.dataobj) > 0
    roi_of_voxel = np.asarray(atlas_img.dataobj)[mask].astype(np.int64)
    rois = dict(zip(table["name"], table["index"].astype(int), strict=True))
    loaded = _load_plant_units(features, plants)
    chosen = _choose_units(plants, loaded, group_size, seed)
    signs = _plant_signs(chosen, roi_of_voxel, rois, seed)
    first = next(iter(loaded.values()))
    timing = {"run": first[2], "runs": [int(r) for r in pd.unique(first[2])], "tr": first[3]}
    for index in range(n_subjects):
        signal = _signal(chosen, signs, loaded, snr, seed, index)
        rng = np.random.default_rng([seed, index, 404])
        sim = _simulate_naturalistic({"gen": timing}, signal, ar1_phi, random_state=rng)
        _write_naturalistic(out, f"{index + 1:02d}", sim, mask, mask_img.affine, timing["tr"])
    save_arrays(out / "ground_truth" / "plants.safetensors",
                {"sign": signs, "ijk": np.argwhere(mask).astype(np.int32)},
                {"plants": chosen, "units": "sign of each plant's weights on each mask voxel"})
    write_json({"plants": chosen, "rois": rois, "networks": dict(zip(table["name"], table["network"])),
                "seed": seed, "snr": float(snr), "ar1_phi": float(ar1_phi), "group_size": group_size,
                "n_subjects": n_subjects, "voxel_size": float(voxel_size),
                "generated_by": f"brainalign {__version__} make_neurons_dataset"},
               out / "ground_truth" / "ground_truth.json")
    write_json({"Name": "brainalign neuron-level demo", "BIDSVersion": "1.9.0",
                "DatasetType": "raw"}, out / "dataset_description.json")
    logger.info("neurons demo: %d subjects, %d plants of %d units, snr %.3g -> %s",
                n_subjects, len(chosen), group_size, snr, out)
    return out
