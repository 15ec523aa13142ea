"""Figures: layer profiles, encoding maps on the brain, RDM panels.

Every figure is saved in each requested format with fixed metadata, so the same
results give the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import io

__all__ = ["save_figure", "plot_layer_profiles", "plot_encoding_maps", "plot_rdms"]

PathLike = str | os.PathLike


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "brainalign", "font.size": 8, "figure.dpi": 100})
    return plt


def save_figure(fig: Any, paths: Sequence[PathLike], dpi: int = 120) -> None:
    """Save ``fig`` to every path (format from the suffix), deterministically and atomically."""
    plt = _pyplot()
    for path in paths:
        fmt = Path(path).suffix.lstrip(".")
        metadata = {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
        with io.atomic_write(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata, bbox_inches="tight")
    plt.close(fig)


def _series_label(row: Mapping[str, Any]) -> str:
    return f"{row['model']} / {row['condition']}"


def plot_layer_profiles(
    group: pd.DataFrame,
    *,
    value_label: str,
    paths: Sequence[PathLike],
    dpi: int = 120,
) -> None:
    """Plot a score against layer, one panel per ROI (and task), one line per model/condition.

    Parameters
    ----------
    group : DataFrame
        Output of :func:`brainalign.group.group_ttest` with columns ``roi``, ``model``,
        ``condition``, ``layer``, ``mean``, ``sem`` and optionally ``task``.
    value_label : str
        Y axis label.
    paths : sequence of path-like
        Output files, one per format.
    """
    plt = _pyplot()
    group = group.copy()
    if "task" not in group.columns:
        group["task"] = "concepts"
    tasks, rois = sorted(group["task"].unique()), list(dict.fromkeys(group["roi"]))
    fig, axes = plt.subplots(
        len(tasks), len(rois), figsize=(3.0 * len(rois), 2.6 * len(tasks)), squeeze=False, sharey="row"
    )
    series = sorted({_series_label(r) for r in group.to_dict("records")})
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(series)}
    for i, task in enumerate(tasks):
        for j, roi in enumerate(rois):
            ax = axes[i, j]
            sub = group[(group["task"] == task) & (group["roi"] == roi)]
            for (model, cond), line in sub.groupby(["model", "condition"], sort=True):
                line = line.sort_values("layer")
                label = f"{model} / {cond}"
                ax.errorbar(line["layer"], line["mean"], yerr=line["sem"].fillna(0), marker="o",
                            ms=3, capsize=2, color=colors[label], label=label)
            ax.axhline(0, color="0.6", lw=0.6)
            ax.set_title(f"{roi} ({task})")
            ax.set_xlabel("layer")
            if j == 0:
                ax.set_ylabel(value_label)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5), frameon=False,
               bbox_to_anchor=(0.5, 1.0 + 0.06 / len(tasks)))
    fig.tight_layout()
    save_figure(fig, paths, dpi)


def plot_encoding_maps(
    maps: Mapping[str, Sequence[PathLike]],
    *,
    paths: Sequence[PathLike],
    title: str = "",
    dpi: int = 120,
) -> None:
    """Draw the subject-average held-out r map of each model/condition on the MNI brain.

    Parameters
    ----------
    maps : mapping of str to sequence of path-like or image
        Panel label -> per-subject 3D r maps (NIfTI files or images, same grid) to average.
    paths : sequence of path-like
        Output files, one per format.
    """
    from nilearn import image, plotting

    plt = _pyplot()
    fig, axes = plt.subplots(len(maps), 1, figsize=(8, 1.6 * len(maps)), squeeze=False)
    vmax = 0.0
    means = {}
    for label, files in maps.items():
        means[label] = image.mean_img(
            [f if hasattr(f, "get_fdata") else str(f) for f in files], copy_header=True
        )
        vmax = max(vmax, float(np.nanmax(np.abs(means[label].get_fdata()), initial=0.0)))  # excluded units are NaN
    for ax, (label, img) in zip(axes[:, 0], means.items()):
        plotting.plot_stat_map(img, display_mode="z", cut_coords=(-10, 0, 10, 20, 40), axes=ax,
                               title=label, vmax=max(vmax, 1e-6), colorbar=True, annotate=False,
                               draw_cross=False, threshold=0.05)
    if title:
        fig.suptitle(title)
    save_figure(fig, paths, dpi)


def plot_rdms(
    brain: Mapping[str, np.ndarray],
    models: Mapping[str, np.ndarray],
    *,
    paths: Sequence[PathLike],
    dpi: int = 120,
) -> None:
    """Show group-average brain RDMs (one per ROI) above model RDMs (one per model/condition).

    Parameters
    ----------
    brain, models : mapping of str to ndarray of shape (n_pairs,)
        Condensed RDMs, all over the same stimuli in the same order.
    paths : sequence of path-like
        Output files, one per format.
    """
    from scipy.spatial.distance import squareform
    from scipy.stats import rankdata

    plt = _pyplot()
    rows = [("brain", brain), ("model", models)]
    ncol = max(len(brain), len(models))
    fig, axes = plt.subplots(2, ncol, figsize=(2.2 * ncol, 4.6), squeeze=False)
    for i, (kind, rdms) in enumerate(rows):
        for j in range(ncol):
            ax = axes[i, j]
            ax.axis("off")
            if j >= len(rdms):
                continue
            label, rdm = list(rdms.items())[j]
            ranks = squareform(rankdata(rdm) / len(rdm))
            ax.imshow(ranks, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"{kind}: {label}", fontsize=7)
    fig.suptitle("RDMs (rank-transformed dissimilarity)")
    save_figure(fig, paths, dpi)
