"""What the unit -> voxel maps say: networks, redundancy, polarity, architecture (paper 001).

Every function reads a :class:`~brainalign.neurons.mapping.UnitVoxelMap` (its
``significant`` mask, ``score`` and ``sign``) plus labels of the units (layer, modality)
and of the voxels (network), and returns a tidy pandas DataFrame whose columns are listed
in its docstring. Voxel networks are integer codes into ``network_names`` (or the names
themselves); a code outside ``range(len(network_names))`` (e.g. -1) is no network.
The bootstrap contrast between two architectures, :func:`architecture_contrast`, lives in
:mod:`.resample` and is re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._labels import MODALITIES, network_codes
from .mapping import UnitVoxelMap
from .resample import ModelUnits, architecture_contrast

__all__ = [
    "MODALITIES",
    "ModelUnits",
    "architecture_contrast",
    "architecture_shares",
    "count_null_pmf",
    "jaccard_pairs",
    "modality_flags",
    "network_codes",
    "network_shares",
    "polarity",
    "redundancy",
    "unit_polarity",
]

logger = logging.getLogger(__name__)

def network_shares(
    result: UnitVoxelMap,
    unit_layer: np.ndarray,
    voxel_network: np.ndarray,
    network_names: Sequence[str],
) -> pd.DataFrame:
    """Per layer and network, the share of units that significantly predict the network.

    Parameters
    ----------
    result : UnitVoxelMap
    unit_layer : array of shape (n_units,)
        Layer of every row of ``result``.
    voxel_network : array of shape (n_voxels,)
        Network code (or name) of every voxel.
    network_names : sequence of str

    Returns
    -------
    DataFrame
        One row per layer x network: ``layer``, ``network``, ``n_units`` (units of the
        layer), ``n_voxels`` (voxels of the network), ``n_significant_units`` (units with
        at least one significant voxel in the network), ``share``
        (n_significant_units / n_units), ``mean_best_score`` (mean over the layer's
        units of their best held-out r within the network).
    """
    codes = network_codes(voxel_network, network_names)
    unit_layer = np.asarray(unit_layer)
    rows = []
    for i, name in enumerate(network_names):
        cols = np.flatnonzero(codes == i)
        hits = np.asarray(result.significant[:, cols]).any(axis=1) if cols.size else None
        best = np.asarray(result.score[:, cols]).max(axis=1) if cols.size else None
        for layer in np.unique(unit_layer):
            members = unit_layer == layer
            n_hit = int(hits[members].sum()) if cols.size else 0
            rows.append(dict(
                layer=layer, network=name, n_units=int(members.sum()), n_voxels=int(cols.size),
                n_significant_units=n_hit, share=n_hit / max(int(members.sum()), 1),
                mean_best_score=float(best[members].mean()) if cols.size else np.nan,
            ))  # fmt: skip
    return pd.DataFrame(rows)


def count_null_pmf(units_per_set: np.ndarray, n_voxels: int) -> np.ndarray:
    """Distribution of a voxel's number of predicting units when each set is placed at random.

    Unit ``u``'s ``k_u`` significant voxels are placed uniformly at random, independently
    of the other units, so a given voxel is hit by unit ``u`` with probability
    ``k_u / n_voxels``: the count is Poisson-binomial, computed exactly (one convolution
    per unit).

    Parameters
    ----------
    units_per_set : array of shape (n_units,)
        Number of significant voxels of every unit.
    n_voxels : int

    Returns
    -------
    pmf : array of shape (n_units + 1,), float64
        ``pmf[c]`` = P(a voxel is predicted by exactly c units).
    """
    probabilities = np.asarray(units_per_set, dtype=np.float64) / n_voxels
    pmf = np.zeros(probabilities.size + 1)
    pmf[0] = 1.0
    for i, q in enumerate(probabilities[probabilities > 0]):
        pmf[1 : i + 2] = pmf[1 : i + 2] * (1 - q) + pmf[: i + 1] * q
        pmf[0] *= 1 - q
    return pmf


def jaccard_pairs(significant: np.ndarray) -> np.ndarray:
    """Jaccard overlap of the significant voxel sets of every pair of (non-empty) units.

    Parameters
    ----------
    significant : array of shape (n_units, n_voxels), bool
        Rows with no significant voxel are left out.

    Returns
    -------
    jaccard : array of shape (n_pairs,), float64
        Upper triangle (i < j) of the units' Jaccard matrix, row-major.
    """
    sets = np.asarray(significant, dtype=bool)
    sets = sets[sets.any(axis=1)]
    sizes = sets.sum(axis=1).astype(np.float64)
    dense = sets.astype(np.float32)
    inter = (dense @ dense.T).astype(np.float64)  # exact: counts < 2**24
    i, j = np.triu_indices(sets.shape[0], k=1)
    return inter[i, j] / (sizes[i] + sizes[j] - inter[i, j])


def redundancy(result: UnitVoxelMap, *, n_null: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Redundancy: voxels predicted by many units, and units whose voxel sets overlap.

    Both are tested against a null that keeps every unit's number of significant voxels
    and places them at random (uniformly, independently per unit).

    Parameters
    ----------
    result : UnitVoxelMap
    n_null : int
        Random placements for the Jaccard null.
    seed : int

    Returns
    -------
    per_voxel : DataFrame
        ``voxel``, ``n_predicting_units``, ``null_mean`` (expected count under the null),
        ``p`` (P(null count >= observed), exact Poisson-binomial tail). ``attrs["null_pmf"]``
        holds the null distribution of the count (:func:`count_null_pmf`).
    pairs : DataFrame
        One row: ``n_units`` (units with >= 1 significant voxel), ``n_pairs``,
        ``observed`` (mean Jaccard over their pairs), ``null_mean``, ``null_sd`` (of the
        mean Jaccard over ``n_null`` placements), ``p`` (``(1 + #{null >= observed}) /
        (1 + n_null)``). ``attrs["jaccard"]`` holds the observed pairs' Jaccards and
        ``attrs["null_jaccard"]`` those of the first placement (for histograms).
    """
    significant = np.asarray(result.significant, dtype=bool)
    n_voxels = significant.shape[1]
    set_sizes = significant.sum(axis=1)
    counts = significant.sum(axis=0)
    pmf = count_null_pmf(set_sizes, n_voxels)
    tail = np.cumsum(pmf[::-1])[::-1]
    per_voxel = pd.DataFrame(dict(
        voxel=np.arange(n_voxels), n_predicting_units=counts,
        null_mean=set_sizes.sum() / n_voxels, p=np.minimum(tail[counts], 1.0),
    ))  # fmt: skip
    per_voxel.attrs["null_pmf"] = pmf
    observed = jaccard_pairs(significant)
    rng = np.random.default_rng(seed)
    active = set_sizes[set_sizes > 0]
    null, first = [], None
    for _ in range(n_null if observed.size else 0):
        placed = jaccard_pairs(_random_sets(active, n_voxels, rng))
        first = placed if first is None else first
        null.append(placed.mean())
    null = np.asarray(null)
    mean = float(observed.mean()) if observed.size else np.nan
    pairs = pd.DataFrame([dict(
        n_units=int(active.size), n_pairs=int(observed.size), observed=mean,
        null_mean=float(null.mean()) if null.size else np.nan,
        null_sd=float(null.std(ddof=1)) if null.size > 1 else np.nan,
        p=float((1 + np.sum(null >= mean - 1e-12)) / (1 + null.size)) if null.size else np.nan,
    )])  # fmt: skip
    pairs.attrs.update(jaccard=observed, null_jaccard=first)
    return per_voxel, pairs


