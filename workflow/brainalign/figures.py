"""Figures: how every figure is saved, encoding layer profiles, RDM panels.

Every figure is saved in each requested format (300 dpi PNG, SVG or PDF with text kept as
text) with fixed metadata, so the same results give the same bytes, and next to it a
``<figure>.tsv`` holds the numbers it plots. Brain maps are in :mod:`brainalign.figures_maps`,
the encoding bar charts in :mod:`brainalign.figures_encoding`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import io

__all__ = [
    "DPI",
    "save_figure",
    "table_path",
    "one_sided_p",
    "greater_p",
    "layer_profile_table",
    "plot_layer_profiles",
    "fit_marks",
    "colourbar_ticks",
    "plot_rdms",
    "plot_encoding_maps",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: Raster resolution of every figure unless the config says otherwise (journals ask 300).
DPI = 300
#: Text stays text in vector files (SVG: no glyph paths; PDF: TrueType, Type 42); fixed ids.
RC = {
    "svg.hashsalt": "brainalign",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "font.size": 8,
    "figure.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
#: No date, no software version: the same figure gives the same bytes.
METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(RC)
    return plt


def table_path(path: PathLike) -> Path:
    """The data table of a figure file: ``results/figures/x.png`` -> ``results/figures/x.tsv``."""
    path = Path(path)
    return path.with_name(path.name.rsplit(".", 1)[0] + ".tsv")


def save_figure(fig: Any, paths: Sequence[PathLike], dpi: int = DPI,
                table: pd.DataFrame | None = None) -> None:
    """Save ``fig`` to every path (format from the suffix), deterministically and atomically.

    Parameters
    ----------
    fig : matplotlib Figure
    paths : sequence of path-like
        Output files, one per format (``png``, ``svg``, ``pdf``).
    dpi : int
        Resolution of raster output (and of raster parts of vector files).
    table : DataFrame, optional
        The plotted numbers, written to :func:`table_path` of the first path.
    """
    plt = _pyplot()
    for path in paths:
        fmt = Path(path).suffix.lstrip(".")
        if fmt not in METADATA:
            raise ValueError(f"figure '{path}' must end in .png, .svg or .pdf; got '.{fmt}'. "
                             "Edit config 'figures.formats'.")
        with io.atomic_write(path) as tmp, plt.rc_context(RC):
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=METADATA[fmt], bbox_inches="tight")
    if table is not None and len(paths):
        io.write_table(table.reset_index(drop=True), table_path(paths[0]))
    plt.close(fig)


def one_sided_p(t: Any, p: Any, alternative: Any = "two-sided") -> np.ndarray:
    """One-sided p (alternative: mean > 0) from a t statistic and its p-value, whose
    ``alternative`` (per row or one for all) is ``"two-sided"`` or already ``"greater"``."""
    t, p = np.asarray(t, dtype=float), np.asarray(p, dtype=float)
    alternative = np.broadcast_to(np.asarray(alternative, dtype=object), p.shape)
    converted = np.where(t > 0, p / 2, 1 - p / 2)
    return np.where(alternative == "greater", p, converted)


def greater_p(table: pd.DataFrame) -> np.ndarray:
    """One-sided p (mean > 0) of a group table's rows: ``p`` as it is where the table's
    ``alternative`` says ``greater``, converted from two-sided otherwise (older tables)."""
    alternative = table["alternative"].to_numpy(object) if "alternative" in table else "two-sided"
    return one_sided_p(table["t"], table["p"], alternative)


def _bh_by(table: pd.DataFrame, p: np.ndarray, by: Sequence[str]) -> np.ndarray:
    """Benjamini-Hochberg q of ``p`` within each group of ``by`` (NaN p stays NaN)."""
    from .encoding.stats import fdr_bh

    q = np.full(len(table), np.nan)
    for _, rows in table.reset_index(drop=True).groupby(list(by), sort=False):
        idx = rows.index.to_numpy()
        finite = idx[np.isfinite(p[idx])]
        if len(finite):
            q[finite] = fdr_bh(p[finite])
    return q


def _ceilings(subjects: pd.DataFrame | None) -> pd.DataFrame:
    """Per task and ROI, the noise ceiling in r units: mean and SEM over subjects of
    sqrt(explainable variance) (``mean_ceiling`` of the encoding tables)."""
    columns = ["task", "roi", "ceiling_low", "ceiling_high"]
    if subjects is None or "mean_ceiling" not in subjects or not subjects["mean_ceiling"].notna().any():
        return pd.DataFrame(columns=columns)
    rows = subjects.drop_duplicates(["subject", "task", "roi"]).copy()
    rows["c"] = np.sqrt(rows["mean_ceiling"].clip(lower=0))
    agg = rows.groupby(["task", "roi"])["c"].agg(["mean", "sem"]).reset_index()
    sem = agg["sem"].fillna(0)
    return agg.assign(ceiling_low=agg["mean"] - sem, ceiling_high=agg["mean"] + sem)[columns]


def layer_profile_table(group: pd.DataFrame, subjects: pd.DataFrame | None = None, *,
                        families: Mapping[str, str] | None = None,
                        n_layers: Mapping[str, int] | None = None, relative_depth: bool = False,
                        alpha: float = 0.05) -> pd.DataFrame:
    """The numbers a layer-profile figure plots, one row per task x ROI x model x condition x layer.

    Parameters
    ----------
    group : DataFrame
        ``encoding_group``: ``task``, ``roi``, ``model``, ``condition``, ``layer``, ``mean``,
        ``sem``, ``t``, ``p`` of the one-sample t-test across subjects (``alternative``:
        ``greater`` or ``two-sided``, see :func:`greater_p`).
    subjects : DataFrame, optional
        ``encoding_subjects`` (``mean_ceiling``) for the noise-ceiling band.
    families : mapping of model -> family name, optional
    n_layers : mapping of model -> number of layers, optional
        Depth denominators; default each model's deepest analysed layer.
    relative_depth : bool
        x = layer / n_layers (models of different depth share an axis) instead of the layer.
    alpha : float
        FDR level: ``significant`` is q <= alpha, q being Benjamini-Hochberg over the layers
        of each task x ROI x model x condition of the one-sided p (mean r > 0).

    Returns
    -------
    DataFrame
        The input columns plus ``family``, ``x``, ``p_one_sided``, ``q``, ``significant``,
        ``ceiling_low``, ``ceiling_high``.
    """
    table = group.copy()
    if "task" not in table:
        table["task"] = "concepts"
    table["family"] = [dict(families or {}).get(m, "other") for m in table["model"]]
    deepest = table.groupby("model")["layer"].transform("max").clip(lower=1)
    if n_layers:
        deepest = table["model"].map(dict(n_layers)).fillna(deepest)
    table["x"] = table["layer"] / deepest if relative_depth else table["layer"].astype(float)
    table["p_one_sided"] = greater_p(table)
    table["q"] = _bh_by(table, table["p_one_sided"].to_numpy(), ["task", "roi", "model", "condition"])
    table["significant"] = table["q"] <= alpha
    table = table.merge(_ceilings(subjects), on=["task", "roi"], how="left")
    return table.sort_values(["task", "roi", "family", "model", "condition", "layer"], kind="stable")


def series_colours(plt: Any, table: pd.DataFrame) -> dict[tuple[str, str, str], Any]:
    """One colour per (family, model, condition): a colour map per family, shades within it,
    so lines of one family read as a group."""
    maps = ["Blues", "Oranges", "Greens", "Purples", "Reds", "Greys"]
    keys = sorted(set(zip(table["family"], table["model"], table["condition"])))
    families = list(dict.fromkeys(k[0] for k in keys))
    colours = {}
    for i, family in enumerate(families):
        members = [k for k in keys if k[0] == family]
        shades = np.linspace(0.85, 0.45, len(members)) if len(members) > 1 else [0.7]
        cmap = plt.get_cmap(maps[i % len(maps)])
        colours.update({k: cmap(s) for k, s in zip(members, shades)})
    return colours


def _profile_legend(fig: Any, colours: Mapping, alpha: float, ceiling: bool) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=c, marker="o", ms=4, label=f"{f}: {m} / {c_}")
               for (f, m, c_), c in colours.items()]
    handles += [
        Line2D([], [], color="0.3", marker="o", ls="", ms=4, label=f"filled: q \u2264 {alpha:g}"),
        Line2D([], [], color="0.3", marker="o", ls="", ms=4, mfc="white", label="open: n.s."),
        Line2D([], [], color="0.3", marker="|", ls="", ms=8, label="bar: SEM across subjects"),
    ]
    if ceiling:
        handles.append(Patch(facecolor="0.88", edgecolor="0.6", ls="--",
                             label="noise ceiling, \u221a explainable variance (mean \u00b1 SEM)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4),
               frameon=False, fontsize=7)


def plot_layer_profiles(
    group: pd.DataFrame,
    *,
    value_label: str,
    paths: Sequence[PathLike],
    dpi: int = DPI,
    subjects: pd.DataFrame | None = None,
    families: Mapping[str, str] | None = None,
    n_layers: Mapping[str, int] | None = None,
    relative_depth: bool = False,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Score against layer (or relative depth), one panel per task x ROI, one line per model and
    condition coloured by model family, the noise-ceiling band, FDR-significant layers filled.

    Parameters are those of :func:`layer_profile_table`, plus ``value_label`` (y axis label,
    with units) and ``paths`` (output files, one per format). Returns the plotted table (also
    written next to the figure).
    """
    plt = _pyplot()
    table = layer_profile_table(group, subjects, families=families, n_layers=n_layers,
                                relative_depth=relative_depth, alpha=alpha)
    tasks, rois = list(dict.fromkeys(table["task"])), list(dict.fromkeys(group["roi"]))
    fig, axes = plt.subplots(len(tasks), len(rois), figsize=(2.6 * len(rois) + 0.6, 2.1 * len(tasks) + 1.2),
                             squeeze=False, sharey="row", sharex=True, layout="constrained")
    colours = series_colours(plt, table)
    for (i, task), (j, roi) in ((a, b) for a in enumerate(tasks) for b in enumerate(rois)):
        ax, sub = axes[i, j], table[(table["task"] == task) & (table["roi"] == roi)]
        if len(sub) and sub["ceiling_high"].notna().any():
            low, high = sub["ceiling_low"].iloc[0], sub["ceiling_high"].iloc[0]
            ax.axhspan(low, high, color="0.88", lw=0, zorder=0)
            ax.axhline((low + high) / 2, color="0.6", lw=0.8, ls="--", zorder=0)
        for key, line in sub.groupby(["family", "model", "condition"], sort=True):
            c = colours[key]
            ax.errorbar(line["x"], line["mean"], yerr=line["sem"].fillna(0), color=c, lw=1, capsize=2)
            ax.scatter(line["x"], line["mean"], s=16, zorder=3, edgecolors=[c],
                       facecolors=[c if s else "white" for s in line["significant"]])
        ax.axhline(0, color="0.6", lw=0.6)
        ax.set_title(f"{roi} ({task})", fontsize=8)
        if i == len(tasks) - 1:
            ax.set_xlabel("relative depth (layer / n layers)" if relative_depth else "layer (index)")
    fig.supylabel(value_label, fontsize=8)  # once for all rows: long labels cannot collide
    fig.suptitle(f"Filled: one-sided t-test across subjects (mean > 0), BH-FDR across layers, "
                 f"q \u2264 {alpha:g}", fontsize=8)
    _profile_legend(fig, colours, alpha, table["ceiling_high"].notna().any())
    save_figure(fig, paths, dpi, table=table)
    return table


