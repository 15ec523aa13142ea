"""Brain maps on the MNI template: group maps thresholded by FDR, slices and a glass brain.

Each row shows one map (a model / condition / layer, or a contrast) as axial slices with
their z coordinates and L/R marks, beside a glass brain (left, coronal and axial
projections); all rows share one colour scale and one colour bar. The threshold is stated
in the figure. Saved by :func:`brainalign.figures.save_figure` (same maps, same bytes) with
the shown voxels' numbers next to the figure.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .figures import DPI, _pyplot, colourbar_ticks, save_figure

__all__ = ["group_map", "plot_encoding_maps"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

# row height, slice-panel width, glass-brain width, title band, colour-bar band (inches)
_ROW_H, _SLICES_W, _GLASS_W, _TOP, _BAR_W = 1.7, 6.6, 3.6, 0.75, 0.9
_CUTS = (-10, 0, 10, 20, 40)


def _load(files: Sequence[Any]) -> list[Any]:
    """3D images: a single-volume 4D map (the contrasts' ``stat-delta`` maps) is squeezed."""
    from nilearn import image

    imgs = [image.load_img(f if hasattr(f, "get_fdata") else str(f)) for f in files]
    return [image.index_img(img, 0) if img.ndim == 4 and img.shape[3] == 1 else img
            for img in imgs]


def group_map(files: Sequence[Any], alpha: float | None = 0.05) -> tuple[Any, pd.DataFrame]:
    """Subject-average map, thresholded by a voxel-wise group test.

    With ``alpha``, each voxel finite in at least two subjects gets a one-sided one-sample
    t-test across subjects (mean > 0), Benjamini-Hochberg FDR over those voxels, and only
    voxels with q <= alpha keep their mean (others 0). Without ``alpha`` (maps already
    thresholded per subject, e.g. contrasts) every non-zero mean is kept.

    Parameters
    ----------
    files : sequence of path-like or 3D image, one per subject, same grid
    alpha : float or None

    Returns
    -------
    shown : 3D Nifti1Image
        The kept means, 0 elsewhere.
    table : DataFrame
        One row per kept voxel: ``i``, ``j``, ``k``, ``x``, ``y``, ``z`` (mm), ``value``
        (mean over subjects), ``q`` (NaN without ``alpha``), ``n_subjects``.
    """
    from nilearn import image
    from scipy import stats

    from .encoding.stats import fdr_bh

    imgs = _load(files)
    data = np.stack([np.asarray(img.get_fdata(), dtype=np.float64) for img in imgs])
    n = np.isfinite(data).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(data, axis=0) / np.maximum(n, 1), np.nan)
    q = np.full(mean.shape, np.nan)
    if alpha is None:
        keep = np.isfinite(mean) & (mean != 0)
    else:
        tested = n >= 2
        tested[tested] = np.nanstd(data[:, tested], axis=0) > 0  # constant voxels have no test
        if tested.any():
            p = stats.ttest_1samp(data[:, tested], 0.0, axis=0, nan_policy="omit", alternative="greater").pvalue
            q[tested] = fdr_bh(np.asarray(p, dtype=float))
        keep = np.nan_to_num(q, nan=1.0) <= alpha
    ijk = np.argwhere(keep)
    xyz = image.coord_transform(*ijk.T, imgs[0].affine) if len(ijk) else (np.array([]),) * 3
    table = pd.DataFrame({"i": ijk[:, 0], "j": ijk[:, 1], "k": ijk[:, 2], "x": xyz[0], "y": xyz[1],
                          "z": xyz[2], "value": mean[keep], "q": q[keep], "n_subjects": n[keep]})
    shown = image.new_img_like(imgs[0], np.where(keep, mean, 0.0), copy_header=True)
    return shown, table


def _draw_row(fig: Any, row: int, label: str, img: Any, style: Mapping[str, Any], height: float) -> None:
    from nilearn import plotting

    width = fig.get_figwidth()
    bottom = (height - _TOP - (row + 1) * _ROW_H) / height
    slices = fig.add_axes((0.02, bottom, _SLICES_W / width, (_ROW_H - 0.22) / height))
    glass = fig.add_axes(((_SLICES_W + 0.15) / width, bottom, _GLASS_W / width, (_ROW_H - 0.22) / height))
    with warnings.catch_warnings():  # a row with no voxel passing: nilearn warns "empty mask"
        warnings.filterwarnings("ignore", message="empty mask")
        displays = (
            plotting.plot_stat_map(img, display_mode="z", cut_coords=_CUTS, axes=slices, annotate=False,
                                   draw_cross=False, colorbar=False, black_bg=False, **style),
            plotting.plot_glass_brain(img, display_mode="lzr", axes=glass, annotate=False, colorbar=False,
                                      black_bg=False, plot_abs=False, **style),
        )
    for display in displays:
        display.annotate(left_right=True, positions=True, size=6)  # L/R marks, z in mm
    fig.text(0.02, bottom + (_ROW_H - 0.2) / height, label, fontsize=8, fontweight="bold", va="bottom")


