"""File-level steps of the neurons rules: read units and brain data, map, analyse, write.

:func:`run_map_units` is what rule ``map_units`` does for one subject x task x model x
condition: the chosen units of the model's feature file (:mod:`.units`), matched to the
brain data's rows by their labels, are mapped to every usable voxel by
:func:`brainalign.neurons.mapping.map_units` (FIR delays and leave-one-run-out folds of the
encoding stage for time series; folds over stimuli for concept patterns), and the analyses
of :mod:`brainalign.neurons.analyses` are written as tidy tables. :func:`summarize_neurons`
pools the tables of every job (rule ``neurons_summary``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import io
from ..datasets.units import roi_mask, usable_units
from ..encoding.cv import outer_splits
from ..encoding.steps import design_matrices, load_brain
from ..pipeline import match_features, save_map
from .units import read_units

__all__ = ["voxel_networks", "cv_groups", "run_map_units", "run_architecture_contrast",
           "summarize_neurons", "TABLES"]

logger = logging.getLogger(__name__)
PathLike = str | os.PathLike
#: The tables each mapping job writes (output names of rule map_units) and pools.
TABLES = ("units", "networks", "redundancy", "countnull", "overlap", "polarity", "architecture")


def voxel_networks(
    arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], networks: Mapping[str, Sequence[str]]
) -> tuple[np.ndarray, list[str]]:
    """The functional network of every unit of a brain file, from its labelled ROIs.

    Parameters
    ----------
    arrays, meta : mapping
        A preprocessed brain file (``roi`` and ``meta['rois']``).
    networks : mapping of str to list of str
        Network label -> the ROI names it is made of (``neurons.networks``).

    Returns
    -------
    network : int array of shape (n_units,)
        Index into ``names`` (the first network listing a unit's ROI), -1 = none.
    names : list of str
    """
    names = list(networks)
    network = np.full(arrays["roi"].shape[0], -1, dtype=np.int64)
    for k in reversed(range(len(names))):  # the first network listed wins an overlap
        for roi in networks[names[k]]:
            network[roi_mask(arrays, meta, roi)] = k
    return network, names


def cv_groups(kind: str, groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """The CV group of each sample: the run (time series), the block (epochs), or for
    concept patterns the outer fold of each stimulus (``encoding.outer_folds``, seeded)."""
    if kind != "concepts":
        return np.asarray(groups)
    fold = np.empty(len(groups), dtype=np.int64)
    for k, (_, test) in enumerate(outer_splits("concepts", np.asarray(groups), n_folds, seed)):
        fold[test] = k
    return fold


def _design(features: PathLike, brain: PathLike, layers, kinds, encoding):
    """Units in the brain's rows, responses of usable voxels, and the fit parameters."""
    Y, groups, bmeta, barrays = load_brain(brain)
    units, labels, extra, fmeta = read_units(features, layers, kinds)
    X = match_features({"layer-00": units, **extra}, fmeta, bmeta, 0, features)
    params = {"delays": list(encoding["delays"]) if bmeta["kind"] == "timeseries" else [0]}
    matrices, params = design_matrices({0: X}, barrays, bmeta, params)
    usable = usable_units(barrays, bmeta)
    return matrices[0], Y[:, usable], groups, labels, fmeta, (bmeta, barrays, usable), params


def _unit_table(result, labels: pd.DataFrame, network: np.ndarray, names: list[str]) -> pd.DataFrame:
    """One row per unit (or atom): its labels, significant voxels by sign, best network."""
    sig = np.asarray(result.significant, dtype=bool)
    sign = np.asarray(result.sign)
    score = np.where(sig, np.asarray(result.score, dtype=np.float64), -np.inf)
    counts = np.stack([(sig & (network == k)).sum(axis=1) for k in range(len(names))], axis=1)
    table = labels.reset_index(drop=True).copy() if len(labels) == len(sig) else pd.DataFrame(
        {"unit": np.arange(len(sig)), "kind": "atom"})
    table["n_significant"] = sig.sum(axis=1)
    table["n_positive"] = (sig & (sign > 0)).sum(axis=1)
    table["n_negative"] = (sig & (sign < 0)).sum(axis=1)
    table["best_score"] = np.asarray(result.score).max(axis=1)
    table["best_network"] = np.where(counts.sum(axis=1) > 0,
                                     np.asarray(names, dtype=object)[counts.argmax(axis=1)], "")
    for k, name in enumerate(names):
        table[f"n_{name}"] = counts[:, k]
    table["best_significant_score"] = np.where(np.isfinite(score.max(axis=1)), score.max(axis=1), np.nan)
    return table


def _count_null(voxels: pd.DataFrame) -> pd.DataFrame:
    """Per count k of predicting units: the share of voxels observed with k, and its null
    probability (units' voxel counts placed at random), for the redundancy histogram."""
    pmf = np.asarray(voxels.attrs["null_pmf"], dtype=np.float64)
    observed = np.bincount(voxels["n_predicting_units"].to_numpy(), minlength=len(pmf))
    return pd.DataFrame({"count": np.arange(len(pmf)), "share_observed": observed / max(len(voxels), 1),
                         "null_pmf": pmf})


def _analyses(result, labels, network, names, params) -> dict[str, pd.DataFrame]:
    from .analyses import architecture_shares, network_shares, polarity, redundancy

    layers = sorted(labels["layer"].unique())
    unit_layer = labels["layer"].to_numpy() if len(labels) == result.score.shape[0] else None
    tables = {"units": _unit_table(result, labels, network, names)}
    if unit_layer is None:  # atoms mix every unit: no layer or modality
        unit_layer = np.zeros(result.score.shape[0], dtype=np.int64)
    position = np.searchsorted(layers, unit_layer)
    tables["networks"] = network_shares(result, unit_layer, network, names)
    voxels, pairs = redundancy(result, n_null=params["n_null"], seed=params["seed"])
    tables["redundancy"], tables["overlap"] = voxels, pairs
    tables["countnull"] = _count_null(voxels)
    tables["polarity"] = polarity(result, position, len(layers))
    if "layer" in tables["polarity"].columns:
        layer_of = dict(enumerate(layers))
        tables["polarity"]["layer"] = tables["polarity"]["layer"].map(
            lambda v: layer_of.get(v, v) if isinstance(v, (int, np.integer)) else v)
    modality = (labels["modality"].to_numpy() if len(labels) == result.score.shape[0]
                else np.full(result.score.shape[0], "cross"))
    tables["architecture"] = architecture_shares(result, modality, network, names)
    return tables


def _map(X, Y, groups, kind, fit, params, encoding, seed, atoms):
    """:func:`~brainalign.neurons.mapping.map_units` with the section's settings."""
    from .mapping import map_units

    block = params["block_length"] or (encoding["block_size"] if kind != "concepts" else None)
    return map_units(X, Y, groups, delays=tuple(fit["delays"]), alpha=params["alpha"],
                     n_permutations=params["n_permutations"], block_length=block,
                     correction=params["correction"], seed=seed, unit_batch=params["unit_batch"],
                     voxel_batch=params["voxel_batch"], atoms=atoms)


def run_map_units(
    features: PathLike,
    brain: PathLike,
    out: Mapping[str, PathLike],
    *,
    model: str,
    condition: str,
    spec: Mapping[str, Any],
    params: Mapping[str, Any],
    encoding: Mapping[str, Any],
    seed: int = 0,
) -> None:
    """Map the units of one model x condition to one subject x task's voxels; write tables.

    Parameters
    ----------
    features, brain : path-like
        The feature file and the preprocessed brain file.
    out : mapping of str to path-like
        ``pairs`` (.npz: score, sign, significant, p of shape (n_units, n_voxels) over the
        usable voxels, ``voxel`` their positions in the brain file, ``network``), ``map``
        (the number of units significantly predicting each voxel, NIfTI / CIFTI / TSV), and
        one parquet per name of :data:`TABLES`.
    model, condition : str
        Labels written into every table.
    spec : mapping
        ``neurons.models.<model>`` (``layers``, ``kinds``).
    params : mapping
        The ``neurons`` section (``networks``, ``n_permutations``, ``correction``...).
    encoding : mapping
        The ``encoding`` section (``delays``, ``block_size``, ``outer_folds``).
    seed : int
    """
    X, Y, groups, labels, fmeta, brain_data, fit = _design(
        features, brain, spec["layers"], spec["kinds"], encoding)
    bmeta, barrays, usable = brain_data
    groups = cv_groups(bmeta["kind"], groups, encoding["outer_folds"], seed)
    network, names = voxel_networks(barrays, bmeta, params["networks"])
    result = _map(X, Y, groups, bmeta["kind"], fit, params, encoding, seed, params["atoms"])
    tables = _analyses(result, labels, network[usable], names, {**params, "seed": seed})
    labels_of = {"subject": bmeta["subject"], "task": bmeta["task"], "model": model,
                 "condition": condition, "correction": result.correction}
    for name in TABLES:
        io.write_table(_tidy(tables[name]).assign(**labels_of), out[name])
    _write_pairs(out["pairs"], result, np.flatnonzero(usable), network[usable], names, labels)
    counts = np.full(usable.size, np.nan, dtype=np.float32)
    counts[usable] = np.asarray(result.significant).sum(axis=0)
    save_map(counts[:, None], barrays, bmeta, [f"{model}_{condition}_npredicting"], out["map"])
    logger.info("%s %s: %d of %d unit x voxel pairs significant (%s)", model, condition,
                int(np.asarray(result.significant).sum()), result.significant.size, result.correction)


def run_architecture_contrast(
    features: Mapping[str, PathLike],
    brain: PathLike,
    out: PathLike,
    *,
    models: Mapping[str, str],
    params: Mapping[str, Any],
    encoding: Mapping[str, Any],
    seed: int = 0,
) -> pd.DataFrame:
    """Share of unified voxels, cross-modal model ``a`` minus two-tower model ``b``, per
    network, with a block bootstrap shared by both (rule contrast_neurons_architecture).

    Each side's units are mapped again with the job's settings and seed (the same map as
    its map_neurons job; units, not atoms: the bootstrap re-scores the units' fits).

    Parameters
    ----------
    features : mapping
        ``a`` (cross-modal model) and ``b`` (two-tower model) feature files.
    brain : path-like
    out : path-like
        The table (:func:`brainalign.neurons.resample.architecture_contrast`'s columns
        plus subject, task, model_a, model_b).
    models : mapping
        ``a`` and ``b`` model names (``neurons.contrast.cross`` / ``two_tower``).
    params, encoding, seed
        As for :func:`run_map_units`.
    """
    from .resample import ModelUnits, architecture_contrast

    sides = {}
    for side in ("a", "b"):
        spec = params["models"][models[side]]
        X, Y, groups, labels, _, (bmeta, barrays, usable), fit = _design(
            features[side], brain, spec["layers"], spec["kinds"], encoding)
        groups = cv_groups(bmeta["kind"], groups, encoding["outer_folds"], seed)
        result = _map(X, Y, groups, bmeta["kind"], fit, params, encoding, seed, None)
        sides[side] = ModelUnits(X, labels["modality"].to_numpy(), result)
    network, names = voxel_networks(barrays, bmeta, params["networks"])
    table = architecture_contrast(
        sides["a"], sides["b"], Y, groups, network[usable], names,
        n_boot=params["contrast"]["n_resamples"], seed=seed,
        unit_batch=params["unit_batch"], voxel_batch=params["voxel_batch"])
    table = table.assign(subject=bmeta["subject"], task=bmeta["task"], model_a=models["a"],
                         model_b=models["b"])
    io.write_table(table, out)
    return table


def _tidy(table: pd.DataFrame) -> pd.DataFrame:
    """Columns mixing types (a ``layer`` column with a ``mirror`` row) as strings: parquet
    stores one type per column."""
    table = table.copy()
    table.attrs = {}  # arrays kept there (null distributions) are written as their own tables
    for column in table.columns:
        if table[column].dtype == object and table[column].map(type).nunique() > 1:
            table[column] = table[column].astype(str)
    return table


def _write_pairs(path, result, voxel, network, names, labels) -> None:
    arrays = {"score": np.asarray(result.score, dtype=np.float32),
              "sign": np.asarray(result.sign, dtype=np.int8),
              "significant": np.asarray(result.significant, dtype=bool),
              "p": np.asarray(result.p, dtype=np.float32),
              "voxel": voxel.astype(np.int64), "network": network.astype(np.int64),
              "network_names": np.asarray(names)}
    if len(labels) == arrays["score"].shape[0]:
        arrays.update(unit_layer=labels["layer"].to_numpy(), unit_index=labels["index"].to_numpy(),
                      unit_kind=labels["kind"].to_numpy().astype(str),
                      unit_modality=labels["modality"].to_numpy().astype(str))
    with io.atomic_write(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)


def summarize_neurons(paths: Mapping[str, Sequence[PathLike]], out_dir: PathLike) -> dict[str, pd.DataFrame]:
    """Pool the per-job tables: one ``neurons_<name>.parquet`` per table name in ``out_dir``.

    Parameters
    ----------
    paths : mapping of str to sequence of path-like
        Table name (:data:`TABLES`) -> the jobs' files.
    out_dir : path-like

    Returns
    -------
    tables : dict of str to DataFrame
    """
    os.makedirs(out_dir, exist_ok=True)
    pooled = {}
    for name, files in paths.items():
        pooled[name] = pd.concat([io.read_table(p) for p in files], ignore_index=True)
        io.write_table(pooled[name], os.path.join(out_dir, f"neurons_{name}.parquet"))
    return pooled
