"""Figures of vertex maps on the inflated fsaverage5 surface.

One row per map (a model / condition / layer), lateral and medial views of the left and
right hemispheres over the sulcal depth, one shared colour bar. The meshes and sulcal depth
are the copies nilearn ships (no download). Every figure is saved by
:func:`brainalign.figures.save_figure` (same maps, same bytes).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import pandas as pd

from .figures import DPI, _pyplot, colourbar_ticks, save_figure

__all__ = ["plot_surface_maps", "FSAVERAGE5_VERTICES"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

FSAVERAGE5_VERTICES = 10242
# (hemisphere, nilearn hemi, view) of the four columns, left to right
_VIEWS = (
    ("L", "left", "lateral"),
    ("L", "left", "medial"),
    ("R", "right", "medial"),
    ("R", "right", "lateral"),
)
# panel width and height, gap between rows, title band, left margin (inches)
_PANEL_W, _PANEL_H, _ROW_GAP, _TOP, _LEFT = 1.5, 1.2, 0.05, 1.0, 0.1


def _fsaverage5() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Inflated fsaverage5 mesh and sulcal depth per hemisphere: (coords, faces, sulc)."""
    from nilearn import datasets

    inflated = datasets.load_fsaverage("fsaverage5")["inflated"]
    sulc = datasets.load_fsaverage_data(mesh="fsaverage5", data_type="sulcal").data
    return {
        hemi: (
            np.asarray(inflated.parts[part].coordinates, dtype=np.float64),
            np.asarray(inflated.parts[part].faces),
            _light_background(np.asarray(sulc.parts[part], dtype=np.float64)),
        )
        for hemi, part in (("L", "left"), ("R", "right"))
    }


def _light_background(sulc: np.ndarray) -> np.ndarray:
    """Sulcal depth mapped to light greys in [0.15, 0.55] (nilearn draws it with ``gray_r``)."""
    span = float(np.ptp(sulc)) or 1.0
    return 0.15 + 0.4 * (sulc - sulc.min()) / span