def _colourbar(fig: Any, cmap: Any, vmax: float, threshold: float, value_label: str, height: float) -> None:
    """One shared colour bar; ticks at the limits and the threshold, never closer than 15% of
    the range (no overprinting); the hidden band marked grey."""
    import matplotlib as mpl

    width = fig.get_figwidth()
    span = min(2.0, height - _TOP - 0.2)
    cax = fig.add_axes(((_SLICES_W + _GLASS_W + 0.35) / width, (height - _TOP - span) / height,
                        0.12 / width, span / height))
    bar = fig.colorbar(mpl.cm.ScalarMappable(mpl.colors.Normalize(-vmax, vmax), cmap), cax=cax)
    ticks = colourbar_ticks(vmax, threshold)
    bar.set_ticks(ticks)
    bar.ax.yaxis.set_major_formatter(mpl.ticker.FormatStrFormatter("%.2f"))
    bar.ax.tick_params(labelsize=7, length=2)
    if threshold:
        bar.ax.axhspan(-threshold, threshold, color="0.8")
    bar.set_label(value_label, fontsize=8)


def plot_encoding_maps(
    maps: Mapping[str, Sequence[Any]],
    *,
    paths: Sequence[PathLike],
    title: str = "",
    dpi: int = DPI,
    alpha: float | None = 0.05,
    value_label: str = "held-out r (mean over subjects)",
) -> pd.DataFrame:
    """Draw the subject-average map of each model/condition (or contrast) on the MNI template,
    where the group test keeps it (:func:`group_map`).

    Parameters
    ----------
    maps : mapping of str to sequence of path-like or 3D image
        Row label -> per-subject 3D maps (same grid).
    paths : sequence of path-like
        Output files, one per format.
    title : str
        First line of the title; the second states the threshold.
    alpha : float or None
        FDR level of the group test; None: the maps are already thresholded.
    value_label : str
        Colour-bar label, with units.

    Returns
    -------
    DataFrame
        The shown voxels of every row (``map`` plus the columns of :func:`group_map`).
    """
    plt = _pyplot()

    shown = {label: group_map(files, alpha) for label, files in maps.items()}
    table = pd.concat([t.assign(map=label) for label, (_, t) in shown.items()], ignore_index=True)
    vmax = float(np.abs(table["value"]).max()) if len(table) else 1.0
    threshold = float(np.abs(table["value"]).min()) if len(table) else 0.0
    height = _TOP + len(shown) * _ROW_H + 0.1
    fig = plt.figure(figsize=(_SLICES_W + _GLASS_W + _BAR_W, height))
    cmap = plt.get_cmap("RdYlBu_r")  # no white end: the strongest voxels stay visible
    style = {"cmap": cmap, "vmax": vmax, "threshold": 0.999 * threshold if threshold else 1e-12,
             "symmetric_cbar": True}
    for row, (label, (img, t)) in enumerate(shown.items()):
        n = len(maps[label])
        note = f"{len(t)} voxels shown" if len(t) else (
            f"no voxel passes with {n} subjects (a group t-test over voxels needs more)")
        _draw_row(fig, row, f"{label}: {note}", img, style, height)
    _colourbar(fig, cmap, vmax, threshold, value_label, height)
    rule = ("voxels with q \u2264 %g (one-sided t-test across subjects, mean > 0; BH-FDR over "
            "voxels)" % alpha if alpha is not None else "significant voxels of each subject, averaged")
    shown_range = f"; shown |value| \u2265 {threshold:.3f}" if len(table) else "; no voxel passes"
    fig.text(0.5, 1 - 0.05 / height, title, ha="center", va="top", fontsize=9, fontweight="bold")
    fig.text(0.5, 1 - 0.3 / height, f"{rule}{shown_range}; MNI152 template, axial slices at z (mm)",
             ha="center", va="top", fontsize=7.5)
    logger.info("encoding maps: %d rows, %d voxels shown, threshold %.3g", len(shown), len(table), threshold)
    save_figure(fig, paths, dpi, table=table[["map", *[c for c in table if c != "map"]]])
    return table
