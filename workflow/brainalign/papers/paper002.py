"""Paper 002 (joint vs ablated encoding of a TV show): ROI tests and figures.

Per ROI and across subjects (one-sided t-tests, Holm across the ROIs of a family,
:mod:`brainalign.contrasts.rois`): each pair of the joint model's conditions (joint vs
language-only vs vision-only, in that order: the first of a pair is expected higher); the
residual representation against zero; and, layer by layer, the fine-tuned against the
pretrained model (per-unit delta of held-out r). Figures: ROI bars of the conditions and the
residual with the tests' marks, and the fine-tuned - pretrained layer curves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import io
from ..contrasts.rois import condition_pair_ttests, roi_ttests, subject_roi_means
from ..datasets.units import roi_mask
from ..figures import DPI, _pyplot, save_figure

__all__ = [
    "encoding_units",
    "paper002_tables",
    "stream_ttests",
    "plot_roi_bars",
    "plot_layer_deltas",
    "plot_stream_bars",
]

PathLike = str | os.PathLike


def _roi_names(brain_path: PathLike) -> np.ndarray:
    arrays, meta = io.load_arrays(brain_path)
    masks = {name: roi_mask(arrays, meta, name) for name in meta["rois"]}
    n_units = arrays["roi"].shape[0]
    return np.array([",".join(n for n, m in masks.items() if m[u]) for u in range(n_units)], dtype=object)


def encoding_units(voxel_paths: Sequence[PathLike], brain_paths: Mapping[tuple[str, str], PathLike],
                   layer: int) -> pd.DataFrame:
    """The encoding stage's per-unit tables at one layer, with ROI names (overlaps kept).

    ``brain_paths`` maps (subject, task) to the preprocessed file (for the ROI names).
    """
    tables = []
    for path in voxel_paths:
        table = io.read_table(path)
        table = table[table["layer"] == layer].rename(columns={"voxel": "unit"})
        subject, task = str(table["subject"].iloc[0]), str(table["task"].iloc[0])
        names = _roi_names(brain_paths[subject, task])
        tables.append(table.assign(roi=names[table["unit"].to_numpy()]))
    return pd.concat(tables, ignore_index=True)


def stream_ttests(joint_rois: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Per joint model, ROI and stream: is the stream's unique variance above 0 across subjects?

    Parameters
    ----------
    joint_rois : DataFrame
        The joint encoding's per-subject ROI tables (``subject``, ``task``, ``joint``,
        ``roi``, ``measure``, ``space``, ``value``; rule fit_joint_encoding).
    alpha : float

    Returns
    -------
    DataFrame
        :func:`~brainalign.contrasts.rois.roi_ttests` rows (one-sided, Holm across ROIs per
        task x joint x measure x space) for ``joint_r`` (the joint model against 0) and
        ``unique`` (joint R^2 minus the R^2 of the model without that stream: dropping the
        stream costs variance).
    """
    rows = joint_rois[joint_rois["measure"].isin(["joint_r", "unique"])]
    return roi_ttests(rows, value="value", by=("task", "joint", "measure", "space"), alpha=alpha)


def paper002_tables(conditions_units: pd.DataFrame, conditions: Sequence[str],
                    residual_units: pd.DataFrame | None, layer_units: pd.DataFrame | None,
                    stream_rois: pd.DataFrame | None = None,
                    *, alpha: float = 0.05) -> dict[str, pd.DataFrame]:
    """The paper's ROI tests: condition pairs, residual vs 0, fine-tuned - pretrained per layer,
    and each stream's unique variance in the joint models of ``paper002.streams``."""
    present = [c for c in conditions if c in set(conditions_units["condition"])]
    tables = {
        "conditions": condition_pair_ttests(conditions_units, present, value="r", by=("task",),
                                            alpha=alpha),
        "condition_means": subject_roi_means(conditions_units, "r", by=("task", "condition")),
    }
    if residual_units is not None and len(residual_units):
        tables["residual"] = roi_ttests(residual_units, value="r", by=("task",), alpha=alpha)
    if layer_units is not None and len(layer_units):
        tables["layers"] = roi_ttests(layer_units, value="delta", by=("task", "contrast", "layer"),
                                      alpha=alpha)
    if stream_rois is not None and len(stream_rois):
        tables["streams"] = stream_ttests(stream_rois, alpha=alpha)
    return tables


