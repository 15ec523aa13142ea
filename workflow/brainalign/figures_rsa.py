"""Figures of the RSA stage: RDMs, layer profiles with the noise ceiling, model comparisons.

Every figure is saved by :func:`brainalign.figures.save_figure` (same results, same bytes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .figures import DPI, _pyplot, fit_marks, plot_rdms, save_figure

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
    dpi: int = DPI,
    categories: Mapping[str, str] | None = None,
) -> pd.DataFrame:
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
    categories : mapping of concept -> category, optional
        Order the concepts by category (``category`` column of ``concepts.tsv``).

    Returns
    -------
    DataFrame
        The plotted numbers (:func:`brainalign.figures.plot_rdms`).
    """
    from .rsa.steps import load_model_rdms

    rois = list(dict.fromkeys(brain_rdms["roi"]))
    stimuli = stimuli_of_pairs(brain_rdms[brain_rdms["roi"] == rois[0]])
    brain = {roi: brain_rdms.loc[brain_rdms["roi"] == roi, "dissimilarity"].to_numpy() for roi in rois}
    units = load_model_rdms(model_paths, stimuli)
    deepest = units.groupby(["model", "condition"], sort=True).tail(1)
    models = {f"{r.model} / {r.condition} / layer {r.layer}": r.rdm for r in deepest.itertuples()}
    return plot_rdms(brain, models, paths=paths, dpi=dpi, stimuli=stimuli, categories=categories)


def _colors(plt: Any, labels: Sequence[str]) -> dict[str, Any]:
    return {label: plt.cm.tab10(i % 10) for i, label in enumerate(sorted(set(labels)))}


def _ceiling_band(ax: Any, ceiling: pd.DataFrame, roi: str) -> tuple[float, float]:
    row = ceiling[ceiling["roi"] == roi]
    band = (np.nan, np.nan)
    if len(row) and np.isfinite(row["upper"].iloc[0]):
        lower = row["lower"].iloc[0] if np.isfinite(row["lower"].iloc[0]) else row["upper"].iloc[0]
        band = (float(lower), float(row["upper"].iloc[0]))
        ax.axhspan(*band, color="0.85", lw=0, zorder=0)
    ax.axhline(0, color="0.6", lw=0.6)
    return band


def _profile_handles(colors: Mapping[str, Any], fdr: str) -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=c, marker="o", ms=4, label=name) for name, c in colors.items()]
    return handles + [
        Line2D([], [], color="0.3", marker="o", ls="", ms=4, label=f"filled: significant ({fdr})"),
        Line2D([], [], color="0.3", marker="o", ls="", ms=4, mfc="white", label="open: n.s."),
        Line2D([], [], color="0.3", marker="|", ls="", ms=8, label="bar: bootstrap CI"),
        Patch(color="0.85", label="noise ceiling (lower - upper bound)"),
    ]


