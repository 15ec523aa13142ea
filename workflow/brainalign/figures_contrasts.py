"""Figures of the contrasts (:mod:`brainalign.contrasts`): shares of significant sites per region, electrodes on a glass
brain coloured by delta, and maps of significant delta for voxels and vertices."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .figures import DPI, _pyplot, save_figure
from .figures_electrodes import glass_markers, tidy_rows
from .pipeline import parse_entities

__all__ = [
    "site_table",
    "plot_contrast_shares",
    "plot_electrode_contrasts",
    "mean_surface_maps",
]

PathLike = str | os.PathLike


def _share_columns(group: pd.DataFrame) -> tuple[str, str]:
    """Sites (electrodes) when the table counts them, else units."""
    if "share_sites" in group and group["share_sites"].notna().any():
        return "share_sites", "share of selected sites (electrodes) significant"
    return "share", "share of selected units significant"


def plot_contrast_shares(group: pd.DataFrame, paths: Sequence[PathLike], dpi: int = DPI) -> None:
    """Bars of the share of significant sites per ROI / region and overall, per contrast.

    Parameters
    ----------
    group : DataFrame
        :func:`brainalign.contrasts.steps.summarize_contrasts`' pooled shares (task,
        contrast, roi, share[_sites] and its Wilson interval ``*_low`` / ``*_high``).
    paths : output files, one per format
    """
    plt = _pyplot()
    column, label = _share_columns(group)
    tasks = list(dict.fromkeys(group["task"]))
    fig, axes = plt.subplots(len(tasks), 1, figsize=(8, 2.8 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        table = group[group["task"] == task]
        rois = [r for r in dict.fromkeys(table["roi"]) if r != "all"] + ["all"]
        contrasts = list(dict.fromkeys(table["contrast"]))
        width = 0.8 / len(contrasts)
        for k, contrast in enumerate(contrasts):
            rows = table[table["contrast"] == contrast].set_index("roi").reindex(rois)
            share = rows[column].to_numpy(float)
            err = np.clip(np.vstack([share - rows[f"{column}_low"], rows[f"{column}_high"] - share]), 0, None)
            x = np.arange(len(rois)) + (k - (len(contrasts) - 1) / 2) * width
            ax.bar(x, share, width, yerr=np.nan_to_num(err), capsize=2, label=contrast)
        ax.set_xticks(np.arange(len(rois)), rois, rotation=30, ha="right")
        ax.set_ylabel("share")
        ax.set_ylim(0, 1)
        ax.set_title(f"task {task}: {label} (95% Wilson CI)", fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    save_figure(fig, paths, dpi, table=group)


def site_table(units: pd.DataFrame) -> pd.DataFrame:
    """One row per subject x contrast x electrode: its best bin's delta, and whether the site is
    significant (``site_significant`` of the unit tables; else any significant bin)."""
    usable = units[~units["excluded"].fillna(False).astype(bool)]
    keys = ["subject", "contrast", "channel"]
    best = usable.loc[usable.groupby(keys, sort=False)["delta"].idxmax()]
    column = "site_significant" if "site_significant" in usable else "significant"
    significant = usable.groupby(keys, sort=False)[column].any().rename("site_significant")
    return best.drop(columns=["site_significant"], errors="ignore").set_index(keys).join(
        significant).reset_index()


def plot_electrode_contrasts(units: pd.DataFrame, paths: Sequence[PathLike], *, title: str = "",
                             dpi: int = DPI) -> None:
    """Electrodes of every subject on a glass brain, one row per contrast: colour = delta of
    held-out r at the electrode's best time bin, large markers = significant sites."""
    plt = _pyplot()
    sites = site_table(units)
    contrasts = list(dict.fromkeys(sites["contrast"]))
    fig, axes = plt.subplots(len(contrasts), 1, figsize=(9, 2.3 * len(contrasts)), squeeze=False)
    vmax = max(float(np.nanmax(np.abs(sites["delta"]), initial=0.0)), 1e-3)
    rows = {contrast: sites[sites["contrast"] == contrast] for contrast in contrasts}
    tidy_rows(fig, axes[:, 0], [
        f"{c}: {int(r['site_significant'].sum())} of {len(r)} sites significant (coloured by the "
        "best bin's delta r; grey: not significant)" for c, r in rows.items()], title)
    for ax, table in zip(axes[:, 0], rows.values()):
        significant = table["site_significant"].to_numpy(bool)
        xyz = table[["x", "y", "z"]].to_numpy(float)
        glass_markers(ax, table["delta"].to_numpy(float)[significant], xyz[significant], sizes=40,
                      vmax=vmax, background=xyz[~significant])
    save_figure(fig, paths, dpi, table=sites)


def _by_contrast(paths: Sequence[PathLike]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(parse_entities(path)["contrast"], []).append(str(path))
    return dict(sorted(groups.items()))


def mean_surface_maps(paths: Sequence[PathLike]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Subject-average surface maps of significant deltas, by contrast: (left, right) arrays."""
    from .datasets.surface import read_surface_map

    means = {}
    for name, files in _by_contrast(paths).items():
        maps = [read_surface_map(f)[0] for f in files]
        means[name] = tuple(np.nanmean(np.stack([m[h][:, 0] for m in maps]), axis=0) for h in ("L", "R"))
    return means
