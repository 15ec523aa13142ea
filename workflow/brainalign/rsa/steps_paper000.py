"""File-level steps of paper 000's RSA analyses (what each rule of paper000.smk does).

The paper's estimand (each layer against the group-mean brain RDM) next to the subject
mean; the partial-correlation ablation of a VLM against its language-only counterpart;
the model x model RDM similarity; the best layer against every other layer. Inputs are the
brain and model RDM files of :mod:`brainalign.rsa.steps`, paired by stimulus name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import io
from .compare import compare_rdm_sets
from .group_target import compare_estimands, group_mean_rdm
from .layers import best_layer_test, best_layer_units, rdm_similarity_table
from .partial import partial_ablation
from .steps import CANDIDATE, UNIT, _labels_first, load_brain_rdms, load_model_rdms

__all__ = ["run_rsa_estimands", "run_partial_ablation", "run_rdm_similarity", "run_best_layer_tests"]

logger = logging.getLogger(__name__)
PathLike = str | os.PathLike


def _paper000_inputs(brain_paths, model_paths, roi):
    """Subjects' RDMs of one ROI (n_subjects, n_pairs), the model units with their RDMs, meta."""
    subjects, stimuli, rdms, meta = load_brain_rdms(brain_paths, roi)
    if meta["metric"] != "cosine":
        logger.warning("ROI %s: brain RDMs use %s; paper 000 uses cosine on the betas "
                       "(config 'rsa.brain_metric')", roi, meta["metric"])
    return rdms, load_model_rdms(model_paths, stimuli), {"roi": roi, "brain_metric": meta["metric"]}


def run_rsa_estimands(
    brain_paths: Sequence[PathLike], model_paths: Sequence[PathLike], roi: str, *,
    params: Mapping[str, Any], seed: int, out: PathLike,
) -> pd.DataFrame:
    """Paper 000's estimand (group-mean brain RDM) next to the subject mean, for one ROI.

    Parameters are as :func:`run_rsa_inference`; ``params`` needs ``comparison``,
    ``n_permutations``, ``n_bootstrap``, ``bootstrap`` and ``ci_level``. The table (one row
    per unit x estimand, column ``estimand``) is that of
    :func:`~brainalign.rsa.group_target.compare_estimands`, labelled and written to ``out``.
    """
    rdms, units, labels = _paper000_inputs(brain_paths, model_paths, roi)
    table = compare_estimands(
        np.stack(units["rdm"].to_numpy()), rdms, method=params["comparison"],
        n_permutations=params["n_permutations"], n_bootstrap=params["n_bootstrap"],
        bootstrap=params["bootstrap"], level=params["ci_level"], random_state=seed)
    names = units[UNIT].reset_index(drop=True)
    table = names.iloc[table.pop("unit")].reset_index(drop=True).join(table).assign(**labels)
    io.write_table(_labels_first(table), out)
    return table


def run_partial_ablation(
    brain_paths: Sequence[PathLike], model_path: PathLike, control_path: PathLike, roi: str, *,
    params: Mapping[str, Any], seed: int, out: PathLike,
) -> pd.DataFrame:
    """Every layer of a VLM against the group-mean brain RDM, its counterpart's partialled out.

    The counterpart's layer is its best on the group-mean RDM (as paper 000); ``best_layer``
    marks the VLM's. ``params``: ``n_bootstrap``, ``ci_level`` and optionally
    ``partial_kind`` (:data:`~brainalign.rsa.partial.PARTIAL_KINDS`, default "partial").
    """
    rdms, units, labels = _paper000_inputs(brain_paths, [model_path], roi)
    controls = load_model_rdms([control_path], _stimuli_of(brain_paths[0]))
    brain = group_mean_rdm(rdms)
    scores = [compare_rdm_sets(np.stack(u["rdm"].to_numpy()), brain[None])[:, 0] for u in (units, controls)]
    control = controls.iloc[int(np.argmax(scores[1]))]
    kind = params.get("partial_kind", "partial")
    result = partial_ablation(np.stack(units["rdm"].to_numpy()), control["rdm"], brain, kind=kind,
                              n_bootstrap=params["n_bootstrap"], level=params["ci_level"],
                              random_state=seed)
    table = units[UNIT].assign(best_layer=scores[0] == scores[0].max(), control_model=control["model"],
                               control_layer=int(control["layer"]), kind=kind, **result,
                               n_bootstrap=params["n_bootstrap"], **labels)
    io.write_table(_labels_first(table), out)
    return table


def _stimuli_of(brain_path: PathLike) -> list[str]:
    return list(io.load_arrays(brain_path)[1]["stimuli"])


def run_rdm_similarity(
    model_paths: Sequence[PathLike], *, params: Mapping[str, Any], out: Mapping[str, PathLike],
    best_from: PathLike | None = None,
) -> dict[str, pd.DataFrame]:
    """Comparison of every pair of model RDMs (all layers, or each model's best layer).

    ``best_from``: a :func:`run_rsa_estimands` table; when given, only each model x
    condition's best layer on the group-mean estimand enters. Writes ``out['tidy']`` and
    ``out['matrix']`` (one row per unit, its labels then one column per unit ``model/condition/layer``).
    """
    units = load_model_rdms(model_paths, list(io.load_arrays(model_paths[0])[1]["stimuli"]))
    if best_from is not None:
        scores = io.read_table(best_from).query("estimand == 'group_mean_rdm'")
        best = best_layer_units(scores.groupby(UNIT, as_index=False)["score"].mean())
        units = units.merge(best[UNIT], on=UNIT)
    tidy, matrix = rdm_similarity_table(units, method=params["comparison"])
    matrix.columns = ["/".join(map(str, c)) for c in matrix.columns]
    tables = {"tidy": tidy, "matrix": matrix.reset_index()}
    for name, table in tables.items():
        io.write_table(table, out[name])
    return tables


def run_best_layer_tests(
    brain_paths: Sequence[PathLike], model_paths: Sequence[PathLike], roi: str, *,
    params: Mapping[str, Any], seed: int, out: PathLike,
) -> pd.DataFrame:
    """Best layer vs every other layer of each model x condition, under both estimands.

    Paired bootstrap (:func:`~brainalign.rsa.layers.best_layer_test`): over stimuli for the
    group-mean RDM, over stimuli and subjects for the subject mean; FDR across the layers.
    """
    rdms, units, labels = _paper000_inputs(brain_paths, model_paths, roi)
    targets = {"group_mean_rdm": group_mean_rdm(rdms)[None], "subject_mean": rdms}
    tables = []
    for (model, condition), unit in units.groupby(CANDIDATE, sort=False):
        layers = unit["layer"].to_numpy()
        if layers.size < 2:
            logger.info("%s / %s: one layer, no best-layer test", model, condition)
            continue
        for estimand, target in targets.items():
            test = best_layer_test(np.stack(unit["rdm"].to_numpy()), target, method=params["comparison"],
                                   n_bootstrap=params["n_bootstrap"], level=params["ci_level"],
                                   random_state=seed)
            tables.append(test.assign(best=layers[test["best"]], other=layers[test["other"]],
                                      model=model, condition=condition, estimand=estimand))
    if not tables:
        table = pd.DataFrame(columns=["best_layer", "layer", "model", "condition", "estimand"])
    else:
        table = pd.concat(tables, ignore_index=True).rename(columns={"best": "best_layer", "other": "layer"})
    table = table.assign(**labels)
    io.write_table(_labels_first(table), out)
    return table