def plot_rsa_layer_profiles(
    group: pd.DataFrame,
    ceiling: pd.DataFrame,
    *,
    value_label: str,
    paths: Sequence[PathLike],
    dpi: int = DPI,
    fdr: str = "permutation test, BH-FDR",
) -> pd.DataFrame:
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
    fdr : str
        How significance was decided, for the legend.

    Returns
    -------
    DataFrame
        The plotted rows with the ceiling bounds (``ceiling_lower``, ``ceiling_upper``).
    """
    plt = _pyplot()
    rois = list(dict.fromkeys(group["roi"]))
    fig, axes = plt.subplots(1, len(rois), figsize=(2.8 * len(rois) + 0.6, 3.3), squeeze=False,
                             sharey=True, layout="constrained")
    colors = _colors(plt, [f"{m} / {c}" for m, c in zip(group["model"], group["condition"])])
    bands = {}
    for ax, roi in zip(axes[0], rois):
        bands[roi] = _ceiling_band(ax, ceiling, roi)
        sub = group[group["roi"] == roi]
        for (model, cond), line in sub.groupby(["model", "condition"], sort=True):
            line = line.sort_values("layer")
            color = colors[f"{model} / {cond}"]
            err = np.abs(np.stack([line["mean"] - line["ci_low"], line["ci_high"] - line["mean"]]))
            ax.errorbar(line["layer"], line["mean"], yerr=np.nan_to_num(err), color=color, lw=1, capsize=2)
            sig = line["significant"].to_numpy(bool)
            ax.scatter(line["layer"], line["mean"], s=14, zorder=3, edgecolors=[color],
                       facecolors=[color if s else "white" for s in sig])
        ax.set_title(roi)
        ax.set_xlabel("layer (index)")
    axes[0, 0].set_ylabel(value_label)
    handles = _profile_handles(colors, fdr)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), frameon=False,
               fontsize=7)
    table = group.assign(ceiling_lower=group["roi"].map({r: b[0] for r, b in bands.items()}),
                         ceiling_upper=group["roi"].map({r: b[1] for r, b in bands.items()}))
    save_figure(fig, paths, dpi, table=table)
    return table


def plot_rsa_model_comparison(
    models: pd.DataFrame,
    pairwise: pd.DataFrame,
    ceiling: pd.DataFrame,
    *,
    value_label: str,
    paths: Sequence[PathLike],
    dpi: int = DPI,
) -> pd.DataFrame:
    """Bars of each model x condition's held-out-layer score per ROI, with significance marks.

    Bars: group mean of the scores at the layer chosen on the other subjects, with
    bootstrap confidence intervals; grey band: noise ceiling; ``*`` above a bar: greater
    than 0 after FDR control; brackets: pairwise differences significant after FDR control,
    stacked above the stars (:func:`brainalign.figures.fit_marks`: no mark hides another).

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

    Returns
    -------
    DataFrame
        Bars (``kind`` = bar) and significant pairs (``kind`` = pair), as plotted.
    """
    plt = _pyplot()
    rois = list(dict.fromkeys(models["roi"]))
    fig, axes = plt.subplots(1, len(rois), figsize=(2.6 * len(rois) + 1.8, 3.4), squeeze=False, sharey=True)
    colors = _colors(plt, [f"{m} / {c}" for m, c in zip(models["model"], models["condition"])])
    panels, drawn = [], []
    for ax, roi in zip(axes[0], rois):
        _ceiling_band(ax, ceiling, roi)
        bars = models[models["roi"] == roi].sort_values(["model", "condition"]).reset_index(drop=True)
        names = [f"{m} / {c}" for m, c in zip(bars["model"], bars["condition"])]
        err = np.abs(np.stack([bars["score"] - bars["ci_low"], bars["ci_high"] - bars["score"]]))
        ax.bar(range(len(bars)), bars["score"], yerr=np.nan_to_num(err), capsize=2,
               color=[colors[n] for n in names])
        pairs = _pairs(pairwise[pairwise["roi"] == roi], names)
        tops = np.fmax(bars["ci_high"].to_numpy(float), bars["score"].to_numpy(float))
        panels.append((ax, list(range(len(bars))), tops, ["*" if s else "" for s in bars["significant"]],
                       [(a, b, "*") for a, b in pairs]))
        drawn.append(bars.assign(kind="bar"))
        drawn.append(pd.DataFrame({"roi": roi, "kind": "pair", "bar_a": [names[a] for a, _ in pairs],
                                   "bar_b": [names[b] for _, b in pairs]}))
        ax.set_xticks(range(len(bars)), names, rotation=60, ha="right")
        ax.set_title(roi)
    axes[0, 0].set_ylabel(value_label)
    _comparison_legend(fig, axes[0, -1])
    fig.tight_layout()
    fit_marks(panels)
    table = pd.concat(drawn, ignore_index=True)
    save_figure(fig, paths, dpi, table=table)
    return table


def _pairs(pairwise: pd.DataFrame, names: Sequence[str]) -> list[tuple[int, int]]:
    """Bar indices of the significantly different pairs."""
    position = {name: i for i, name in enumerate(names)}
    pairs = []
    for row in pairwise[pairwise["significant"].astype(bool)].itertuples():
        a = position.get(f"{row.model_a} / {row.condition_a}")
        b = position.get(f"{row.model_b} / {row.condition_b}")
        if a is not None and b is not None:
            pairs.append((a, b))
    return pairs


def _comparison_legend(fig: Any, ax: Any) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color="0.85", label="noise ceiling\n(lower - upper bound)"),
               Patch(color="white", label="bars: bootstrap CI"),
               Patch(color="white", label="* over a bar: > 0 (FDR)"),
               Patch(color="white", label="bracket *: the pair differs (FDR)")]
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              handlelength=1.2)


def value_label(comparison: str, metric: str) -> str:
    """Y axis label of RSA figures."""
    names: Mapping[str, str] = {"spearman": "Spearman rho", "pearson": "Pearson r",
                                "kendall_tau_a": "Kendall tau-a", "rho_a": "rho-a"}
    return f"RSA ({names.get(comparison, comparison)}; brain: {metric})"
