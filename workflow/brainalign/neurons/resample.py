"""Bootstrap contrast of two architectures: the share of 'unified' voxels (paper 001).

Paper 001's last finding: CLIP's separate towers drive modality-specific voxels while
METER's cross-modal layers drive unified ones. Per network, a voxel is *unified* when a
cross-modal unit predicts it, or both a vision and a text unit do
(:func:`~brainalign.neurons.analyses.architecture_shares`); the statistic is the share
of unified voxels of model A minus that of model B.

Its uncertainty comes from a block bootstrap of the held-out samples, stratified by outer
fold and shared by both models (:func:`brainalign.contrasts.bootstrap.fold_strata` and
:func:`~brainalign.contrasts.bootstrap.draw_resamples`; blocks of ``block_length``
samples within groups, single samples for patterns). Each fold's fit is kept: every
resample re-weights the test samples (how often each was drawn), recomputes every pair's
held-out r from weighted test cross-products (one GEMM pass over the test data per
resample and model, as one permutation of :func:`~brainalign.neurons.mapping.map_units`
costs) and re-applies the original significance rule: for ``maxstat`` the resampled score
is compared with the same permutation maxima (exact), for ``fdr_by`` with the smallest
significant score of the original map (an approximation: BY's threshold is not refitted).
As in the contrasts stage, the fits are not redone, so the bootstrap sees the variance of
the test samples but not that of the fits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..contrasts.bootstrap import draw_resamples, fold_strata
from ._blocks import _delayed, _fold_scores, _fold_x, _fold_y, _group_x_stats, _group_y_stats, _scaled, _Workspace
from ._checks import check_matrix, check_positive_int
from ._labels import MODALITIES, network_codes
from .mapping import UnitVoxelMap, _Layout
from .significance import maxstat_pvalues

__all__ = ["ModelUnits", "architecture_contrast"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ModelUnits:
    """One side of the contrast: a model's units, their modality and their map.

    Attributes
    ----------
    units : array of shape (n_samples, n_units)
        The unit activations ``result`` was computed from (not atoms).
    unit_modality : array of shape (n_units,)
        ``"vision"``, ``"text"`` or ``"cross"`` per unit.
    result : UnitVoxelMap
        :func:`~brainalign.neurons.mapping.map_units` of ``units`` on the same targets.
    """

    units: np.ndarray
    unit_modality: np.ndarray
    result: UnitVoxelMap


def architecture_contrast(
    a: ModelUnits,
    b: ModelUnits,
    targets: np.ndarray,
    groups: np.ndarray,
    voxel_network: np.ndarray,
    network_names: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    unit_batch: int = 256,
    voxel_batch: int = 2048,
) -> pd.DataFrame:
    """Bootstrap test of the share of unified voxels, model ``a`` minus model ``b``, per network.

    Parameters
    ----------
    a, b : ModelUnits
        E.g. a cross-modal model (BridgeTower) and a two-tower model (CLIP).
    targets : array of shape (n_samples, n_voxels)
        The responses both maps were computed on.
    groups : array of shape (n_samples,)
        Their CV groups (as given to ``map_units``).
    voxel_network : array of shape (n_voxels,)
        Network code (or name) of every voxel.
    network_names : sequence of str
    n_boot : int
        Bootstrap resamples (shared by both models).
    seed : int
        Seed of the resamples.
    ci : float
        Level of the percentile interval.
    unit_batch, voxel_batch : int
        Block sizes, as in ``map_units``.

    Returns
    -------
    DataFrame
        One row per network, then ``"all"`` (every labelled voxel): ``network``,
        ``n_voxels``, ``share_a``, ``share_b`` (observed shares of unified voxels),
        ``difference`` (a - b), ``ci_low``, ``ci_high`` (percentile interval of the
        resampled difference), ``p`` (two-sided bootstrap p,
        ``min(1, 2 (1 + #{diff* <= 0 or >= 0, the smaller}) / (1 + n_boot))``), ``n_boot``.
    """
    targets = check_matrix(targets, "targets")
    n_boot = check_positive_int(n_boot, "n_boot")
    layout = _Layout(np.asarray(groups))
    codes = network_codes(voxel_network, network_names)
    counts = _resample_counts(layout, a.result.meta, n_boot, seed)
    names = [*network_names, "all"]
    shares = {}
    for side, model in (("a", a), ("b", b)):
        flags = _resampled_flags(model, targets, layout, counts, unit_batch, voxel_batch)
        observed = _observed_flags(model)
        shares[side] = (_unified(observed[None], codes, len(names)), _unified(flags, codes, len(names)))
    return _contrast_table(shares, names, codes, ci, n_boot)


def _resample_counts(layout: _Layout, meta: dict, n_boot: int, seed: int) -> np.ndarray:
    """How often each (group-sorted) sample is drawn in each resample: (n_boot, n_samples)."""
    block = int(meta.get("block_length", 1))
    strata = fold_strata(layout.codes, "timeseries", layout.codes, block_size=block)
    drawn = draw_resamples(strata, n_boot, seed)
    counts = np.zeros((n_boot, layout.codes.size), dtype=np.float32)
    counts[:, drawn.rows] = drawn.counts
    return counts


def _observed_flags(model: ModelUnits) -> np.ndarray:
    """(n_modalities, n_voxels) bool: voxels predicted by a significant unit of each modality."""
    modality = np.asarray(model.unit_modality).astype(str)
    significant = np.asarray(model.result.significant, dtype=bool)
    return np.stack([significant[modality == m].any(axis=0) for m in MODALITIES])


def _unified(flags: np.ndarray, codes: np.ndarray, n_names: int) -> np.ndarray:
    """Share of unified voxels (n_sets, n_networks + 1) from flags (n_sets, n_modalities, n_voxels)."""
    vision, text, cross = (flags[:, i] for i in range(len(MODALITIES)))
    unified = (vision & text) | cross
    out = np.full((flags.shape[0], n_names), np.nan)
    for i in range(n_names):
        cols = codes >= 0 if i == n_names - 1 else codes == i
        if cols.any():
            out[:, i] = unified[:, cols].mean(axis=1)
    return out


def _contrast_table(shares, names, codes, ci, n_boot) -> pd.DataFrame:
    (obs_a, boot_a), (obs_b, boot_b) = shares["a"], shares["b"]
    diff = boot_a - boot_b
    low, high = np.nanpercentile(diff, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    below = (1 + np.sum(diff <= 0, axis=0)) / (1 + n_boot)
    above = (1 + np.sum(diff >= 0, axis=0)) / (1 + n_boot)
    n_voxels = [int(np.sum(codes == i)) for i in range(len(names) - 1)] + [int(np.sum(codes >= 0))]
    return pd.DataFrame(dict(
        network=names, n_voxels=n_voxels, share_a=obs_a[0], share_b=obs_b[0],
        difference=obs_a[0] - obs_b[0], ci_low=low, ci_high=high,
        p=np.minimum(1.0, 2 * np.minimum(below, above)), n_boot=n_boot,
    ))  # fmt: skip


def _resampled_flags(model, targets, layout, counts, unit_batch, voxel_batch) -> np.ndarray:
    """(n_boot, n_modalities, n_voxels) bool: the observed flags recomputed on every resample."""
    meta = model.result.meta
    if meta.get("atoms") is not None:
        raise ValueError(
            "architecture_contrast needs maps of units, not atoms (each fold has its own "
            "dictionary); got a map with atoms. Map the units with atoms=None"
        )
    units = check_matrix(model.units, "units")[layout.order]
    modality = np.asarray(model.unit_modality).astype(str)
    rule = _SignificanceRule(model.result)
    flags = np.zeros((counts.shape[0], len(MODALITIES), targets.shape[1]), dtype=bool)
    for start in range(0, units.shape[1], unit_batch):
        rows = slice(start, start + unit_batch)
        batch = _Batch(units[:, rows], layout, meta["delays"], meta["ridge"])
        for v0 in range(0, targets.shape[1], voxel_batch):
            cols = slice(v0, v0 + voxel_batch)
            y = _scaled(targets[:, cols][layout.order])
            for i, score in enumerate(batch.resampled_scores(y, counts)):
                significant = rule(score)
                for m, name in enumerate(MODALITIES):
                    flags[i, m, cols] |= significant[modality[rows] == name].any(axis=0)
    return flags


class _SignificanceRule:
    """The original map's decision applied to resampled scores."""

    def __init__(self, result: UnitVoxelMap):
        self.alpha = float(result.meta["alpha"])
        self.max_null = np.asarray(result.meta["max_null"])
        self.maxstat = result.correction == "maxstat"
        scores = np.asarray(result.score)[np.asarray(result.significant, dtype=bool)]
        self.floor = float(scores.min()) if scores.size else np.inf

    def __call__(self, score: np.ndarray) -> np.ndarray:
        if self.maxstat:
            return (maxstat_pvalues(score, self.max_null) < self.alpha) & (score > 0)
        return score >= self.floor


class _Batch:
    """One unit batch: its training fits per fold, re-scored on weighted test samples."""

    def __init__(self, units, layout, delays, ridge):
        self.layout, self.n_delays = layout, len(delays)
        self.x = _delayed(units, layout, delays)
        stats = _group_x_stats(self.x, layout, self.n_delays)
        self.fx = [_fold_x(stats, layout, k, ridge) for k in range(len(layout.slices))]

    def resampled_scores(self, y, counts):
        """Yield the fold-mean held-out r (u, v) of every resample."""
        slices = self.layout.slices
        parts = [self.x[s].T @ y[s] for s in slices]
        total = np.add.reduce(parts)
        ystats = _group_y_stats(y, self.layout)
        fy = [_fold_y(ystats, self.layout, k) for k in range(len(slices))]
        ws = _Workspace(self.fx[0].a_test.shape[0], self.n_delays, y.shape[1])
        score = np.empty((self.fx[0].a_test.shape[0], y.shape[1]), np.float32)
        for weights in counts:
            score.fill(0.0)
            for k, s in enumerate(slices):
                S_test, fx, fy_k = self._weighted(k, s, y, weights[s], fy[k])
                score += _fold_scores((total, parts[k]), S_test, fx, fy_k, ws)
            yield score / len(slices)

    def _weighted(self, k, s, y, c, fy):
        """Test-side statistics of fold ``k`` with sample weights ``c``."""
        x, yk = self.x[s], y[s]
        n = float(c.sum())
        S_test = x.T @ (yk * c[:, None])
        block = x.astype(np.float64).reshape(x.shape[0], -1, self.n_delays)
        sums = np.einsum("t,tuj->uj", c, block)
        gram = np.einsum("t,tuj,tul->ujl", c, block, block)
        mean = sums / n
        Q = gram - n * mean[:, :, None] * mean[:, None, :]
        test_sd = np.sqrt(np.maximum(np.diagonal(Q, axis1=1, axis2=2), 0.0) / n)
        fx = self.fx[k]._replace(
            a_test=mean.astype(np.float32), Q=Q.astype(np.float32), test_constant=np.any(test_sd <= 1e-6, axis=1)
        )
        sum_y = c @ yk.astype(np.float64)
        ss = c @ np.square(yk, dtype=np.float64) - sum_y**2 / n
        ss = np.where(ss > 1e-12 * n, ss, 0.0)
        return S_test, fx, fy._replace(sum_test=sum_y.astype(np.float32), ss_test=ss.astype(np.float32))