def _check_maps(maps: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """Per label, {"L": values, "R": values} as float arrays of fsaverage5 length."""
    if not maps:
        raise ValueError("plot_surface_maps needs at least one map; got none")
    checked = {}
    for label, pair in maps.items():
        left, right = (np.asarray(values, dtype=np.float64).ravel() for values in pair)
        if left.size != FSAVERAGE5_VERTICES or right.size != FSAVERAGE5_VERTICES:
            raise ValueError(
                f"surface map '{label}' has {left.size} left and {right.size} right values; "
                f"expected {FSAVERAGE5_VERTICES} per hemisphere (fsaverage5). Resample the "
                "maps to fsaverage5 (fMRIPrep --output-spaces fsaverage:den-10k)."
            )
        checked[label] = {"L": left, "R": right}
    return checked


def _colour_scale(
    maps: Mapping[str, Mapping[str, np.ndarray]], vmax: float | None, threshold: float | None, cmap: Any
) -> tuple[float, Any]:
    """Symmetric limit and the colour map with the sub-threshold band in grey (as nilearn)."""
    from matplotlib.colors import ListedColormap

    if vmax is None:
        values = [v for pair in maps.values() for v in pair.values() if np.isfinite(v).any()]
        vmax = max((np.nanmax(np.abs(v)) for v in values), default=0.0)
    vmax = float(vmax) if vmax and np.isfinite(vmax) and vmax > 0 else 1.0
    colours = cmap(np.linspace(0, 1, 256))
    if threshold:
        centres = np.linspace(-vmax, vmax, 256)
        colours[np.abs(centres) < threshold] = (0.5, 0.5, 0.5, 1.0)
    return vmax, ListedColormap(colours)


def _draw_row(
    fig: Any,
    row: int,
    label: str,
    values: Mapping[str, np.ndarray],
    meshes: Mapping[str, Any],
    style: Mapping[str, Any],
    height: float,
) -> None:
    """The four views of one map, with its label above them."""
    from nilearn import plotting

    width = fig.get_figwidth()
    bottom = height - _TOP - (row + 1) * (_PANEL_H + _ROW_GAP) + _ROW_GAP
    for col, (hemi, side, view) in enumerate(_VIEWS):
        box = ((_LEFT + col * _PANEL_W) / width, bottom / height, _PANEL_W / width, _PANEL_H / height)
        ax = fig.add_axes(box, projection="3d")
        coords, faces, sulc = meshes[hemi]
        plotting.plot_surf_stat_map(
            (coords, faces),
            values[hemi],
            bg_map=sulc,
            hemi=side,
            view=view,
            axes=ax,
            figure=fig,
            colorbar=False,
            **style,
        )
        ax.set_box_aspect(None, zoom=1.45)  # fills the panel; more clips the poles
        for collection in ax.collections:  # ~20k triangles: raster in svg/pdf, text stays vector
            collection.set_rasterized(True)
    fig.text(
        _LEFT / width,
        (bottom + _PANEL_H) / height,
        label,
        ha="left",
        va="bottom",
        fontsize=8,
        fontweight="bold",
    )


def _draw_headers(fig: Any, height: float) -> None:
    """'left hemisphere' / 'right hemisphere' over the column pairs, view names under them."""
    width = fig.get_figwidth()
    y = (height - 0.62) / height
    for k, text in enumerate(("L  left hemisphere", "R  right hemisphere")):
        x = (_LEFT + (2 * k + 1) * _PANEL_W) / width
        fig.text(x, y, text, ha="center", va="bottom", fontsize=8)
        half = 0.9 * _PANEL_W / width
        fig.add_artist(_line(fig, (x - half, x + half), y - 0.02 / height))
    for col, (_, _, view) in enumerate(_VIEWS):
        fig.text(
            (_LEFT + (col + 0.5) * _PANEL_W) / width,
            (height - 0.8) / height,
            view,
            ha="center",
            va="bottom",
            fontsize=7,
            color="0.35",
        )


def _line(fig: Any, xs: tuple[float, float], y: float) -> Any:
    from matplotlib.lines import Line2D

    return Line2D(xs, (y, y), transform=fig.transFigure, color="0.3", lw=0.6)


def _draw_colourbar(
    fig: Any, cmap: Any, vmax: float, threshold: float | None, value_label: str, height: float
) -> None:
    """One vertical colour bar beside the rows, the threshold marked."""
    import matplotlib as mpl

    width = fig.get_figwidth()
    rows = height - _TOP - 0.15
    span = min(2.2, rows)
    bottom = height - _TOP - (rows + span) / 2
    cax = fig.add_axes(((_LEFT + 4 * _PANEL_W + 0.2) / width, bottom / height, 0.12 / width, span / height))
    bar = fig.colorbar(mpl.cm.ScalarMappable(mpl.colors.Normalize(-vmax, vmax), cmap), cax=cax)
    bar.set_ticks(colourbar_ticks(vmax, threshold))  # never two labels on one another
    bar.ax.yaxis.set_major_formatter(mpl.ticker.FormatStrFormatter("%.2f"))
    bar.ax.tick_params(labelsize=7, length=2)
    bar.set_label(value_label, fontsize=8)
    bar.outline.set_linewidth(0.5)


def plot_surface_maps(
    maps: Mapping[str, tuple[np.ndarray, np.ndarray]],
    out_paths: Sequence[PathLike],
    *,
    threshold: float | None,
    title: str,
    cmap: str = "cold_hot",
    vmax: float | None = None,
    value_label: str = "held-out r",
    dpi: int = DPI,
) -> pd.DataFrame:
    """Draw vertex maps on the inflated fsaverage5 surface, one row per map.

    Each row shows the left hemisphere (lateral, medial) and the right (medial, lateral)
    over the sulcal depth; all rows share one symmetric colour scale. Vertices whose value
    is NaN (no unit there) or below ``threshold`` in absolute value show the sulcal depth.

    Parameters
    ----------
    maps : mapping of str to (ndarray of shape (10242,), ndarray of shape (10242,))
        Row label -> (left values, right values) on fsaverage5, e.g. from
        :func:`brainalign.datasets.surface.read_surface_map`.
    out_paths : sequence of path-like
        Output files, one per format (png, svg, pdf).
    threshold : float or None
        Hide |value| < threshold; stated in the title and marked grey on the colour bar.
    title : str
        First line of the title; the second states the threshold.
    cmap : str
        Matplotlib or nilearn colour map name.
    vmax : float, optional
        Colour scale limit (symmetric, -vmax..vmax); default the largest |value|.
    value_label : str
        Colour bar label, with units.
    dpi : int
        Resolution of raster outputs.

    Returns
    -------
    DataFrame
        The coloured vertices (``map``, ``hemi``, ``vertex``, ``value``), also written next to
        the figure.
    """
    plt = _pyplot()
    importlib.import_module("nilearn.plotting")  # registers nilearn's colour maps (cold_hot)

    checked = _check_maps(maps)
    vmax, colours = _colour_scale(checked, vmax, threshold, plt.get_cmap(cmap))
    meshes = _fsaverage5()
    height = _TOP + len(checked) * (_PANEL_H + _ROW_GAP) + 0.15
    fig = plt.figure(figsize=(_LEFT + 4 * _PANEL_W + 0.9, height))
    style = {"cmap": colours, "threshold": threshold, "vmin": -vmax, "vmax": vmax}
    for row, (label, values) in enumerate(checked.items()):
        _draw_row(fig, row, label, values, meshes, style, height)
    _draw_headers(fig, height)
    _draw_colourbar(fig, colours, vmax, threshold, value_label, height)
    shown = f"|{value_label}| \u2265 {threshold:g} shown" if threshold else "unthresholded"
    fig.text(0.5, (height - 0.05) / height, title, ha="center", va="top", fontsize=9, fontweight="bold")
    fig.text(
        0.5,
        (height - 0.25) / height,
        f"{shown}; inflated fsaverage5, sulcal depth in grey",
        ha="center",
        va="top",
        fontsize=7.5,
    )
    logger.info("surface maps: %d rows, |value| <= %.3g, threshold %s", len(checked), vmax, threshold)
    table = _shown(checked, threshold)
    save_figure(fig, out_paths, dpi, table=table)
    return table


def _shown(maps: Mapping[str, Mapping[str, np.ndarray]], threshold: float | None) -> pd.DataFrame:
    """The vertices a figure colours: finite, and |value| >= threshold."""
    rows = []
    for label, pair in maps.items():
        for hemi, values in pair.items():
            keep = np.isfinite(values) & (np.abs(values) >= (threshold or 0.0))
            rows.append(pd.DataFrame({"map": label, "hemi": hemi, "vertex": np.flatnonzero(keep),
                                      "value": values[keep]}))
    return pd.concat(rows, ignore_index=True)
