"""Single artificial units (or atoms) mapped to single voxels, with a family-wise permutation test.

For every unit ``u`` and voxel ``v`` the voxel is predicted from the unit's FIR-delayed
copies ``x_u(t - d)`` (one weight per delay) by a least-squares fit on the training
folds and scored by Pearson r on the held-out fold; the score is the mean r over
leave-one-group-out folds (the encoding stage's folds: :func:`brainalign.encoding.cv.outer_splits`,
delays made within groups by :func:`brainalign.encoding.delays.make_delays`).
Standardisation uses the training fold's mean and sd of every delayed unit column and
every voxel, so the weights are those of a standardised unit -> standardised voxel.

No loop runs over pairs. Samples are ordered by group; per unit batch and voxel batch,
the only products with the data are the cross-products ``S_g = X_g' Y_g`` of each group
``g`` (delayed units ``X``, voxels ``Y``, both centred and scaled once over all samples
in float64 before the float32 products: an affine change the per-fold standardisation
undoes exactly, kept for round-off only). A fold's training cross-product is
``sum_{g != k} S_g`` and its test one ``S_k``; with the groups' sums and the per-unit
``d x d`` Gram matrices (d = number of delays), the training-centred covariances, every
pair's weights (``w = (R_u + ridge I)^{-1} b_uv``: ``R_u`` the unit's d x d training
correlation matrix, ``b_uv`` its correlation with the voxel; one batched inverse per
unit, applied to all voxels at once) and the held-out r
(``cov(pred, y) = v' C_test``, ``var(pred) = v' Q_u v``) follow in elementwise passes.
One pass over the data per permutation thus serves every fold: the data products cost
``2 n_samples (n_units d) n_voxels`` flops per permutation.

``ridge`` (default 1e-3, on correlation matrices with unit diagonal) only keeps the d x d
systems invertible when delayed copies of a slow unit are nearly collinear; at 1e-3 the
weights differ from ordinary least squares by about 0.1% (tests compare with scikit-learn's
``Ridge(alpha=ridge * n_train)`` on the standardised columns).

Significance. The null permutes the targets' samples *within groups*: contiguous blocks of
``block_length`` samples (:data:`brainalign.encoding.stats.PERMUTATIONS` ``"timeseries"``,
the encoding stage's helper), or single samples for patterns (``delays=(0,)``,
``block_length=1``). Every fold is refitted on the permuted data (permuted training
cross-products), as the encoding stage's test does; the permuted targets are applied as
the inverse permutation of the delayed units' rows, which gives the same cross-products
with a smaller copy. Permutations within groups leave every group's sums and Gram matrices
unchanged. Corrections over the unit x voxel family: :mod:`.significance`.

Calibration (measured; tests/test_neurons_mapping.py repeats a smaller version): 300 null
datasets of 4 runs x 60 TRs, 8 AR(1) units x 15 AR(1) voxels (phi = 0.5, independent),
delays 1-3, 99 permutations, alpha 0.05. ``"maxstat"``: 7.0% of the datasets had a false
pair with blocks of 10 samples (block edges break the autocorrelation that the real data
keep, which narrows the null), 5.0% with blocks of 20, hence the default of 20.
``"fdr_by"``: no false pair in 100 such datasets (blocks of 20).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..encoding.cv import outer_splits
from ..encoding.stats import PERMUTATIONS
from ._blocks import _Run
from ._checks import check_block_length, check_delays_fit, check_positive_int, check_samples, lookup
from .dictionary import fold_atoms
from .significance import CORRECTIONS, by_adjust, maxstat_pvalues

__all__ = ["CORRECTIONS", "UnitVoxelMap", "map_units"]

logger = logging.getLogger(__name__)

#: Default permutation block (samples) for time series: blocks of 10 (the encoding test's
#: default) let 7% of AR(1) null datasets through the max statistic, 20 gave 5.0% (module doc).
DEFAULT_BLOCK = 20


@dataclass(frozen=True, eq=False)
class UnitVoxelMap:
    """Held-out unit -> voxel scores, FIR weights, signs and corrected significance.

    Attributes
    ----------
    score : array of shape (n_units, n_voxels), float32
        Held-out Pearson r of each voxel predicted from one unit's delayed copies,
        mean over the outer folds.
    sign : array of shape (n_units, n_voxels), int8
        +1 / -1: sign of the summed FIR weights (fold mean); +1 where the sum is 0.
    weights : array of shape (n_units, n_delays, n_voxels), float32
        Fold-mean FIR weights, standardised unit -> standardised voxel.
    p : array of shape (n_units, n_voxels), float32
        Corrected p over the whole unit x voxel family (see ``correction``).
    significant : array of shape (n_units, n_voxels), bool
        ``p < alpha`` and ``score > 0``.
    correction : str
        ``"maxstat"`` (FWER) or ``"fdr_by"`` (Benjamini-Yekutieli FDR).
    meta : dict
        ``delays``, ``folds`` (test group label per fold), ``n_permutations``,
        ``block_length``, ``seed``, ``alpha``, ``ridge``, ``atoms``, ``atom_match``
        (per fold and atom, or None), ``max_null`` (the permutation maxima),
        ``gemm_flops`` and ``timings`` (seconds: ``products``, ``scoring``, ``total``).
    """

    score: np.ndarray
    sign: np.ndarray
    weights: np.ndarray
    p: np.ndarray
    significant: np.ndarray
    correction: str
    meta: dict = field(default_factory=dict)


def map_units(
    units: np.ndarray,
    targets: np.ndarray,
    groups: np.ndarray,
    *,
    delays: Sequence[int] = (0,),
    alpha: float = 0.05,
    n_permutations: int = 200,
    block_length: int | None = None,
    correction: str = "maxstat",
    seed: int = 0,
    unit_batch: int = 256,
    voxel_batch: int = 2048,
    atoms: int | None = None,
    ridge: float = 1e-3,
    out_dir: str | os.PathLike | None = None,
    atom_params: dict | None = None,
) -> UnitVoxelMap:
    """Map every unit (or atom) to every voxel: held-out r, FIR weights, sign, corrected p.

    Parameters
    ----------
    units : array of shape (n_samples, n_units)
        Unit activations (aligned to TRs, events or concepts).
    targets : array of shape (n_samples, n_voxels)
        Brain responses (voxels, vertices or electrode bins).
    groups : array of shape (n_samples,)
        CV group of every sample (run, block of events, stimulus fold); one outer fold
        per group (leave-one-group-out). Time series: samples of a group in time order.
    delays : sequence of int
        FIR delays in samples, applied within groups; ``(0,)`` for patterns.
    alpha : float
        Level of the corrected test.
    n_permutations : int
        Permutations of the targets within groups (blocks of ``block_length`` samples;
        patterns: single samples, exchanged within their stimulus fold, which leaves every
        fold's statistics of the targets unchanged).
    block_length : int or None
        Permutation block in samples; None: 1 (sample shuffle) when ``delays == (0,)``,
        else 20 (capped at the shortest group).
    correction : {"maxstat", "fdr_by"}
        Family-wise correction (:mod:`brainalign.neurons.significance`).
    seed : int
        Seed of the permutations and of the dictionary.
    unit_batch, voxel_batch : int
        Units and voxels per block (memory: about ``(n_groups + 6) * unit_batch *
        n_delays * voxel_batch * 4`` bytes per block, plus the outputs).
    atoms : int or None
        Replace the units by this many sparse dictionary atoms learnt on each training
        fold (:func:`brainalign.neurons.dictionary.fold_atoms`); rows are then atoms.
    ridge : float
        Ridge added to the d x d unit correlation matrices (conditioning only).
    out_dir : path or None
        Write the result arrays as ``.npy`` memory maps there (``score.npy``,
        ``sign.npy``, ``weights.npy``, ``p.npy``, ``significant.npy``) instead of RAM.
    atom_params : dict or None
        Further ``MiniBatchDictionaryLearning`` arguments.

    Returns
    -------
    UnitVoxelMap
    """
    started = time.perf_counter()
    units, targets, groups = check_samples(units, targets, groups)
    lookup(dict.fromkeys(CORRECTIONS), correction, "correction")
    if not 0 < alpha < 1:
        raise ValueError(f"'alpha' must be in (0, 1); got {alpha!r}")
    n_perm = check_positive_int(n_permutations, "n_permutations")
    layout = _Layout(groups)
    delays = check_delays_fit(delays, layout.sizes)
    block = _block_length(block_length, delays, layout.sizes)
    sources, match = _sources(units[layout.order], layout, atoms, seed, atom_params or {})
    inverse = _inverse_orders(layout, block, n_perm, seed)
    out = _allocate(sources[0].shape[1], len(delays), targets.shape[1], out_dir)
    run = _Run(layout, delays, ridge, inverse, correction, out)
    ub = check_positive_int(unit_batch, "unit_batch")
    vb = check_positive_int(voxel_batch, "voxel_batch")
    for start in range(0, sources[0].shape[1], ub):
        run.unit_batch(sources, slice(start, start + ub), targets, vb)
        logger.info("mapped units %d-%d of %d", start, min(start + ub, sources[0].shape[1]), sources[0].shape[1])
    _finish(out, run, correction, alpha)
    meta = dict(
        delays=list(delays), folds=layout.labels.tolist(), n_permutations=n_perm,
        block_length=block, seed=seed, alpha=alpha, ridge=ridge, atoms=atoms,
        atom_match=None if match is None else match.tolist(), max_null=run.max_null.tolist(),
        gemm_flops=run.flops, timings=dict(run.timings, total=time.perf_counter() - started),
    )  # fmt: skip
    logger.info(
        "unit -> voxel map: %d of %d pairs significant (%s, alpha %.3g, %d permutations)",
        int(np.count_nonzero(out["significant"])), out["score"].size, correction, alpha, n_perm,
    )  # fmt: skip
    return UnitVoxelMap(correction=correction, meta=meta, **out)


class _Layout:
    """Samples sorted by group (stable): every group is one contiguous slice."""

    def __init__(self, groups: np.ndarray):
        self.order = np.argsort(groups, kind="stable")
        self.labels, codes = np.unique(groups[self.order], return_inverse=True)
        self.codes = codes.astype(np.int64)
        self.sizes = np.bincount(self.codes)
        self.bounds = np.concatenate([[0], np.cumsum(self.sizes)])
        self.slices = [slice(a, b) for a, b in zip(self.bounds[:-1], self.bounds[1:])]
        self.splits = outer_splits("timeseries", self.codes)  # leave one group out


def _block_length(block_length, delays, sizes) -> int:
    if block_length is None:
        block_length = 1 if tuple(delays) == (0,) else DEFAULT_BLOCK
        block_length = min(block_length, int(sizes.min()))
    return check_block_length(block_length, sizes)


def _sources(units, layout, atoms, seed, params) -> tuple[list[np.ndarray], np.ndarray | None]:
    """The unit matrix shared by all folds, or one atom matrix per fold."""
    if atoms is None:
        return [units], None
    codes, match = fold_atoms(units, layout.splits, atoms, seed=seed, **params)
    return codes, match


def _inverse_orders(layout: _Layout, block: int, n_perm: int, seed: int) -> np.ndarray:
    """Inverse of each block permutation of the targets, as row orders of the units."""
    rng = np.random.default_rng(seed)
    permute = PERMUTATIONS["timeseries"]
    return np.stack([np.argsort(permute(layout.codes, block, rng)) for _ in range(n_perm)])


def _allocate(n_rows: int, n_delays: int, n_voxels: int, out_dir) -> dict[str, np.ndarray]:
    shapes = dict(
        score=((n_rows, n_voxels), np.float32), sign=((n_rows, n_voxels), np.int8),
        weights=((n_rows, n_delays, n_voxels), np.float32), p=((n_rows, n_voxels), np.float32),
        significant=((n_rows, n_voxels), np.bool_),
    )  # fmt: skip
    if out_dir is None:
        return {name: np.zeros(shape, dtype) for name, (shape, dtype) in shapes.items()}
    os.makedirs(out_dir, exist_ok=True)
    return {
        name: np.lib.format.open_memmap(os.path.join(out_dir, f"{name}.npy"), "w+", dtype, shape)
        for name, (shape, dtype) in shapes.items()
    }


def _finish(out: dict, run: _Run, correction: str, alpha: float) -> None:
    """Corrected p over the family, then the significance mask (in row chunks)."""
    if correction == "maxstat":
        maxstat_pvalues(out["score"], run.max_null, out=out["p"])
    else:
        by_adjust(out["p"], out=out["p"])
    step = max(1, (1 << 22) // out["score"].shape[1])
    for start in range(0, out["score"].shape[0], step):
        rows = slice(start, start + step)
        out["significant"][rows] = (out["p"][rows] < alpha) & (out["score"][rows] > 0)
