"""Intracranial figures: electrodes on a glass brain (nilearn ``plot_markers``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import io
from .figures import DPI, _pyplot, save_figure
from .pipeline import map_sidecar, parse_entities

__all__ = ["glass_markers", "tidy_rows", "electrode_map_table", "plot_electrode_maps"]

PathLike = str | os.PathLike


def glass_markers(ax, values: np.ndarray, coords: np.ndarray, *, sizes: np.ndarray | float = 20,
                  vmax: float, cmap: str = "RdBu_r", background: np.ndarray | None = None) -> None:
    """Markers at MNI ``coords`` (n, 3) coloured by ``values`` (n,) on a glass brain in ``ax``;
    ``background`` (m, 3): more sites drawn as small grey dots (e.g. the non-significant)."""
    from nilearn import plotting

    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values)
    sizes = np.broadcast_to(np.asarray(sizes, dtype=float), values.shape)[keep]
    coords = np.asarray(coords, dtype=float)[keep]
    if not keep.any():  # nothing to colour: an empty glass brain
        values, coords, sizes = np.zeros(1), np.zeros((1, 3)), np.zeros(1)
    display = plotting.plot_markers(values[keep] if keep.any() else values, coords,
                                    node_size=sizes, node_cmap=cmap, node_vmin=-vmax,
                                    node_vmax=vmax, display_mode="lzr", axes=ax, colorbar=True)
    if background is not None and len(background):
        display.add_markers(np.asarray(background, dtype=float), marker_color="0.65",
                            marker_size=5)


def tidy_rows(fig, axes, titles: Sequence[str], title: str = "") -> None:
    """Stack glass-brain rows, a title at the top left of each. Call it before drawing: nilearn
    places its display in the axes' box as it is when drawn."""
    height = fig.get_figheight()
    fig.subplots_adjust(top=1 - (0.5 if title else 0.25) / height, bottom=0.02, hspace=0.25)
    for ax, text in zip(axes, titles):
        box = ax.get_position()
        fig.text(box.x0, box.y1 + 0.05 / height, text, fontsize=9, va="bottom")
    if title:
        fig.suptitle(title, y=1 - 0.1 / height, fontsize=10)


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
                        dpi: int = DPI) -> None:
    """One glass brain per model / condition: every subject's electrodes coloured by the held-out
    r of their best time bin (a table of :func:`electrode_map_table`)."""
    plt = _pyplot()
    labels = sorted(table["label"].unique())
    fig, axes = plt.subplots(len(labels), 1, figsize=(9, 2.3 * len(labels)), squeeze=False)
    vmax = max(float(np.nanmax(np.abs(table["r"]), initial=0.0)), 1e-3)
    tidy_rows(fig, axes[:, 0], labels, title)
    for ax, label in zip(axes[:, 0], labels):
        rows = table[table["label"] == label]
        glass_markers(ax, rows["r"], rows[["x", "y", "z"]], sizes=18, vmax=vmax)
    save_figure(fig, paths, dpi, table=table)
