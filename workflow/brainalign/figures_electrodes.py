"""Intracranial figures: electrodes on a glass brain (nilearn ``plot_markers``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import io
from .figures import _pyplot, save_figure
from .pipeline import map_sidecar, parse_entities

__all__ = ["glass_markers", "electrode_map_table", "plot_electrode_maps"]

PathLike = str | os.PathLike


def glass_markers(ax, values: np.ndarray, coords: np.ndarray, *, sizes: np.ndarray | float = 20,
                  vmax: float, cmap: str = "RdBu_r", title: str = "") -> None:
    """Markers at MNI ``coords`` (n, 3) coloured by ``values`` (n,) on a glass brain in ``ax``."""
    from nilearn import plotting

    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    sizes = np.broadcast_to(np.asarray(sizes, dtype=float), values.shape)[keep]
    plotting.plot_markers(values[keep], np.asarray(coords, dtype=float)[keep], node_size=sizes,
                          node_cmap=cmap, node_vmin=-vmax, node_vmax=vmax, display_mode="lzr",
                          axes=ax, colorbar=True, title=title)


def electrode_map_table(paths: Sequence[PathLike], deepest_only: bool = True) -> pd.DataFrame:
    """Per subject, model / condition / layer and electrode: the best bin's held-out r.

    Each path is an electrode map TSV of the encoding rule (one column per layer, named in
    its JSON sidecar); ``deepest_only`` keeps each model's deepest analysed layer.
    """
    rows = []
    for path in paths:
        entities = parse_entities(path)
        layers = io.read_json(map_sidecar(path))["layers"]
        table = io.read_table(path)
        for layer in [max(layers)] if deepest_only else layers:
            best = table.groupby("channel", sort=False).agg(
                r=(f"layer-{int(layer):02d}", "max"), x=("x", "first"), y=("y", "first"),
                z=("z", "first"), region=("region", "first"))
            label = f"{entities['model']} / {entities['cond']} / layer {int(layer)}"
            rows.append(best.reset_index().assign(subject=entities["sub"], label=label))
    return pd.concat(rows, ignore_index=True)


def plot_electrode_maps(table: pd.DataFrame, paths: Sequence[PathLike], *, title: str = "",
                        dpi: int = 120) -> None:
    """One glass brain per model / condition: every subject's electrodes coloured by the held-out
    r of their best time bin (a table of :func:`electrode_map_table`)."""
    plt = _pyplot()
    labels = sorted(table["label"].unique())
    fig, axes = plt.subplots(len(labels), 1, figsize=(9, 2.6 * len(labels)), squeeze=False)
    vmax = max(float(np.nanmax(np.abs(table["r"]), initial=0.0)), 1e-3)
    for ax, label in zip(axes[:, 0], labels):
        rows = table[table["label"] == label]
        glass_markers(ax, rows["r"], rows[["x", "y", "z"]], sizes=18, vmax=vmax, title=label)
    if title:
        fig.suptitle(title)
    save_figure(fig, paths, dpi)
