"""File-level steps of the RSA rules: read labelled inputs, pair them by label, compute, write.

Brain RDM files hold one RDM per ROI of one subject; model RDM files one RDM per layer
of one model x condition. Every file records its concept order, and RDMs are reordered
by concept name, never paired by position.

Jobs (each function is what one rule does):

- :func:`run_brain_rdms` - one subject: an RDM per ROI (crossnobis across runs, or a
  metric of the run-averaged patterns);
- :func:`run_model_rdms` - one model x condition: an RDM per layer of the features
  (averaged over the sentence contexts at extraction);
- :func:`run_rsa` - one model x condition: per-subject scores of every layer in every
  ROI, and the group-level permutation test (the same label permutations for all
  layers, ROIs and subjects);
- :func:`run_rsa_inference` - one ROI, every model: noise ceiling, bootstrap confidence
  intervals, best layer selected on held-out subjects, pairwise model comparisons;
- :func:`summarize_rsa` - every table into tidy group tables, with FDR control.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import io
from ..datasets.units import roi_mask, usable_units
from .bootstrap import (
    bootstrap_ci,
    bootstrap_p_zero,
    bootstrap_pair_tests,
    bootstrap_scores,
    draw_bootstrap,
    group_bootstrap,
)
from .ceiling import noise_ceiling
from .compare import compare_rdm_sets
from .inference import fdr_bh, permutation_test
from .rdm import (
    RDM_METRICS,
    compute_crossnobis_rdm,
    compute_rdm,
    estimate_noise_precision,
    reorder_rdm,
)
from .selection import heldout_group_score, heldout_layer_scores

__all__ = [
    "run_brain_rdms",
    "run_model_rdms",
    "run_rsa",
    "run_rsa_inference",
    "summarize_rsa",
    "load_brain_rdms",
    "load_model_rdms",
    "roi_key",
]

logger = logging.getLogger(__name__)
PathLike = str | os.PathLike
UNIT = ["model", "condition", "layer"]
CANDIDATE = ["model", "condition"]


def roi_key(roi: str) -> str:
    """Array name of an ROI's RDM in a brain RDM file (``roi-language``)."""
    return f"roi-{roi}"


def _roi_voxels(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], roi: str, path: PathLike):
    """Boolean mask of one ROI's voxels, checking the atlas."""
    if roi not in meta["rois"]:
        raise ValueError(
            f"ROI '{roi}' is not in the atlas of '{path}' (it has "
            f"{', '.join(meta['rois'])}); fix 'dataset.rois' in the config."
        )
    voxels = roi_mask(arrays, meta, roi) & usable_units(arrays, meta)
    if not voxels.any():
        raise ValueError(f"ROI '{roi}' has no voxel in '{path}'; check the atlas and mask.")
    return voxels


def run_brain_rdms(
    patterns_path: PathLike, rois: Sequence[str], *, metric: str, noise: str, out: PathLike
) -> dict[str, np.ndarray]:
    """Compute one subject's concept RDM in each ROI and write them to one file.

    Parameters
    ----------
    patterns_path : path-like
        Preprocessed concept patterns (``patterns``, ``patterns_by_run``, ``roi``).
    rois : sequence of str
        Atlas names.
    metric : str
        One of :data:`~brainalign.rsa.BRAIN_RDM_METRICS`; ``"crossnobis"`` uses the
        per-run patterns, the others the run-averaged ones.
    noise : {"none", "diag"}
        Crossnobis noise normalisation: identity, or the diagonal precision of the run
        residuals of each voxel (ignored by the other metrics).
    out : path-like
        Safetensors file with one array ``roi-<name>`` per ROI.

    Returns
    -------
    rdms : dict of str to array of shape (n_pairs,)
    """
    if noise not in ("none", "diag"):
        raise ValueError(f"'noise' must be 'none' or 'diag'; got {noise!r}")
    arrays, meta = io.load_arrays(patterns_path)
    rdms, n_voxels = {}, {}
    for roi in rois:
        voxels = _roi_voxels(arrays, meta, roi, patterns_path)
        rdms[roi_key(roi)] = _brain_rdm(arrays, voxels, metric, noise, patterns_path)
        n_voxels[roi] = int(voxels.sum())
        logger.info("sub-%s ROI %s: %d voxels, %d concepts, metric %s (noise %s)",
                    meta["subject"], roi, voxels.sum(), len(meta["stimuli"]), metric, noise)
    labels = {"subject": meta["subject"], "task": meta["task"], "stimuli": meta["stimuli"],
              "metric": metric, "noise": noise if metric == "crossnobis" else "none",
              "rois": list(rois), "n_voxels": n_voxels,
              "n_runs": int(arrays["patterns_by_run"].shape[0]) if "patterns_by_run" in arrays else 1}
    io.save_arrays(out, rdms, labels)
    return rdms


