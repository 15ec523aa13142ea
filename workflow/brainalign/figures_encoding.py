"""Bar charts of the encoding stage: condition ablations, variance partitions, shares of
significant voxels per ROI.

Each function takes a group table of the encoding stage, returns the numbers it plots (also
written next to the figure by :func:`brainalign.figures.save_figure`) and marks significance
with the layout of :func:`brainalign.figures.fit_marks` (stars never under brackets).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .figures import DPI, _bh_by, _pyplot, fit_marks, greater_p, save_figure

__all__ = ["deepest_layers", "plot_condition_bars", "plot_variance_partition", "plot_significant_shares"]

PathLike = str | os.PathLike


def deepest_layers(table: pd.DataFrame) -> pd.DataFrame:
    """Rows at each model's deepest analysed layer (a display choice fixed in advance, not a
    selection by score)."""
    deepest = table.groupby("model")["layer"].transform("max")
    return table[table["layer"] == deepest]


def _grid(plt: Any, tasks: Sequence[str], rois: Sequence[str], width: float) -> tuple[Any, Any]:
    fig, axes = plt.subplots(len(tasks), len(rois), figsize=(width * len(rois) + 1.6, 2.5 * len(tasks) + 0.4),
                             squeeze=False, sharey="row")
    return fig, axes


def _offsets(n: int) -> tuple[np.ndarray, float]:
    width = 0.8 / max(n, 1)
    return (np.arange(n) - (n - 1) / 2) * width, width


def condition_bar_table(group: pd.DataFrame, paired: pd.DataFrame, *, alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bars (one per task x ROI x model x condition at the deepest layer, ``q`` of the
    one-sided test of mean r > 0, BH over the bars of a task) and the pairs of conditions of
    one model whose paired test has q <= alpha (``q`` of ``encoding_conditions_paired``)."""
    bars = deepest_layers(group).copy()
    bars["p_one_sided"] = greater_p(bars)
    bars["q"] = _bh_by(bars, bars["p_one_sided"].to_numpy(), ["task"])
    bars["significant"] = bars["q"] <= alpha
    keys = bars[["task", "roi", "model", "layer"]].drop_duplicates()
    pairs = paired.merge(keys, on=["task", "roi", "model", "layer"])
    return bars.reset_index(drop=True), pairs[pairs["q"] <= alpha].reset_index(drop=True)