def _random_sets(sizes: np.ndarray, n_voxels: int, rng: np.random.Generator) -> np.ndarray:
    """A bool matrix whose row ``u`` has ``sizes[u]`` True entries at uniform random voxels."""
    keys = rng.random((sizes.size, n_voxels))
    ranks = np.argsort(keys, axis=1)
    sets = np.zeros((sizes.size, n_voxels), dtype=bool)
    keep = np.arange(n_voxels)[None, :] < sizes[:, None]
    np.put_along_axis(sets, ranks, keep, axis=1)
    return sets


def unit_polarity(result: UnitVoxelMap) -> pd.DataFrame:
    """Per unit, its positively and negatively related significant voxels.

    Returns
    -------
    DataFrame
        ``unit``, ``n_positive``, ``n_negative`` (significant voxels whose summed FIR
        weight is > 0 / < 0), ``mean_score_positive``, ``mean_score_negative`` (mean
        held-out r over those voxels; NaN when none).
    """
    significant = np.asarray(result.significant, dtype=bool)
    positive = significant & (np.asarray(result.sign) > 0)
    negative = significant & ~positive
    score = np.asarray(result.score, dtype=np.float64)
    n_pos, n_neg = positive.sum(axis=1), negative.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(dict(
            unit=np.arange(significant.shape[0]), n_positive=n_pos, n_negative=n_neg,
            mean_score_positive=np.where(positive, score, 0).sum(axis=1) / n_pos,
            mean_score_negative=np.where(negative, score, 0).sum(axis=1) / n_neg,
        ))  # fmt: skip