def plot_roi_bars(tables: Mapping[str, pd.DataFrame], paths: Sequence[PathLike], *,
                  alpha: float = 0.05, dpi: int = DPI) -> None:
    """Per task and ROI: mean held-out r (over subjects, with SEM) of each condition and of the
    residual; * above a condition beating the next one, and above the residual > 0 (Holm)."""
    plt = _pyplot()
    means = tables["condition_means"]
    residual = tables.get("residual")
    tasks = list(dict.fromkeys(means["task"]))
    fig, axes = plt.subplots(len(tasks), 1, figsize=(8, 2.8 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        rows = means[means["task"] == task]
        summary = rows.groupby(["roi", "condition"])["r"].agg(["mean", "sem"]).reset_index()
        bars = {c: summary[summary.condition == c].set_index("roi") for c in dict.fromkeys(rows["condition"])}
        if residual is not None:
            res = residual[residual["task"] == task].set_index("roi")
            bars["residual"] = res.rename(columns={"mean": "mean", "sem": "sem"})
        rois = sorted(set(rows["roi"]))
        width = 0.8 / len(bars)
        for k, (name, table) in enumerate(bars.items()):
            t = table.reindex(rois)
            x = np.arange(len(rois)) + (k - (len(bars) - 1) / 2) * width
            ax.bar(x, t["mean"], width, yerr=t["sem"].fillna(0), capsize=2, label=name)
            if name == "residual" and "significant" in t:
                for xi, m, s in zip(x, t["mean"], t["significant"].fillna(False)):
                    if s:
                        ax.text(xi, max(m, 0) + 0.01, "*", ha="center")
        pairs = tables["conditions"]
        low, high = ax.get_ylim()
        stacked: dict[str, int] = {}
        for _, row in pairs[(pairs["task"] == task) & pairs["significant"]].iterrows():
            if row["roi"] in rois:
                k = stacked[row["roi"]] = stacked.get(row["roi"], -1) + 1
                ax.text(rois.index(row["roi"]), high - (0.07 * k + 0.04) * (high - low),
                        f"{row['condition_a']} > {row['condition_b']} *", ha="center", fontsize=6)
        ax.set_xticks(np.arange(len(rois)), rois)
        ax.set_ylabel("held-out r (mean over subjects)")
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_title(f"task {task}: conditions and residual (one-sided t-tests across subjects, "
                     f"Holm across ROIs, * p <= {alpha})", fontsize=8)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    save_figure(fig, paths, dpi, table=pd.concat(
        [means.groupby(["task", "roi", "condition"])["r"].agg(["mean", "sem"]).reset_index(),
         *([residual.assign(condition="residual")] if residual is not None else [])], ignore_index=True))


def plot_layer_deltas(layers: pd.DataFrame, paths: Sequence[PathLike], *, dpi: int = DPI) -> None:
    """Fine-tuned - pretrained held-out r per layer (mean over subjects, SEM band), per ROI;
    filled markers: Holm-significant layers."""
    plt = _pyplot()
    groups = list(layers.groupby(["task", "contrast"], sort=False))
    fig, axes = plt.subplots(len(groups), 1, figsize=(6, 2.6 * len(groups)), squeeze=False)
    for ax, ((task, contrast), rows) in zip(axes[:, 0], groups):
        for roi, r in rows.groupby("roi", sort=True):
            r = r.sort_values("layer")
            line, = ax.plot(r["layer"], r["mean"], label=roi)
            ax.fill_between(r["layer"], r["mean"] - r["sem"], r["mean"] + r["sem"], alpha=0.15,
                            color=line.get_color())
            ax.scatter(r["layer"], r["mean"], color=line.get_color(), zorder=3,
                       facecolors=[line.get_color() if s else "white" for s in r["significant"]])
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_xlabel("layer")
        ax.set_ylabel("delta held-out r")
        ax.set_title(f"task {task}: {contrast} at every layer (filled: significant, Holm)", fontsize=8)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    save_figure(fig, paths, dpi, table=layers)


def plot_stream_bars(streams: pd.DataFrame, paths: Sequence[PathLike], *, alpha: float = 0.05,
                     dpi: int = DPI) -> None:
    """Per task and joint model: each stream's unique R^2 per ROI (mean over subjects, SEM),
    * where it is above 0 (one-sided t-test across subjects, Holm across ROIs)."""
    plt = _pyplot()
    unique = streams[streams["measure"] == "unique"]
    groups = list(unique.groupby(["task", "joint"], sort=False))
    fig, axes = plt.subplots(len(groups), 1, figsize=(7, 2.8 * len(groups)), squeeze=False)
    for ax, ((task, joint), rows) in zip(axes[:, 0], groups):
        rois = sorted(set(rows["roi"]))
        spaces = list(dict.fromkeys(rows["space"]))
        width = 0.8 / len(spaces)
        for k, space in enumerate(spaces):
            t = rows[rows["space"] == space].set_index("roi").reindex(rois)
            x = np.arange(len(rois)) + (k - (len(spaces) - 1) / 2) * width
            ax.bar(x, t["mean"], width, yerr=t["sem"].fillna(0), capsize=2, label=space)
            for xi, m, e, s in zip(x, t["mean"], t["sem"].fillna(0), t["significant"].fillna(False)):
                if s:
                    ax.text(xi, max(m, 0) + e, "*", ha="center", va="bottom")
        ax.set_xticks(np.arange(len(rois)), rois)
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_ylabel("unique R$^2$ (joint - without stream)")
        ax.set_title(f"task {task}, joint model {joint}: what each stream adds "
                     f"(* p <= {alpha}, one-sided, Holm across ROIs)", fontsize=8)
        ax.legend(title="stream", fontsize=7, title_fontsize=7, frameon=False)
    fig.tight_layout()
    save_figure(fig, paths, dpi, table=unique)