def plot_condition_bars(group: pd.DataFrame, paired: pd.DataFrame, paths: Sequence[PathLike], *,
                        alpha: float = 0.05, dpi: int = DPI) -> pd.DataFrame:
    """Ablation bars: per task and ROI, each model's input conditions side by side (held-out r
    at its deepest layer, mean over subjects with SEM); ``*`` above a bar: r > 0; brackets:
    conditions of a model that differ (paired t-test across subjects, BH q <= ``alpha``).

    Parameters
    ----------
    group : DataFrame
        ``encoding_group`` (``task``, ``roi``, ``model``, ``condition``, ``layer``, ``mean``,
        ``sem``, ``t``, ``p``).
    paired : DataFrame
        ``encoding_conditions_paired`` (``task``, ``roi``, ``model``, ``layer``, ``a``, ``b``,
        ``q``).
    paths : output files, one per format
    """
    plt = _pyplot()
    bars, pairs = condition_bar_table(group, paired, alpha=alpha)
    tasks, rois = list(dict.fromkeys(bars["task"])), list(dict.fromkeys(bars["roi"]))
    models, conds = sorted(set(bars["model"])), sorted(set(bars["condition"]))
    colours = {c: plt.cm.tab10(i % 10) for i, c in enumerate(conds)}
    fig, axes = _grid(plt, tasks, rois, 0.55 * len(models) * max(len(conds), 2) ** 0.5 + 1.2)
    width = 0.8 / max(bars.groupby("model")["condition"].nunique().max(), 1)
    bars["x"] = np.nan
    for k, model in enumerate(models):  # each model's conditions centred on its tick
        present = [c for c in conds if c in set(bars.loc[bars["model"] == model, "condition"])]
        for c, off in zip(present, (np.arange(len(present)) - (len(present) - 1) / 2) * width):
            bars.loc[(bars["model"] == model) & (bars["condition"] == c), "x"] = k + off
    panels = []
    for (i, task), (j, roi) in ((a, b) for a in enumerate(tasks) for b in enumerate(rois)):
        ax, sub = axes[i, j], bars[(bars["task"] == task) & (bars["roi"] == roi)].reset_index(drop=True)
        for cond, rows in sub.groupby("condition"):
            ax.bar(rows["x"], rows["mean"], width, yerr=rows["sem"].fillna(0), capsize=2,
                   color=colours[cond], label=cond)
        index = {(r.model, r.condition): k for k, r in enumerate(sub.itertuples())}
        brackets = [(index[p.model, p.a], index[p.model, p.b], "*") for p in pairs[
            (pairs["task"] == task) & (pairs["roi"] == roi)].itertuples() if (p.model, p.a) in index
            and (p.model, p.b) in index]
        panels.append((i, ax, sub["x"].tolist(), (sub["mean"] + sub["sem"].fillna(0)).tolist(),
                       ["*" if s else "" for s in sub["significant"]], brackets))
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_xticks(range(len(models)), models)
        ax.set_title(f"{roi} ({task})", fontsize=8)
        ax.set_ylabel("held-out r (mean over subjects)" if j == 0 else "")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[c]) for c in conds]
    fig.legend(handles, [f"condition: {c}" for c in conds], loc="upper left", bbox_to_anchor=(1.0, 0.95),
               frameon=False, fontsize=7, title="bars: mean \u00b1 SEM\nat the deepest layer", title_fontsize=7)
    fig.text(1.0, 0.35, f"* over a bar: r > 0\n(one-sided t-test, BH q \u2264 {alpha:g})\n"
             f"bracket *: conditions differ\n(paired t-test, BH q \u2264 {alpha:g})", fontsize=7, va="top")
    fig.tight_layout()
    for row in range(len(tasks)):
        fit_marks([p[1:] for p in panels if p[0] == row])
    save_figure(fig, paths, dpi, table=_with_pairs(bars, pairs))
    return bars