def colourbar_ticks(vmax: float, threshold: float | None = None, min_gap: float = 0.15) -> list[float]:
    """Ticks of a symmetric colour bar (-vmax..vmax): the limits, and +-threshold when no two
    ticks come closer than ``min_gap`` of the half range (labels never overprint); else 0."""
    ticks = [-vmax, 0.0, vmax]
    if threshold and min_gap * vmax <= threshold <= (1 - min_gap) * vmax:
        ticks = [-vmax, -threshold, threshold, vmax]
    return ticks


# ----------------------------------------------------------------------------- marks
# heights in points: gap, star line, bracket pitch (tick + label), tick, free space at the top
_GAP, _STAR, _PITCH, _TICK, _HEADROOM = 2.0, 11.0, 13.0, 3.0, 4.0


def _marks_height(stars: Sequence[str], pairs: Sequence[Any]) -> float:
    return _GAP + (_STAR + _GAP if any(stars) else 0.0) + _PITCH * len(pairs) + _HEADROOM


def fit_marks(panels: Sequence[tuple[Any, Sequence[float], Sequence[float], Sequence[str], Sequence[Any]]],
              low: float | None = None) -> None:
    """Stars above bars and brackets above the stars, laid out in points so that no mark
    hides another, whatever the data range; sets the (shared) y limits.

    Call after the layout is final (``fig.tight_layout()``).

    Parameters
    ----------
    panels : sequence of (ax, xs, tops, stars, pairs)
        Per axes: bar positions, bar tops (error bar included; data units), a text per bar
        (``""``: none) and the brackets, each ``(i, j, label)`` between bars ``i`` and ``j``.
    low : float, optional
        Bottom of the y axis; default min(0, the axes' current bottom).
    """
    rows = []
    for ax, _, tops, stars, pairs in panels:
        h = ax.get_position().height * ax.figure.get_figheight() * 72
        finite = np.nan_to_num(np.asarray(tops, float), nan=0.0, posinf=0.0, neginf=0.0)
        high = max(float(np.max(finite, initial=0.0)), 0.0)
        if np.isfinite(ax.dataLim.y1):  # bands (noise ceiling) and error bars stay in view
            high = max(high, float(ax.dataLim.y1))
        rows.append((h, high, min(_marks_height(stars, pairs) / h, 0.8)))
    heights = [h for h, _, _ in rows]
    # an axes of NaN bars (nothing scored) autoscales to NaN limits: start from 0 there
    lows = [ax.get_ylim()[0] for ax, *_ in panels]
    bottom = min(min(0.0, y) for y in lows if np.isfinite(y)) if low is None and any(
        np.isfinite(lows)) else (0.0 if low is None else low)
    span = max((high - bottom) / (1 - share) for _, high, share in rows)
    span = span if np.isfinite(span) and span > 0 else 1.0
    for (ax, xs, tops, stars, pairs), h in zip(panels, heights):
        ax.set_ylim(bottom, bottom + span)
        _draw_marks(ax, xs, tops, stars, pairs, span / h)


