"""Paper 000 (VLMs and concept processing, Pereira 2018): group tables and figures.

The per-ROI tables come from :mod:`brainalign.rsa.steps_paper000`; here they are pooled,
FDR-corrected across every model x condition x layer x ROI of a task and estimand, and
drawn: layer curves per model family (relative depth, so models of different depth share
an axis) and the ablation figure (conditions side by side per model and network, at each
model's best layer, with the noise ceiling and significance).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import io
from ..encoding.stats import fdr_bh
from ..figures import DPI, _pyplot, fit_marks, save_figure
from ..pipeline import parse_entities

__all__ = ["FAMILIES", "family_of", "pool_tables", "plot_layer_curves", "plot_ablation"]

PathLike = str | os.PathLike

#: Model family of each extractor, for grouping (paper 000's architecture classes).
FAMILIES = {
    "text_encoder": "language only", "causal_lm": "language only", "static": "language only",
    "vision_encoder": "vision only", "clip": "contrastive", "siglip": "contrastive",
    "align": "contrastive", "visualbert": "VL encoder", "lxmert": "VL encoder",
    "vilt": "VL encoder", "bridgetower": "VL encoder", "flava": "VL encoder",
    "blip2": "generative", "llava": "generative", "llava_next": "generative", "idefics2": "generative",
    "qwen2_vl": "generative",
}
#: Condition order of the ablation figure (paper 000's).
CONDITION_ORDER = ("sentence", "picture", "noise", "word", "image", "wordpicture")


def family_of(extractor: str) -> str:
    """The family of an extractor name (``other`` for families not listed)."""
    return FAMILIES.get(extractor, "other")


def pool_tables(paths: Sequence[PathLike], *, p_column: str | None = "p_perm",
                by: Sequence[str] = ("task", "estimand")) -> pd.DataFrame:
    """Concatenate per-ROI tables, labelled with the task of their file name, and add ``q``
    (BH over every row of each ``by`` group).

    Parameters
    ----------
    paths : per task x ROI (x model) tables
    p_column : the p-value column to correct, or None
    by : columns whose groups are separate FDR families (those present in the tables)
    """
    if not paths:
        return pd.DataFrame()
    table = pd.concat([io.read_table(p).assign(task=parse_entities(p)["task"]) for p in paths],
                      ignore_index=True)
    if p_column is None or p_column not in table:
        return table
    keys = [k for k in by if k in table]
    table["q"] = np.nan
    for _, rows in table.groupby(keys, sort=False) if keys else [(None, table)]:
        finite = rows[p_column].notna()
        table.loc[rows.index[finite], "q"] = fdr_bh(rows.loc[finite, p_column].to_numpy())
    return table


def _depth(table: pd.DataFrame, n_layers: Mapping[str, int] | None) -> pd.Series:
    deepest = table.groupby("model")["layer"].transform("max").clip(lower=1)
    if n_layers:
        deepest = table["model"].map(n_layers).fillna(deepest)
    return table["layer"] / deepest


def plot_layer_curves(estimands: pd.DataFrame, families: Mapping[str, str], paths: Sequence[PathLike],
                      *, estimand: str = "group_mean_rdm", q_level: float = 0.05,
                      dpi: int = DPI) -> None:
    """Score against relative layer depth, one panel per model family x ROI, one line per
    model x condition; filled markers: q <= ``q_level``; band: the bootstrap interval."""
    plt = _pyplot()
    table = estimands[estimands["estimand"] == estimand].copy()
    table["family"] = table["model"].map(families).fillna("other")
    table["depth"] = _depth(table, None)
    fams, rois = sorted(table["family"].unique()), list(dict.fromkeys(table["roi"]))
    fig, axes = plt.subplots(len(fams), len(rois), figsize=(3.4 * len(rois), 2.4 * len(fams)),
                             squeeze=False, sharex=True, sharey=True)
    for (i, fam), (j, roi) in ((a, b) for a in enumerate(fams) for b in enumerate(rois)):
        ax = axes[i, j]
        for (model, cond), rows in table[(table.family == fam) & (table.roi == roi)].groupby(
                ["model", "condition"], sort=True):
            rows = rows.sort_values("depth")
            line, = ax.plot(rows["depth"], rows["score"], label=f"{model} / {cond}")
            ax.fill_between(rows["depth"], rows["ci_low"], rows["ci_high"], alpha=0.15,
                            color=line.get_color())
            sig = rows["q"] <= q_level if "q" in rows else np.zeros(len(rows), bool)
            ax.scatter(rows["depth"], rows["score"], s=14, color=line.get_color(),
                       facecolors=[line.get_color() if s else "white" for s in sig], zorder=3)
        ax.axhline(0, color="0.7", lw=0.6)
        ax.set_title(f"{fam} - {roi}", fontsize=8)
        if i == len(fams) - 1:
            ax.set_xlabel("relative layer depth")
        if j == 0:
            ax.set_ylabel("Spearman rho")
        ax.legend(fontsize=5, frameon=False)
    fig.suptitle(f"RSA per layer ({estimand.replace('_', ' ')}; filled: q <= {q_level})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, paths, dpi, table=table)


def _best_layers(table: pd.DataFrame) -> pd.DataFrame:
    """Per model x ROI, the layer with the best mean score over the conditions."""
    mean = table.groupby(["model", "roi", "layer"], as_index=False)["score"].mean()
    best = mean.loc[mean.groupby(["model", "roi"])["score"].idxmax(), ["model", "roi", "layer"]]
    return table.merge(best, on=["model", "roi", "layer"])


def plot_ablation(estimands: pd.DataFrame, paths: Sequence[PathLike], *,
                  estimand: str = "subject_mean", q_level: float = 0.05, dpi: int = DPI) -> None:
    """Paper 000's ablation figure: per ROI, each model's conditions side by side at its best
    layer (best mean score over conditions), bootstrap interval, noise-ceiling band, * for
    q <= ``q_level``."""
    plt = _pyplot()
    table = _best_layers(estimands[estimands["estimand"] == estimand])
    rois = list(dict.fromkeys(table["roi"]))
    conds = [c for c in CONDITION_ORDER if c in set(table["condition"])]
    models = sorted(table["model"].unique())
    fig, axes = plt.subplots(len(rois), 1, figsize=(1.3 * len(models) + 3.5, 2.6 * len(rois)),
                             squeeze=False)
    width = 0.8 / max(len(conds), 1)
    panels = []
    for ax, roi in zip(axes[:, 0], rois):
        rows = table[table.roi == roi].set_index(["model", "condition"])
        xs, tops, stars = [], [], []
        for k, cond in enumerate(conds):
            x = np.arange(len(models)) + (k - (len(conds) - 1) / 2) * width
            r = rows.reindex([(m, cond) for m in models])
            score = r["score"].to_numpy(float)
            err = np.clip(np.vstack([score - r["ci_low"], r["ci_high"] - score]), 0, None)
            ax.bar(x, score, width, yerr=np.nan_to_num(err), capsize=2, label=cond)
            q = r["q"].to_numpy(float) if "q" in r else np.full(len(x), np.nan)
            xs += list(x)
            tops += list(np.fmax(score, r["ci_high"].to_numpy(float)))  # stars above the interval
            stars += ["*" if np.isfinite(s) and qi <= q_level else "" for s, qi in zip(score, q)]
        panels.append((ax, xs, tops, stars, []))
        if "ceiling_lower" in rows and rows["ceiling_lower"].notna().any():
            ax.axhspan(rows["ceiling_lower"].mean(), rows["ceiling_upper"].mean(), color="0.92",
                       zorder=0, label="noise ceiling (lower-upper)")
        ax.set_xticks(np.arange(len(models)), models, fontsize=8)
        ax.set_ylabel("Spearman rho")
        ax.set_title(f"{roi}: conditions at each model's best layer ({estimand.replace('_', ' ')}; "
                     f"* q <= {q_level})", fontsize=8)
        ax.legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    for panel in panels:
        fit_marks([panel])
    save_figure(fig, paths, dpi, table=table)