def _with_pairs(bars: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Bars and significant pairs in one table (``kind`` bar / pair)."""
    pair_rows = pairs.rename(columns={"mean_diff": "mean", "sem_diff": "sem"}).assign(kind="pair")
    keep = [c for c in ["task", "roi", "model", "layer", "a", "b", "mean", "sem", "t", "p", "q", "kind"]
            if c in pair_rows]
    return pd.concat([bars.assign(kind="bar"), pair_rows[keep]], ignore_index=True)


def plot_variance_partition(joint_group: pd.DataFrame, paths: Sequence[PathLike], *,
                            alpha: float = 0.05, dpi: int = DPI) -> pd.DataFrame:
    """Variance-partition bars of the joint models: per task, joint model and ROI, the unique
    R^2 of each feature space, the shared R^2 and the joint R^2 (mean over subjects, SEM);
    ``*``: above 0 (one-sided t-test across subjects, BH over the ROIs of each measure).

    Parameters
    ----------
    joint_group : DataFrame
        ``encoding_joint_group`` (``task``, ``joint``, ``roi``, ``measure``, ``space``,
        ``mean``, ``sem``, ``t``, ``p``).
    """
    plt = _pyplot()
    rows = joint_group[joint_group["measure"].isin(["unique", "shared", "joint_r2"])].copy()
    rows["space"] = rows["space"].fillna("")
    rows["part"] = np.where(rows["measure"] == "unique", "unique: " + rows["space"].astype(str),
                            rows["measure"].map({"shared": "shared", "joint_r2": "joint R\u00b2"}))
    rows["p_one_sided"] = greater_p(rows)
    rows["q"] = _bh_by(rows, rows["p_one_sided"].to_numpy(), ["task", "joint", "measure", "space"])
    rows["significant"] = rows["q"] <= alpha
    groups = list(rows.groupby(["task", "joint"], sort=False))
    fig, axes = plt.subplots(len(groups), 1, figsize=(7.5, 2.6 * len(groups) + 0.3), squeeze=False)
    panels, drawn = [], []
    for ax, ((task, joint), sub) in zip(axes[:, 0], groups):
        rois, parts = list(dict.fromkeys(sub["roi"])), list(dict.fromkeys(sub["part"]))
        offsets, width = _offsets(len(parts))
        sub = sub.assign(x=sub["roi"].map({r: i for i, r in enumerate(rois)}) + sub["part"].map(
            dict(zip(parts, offsets)))).reset_index(drop=True)
        drawn.append(sub)
        for k, part in enumerate(parts):
            b = sub[sub["part"] == part]
            ax.bar(b["x"], b["mean"], width, yerr=b["sem"].fillna(0), capsize=2, label=part,
                   color=plt.cm.tab10(k % 10))
        panels.append((ax, sub["x"].tolist(), (sub["mean"] + sub["sem"].fillna(0)).tolist(),
                       ["*" if s else "" for s in sub["significant"]], []))
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_xticks(range(len(rois)), rois)
        ax.set_ylabel("R\u00b2 (held out, mean over subjects)")
        ax.set_title(f"joint model {joint} ({task}): unique = joint R\u00b2 - R\u00b2 without the space",
                     fontsize=8)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  title=f"bars: mean \u00b1 SEM\n* > 0, q \u2264 {alpha:g}", title_fontsize=7)
    fig.tight_layout()
    for panel in panels:
        fit_marks([panel])
    table = pd.concat(drawn, ignore_index=True)
    save_figure(fig, paths, dpi, table=table)
    return table


def share_table(subjects: pd.DataFrame) -> pd.DataFrame:
    """Per task x ROI x model x condition at the deepest layer: mean and SEM over subjects of
    the share of the ROI's voxels significant in the subject's encoding test
    (``share_significant`` of ``encoding_subjects``), and the subjects' values."""
    rows = deepest_layers(subjects)
    keys = ["task", "roi", "model", "condition", "layer"]
    agg = rows.groupby(keys, sort=False)["share_significant"].agg(["mean", "sem", "count"])
    return agg.reset_index().rename(columns={"count": "n_subjects"})


def plot_significant_shares(subjects: pd.DataFrame, paths: Sequence[PathLike], *,
                            fdr_q: float = 0.05, dpi: int = DPI) -> pd.DataFrame:
    """Share of each ROI's voxels significant (per-subject encoding test, BH-FDR over voxels),
    per model and condition at its deepest layer: bars = mean over subjects (SEM), dots =
    subjects; dotted line: the FDR level, above the share a null ROI is expected to reach."""
    plt = _pyplot()
    table = share_table(subjects)
    tasks, rois = list(dict.fromkeys(table["task"])), list(dict.fromkeys(table["roi"]))
    series = sorted(set(zip(table["model"], table["condition"])))
    offsets, width = _offsets(len(series))
    fig, axes = plt.subplots(len(tasks), 1, figsize=(1.2 * len(rois) * max(len(series), 3) ** 0.5 + 3, 2.4 * len(tasks) + 0.3),
                             squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        for k, (model, cond) in enumerate(series):
            t = table[(table["task"] == task) & (table["model"] == model) & (table["condition"] == cond)]
            x = t["roi"].map({r: i for i, r in enumerate(rois)}).to_numpy(float) + offsets[k]
            ax.bar(x, t["mean"], width, yerr=t["sem"].fillna(0), capsize=2, color=plt.cm.tab10(k % 10),
                   label=f"{model} / {cond}")
            dots = deepest_layers(subjects)
            dots = dots[(dots["task"] == task) & (dots["model"] == model) & (dots["condition"] == cond)]
            ax.scatter(dots["roi"].map({r: i for i, r in enumerate(rois)}) + offsets[k], dots["share_significant"],
                       s=6, color="k", zorder=3, label="subjects" if k == 0 else None)
        ax.axhline(fdr_q, color="0.4", lw=0.8, ls=":", label=f"FDR level q = {fdr_q:g}")
        ax.set_xticks(range(len(rois)), rois)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of ROI voxels significant")
        ax.set_title(f"task {task}: voxels with q \u2264 {fdr_q:g} in each subject's encoding test "
                     "(deepest layer; bars: mean \u00b1 SEM)", fontsize=8)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    save_figure(fig, paths, dpi, table=table)
    return table