def _draw_marks(ax: Any, xs: Sequence[float], tops: Sequence[float], stars: Sequence[str],
                pairs: Sequence[Any], d: float) -> None:
    tops = np.nan_to_num(np.asarray(tops, float))
    for x, top, star in zip(xs, tops, stars):
        if star:
            ax.text(x, max(top, 0) + _GAP * d, star, ha="center", va="bottom", fontsize=9)
    level = max(float(tops.max(initial=0.0)), 0.0) + (_GAP + (_STAR + _GAP if any(stars) else 0)) * d
    for i, j, label in sorted(pairs, key=lambda p: abs(p[1] - p[0])):
        a, b = xs[i], xs[j]
        y = level + _TICK * d
        ax.plot([a, a, b, b], [level, y, y, level], color="k", lw=0.6)
        ax.text((a + b) / 2, y - 1.5 * d, label, ha="center", va="bottom", fontsize=7)
        level += _PITCH * d


# ----------------------------------------------------------------------------- RDMs
def category_order(stimuli: Sequence[str], categories: Mapping[str, str] | None) -> list[int]:
    """Indices putting ``stimuli`` in category order (stable within a category); identity
    without categories. Categories keep the order of their first appearance."""
    if not categories:
        return list(range(len(stimuli)))
    cats = [str(categories.get(s, "")) for s in stimuli]
    rank = {c: i for i, c in enumerate(dict.fromkeys(cats))}
    return sorted(range(len(stimuli)), key=lambda i: (rank[cats[i]], i))


