"""Figures of the neuron-level analyses (:mod:`brainalign.neurons`): network x layer heat maps
of the share of units predicting each network, redundancy against its null, polarity layer
curves, and brain maps of the number of units predicting each voxel.

Every function takes the pooled tables of :func:`brainalign.neurons.steps.summarize_neurons`
(one row per subject x task x model x condition x ...); values are averaged over subjects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .figures import _pyplot, save_figure

__all__ = [
    "plot_network_shares",
    "plot_redundancy",
    "plot_polarity",
    "plot_predicting_maps",
    "plot_neurons",
]

PathLike = str | os.PathLike


def _models(table: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(table["model"], table["condition"], strict=True)))


def _of(table: pd.DataFrame, model: str, condition: str) -> pd.DataFrame:
    return table[(table["model"] == model) & (table["condition"] == condition)]


def plot_network_shares(networks: pd.DataFrame, paths: Sequence[PathLike], dpi: int = 300) -> None:
    """Heat maps (one per model x condition) of the share of units significantly predicting
    each network (rows) at each layer (columns), mean over subjects and tasks.

    Parameters
    ----------
    networks : DataFrame
        Pooled ``network_shares`` tables (model, condition, layer, network, share).
    paths : output files, one per format
    """
    plt = _pyplot()
    models = _models(networks)
    fig, axes = plt.subplots(1, len(models), figsize=(3.2 + 2.6 * len(models), 3.4), squeeze=False)
    vmax = max(float(networks["share"].max()), 1e-6)
    for ax, (model, condition) in zip(axes[0], models):
        grid = _of(networks, model, condition).pivot_table(
            index="network", columns="layer", values="share", aggfunc="mean", sort=False)
        image = ax.imshow(grid.to_numpy(float), cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [str(i) for i in grid.index] if ax is axes[0, 0] else [])
        ax.set_xlabel("layer")
        ax.set_title(f"{model} ({condition})", fontsize=9)
        for (i, j), value in np.ndenumerate(grid.to_numpy(float)):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value < 0.6 * vmax else "black")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.9, label="share of units predicting")
    fig.suptitle("Units significantly predicting each network", fontsize=10)
    save_figure(fig, paths, dpi)


def plot_redundancy(countnull: pd.DataFrame, overlap: pd.DataFrame, paths: Sequence[PathLike],
                    dpi: int = 300) -> None:
    """Histograms (one per model x condition) of the number of units predicting each voxel,
    observed against the null of the same per-unit counts placed at random (mean over
    subjects); the title gives the mean Jaccard overlap of unit pairs against its null.

    Parameters
    ----------
    countnull : DataFrame
        Pooled count tables (model, condition, count, share_observed, null_pmf).
    overlap : DataFrame
        Pooled unit-pair summaries (model, condition, observed, null_mean, p).
    paths : output files, one per format
    """
    plt = _pyplot()
    models = _models(countnull)
    fig, axes = plt.subplots(1, len(models), figsize=(1.0 + 3.6 * len(models), 3.2), squeeze=False)
    for ax, (model, condition) in zip(axes[0], models):
        table = _of(countnull, model, condition).groupby("count")[["share_observed", "null_pmf"]].mean()
        seen = table[(table["share_observed"] > 0) | (table["null_pmf"] > 1e-4)]
        last = int(seen.index.max()) if len(seen) else 1
        table = table.loc[:last]
        ax.bar(table.index, table["share_observed"], width=0.9, alpha=0.7, label="observed")
        ax.step(table.index, table["null_pmf"], where="mid", color="black", lw=1.2,
                label="null (counts placed at random)")
        ax.set_yscale("log")
        floor = table["share_observed"][table["share_observed"] > 0].min()
        ax.set_ylim(bottom=max(float(floor) / 5 if np.isfinite(floor) else 1e-4, 1e-6), top=1.5)
        ax.set_xlabel("units predicting a voxel")
        ax.set_ylabel("share of voxels")
        pairs = _of(overlap, model, condition)
        text = ""
        if len(pairs):
            text = (f"\npair Jaccard {pairs['observed'].mean():.3f} vs null "
                    f"{pairs['null_mean'].mean():.3f} (max p {pairs['p'].max():.3g})")
        ax.set_title(f"{model} ({condition}){text}", fontsize=8)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    save_figure(fig, paths, dpi)


def plot_polarity(polarity: pd.DataFrame, paths: Sequence[PathLike], dpi: int = 300) -> None:
    """Layer curves of the share of units with positively and with negatively related
    voxels, per model x condition (mean over subjects); the legend gives the correlation of
    the two profiles (the ``mirror`` row).

    Parameters
    ----------
    polarity : DataFrame
        Pooled polarity tables (model, condition, layer, share_positive, share_negative,
        and a ``mirror`` row with ``mirror_r``).
    paths : output files, one per format
    """
    plt = _pyplot()
    models = _models(polarity)
    fig, axes = plt.subplots(1, len(models), figsize=(1.0 + 3.6 * len(models), 3.2), squeeze=False)
    for ax, (model, condition) in zip(axes[0], models):
        table = _of(polarity, model, condition)
        layers = table[table["layer"].astype(str) != "mirror"].copy()
        layers["layer"] = layers["layer"].astype(int)
        curve = layers.groupby("layer")[["share_positive", "share_negative"]].mean()
        ax.plot(curve.index, curve["share_positive"], "o-", color="tab:red", label="positive")
        ax.plot(curve.index, curve["share_negative"], "s-", color="tab:blue", label="negative")
        mirror = table[table["layer"].astype(str) == "mirror"]
        r = mirror["mirror_r"].mean() if len(mirror) else np.nan
        r_text = f"{r:.2f}" if np.isfinite(r) else "n/a (fewer than 3 layers)"
        ax.set_title(f"{model} ({condition})\npositive vs negative profile r = {r_text}", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("layer")
        ax.set_ylabel("share of units")
        ax.set_xticks(curve.index)
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    save_figure(fig, paths, dpi)


def _mean_image(paths: Sequence[PathLike]):
    import nibabel as nib

    images = [nib.load(str(p)) for p in paths]
    data = np.mean([np.nan_to_num(np.asarray(img.dataobj, dtype=np.float32)) for img in images],
                   axis=0)
    return nib.Nifti1Image(data.reshape(images[0].shape[:3]), images[0].affine)


def plot_predicting_maps(maps: Sequence[PathLike], paths: Sequence[PathLike], dpi: int = 300) -> None:
    """Glass brains (one row per model x condition) of the number of units significantly
    predicting each voxel, mean over subjects (volumes; surfaces and electrodes are listed
    in the tables instead and get an empty panel with a note).

    Parameters
    ----------
    maps : paths of the mapping jobs' ``npredicting`` maps (BIDS-like names with model and
        cond entities)
    paths : output files, one per format
    """
    from nilearn import plotting

    from .pipeline import parse_entities

    plt = _pyplot()
    groups: dict[str, list[PathLike]] = {}
    for path in maps:
        ents = parse_entities(os.path.basename(str(path)))
        groups.setdefault(f"{ents.get('model')} ({ents.get('cond')})", []).append(path)
    fig, axes = plt.subplots(len(groups), 2, figsize=(8.4, 2.6 * len(groups)), squeeze=False,
                             gridspec_kw={"width_ratios": [40, 1]})
    for (ax, cax), (label, files) in zip(axes, groups.items()):
        if not str(files[0]).endswith(".nii.gz"):
            ax.set_axis_off()
            cax.set_axis_off()
            ax.set_title(f"{label}: not a volume, see the tables", fontsize=9)
            continue
        image = _mean_image(files)
        vmax = max(float(np.asarray(image.dataobj).max()), 1.0)
        plotting.plot_glass_brain(image, axes=ax, colorbar=False, cmap="viridis", vmin=0, vmax=vmax,
                                  threshold=0.5, plot_abs=False)
        scale = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, vmax))
        fig.colorbar(scale, cax=cax, label="units")
        ax.set_title(f"{label}: units significantly predicting each voxel (mean over subjects)",
                     fontsize=9)
    save_figure(fig, paths, dpi)


def plot_neurons(tables: Mapping[str, pd.DataFrame], maps: Sequence[PathLike],
                 outputs: Mapping[str, Sequence[PathLike]], dpi: int = 300) -> None:
    """Every neuron-level figure: ``networks``, ``redundancy``, ``polarity`` and ``brain``
    (keys of ``outputs``) from the pooled ``tables`` and the per-job maps."""
    plot_network_shares(tables["networks"], outputs["networks"], dpi)
    plot_redundancy(tables["countnull"], tables["overlap"], outputs["redundancy"], dpi)
    plot_polarity(tables["polarity"], outputs["polarity"], dpi)
    plot_predicting_maps(maps, outputs["brain"], dpi)