def _brain_rdm(arrays, voxels, metric, noise, path) -> np.ndarray:
    """One ROI's RDM: crossnobis across the runs, or a metric of the run-averaged patterns."""
    if metric != "crossnobis":
        return compute_rdm(arrays["patterns"][:, voxels], metric=metric)
    if "patterns_by_run" not in arrays:
        raise ValueError(
            f"'{path}' has no 'patterns_by_run' (patterns per run), which crossnobis needs; "
            "rerun preprocessing or set 'rsa.brain_metric' to another metric."
        )
    by_run = arrays["patterns_by_run"][:, :, voxels].astype(np.float64)
    precision = estimate_noise_precision(by_run) if noise == "diag" else None
    return compute_crossnobis_rdm(by_run, precision)


def run_model_rdms(features_path: PathLike, *, metric: str, out: PathLike) -> dict[str, np.ndarray]:
    """Compute the RDM of every layer of a concept feature file and write them together.

    Parameters
    ----------
    features_path : path-like
        Concept features: arrays ``layer-XX`` (n_concepts, n_features), one row per concept
        (averaged over its sentence contexts at extraction).
    metric : str
        One of :data:`~brainalign.rsa.RDM_METRICS`.
    out : path-like
        Safetensors file with one array ``layer-XX`` per layer.

    Returns
    -------
    rdms : dict of str to array of shape (n_pairs,)
    """
    if metric not in RDM_METRICS:
        raise ValueError(
            f"config 'rsa.metric' (model RDMs) must be one of {', '.join(RDM_METRICS)}; got "
            f"{metric!r}. Crossnobis needs repeated measurements: set it as 'rsa.brain_metric'."
        )
    features, meta = io.load_arrays(features_path)
    rdms = {key: compute_rdm(features[key], metric=metric)
            for key in sorted(features) if key.startswith("layer-")}
    io.save_arrays(out, rdms, {**meta, "metric": metric})
    logger.info("model %s / %s: RDMs of %d layers (%s)", meta["model"], meta["condition"],
                len(rdms), metric)
    return rdms


def load_brain_rdms(paths: Sequence[PathLike], roi: str) -> tuple[list[str], list[str], np.ndarray, dict]:
    """Subjects' RDMs of one ROI, all in the concept order of the first file.

    Returns
    -------
    subjects : list of str
    stimuli : list of str
    rdms : array of shape (n_subjects, n_pairs)
    meta : dict
        Metadata of the first file, plus ``n_voxels_by_subject`` (the ROI's voxel counts).
    """
    subjects, stack, voxels, first = [], [], [], None
    for path in paths:
        arrays, meta = io.load_arrays(path)
        first = first or meta
        if roi_key(roi) not in arrays:
            raise ValueError(f"brain RDM file '{path}' has no ROI '{roi}'; it has {meta['rois']}")
        order = _concept_order(meta["stimuli"], first["stimuli"], path)
        stack.append(reorder_rdm(arrays[roi_key(roi)], order))
        subjects.append(meta["subject"])
        voxels.append(meta["n_voxels"][roi])
    if not stack:
        raise ValueError("load_brain_rdms needs at least one brain RDM file; got none")
    return subjects, list(first["stimuli"]), np.stack(stack), {**first, "n_voxels_by_subject": voxels}


def _concept_order(have: Sequence[str], want: Sequence[str], path: PathLike) -> np.ndarray:
    """Indices into ``have`` of the concepts ``want``, in that order."""
    index = {name: i for i, name in enumerate(have)}
    missing = [name for name in want if name not in index]
    if missing or len(have) != len(want):
        raise ValueError(
            f"'{path}' covers different concepts from the other RDMs (missing {missing[:5]}, "
            f"{len(have)} vs {len(want)} concepts); compute every RDM from the same stimuli."
        )
    return np.array([index[name] for name in want])