def _rdm_panel(ax: Any, matrix: np.ndarray, labels: Sequence[str] | None,
               cats: Sequence[str] | None) -> Any:
    image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if labels is not None:
        ticks = np.arange(len(labels))
        ax.set_xticks(ticks, labels, rotation=90, fontsize=4)
        ax.set_yticks(ticks, labels, fontsize=4)
    if cats:
        edges = [i for i in range(1, len(cats)) if cats[i] != cats[i - 1]]
        for e in edges:
            ax.axhline(e - 0.5, color="white", lw=0.6)
            ax.axvline(e - 0.5, color="white", lw=0.6)
    return image


def plot_rdms(
    brain: Mapping[str, np.ndarray],
    models: Mapping[str, np.ndarray],
    *,
    paths: Sequence[PathLike],
    dpi: int = DPI,
    stimuli: Sequence[str] | None = None,
    categories: Mapping[str, str] | None = None,
    max_labels: int = 40,
) -> pd.DataFrame:
    """Show group-average brain RDMs (one per ROI) above model RDMs (one per model/condition).

    Parameters
    ----------
    brain, models : mapping of str to ndarray of shape (n_pairs,)
        Condensed RDMs, all over ``stimuli`` in the same order.
    paths : sequence of path-like
        Output files, one per format.
    stimuli : sequence of str, optional
        The concepts, labelled on the axes when there are at most ``max_labels``.
    categories : mapping of concept -> category, optional
        Concepts are ordered by category, with white lines between categories.

    Returns
    -------
    DataFrame
        The plotted numbers (``row``, ``panel``, ``concept_a``, ``concept_b``, ``rank``: the
        dissimilarity's rank scaled to (0, 1]), also written next to the figure.
    """
    from scipy.spatial.distance import squareform
    from scipy.stats import rankdata

    plt = _pyplot()
    n = squareform(next(iter({**brain, **models}.values()))).shape[0]
    names = list(stimuli) if stimuli is not None else [str(i) for i in range(n)]
    order = category_order(names, categories)
    shown = [names[i] for i in order]
    labels = shown if stimuli is not None and n <= max_labels else None
    cats = [str(categories.get(s, "")) for s in shown] if categories else None
    ncol = max(len(brain), len(models))
    side = 2.0 if labels is None else 3.2
    fig, axes = plt.subplots(2, ncol, figsize=(side * ncol + 0.8, 2 * side + 0.6), squeeze=False,
                             layout="constrained")
    rows, image = [], None
    for i, (kind, rdms) in enumerate([("brain", brain), ("model", models)]):
        for j in range(ncol):
            ax = axes[i, j]
            if j >= len(rdms):
                ax.axis("off")
                continue
            label, rdm = list(rdms.items())[j]
            ranks = squareform(rankdata(rdm) / len(rdm))[np.ix_(order, order)]
            image = _rdm_panel(ax, ranks, labels, cats)
            ax.set_title(f"{kind}: {label}", fontsize=7)
            a, b = np.triu_indices(n, 1)
            rows.append(pd.DataFrame({"row": kind, "panel": label, "concept_a": np.array(shown)[a],
                                      "concept_b": np.array(shown)[b], "rank": ranks[a, b]}))
    bar = fig.colorbar(image, ax=axes, shrink=0.6, ticks=[0, 0.5, 1])
    bar.set_label("dissimilarity (rank / n pairs)")
    order_note = "; concepts ordered by category" if categories else ""
    fig.suptitle(f"RDMs of {n} concepts (rank-transformed dissimilarity{order_note})", fontsize=9)
    table = pd.concat(rows, ignore_index=True)
    save_figure(fig, paths, dpi, table=table)
    return table


def plot_encoding_maps(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """See :func:`brainalign.figures_maps.plot_encoding_maps` (kept here for old imports)."""
    from .figures_maps import plot_encoding_maps as plot

    return plot(*args, **kwargs)
