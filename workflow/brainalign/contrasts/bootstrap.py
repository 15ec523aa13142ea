"""Paired bootstrap of held-out encoding scores: two models, the same resamples, one fit each.

Both sides of a contrast are fitted once, with the same outer folds; each outer fold's
ridge is solved once for all alphas and units (one eigendecomposition, as the encoding
solver does). The bootstrap never refits: it resamples the *held-out* samples and
re-scores the fixed held-out predictions of both models, so every resample asks "how
would the held-out r of A and of B (and their difference) vary with another draw of test
samples from the same population?".

Resampling is stratified by outer fold: within each test fold its resampling blocks are
drawn with replacement, as many as it has; each fold's Pearson r is recomputed on its
resampled samples and the folds are averaged with equal weight, exactly like the
encoding's ``fold_mean`` score (:mod:`brainalign.encoding.scoring`). Blocks are single
samples for ``epochs`` (events) and ``concepts``, and contiguous stretches of
``block_size`` samples within a run for ``timeseries`` (:func:`fold_strata`).

A resample is a vector of counts over a fold's samples (how often each was drawn), so all
resamples of a fold are one count matrix ``C`` of shape (n_resamples, n_fold_samples),
and the weighted Pearson r of every resample and unit comes from five matrix products:
``C @ y``, ``C @ y**2``, ``C @ p``, ``C @ p**2``, ``C @ (y * p)`` (sufficient statistics;
y and p centred on the fold mean first, in float64, so no cancellation). Units are taken
in chunks to bound memory; there is no Python loop over resamples or units. A constant
resampled unit or prediction scores 0, as in :func:`~brainalign.encoding.scoring.score_folds`.

The counts depend only on (seed, the fold/block structure), are drawn once per contrast
job and applied to both sides; identical structures give identical counts (so the same
events in every subject give the same resamples in every subject). They are saved
(:func:`save_resamples`) with the structure they were drawn for, and a saved file can be
reused, so a rerun gives identical p-values.

Calibration (measured; benchmarks/contrasts.py and the notes of the contrasts issue): the
resamples treat each fold's predictions as fixed, so the bootstrap sees the variance of
the test samples but not that of the fits. With K outer folds each fold's model is trained
on the other folds' test samples, and for units without signal the K fold scores correlate
by about 1 / (K - 1) (measured 0.26-0.28 with K = 5, 500 to 2,000 events): the fold mean
varies about sqrt(2) times more than the bootstrap says (sd 0.066 vs 0.045 at 500
events). Differences between models that share no signal are therefore anti-conservative:
at 500 events x 200 units x 48 features, 13% planted A-only units, 300 resamples, 3
seeds, 2-8 of 114 noise units came out significant with ``select: none`` (0-2 with
``mean``; the per-resample refitting loop, seed 1: 0), while 23-26 of 26 planted units
were found. The resampled scores are therefore widened by Nadeau and Bengio's (2003)
correction for cross-validated estimates (:func:`fold_variance_factor`: variance x
``1 + K n_test / n_train``, 2.25 for 5 equal folds, against the measured ~2), on by default
(``contrasts.settings.fold_correction``); the per-resample refit remains the calibrated (and
~1000x slower) reference of ``benchmarks/contrasts.py``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import io

__all__ = [
    "ResampleIndices",
    "bootstrap_scores",
    "draw_resamples",
    "fold_strata",
    "fold_variance_factor",
    "load_resamples",
    "save_resamples",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: Kinds of brain data whose resampling block is one sample.
SINGLE_SAMPLE_KINDS = ("epochs", "concepts")


@dataclass(frozen=True, eq=False)
class ResampleIndices:
    """Bootstrap resamples of the held-out samples, stratified by outer fold.

    Attributes
    ----------
    rows : array of shape (n_samples,), int64
        Sample rows (of the brain data), fold by fold, block by block.
    fold : array of shape (n_samples,), int32
        Stratum (outer fold) of each entry of ``rows``, non-decreasing.
    block : array of shape (n_samples,), int32
        Resampling block of each entry of ``rows``, numbered within its fold.
    counts : array of shape (n_resamples, n_samples), uint16
        How often each entry of ``rows`` is drawn in each resample (columns of a fold sum
        to the fold's size when its blocks are equal).
    seed : int or None
        The ``random_state`` they were drawn with.
    """

    rows: np.ndarray
    fold: np.ndarray
    block: np.ndarray
    counts: np.ndarray
    seed: int | None

    @property
    def n_resamples(self) -> int:
        return int(self.counts.shape[0])

    def structure_key(self) -> str:
        """SHA-256 of the fold/block structure (rows, fold, block): what the counts fit."""
        return structure_key(self.rows, self.fold, self.block)


def structure_key(rows: np.ndarray, fold: np.ndarray, block: np.ndarray) -> str:
    """SHA-256 of a fold/block structure (int64 rows, fold, block, concatenated)."""
    digest = hashlib.sha256()
    for array in (rows, fold, block):
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    return digest.hexdigest()


def fold_strata(
    fold: np.ndarray, kind: str, groups: np.ndarray, block_size: int = 1
) -> list[list[np.ndarray]]:
    """Resampling blocks of every outer test fold.

    Parameters
    ----------
    fold : array of shape (n_samples,)
        Outer fold in which each sample was predicted (``EncodingResult.fold``).
    kind : {"epochs", "concepts", "timeseries"}
        Single-sample blocks for epochs and concepts; for timeseries, contiguous blocks
        of ``block_size`` samples within each run (the last of a run may be shorter).
    groups : array of shape (n_samples,)
        Run label of each sample (timeseries); ignored otherwise.
    block_size : int
        Samples per block (timeseries).

    Returns
    -------
    strata : list (one per fold, in fold order) of lists of int arrays
        The blocks of each fold, as arrays of sample rows.
    """
    fold = np.asarray(fold)
    if kind not in SINGLE_SAMPLE_KINDS + ("timeseries",):
        raise ValueError(
            f"brain data kind must be one of {SINGLE_SAMPLE_KINDS + ('timeseries',)}; got "
            f"{kind!r}"
        )
    if kind == "timeseries" and (not isinstance(block_size, (int, np.integer)) or block_size < 1):
        raise ValueError(f"'block_size' must be a positive integer; got {block_size!r}")
    strata = []
    for k in np.unique(fold):
        rows = np.flatnonzero(fold == k)
        if kind in SINGLE_SAMPLE_KINDS:
            strata.append([rows[i : i + 1] for i in range(rows.size)])
            continue
        blocks = []
        for run in _in_order(np.asarray(groups)[rows]):
            run_rows = rows[np.asarray(groups)[rows] == run]
            blocks += [run_rows[i : i + block_size] for i in range(0, run_rows.size, block_size)]
        strata.append(blocks)
    return strata


def _in_order(values: np.ndarray) -> list:
    """Distinct values in order of first appearance."""
    _, first = np.unique(values, return_index=True)
    return [values[i] for i in np.sort(first)]


def draw_resamples(
    strata: Sequence[Sequence[np.ndarray]],
    n_resamples: int,
    random_state: int | None,
) -> ResampleIndices:
    """Draw stratified block-bootstrap resamples as count matrices.

    Within each stratum (outer test fold), as many blocks as it has are drawn with
    replacement; the strata are drawn in order from one generator seeded with
    ``random_state``, so the result depends only on the seed and the structure.

    Parameters
    ----------
    strata : sequence (one per fold) of sequences of int arrays
        The resampling blocks of each fold, as arrays of sample rows (:func:`fold_strata`).
    n_resamples : int
        Number of bootstrap resamples (>= 1).
    random_state : int or None
        Seed.

    Returns
    -------
    ResampleIndices
    """
    if (
        isinstance(n_resamples, bool)
        or not isinstance(n_resamples, (int, np.integer))
        or (n_resamples < 1)
    ):
        raise ValueError(f"'n_resamples' must be a positive integer; got {n_resamples!r}")
    if not strata or any(len(blocks) == 0 for blocks in strata):
        raise ValueError(
            "'strata' must hold at least one non-empty fold of blocks; got an empty one"
        )
    rng = np.random.default_rng(random_state)
    rows, fold, block, counts = [], [], [], []
    for k, blocks in enumerate(strata):
        sizes = np.array([len(b) for b in blocks])
        drawn = rng.integers(0, len(blocks), size=(n_resamples, len(blocks)))
        offsets = drawn + len(blocks) * np.arange(n_resamples)[:, None]
        per_block = np.bincount(offsets.ravel(), minlength=n_resamples * len(blocks))
        per_block = per_block.reshape(n_resamples, len(blocks))
        block_of = np.repeat(np.arange(len(blocks)), sizes)
        rows.append(np.concatenate([np.asarray(b, dtype=np.int64) for b in blocks]))
        fold.append(np.full(block_of.size, k, dtype=np.int32))
        block.append(block_of.astype(np.int32))
        counts.append(per_block[:, block_of].astype(np.uint16))
    return ResampleIndices(
        rows=np.concatenate(rows),
        fold=np.concatenate(fold),
        block=np.concatenate(block),
        counts=np.concatenate(counts, axis=1),
        seed=random_state,
    )


def save_resamples(path: PathLike, resamples: ResampleIndices) -> None:
    """Write resamples and the structure they were drawn for to a compressed ``.npz``, atomically.

    The file holds ``rows``, ``fold``, ``block``, ``counts``, ``seed`` (-1 for None) and
    ``structure`` (:meth:`ResampleIndices.structure_key`).
    """
    with io.atomic_write(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle,
                rows=resamples.rows,
                fold=resamples.fold,
                block=resamples.block,
                counts=resamples.counts,
                seed=np.int64(-1 if resamples.seed is None else resamples.seed),
                structure=np.array(resamples.structure_key()),
            )


def load_resamples(path: PathLike) -> ResampleIndices:
    """Read resamples written by :func:`save_resamples`, checking their structure key."""
    with np.load(path, allow_pickle=False) as data:
        missing = {"rows", "fold", "block", "counts", "seed", "structure"} - set(data.files)
        if missing:
            raise ValueError(
                f"resamples file '{path}' lacks {sorted(missing)}; write it with save_resamples"
            )
        seed = int(data["seed"])
        resamples = ResampleIndices(
            rows=data["rows"],
            fold=data["fold"],
            block=data["block"],
            counts=data["counts"],
            seed=None if seed < 0 else seed,
        )
        stored = str(data["structure"])
    if resamples.structure_key() != stored:
        raise ValueError(f"resamples file '{path}' is corrupt: its structure key does not match")
    return resamples


def bootstrap_scores(
    y: np.ndarray,
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    resamples: ResampleIndices,
    *,
    ci_level: float = 0.95,
    chunk: int = 1024,
    keep_resamples: bool = False,
    fold_correction: bool = True,
) -> dict[str, np.ndarray]:
    """Held-out r of two models, their difference, and paired bootstrap summaries per unit.

    Parameters
    ----------
    y : array of shape (n_samples, n_units)
        Measured responses (rows: the brain data's samples).
    predictions_a, predictions_b : arrays of shape (n_samples, n_units)
        Held-out predictions of sides A and B (``EncodingResult.predictions``, same folds).
    resamples : ResampleIndices
        Count matrices (:func:`draw_resamples`); only the rows it lists are scored.
    ci_level : float
        Level of the percentile intervals, in (0, 1).
    chunk : int
        Units processed at a time (memory: about 8 x n_resamples x chunk x 8 bytes).
    keep_resamples : bool
        Also return the resampled scores (float32; memory n_resamples x n_units x 12 bytes).
    fold_correction : bool
        Widen the resampled scores around the observed ones by ``sqrt(c)``, with Nadeau and
        Bengio's (2003) factor for cross-validated estimates ``c = 1 + K * mean(n_test /
        n_train)`` over the K folds (2.25 for 5 equal folds): the fixed-fit bootstrap sees
        the test samples' variance only, while the K fold scores, whose models share training
        samples, are correlated (see Calibration above).

    Returns
    -------
    scores : dict
        ``r_a``, ``r_b``, ``delta`` (n_units,) float64: the observed fold-mean r and A - B;
        ``ci_a``, ``ci_b``, ``ci_delta`` (2, n_units): percentile interval bounds;
        ``ci_mean`` (2, n_units): interval of the mean of the two sides' r (site selection
        that is independent of the difference under the null);
        ``n_le0``, ``n_ge0`` (n_units,) int64: resamples with delta* <= 0 and >= 0;
        ``n_resamples``; ``variance_factor`` (the fold correction applied, 1 without); with
        ``keep_resamples``, ``boot_a``, ``boot_b``, ``boot_delta``
        of shape (n_resamples, n_units).
    """
    y, predictions_a, predictions_b = _check_scores_inputs(
        y, predictions_a, predictions_b, resamples
    )
    if not 0 < ci_level < 1:
        raise ValueError(f"'ci_level' must be in (0, 1); got {ci_level!r}")
    n_units, n_res = y.shape[1], resamples.n_resamples
    out = {key: np.empty(n_units) for key in ("r_a", "r_b", "delta")}
    out.update({key: np.empty((2, n_units)) for key in ("ci_a", "ci_b", "ci_delta", "ci_mean")})
    out.update(n_le0=np.empty(n_units, dtype=np.int64), n_ge0=np.empty(n_units, dtype=np.int64))
    if keep_resamples:
        out.update(
            {
                key: np.empty((n_res, n_units), np.float32)
                for key in ("boot_a", "boot_b", "boot_delta")
            }
        )
    quantiles = [(1 - ci_level) / 2, (1 + ci_level) / 2]
    factor = fold_variance_factor(resamples) if fold_correction else 1.0
    for start in range(0, n_units, chunk):
        cols = slice(start, min(start + chunk, n_units))
        observed, boot = _score_chunk(
            y[:, cols], predictions_a[:, cols], predictions_b[:, cols], resamples
        )
        boot = observed[:, None, :] + np.sqrt(factor) * (boot - observed[:, None, :])
        for key, side in zip(("a", "b", "delta"), (0, 1, 2)):
            out["r_" + key if key != "delta" else "delta"][cols] = observed[side]
            out[f"ci_{key}"][:, cols] = np.quantile(boot[side], quantiles, axis=0)
            if keep_resamples:
                out[f"boot_{key}"][:, cols] = boot[side]
        out["ci_mean"][:, cols] = np.quantile((boot[0] + boot[1]) / 2, quantiles, axis=0)
        out["n_le0"][cols] = (boot[2] <= 0).sum(axis=0)
        out["n_ge0"][cols] = (boot[2] >= 0).sum(axis=0)
    out["n_resamples"] = np.int64(n_res)
    out["variance_factor"] = np.float64(factor)
    logger.info(
        "paired bootstrap: %d resamples of %d held-out samples in %d folds, %d units",
        n_res,
        resamples.rows.size,
        np.unique(resamples.fold).size,
        n_units,
    )
    return out


def fold_variance_factor(resamples: ResampleIndices) -> float:
    """Nadeau and Bengio's (2003) variance factor ``1 + K * mean(n_test / n_train)`` of a
    K-fold cross-validated score, from the held-out rows of each fold of ``resamples``."""
    folds, sizes = np.unique(resamples.fold, return_counts=True)
    total = resamples.rows.size
    if folds.size < 2:
        return 1.0
    return float(1.0 + folds.size * np.mean(sizes / (total - sizes)))


def _score_chunk(y, pa, pb, resamples: ResampleIndices) -> tuple[np.ndarray, np.ndarray]:
    """Observed (3, n) and resampled (3, n_resamples, n) r_a, r_b, delta of a chunk of units."""
    folds = np.unique(resamples.fold)
    observed = np.zeros((3, y.shape[1]))
    boot = np.zeros((3, resamples.n_resamples, y.shape[1]))
    for k in folds:
        cols = np.flatnonzero(resamples.fold == k)
        rows = resamples.rows[cols]
        C = resamples.counts[:, cols].astype(np.float64)
        yk = _centred(y[rows])
        sy, syy = C @ yk, C @ (yk * yk)
        n = C.sum(axis=1)[:, None]
        for side, p in ((0, pa), (1, pb)):
            pk = _centred(p[rows])
            observed[side] += _pearson_sums(
                np.float64(rows.size),
                yk.sum(0),
                (yk * yk).sum(0),
                pk.sum(0),
                (pk * pk).sum(0),
                (yk * pk).sum(0),
            )
            boot[side] += _pearson_sums(n, sy, syy, C @ pk, C @ (pk * pk), C @ (yk * pk))
    observed[:2] /= folds.size
    boot[:2] /= folds.size
    observed[2] = observed[0] - observed[1]
    boot[2] = boot[0] - boot[1]
    return observed, boot


def _centred(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values - values.mean(axis=0)


def _pearson_sums(n, sy, syy, sp, spp, syp) -> np.ndarray:
    """Pearson r from weighted sums (n = total weight); 0 where either side is constant."""
    cov = n * syp - sy * sp
    var_y = n * syy - sy * sy
    var_p = n * spp - sp * sp
    scale = np.maximum(np.abs(n * syy), np.finfo(float).tiny)
    ok = (var_y > 1e-12 * scale) & (
        var_p > 1e-12 * np.maximum(np.abs(n * spp), np.finfo(float).tiny)
    )
    denominator = np.sqrt(np.where(ok, var_y * var_p, 1.0))
    return np.where(ok, np.clip(cov / denominator, -1.0, 1.0), 0.0)


def _check_scores_inputs(y, pa, pb, resamples):
    arrays = []
    for name, value in (("y", y), ("predictions_a", pa), ("predictions_b", pb)):
        value = np.asarray(value)
        if value.ndim != 2:
            raise ValueError(
                f"'{name}' must be a 2D array (n_samples, n_units); got shape {value.shape}"
            )
        arrays.append(value)
    if not arrays[0].shape == arrays[1].shape == arrays[2].shape:
        raise ValueError(
            "'y', 'predictions_a' and 'predictions_b' must have the same shape; got "
            f"{arrays[0].shape}, {arrays[1].shape}, {arrays[2].shape}"
        )
    if resamples.rows.size and resamples.rows.max() >= arrays[0].shape[0]:
        raise ValueError(
            f"resamples refer to sample row {resamples.rows.max()} but 'y' has "
            f"{arrays[0].shape[0]} rows; draw them for this brain data"
        )
    return arrays