def load_model_rdms(paths: Sequence[PathLike], stimuli: Sequence[str]) -> pd.DataFrame:
    """Every layer's RDM of the model RDM files, reordered to ``stimuli``.

    Returns
    -------
    DataFrame
        One row per (model, condition, layer), sorted, with column ``rdm`` (ndarray) and
        ``model_metric``.
    """
    rows = []
    for path in paths:
        arrays, meta = io.load_arrays(path)
        order = _concept_order(meta["stimuli"], stimuli, path)
        for key in sorted(k for k in arrays if k.startswith("layer-")):
            rows.append({"model": meta["model"], "condition": meta["condition"],
                         "layer": int(key.split("-")[1]), "model_metric": meta["metric"],
                         "rdm": reorder_rdm(arrays[key], order)})
    return pd.DataFrame(rows).sort_values(UNIT, kind="stable").reset_index(drop=True)


def run_rsa(
    brain_paths: Sequence[PathLike],
    model_rdms_path: PathLike,
    *,
    params: Mapping[str, Any],
    seed: int,
    out_scores: PathLike,
    out_permutation: PathLike,
    n_jobs: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-subject RSA scores of every layer of one model x condition, and their test.

    The permutation test (``params['n_permutations']`` relabellings of the concepts, seeded
    by ``seed``) is at the group level: the statistic is the mean score over subjects.

    Returns
    -------
    scores : DataFrame
        One row per subject x ROI x layer: ``score`` and labels.
    permutation : DataFrame
        One row per ROI x layer: ``mean`` (group score), ``p_perm``, ``n_permutations``.
    """
    method = params["comparison"]
    if not brain_paths:
        raise ValueError("run_rsa needs at least one brain RDM file; got none")
    rois = io.load_arrays(brain_paths[0])[1]["rois"]
    loaded = [load_brain_rdms(brain_paths, roi) for roi in rois]
    subjects, stimuli, _, brain_meta = loaded[0]
    models = load_model_rdms([model_rdms_path], stimuli)
    layers = np.stack(models["rdm"].to_numpy())
    result = permutation_test(layers, np.stack([rdms for _, _, rdms, _ in loaded]), method=method,
                              n_permutations=params["n_permutations"], random_state=seed,
                              n_jobs=n_jobs)
    labels = models[UNIT].assign(brain_metric=brain_meta["metric"], comparison=method,
                                 model_metric=models["model_metric"])
    scores, permutation = [], []
    for r, (roi, (_, _, rdms, meta)) in enumerate(zip(rois, loaded)):
        by_subject = compare_rdm_sets(layers, rdms, method)
        for s, subject in enumerate(subjects):
            scores.append(labels.assign(subject=subject, roi=roi, score=by_subject[:, s],
                                        n_voxels=meta["n_voxels_by_subject"][s]))
        permutation.append(labels.assign(roi=roi, mean=result.observed[:, r],
                                         p_perm=result.p_perm[:, r],
                                         n_permutations=result.n_permutations))
    first = ["subject", "roi", *UNIT]
    scores = pd.concat(scores, ignore_index=True)
    scores = scores[first + [c for c in scores.columns if c not in first]]
    permutation = pd.concat(permutation, ignore_index=True)
    io.write_table(scores, out_scores)
    io.write_table(permutation, out_permutation)
    return scores, permutation


def _unit_scores(brain_paths, model_paths, roi, params, seed):
    """Units, subjects, RDMs, full-data scores and bootstrap of one ROI."""
    subjects, stimuli, rdms, meta = load_brain_rdms(brain_paths, roi)
    units = load_model_rdms(model_paths, stimuli)
    models = np.stack(units["rdm"].to_numpy())
    samples = draw_bootstrap(len(subjects), len(stimuli), params["n_bootstrap"],
                             kind=params["bootstrap"], random_state=seed)
    boot = bootstrap_scores(models, rdms, samples, method=params["comparison"])
    full = compare_rdm_sets(models, rdms, params["comparison"])
    return units.drop(columns="rdm"), subjects, rdms, full, boot, samples


def run_rsa_inference(
    brain_paths: Sequence[PathLike],
    model_paths: Sequence[PathLike],
    roi: str,
    *,
    params: Mapping[str, Any],
    seed: int,
    out: Mapping[str, PathLike],
) -> dict[str, pd.DataFrame]:
    """Noise ceiling, bootstrap CIs, held-out layer selection and model comparisons of one ROI.

    Parameters
    ----------
    brain_paths, model_paths : sequences of path-like
        Every subject's brain RDM file; every model x condition RDM file.
    roi : str
    params : mapping
        The config's ``rsa`` section (comparison, n_bootstrap, bootstrap, ci_level).
    seed : int
        Random state of the bootstrap.
    out : mapping
        Paths of the tables ``layers``, ``ceiling``, ``selected``, ``models``, ``pairwise``.

    Returns
    -------
    tables : dict of str to DataFrame
        ``layers``: per unit, the group score and its bootstrap CI; ``ceiling``: the noise
        ceiling; ``selected``: per model x condition x subject, the layer chosen on the
        other subjects and its held-out score; ``models``: per model x condition, the
        group held-out score, CI and bootstrap p-value against 0; ``pairwise``: per pair of
        models x conditions, the difference, its CI and a two-sided bootstrap p-value.
    """
    method, level = params["comparison"], params["ci_level"]
    units, subjects, rdms, full, boot, samples = _unit_scores(brain_paths, model_paths, roi, params, seed)
    evaluations = group_bootstrap(boot, samples)
    low, high = bootstrap_ci(evaluations, level)
    labels = {"roi": roi, "comparison": method, "n_bootstrap": samples.n_bootstrap,
              "bootstrap": params["bootstrap"], "ci_level": level}
    tables = {"layers": units.assign(mean=full.mean(axis=1), ci_low=low, ci_high=high,
                                     boot_se=np.nanstd(evaluations, axis=0, ddof=1), **labels)}
    ceiling = noise_ceiling(rdms, method)
    tables["ceiling"] = pd.DataFrame([{"roi": roi, "comparison": method, "lower": ceiling.lower,
                                       "upper": ceiling.upper, "n_subjects": len(subjects)}])
    tables.update(_selection_tables(units, subjects, full, boot, samples, labels))
    for name, table in tables.items():
        io.write_table(table, out[name])
    logger.info("ROI %s: noise ceiling [%.3f, %.3f], %d units, %d subjects", roi,
                ceiling.lower, ceiling.upper, len(units), len(subjects))
    return tables


def _selection_tables(units, subjects, full, boot, samples, labels) -> dict[str, pd.DataFrame]:
    """Held-out layer selection per model x condition, and pairwise comparisons."""
    candidates = units[CANDIDATE].drop_duplicates().reset_index(drop=True)
    selected, heldout, heldout_boot = [], [], []
    for cand in candidates.itertuples(index=False):
        rows = np.flatnonzero((units["model"] == cand.model) & (units["condition"] == cand.condition))
        layers = units["layer"].to_numpy()[rows]
        scores, chosen = heldout_layer_scores(full[rows])
        selected.append(pd.DataFrame({"subject": subjects, "model": cand.model,
                                      "condition": cand.condition, "score": scores,
                                      "layer": np.where(chosen >= 0, layers[chosen], -1)}))
        heldout.append(heldout_group_score(scores))
        boot_scores, _ = heldout_layer_scores(boot[:, rows], samples.subject_counts)
        heldout_boot.append(heldout_group_score(boot_scores, samples.subject_counts))
    heldout, heldout_boot = np.array(heldout), np.stack(heldout_boot, axis=1)
    low, high = bootstrap_ci(heldout_boot, labels["ci_level"])
    models = candidates.assign(score=heldout, ci_low=low, ci_high=high,
                               p_boot=bootstrap_p_zero(heldout_boot), **labels)
    return {
        "selected": pd.concat(selected, ignore_index=True).assign(roi=labels["roi"]),
        "models": models,
        "pairwise": _pairwise_table(candidates, heldout, heldout_boot, labels),
    }


def _pairwise_table(candidates, heldout, heldout_boot, labels) -> pd.DataFrame:
    """Every pair of models x conditions: difference of held-out scores, CI, bootstrap p."""
    p = bootstrap_pair_tests(heldout_boot)
    rows = []
    for a, b in itertools.combinations(range(len(candidates)), 2):
        low, high = bootstrap_ci(heldout_boot[:, a] - heldout_boot[:, b], labels["ci_level"])
        rows.append({"model_a": candidates["model"][a], "condition_a": candidates["condition"][a],
                     "model_b": candidates["model"][b], "condition_b": candidates["condition"][b],
                     "difference": heldout[a] - heldout[b], "ci_low": float(low),
                     "ci_high": float(high), "p_boot": p[a, b], **labels})
    columns = ["model_a", "condition_a", "model_b", "condition_b", "difference", "ci_low",
               "ci_high", "p_boot", *labels]
    return pd.DataFrame(rows, columns=columns)


def _concat(paths: Sequence[PathLike]) -> pd.DataFrame:
    if not paths:
        raise ValueError("summarize_rsa needs at least one table per kind; got none")
    return pd.concat([io.read_table(p) for p in paths], ignore_index=True)


def summarize_rsa(
    scores: Sequence[PathLike],
    permutation: Sequence[PathLike],
    inference: Mapping[str, Sequence[PathLike]],
    brain_paths: Sequence[PathLike],
    *,
    fdr_alpha: float,
    out: Mapping[str, PathLike],
) -> dict[str, pd.DataFrame]:
    """Gather the RSA tables into tidy group tables, with Benjamini-Hochberg FDR control.

    Families: the permutation p-values of one model x condition across its layers and
    every ROI; the bootstrap p-values of the held-out scores across every model x condition
    and ROI; the pairwise comparisons within each ROI.

    Parameters
    ----------
    scores, permutation : sequences of path-like
        Tables of :func:`run_rsa`.
    inference : mapping of str to sequence of path-like
        Tables of :func:`run_rsa_inference` by kind (``layers``, ``ceiling``, ``selected``,
        ``models``, ``pairwise``), one per ROI.
    brain_paths : sequence of path-like
        Every subject's brain RDM file (for the group-average RDMs).
    fdr_alpha : float
    out : mapping
        Paths of ``subjects``, ``group``, ``ceiling``, ``selected``, ``models``,
        ``pairwise``, ``brain_rdms``.

    Returns
    -------
    tables : dict of str to DataFrame
    """
    subjects = _concat(scores).sort_values(["roi", *UNIT, "subject"], kind="stable")
    tables = {"subjects": subjects.reset_index(drop=True)}
    perm = _concat(permutation)
    perm["p"] = perm["p_perm"]  # docs/tables.md: p is the tested p, q its BH-FDR q-value
    perm["q"] = perm.groupby(CANDIDATE, sort=False)["p"].transform(fdr_bh)
    layers = _concat(inference["layers"]).drop(columns=["mean", "model_metric"])
    sem = subjects.groupby(["roi", *UNIT])["score"].sem().rename("sem").reset_index()
    group = perm.merge(layers, on=["roi", *UNIT, "comparison"]).merge(sem, on=["roi", *UNIT])
    group["n_subjects"] = subjects["subject"].nunique()
    group["significant"] = group["q"] <= fdr_alpha
    tables["group"] = group.sort_values(["roi", *UNIT], kind="stable").reset_index(drop=True)
    tables["ceiling"] = _concat(inference["ceiling"])
    tables["selected"] = _concat(inference["selected"])
    models = _concat(inference["models"])
    models["p"] = models["p_boot"]
    models["q"] = fdr_bh(models["p"].to_numpy())
    models["significant"] = models["q"] <= fdr_alpha
    tables["models"] = models
    pairwise = _concat(inference["pairwise"])
    pairwise["p"] = pairwise["p_boot"]
    pairwise["q"] = pairwise.groupby("roi", sort=False)["p"].transform(fdr_bh)
    pairwise["significant"] = pairwise["q"] <= fdr_alpha
    tables["pairwise"] = pairwise
    tables["brain_rdms"] = group_brain_rdms(brain_paths, list(tables["ceiling"]["roi"]))
    task = io.load_arrays(brain_paths[0])[1]["task"]
    for name, table in tables.items():
        tables[name] = _labels_first(table.assign(task=task))
        io.write_table(tables[name], out[name])
    return tables


def _labels_first(table: pd.DataFrame) -> pd.DataFrame:
    """The same table with its label columns (ROI, subject, model, ...) first."""
    labels = [c for c in ("task", "roi", "subject", *UNIT, "model_a", "condition_a", "model_b",
                          "condition_b") if c in table.columns]
    return table[labels + [c for c in table.columns if c not in labels]]


def group_brain_rdms(brain_paths: Sequence[PathLike], rois: Sequence[str]) -> pd.DataFrame:
    """Group-average brain RDM of each ROI, as a tidy table of concept pairs.

    Returns
    -------
    DataFrame
        Columns ``roi``, ``concept_a``, ``concept_b`` (``concept_a`` before ``concept_b`` in
        the stimulus order), ``dissimilarity`` (mean over subjects), ``metric``, ``n_subjects``.
    """
    tables = []
    for roi in rois:
        subjects, stimuli, rdms, meta = load_brain_rdms(brain_paths, roi)
        rows, cols = np.triu_indices(len(stimuli), k=1)
        names = np.asarray(stimuli, dtype=object)
        tables.append(pd.DataFrame({"roi": roi, "concept_a": names[rows], "concept_b": names[cols],
                                    "dissimilarity": rdms.mean(axis=0), "metric": meta["metric"],
                                    "n_subjects": len(subjects)}))
    return pd.concat(tables, ignore_index=True)


# --- Paper 000 (concept RSA): both estimands, partial-correlation ablation, layer tests ---