def polarity(result: UnitVoxelMap, unit_layer: np.ndarray, n_layers: int) -> pd.DataFrame:
    """Layer profiles of units with positively and negatively related voxels, and their mirror.

    Parameters
    ----------
    result : UnitVoxelMap
    unit_layer : array of shape (n_units,)
        Layer index (0 to n_layers - 1) of every row of ``result``.
    n_layers : int

    Returns
    -------
    DataFrame
        One row per layer: ``layer``, ``n_units``, ``share_positive`` / ``share_negative``
        (share of the layer's units with >= 1 positively / negatively related significant
        voxel), ``mean_score_positive`` / ``mean_score_negative`` (mean |held-out r| over
        the layer's positive / negative significant pairs), ``mirror_r`` (NaN). Then a
        row with ``layer`` = ``"mirror"``: ``mirror_r`` = Pearson r across layers between
        ``share_positive`` and ``share_negative`` (negative: mirrored trends) and
        ``mirror_r_score`` the same between the mean scores (layers with NaN left out).
    """
    per_unit = unit_polarity(result)
    unit_layer = np.asarray(unit_layer)
    rows = []
    for layer in range(int(n_layers)):
        units = per_unit[unit_layer == layer]
        pos, neg = units["n_positive"].to_numpy(), units["n_negative"].to_numpy()
        rows.append(dict(
            layer=layer, n_units=len(units),
            share_positive=float(np.mean(pos > 0)) if len(units) else np.nan,
            share_negative=float(np.mean(neg > 0)) if len(units) else np.nan,
            mean_score_positive=_weighted(units["mean_score_positive"], pos),
            mean_score_negative=_weighted(units["mean_score_negative"], neg),
            mirror_r=np.nan, mirror_r_score=np.nan,
        ))  # fmt: skip
    table = pd.DataFrame(rows)
    mirror = dict(
        layer="mirror", mirror_r=_profile_r(table, "share"), mirror_r_score=_profile_r(table, "mean_score")
    )
    return pd.concat([table.astype({"layer": object}), pd.DataFrame([mirror])], ignore_index=True)


def _weighted(means: pd.Series, counts: np.ndarray) -> float:
    """Mean over pairs from per-unit means and pair counts (NaN when no pair)."""
    total = counts.sum()
    return float(np.nansum(means.to_numpy() * counts) / total) if total else np.nan


def _profile_r(table: pd.DataFrame, stem: str) -> float:
    a, b = table[f"{stem}_positive"].to_numpy(float), table[f"{stem}_negative"].to_numpy(float)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.std(a[keep]) == 0 or np.std(b[keep]) == 0:
        return np.nan
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def modality_flags(significant: np.ndarray, unit_modality: np.ndarray) -> dict[str, np.ndarray]:
    """Per voxel, whether any significant unit of each modality predicts it (``MODALITIES`` keys)."""
    unit_modality = np.asarray(unit_modality).astype(str)
    significant = np.asarray(significant, dtype=bool)
    return {m: significant[unit_modality == m].any(axis=0) for m in MODALITIES}


def architecture_shares(
    result: UnitVoxelMap,
    unit_modality: np.ndarray,
    voxel_network: np.ndarray,
    network_names: Sequence[str],
) -> pd.DataFrame:
    """Per network, the share of voxels predicted by vision units, text units, both, or cross units.

    Parameters
    ----------
    result : UnitVoxelMap
    unit_modality : array of shape (n_units,)
        ``"vision"``, ``"text"`` or ``"cross"`` per row of ``result`` (others are ignored).
    voxel_network : array of shape (n_voxels,)
    network_names : sequence of str

    Returns
    -------
    DataFrame
        One row per network: ``network``, ``n_voxels``, ``share_vision_only``,
        ``share_text_only``, ``share_both`` (a vision and a text unit: a two-tower model's
        joint voxels), ``share_cross`` (a cross-modal unit), ``share_unified``
        (``both`` or ``cross``: the statistic compared between architectures).
    """
    codes = network_codes(voxel_network, network_names)
    flags = modality_flags(result.significant, unit_modality)
    return _share_table(flags, codes, network_names)


def _share_table(flags: dict[str, np.ndarray], codes: np.ndarray, network_names) -> pd.DataFrame:
    vision, text, cross = (flags[m] for m in MODALITIES)
    kinds = dict(
        vision_only=vision & ~text, text_only=text & ~vision, both=vision & text,
        cross=cross, unified=(vision & text) | cross,
    )  # fmt: skip
    rows = []
    for i, name in enumerate(network_names):
        cols = codes == i
        n = int(cols.sum())
        row = dict(network=name, n_voxels=n)
        row.update({f"share_{k}": float(v[cols].mean()) if n else np.nan for k, v in kinds.items()})
        rows.append(row)
    return pd.DataFrame(rows)
