"""Figures of the RSA stage: RDMs, layer profiles with the noise ceiling, model comparisons.

Every figure is saved by :func:`brainalign.figures.save_figure` (same results, same bytes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .figures import _pyplot, plot_rdms, save_figure

__all__ = [
    "plot_rsa_rdms",
    "plot_rsa_layer_profiles",
    "plot_rsa_model_comparison",
    "stimuli_of_pairs",
    "value_label",
]

PathLike = str | os.PathLike


def stimuli_of_pairs(pairs: pd.DataFrame) -> list[str]:
    """Concept order of a tidy RDM table (columns ``concept_a``, ``concept_b``, triu order)."""
    first = pairs["concept_a"].iloc[0]
    return [first, *pairs.loc[pairs["concept_a"] == first, "concept_b"]]


def plot_rsa_rdms(
    brain_rdms: pd.DataFrame,
    model_paths: Sequence[PathLike],
    *,
    paths: Sequence[PathLike],
    dpi: int = 120,
) -> None:
    """Group-average brain RDMs per ROI above model RDMs at each model's deepest layer.

    The deepest analysed layer is a display choice fixed in advance, not a selection by score.

    Parameters
    ----------
    brain_rdms : DataFrame
        Tidy group-average RDMs (``roi``, ``concept_a``, ``concept_b``, ``dissimilarity``).
    model_paths : sequence of path-like
        Model RDM files, reordered here to the brain RDMs' concepts.
    paths : sequence of path-like
        Output files, one per format.
    """
    from .rsa.steps import load_model_rdms

    rois = list(dict.fromkeys(brain_rdms["roi"]))
    stimuli = stimuli_of_pairs(brain_rdms[brain_rdms["roi"] == rois[0]])
    brain = {roi: brain_rdms.loc[brain_rdms["roi"] == roi, "dissimilarity"].to_numpy() for roi in rois}
    units = load_model_rdms(model_paths, stimuli)
    deepest = units.groupby(["model", "condition"], sort=True).tail(1)
    models = {f"{r.model} / {r.condition} / layer {r.layer}": r.rdm for r in deepest.itertuples()}
    plot_rdms(brain, models, paths=paths, dpi=dpi)


def _colors(plt: Any, labels: Sequence[str]) -> dict[str, Any]:
    return {label: plt.cm.tab10(i % 10) for i, label in enumerate(sorted(set(labels)))}


def _ceiling_band(ax: Any, ceiling: pd.DataFrame, roi: str) -> None:
    row = ceiling[ceiling["roi"] == roi]
    if len(row) and np.isfinite(row["upper"].iloc[0]):
        lower = row["lower"].iloc[0] if np.isfinite(row["lower"].iloc[0]) else row["upper"].iloc[0]
        ax.axhspan(lower, row["upper"].iloc[0], color="0.85", zorder=0, label="noise ceiling")
    ax.axhline(0, color="0.6", lw=0.6)


def plot_rsa_layer_profiles(
    group: pd.DataFrame,
    ceiling: pd.DataFrame,
    *,
    value_label: str,
    paths: Sequence[PathLike],
    dpi: int = 120,
) -> None:
    """Group RSA score against layer, one panel per ROI, one line per model and condition.

    Error bars are bootstrap confidence intervals; the grey band spans the noise ceiling
    (lower to upper bound); filled markers are significant after FDR control
    (permutation test), open markers are not.

    Parameters
    ----------
    group : DataFrame
        ``rsa_group`` table: ``roi``, ``model``, ``condition``, ``layer``, ``mean``,
        ``ci_low``, ``ci_high``, ``significant``.
    ceiling : DataFrame
        ``roi``, ``lower``, ``upper``.
    value_label : str
        Y axis label.
    paths : sequence of path-like
        Output files, one per format.
    """
    plt = _pyplot()
    rois = list(dict.fromkeys(group["roi"]))
    fig, axes = plt.subplots(1, len(rois), figsize=(3.2 * len(rois), 2.8), squeeze=False, sharey=True)
    labels = [f"{m} / {c}" for m, c in zip(group["model"], group["condition"])]
    colors = _colors(plt, labels)
    for ax, roi in zip(axes[0], rois):
        _ceiling_band(ax, ceiling, roi)
        sub = group[group["roi"] == roi]
        for (model, cond), line in sub.groupby(["model", "condition"], sort=True):
            line = line.sort_values("layer")
            color = colors[f"{model} / {cond}"]
            err = np.abs(np.stack([line["mean"] - line["ci_low"], line["ci_high"] - line["mean"]]))
            ax.errorbar(line["layer"], line["mean"], yerr=np.nan_to_num(err), color=color, lw=1,
                        capsize=2, label=f"{model} / {cond}")
            sig = line["significant"].to_numpy(bool)
            ax.scatter(line["layer"], line["mean"], s=14, zorder=3, edgecolors=[color],
                       facecolors=[color if s else "white" for s in sig])
        ax.set_title(roi)
        ax.set_xlabel("layer")
    axes[0, 0].set_ylabel(value_label)
    _legend(fig, axes[0, 0])
    save_figure(fig, paths, dpi)


def _legend(fig: Any, ax: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 4), frameon=False,
               bbox_to_anchor=(0.5, 1.12))
    fig.tight_layout()


def plot_rsa_model_comparison(
    models: pd.DataFrame,
    pairwise: pd.DataFrame,
    ceiling: pd.DataFrame,
    *,
    value_label: str,
    paths: Sequence[PathLike],
    dpi: int = 120,
) -> None:
    """Bars of each model x condition's held-out-layer score per ROI, with significance marks.

    Bars: group mean of the scores at the layer chosen on the other subjects, with
    bootstrap confidence intervals; grey band: noise ceiling; ``*`` above a bar: greater
    than 0 after FDR control; brackets: pairwise differences significant after FDR control.

    Parameters
    ----------
    models : DataFrame
        ``rsa_models`` table: ``roi``, ``model``, ``condition``, ``score``, ``ci_low``,
        ``ci_high``, ``significant``.
    pairwise : DataFrame
        ``rsa_pairwise`` table: ``roi``, ``model_a``, ``condition_a``, ``model_b``,
        ``condition_b``, ``significant``.
    ceiling : DataFrame
        ``roi``, ``lower``, ``upper``.
    value_label : str
    paths : sequence of path-like
    """
    plt = _pyplot()
    rois = list(dict.fromkeys(models["roi"]))
    fig, axes = plt.subplots(1, len(rois), figsize=(3.2 * len(rois), 3.0), squeeze=False, sharey=True)
    labels = [f"{m} / {c}" for m, c in zip(models["model"], models["condition"])]
    colors = _colors(plt, labels)
    for ax, roi in zip(axes[0], rois):
        _ceiling_band(ax, ceiling, roi)
        bars = models[models["roi"] == roi].sort_values(["model", "condition"]).reset_index(drop=True)
        names = [f"{m} / {c}" for m, c in zip(bars["model"], bars["condition"])]
        err = np.abs(np.stack([bars["score"] - bars["ci_low"], bars["ci_high"] - bars["score"]]))
        ax.bar(range(len(bars)), bars["score"], yerr=np.nan_to_num(err), capsize=2,
               color=[colors[n] for n in names])
        _marks(ax, bars, pairwise[pairwise["roi"] == roi], names)
        ax.set_xticks(range(len(bars)), names, rotation=60, ha="right")
        ax.set_title(roi)
    axes[0, 0].set_ylabel(value_label)
    fig.tight_layout()
    save_figure(fig, paths, dpi)


def _marks(ax: Any, bars: pd.DataFrame, pairwise: pd.DataFrame, names: Sequence[str]) -> None:
    """Stars over bars significantly above 0; brackets over significantly different pairs."""
    tops = np.nan_to_num(np.maximum(bars["ci_high"].to_numpy(float), bars["score"].to_numpy(float)))
    span = max(float(np.nanmax(np.abs(tops))), 1e-3)
    for x, (top, sig) in enumerate(zip(tops, bars["significant"].to_numpy(bool))):
        if sig:
            ax.text(x, top + 0.02 * span, "*", ha="center", va="bottom")
    position = {name: i for i, name in enumerate(names)}
    level = float(np.max(tops)) + 0.12 * span
    for row in pairwise[pairwise["significant"].astype(bool)].itertuples():
        a = position.get(f"{row.model_a} / {row.condition_a}")
        b = position.get(f"{row.model_b} / {row.condition_b}")
        if a is None or b is None:
            continue
        ax.plot([a, a, b, b], [level - 0.03 * span, level, level, level - 0.03 * span], color="k", lw=0.6)
        level += 0.08 * span


def value_label(comparison: str, metric: str) -> str:
    """Y axis label of RSA figures."""
    names: Mapping[str, str] = {"spearman": "Spearman rho", "pearson": "Pearson r",
                                "kendall_tau_a": "Kendall tau-a", "rho_a": "rho-a"}
    return f"RSA ({names.get(comparison, comparison)}; brain: {metric})"
