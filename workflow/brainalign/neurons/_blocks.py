"""The block computations of :func:`~brainalign.neurons.mapping.map_units`.

One unit batch x one voxel batch at a time: the groups' cross-products (the only
products with the data, float32 GEMMs), then per fold the pairs' weights and held-out r
from d x d algebra in elementwise passes; the same for every permutation. The algebra is
described in :mod:`brainalign.neurons.mapping`.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from ..encoding.delays import make_delays
from .significance import normal_pvalues

_TINY = 1e-6  # sd (in units of the overall sd) below which a column counts as constant


class _FoldX(NamedTuple):
    """A unit batch's fold statistics (float32; u = unit, j, l = delays)."""

    P_aug: np.ndarray  # (u, j, l + 1): [P, -P @ (training sums of x)], with
    # P = diag(1/sx) (R + ridge I)^-1 diag(1/(n_train sx))
    a_test: np.ndarray  # (u, j): test means of x
    Q: np.ndarray  # (u, j, l): test-centred Gram of x
    sx: np.ndarray  # (u, j): training sd of x
    test_constant: np.ndarray  # (u,) bool: a delayed column is constant in the test group


class _FoldY(NamedTuple):
    """A voxel batch's fold statistics (float32, shape (n_voxels,) each)."""

    mean_train: np.ndarray
    inv_sd_train: np.ndarray
    sum_test: np.ndarray
    ss_test: np.ndarray  # test sum of squares about the test mean (0 where constant)


class _Run:
    """State of one :func:`map_units` call: outputs, permutation maxima, timings."""

    def __init__(self, layout, delays, ridge, inverse, correction, out):
        self.layout, self.delays, self.ridge = layout, tuple(delays), float(ridge)
        self.inverse, self.correction, self.out = inverse, correction, out
        self.max_null = np.full(len(inverse), -np.inf)
        self.timings = {"products": 0.0, "scoring": 0.0}
        self.flops = 0

    def unit_batch(self, sources, rows: slice, targets, voxel_batch: int) -> None:
        """Map the units ``rows`` of every source to all voxels, one voxel batch at a time."""
        xs = [_delayed(src[:, rows], self.layout, self.delays) for src in sources]
        stats = [_group_x_stats(x, self.layout, len(self.delays)) for x in xs]
        n_folds = len(self.layout.slices)
        fx = [_fold_x(stats[k if len(xs) > 1 else 0], self.layout, k, self.ridge) for k in range(n_folds)]
        for start in range(0, targets.shape[1], voxel_batch):
            cols = slice(start, start + voxel_batch)
            y = _scaled(targets[:, cols][self.layout.order])
            ystats = _group_y_stats(y, self.layout)
            fy = [_fold_y(ystats, self.layout, k) for k in range(n_folds)]
            self._block(xs, fx, y, fy, rows, cols)

    def _block(self, xs, fx, y, fy, rows, cols) -> None:
        score, weights = self._score(xs, fx, y, fy, None)
        score = score.copy()
        self.out["score"][rows, cols] = score
        self.out["weights"][rows, :, cols] = weights
        self.out["sign"][rows, cols] = np.where(weights.sum(axis=1) >= 0, 1, -1)
        sums = np.zeros((2, *score.shape)) if self.correction == "fdr_by" else None
        for i, order in enumerate(self.inverse):
            null, _ = self._score(xs, fx, y, fy, order)
            self.max_null[i] = max(self.max_null[i], float(null.max()))
            if sums is not None:
                sums[0] += null
                sums[1] += np.square(null, dtype=np.float64)
        if sums is not None:
            self.out["p"][rows, cols] = normal_pvalues(score, sums[0], sums[1], len(self.inverse))

    def _score(self, xs, fx, y, fy, order):
        """Fold-mean held-out r (u, v) and, on the real data, fold-mean weights (u, d, v)."""
        ws = self._workspace(fx[0].a_test.shape, y.shape[1])
        ws.score.fill(0.0)
        weights = None if order is not None else np.zeros(ws.v.shape, np.float32)
        for k, (S_train, S_test) in enumerate(self._products(xs, y, order)):
            started = time.perf_counter()
            ws.score += _fold_scores(S_train, S_test, fx[k], fy[k], ws)
            if weights is not None:
                weights += ws.v * fx[k].sx[:, :, None] * fy[k].inv_sd_train
            self.timings["scoring"] += time.perf_counter() - started
        ws.score /= len(fx)
        return ws.score, None if weights is None else weights / len(fx)

    def _workspace(self, shape: tuple[int, int], n_voxels: int) -> _Workspace:
        key = (*shape, n_voxels)
        if getattr(self, "_ws_key", None) != key:
            self._ws, self._ws_key = _Workspace(*key), key
        return self._ws

    def _products(self, xs, y, order):
        """Per fold, (training, test) cross-products of delayed units and targets."""
        started = time.perf_counter()
        slices = self.layout.slices
        if len(xs) == 1:  # one unit matrix: one pass over the data serves every fold
            x = xs[0] if order is None else xs[0][order]
            parts = [x[s].T @ y[s] for s in slices]
            total = parts[0] + parts[1]
            for part in parts[2:]:
                total += part
            self._count(x, y, started)
            for k, part in enumerate(parts):
                yield (total, part), part
            return
        for k, x in enumerate(xs):  # atoms: one dictionary (one unit matrix) per fold
            started = time.perf_counter()
            x = x if order is None else x[order]
            S_train = sum(x[s].T @ y[s] for g, s in enumerate(slices) if g != k)
            S_test = x[slices[k]].T @ y[slices[k]]
            self._count(x, y, started)
            yield (S_train, None), S_test

    def _count(self, x, y, started) -> None:
        self.flops += 2 * x.shape[0] * x.shape[1] * y.shape[1]
        self.timings["products"] += time.perf_counter() - started


class _Workspace:
    """Buffers of one block shape, reused by every fold and permutation (no page faults)."""

    def __init__(self, n_units: int, n_delays: int, n_voxels: int):
        f32 = np.float32
        self.augmented = np.empty((n_units, n_delays + 1, n_voxels), f32)
        self.v = np.empty((n_units, n_delays, n_voxels), f32)
        self.qv = np.empty_like(self.v)
        self.cov, self.var, self.tmp = (np.empty((n_units, n_voxels), f32) for _ in range(3))
        self.r = np.empty((n_units, n_voxels), f32)
        self.score = np.empty((n_units, n_voxels), f32)


def _fold_scores(S_train, S_test, fx: _FoldX, fy: _FoldY, ws: _Workspace) -> np.ndarray:
    """Held-out r of every pair of one fold, in ``ws.r`` (u, v); ``ws.v`` keeps the weights.

    ``S_train`` is ``(total, part)``: the training cross-product is ``total - part``
    (``part`` None: ``total`` itself). It is written into a buffer with one more row per
    unit holding the training mean of the targets, so that one batched product applies
    the d x d solve and the training-mean correction together. ``ws.v`` then holds the
    weights divided by (sx_j sd_y), i.e. on the raw-unit scale of the prediction.
    """
    n_units, n_delays = fx.a_test.shape
    total, part = (a if a is None else a.reshape(n_units, n_delays, -1) for a in S_train)
    S_test = S_test.reshape(n_units, n_delays, -1)
    if part is None:
        ws.augmented[:, :n_delays] = total
    else:
        np.subtract(total, part, out=ws.augmented[:, :n_delays])
    ws.augmented[:, n_delays] = fy.mean_train
    v = np.matmul(fx.P_aug, ws.augmented, out=ws.v)
    cov = np.einsum("ujv,ujv->uv", v, S_test, out=ws.cov)
    np.multiply(np.einsum("uj,ujv->uv", fx.a_test, v, out=ws.tmp), fy.sum_test, out=ws.tmp)
    cov -= ws.tmp
    var = np.einsum("ujv,ujv->uv", v, np.matmul(fx.Q, v, out=ws.qv), out=ws.var)
    np.multiply(var, fy.ss_test, out=var)
    np.maximum(var, 0.0, out=var)  # rounding can make it slightly negative: r = 0 there
    np.sqrt(var, out=var)
    ws.r.fill(0.0)
    np.divide(cov, var, out=ws.r, where=var > 0)
    ws.r[fx.test_constant] = 0.0
    np.clip(ws.r, -1.0, 1.0, out=ws.r)
    return ws.r


def _delayed(units: np.ndarray, layout, delays) -> np.ndarray:
    """Delayed units (n_samples, n_units * n_delays), unit-major columns, centred and scaled.

    The delays shift the units as given (zeros at a group's start, as the encoding stage's
    :func:`~brainalign.encoding.delays.make_delays`); only then is every delayed column
    centred and scaled over all samples, which the per-fold standardisation undoes.
    """
    units = np.asarray(units, dtype=np.float64)
    delayed = make_delays(units / _sd(units), delays, layout.codes)  # delay-major blocks
    n, n_units = units.shape
    delayed = delayed.reshape(n, len(delays), n_units).transpose(0, 2, 1).reshape(n, -1)
    return _scaled(delayed)


def _sd(values: np.ndarray) -> np.ndarray:
    sd = values.std(axis=0)
    sd[sd == 0] = 1.0
    return sd


def _scaled(values: np.ndarray) -> np.ndarray:
    """Columns centred and scaled over all samples (float64 maths), as float32."""
    values = np.asarray(values, dtype=np.float64)
    return np.ascontiguousarray((values - values.mean(axis=0)) / _sd(values), dtype=np.float32)


def _group_x_stats(x: np.ndarray, layout, n_delays: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group: sums (g, u, j) and Gram matrices (g, u, j, l) of the delayed units, float64."""
    sums, grams = [], []
    for s in layout.slices:
        block = x[s].astype(np.float64).reshape(s.stop - s.start, -1, n_delays).transpose(1, 0, 2)
        sums.append(block.sum(axis=1))
        grams.append(block.transpose(0, 2, 1) @ block)
    return np.stack(sums), np.stack(grams)


def _fold_x(stats, layout, k: int, ridge: float) -> _FoldX:
    """Training correlations and their inverse, test Gram, for fold ``k`` (test group k)."""
    sums, grams = stats
    n_test = layout.sizes[k]
    n_train = layout.sizes.sum() - n_test
    sum_train = sums.sum(axis=0) - sums[k]
    mean = sum_train / n_train
    cov = (grams.sum(axis=0) - grams[k]) / n_train - mean[:, :, None] * mean[:, None, :]
    sx = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
    inv = np.where(sx > _TINY, 1.0 / np.where(sx > _TINY, sx, 1.0), 0.0)
    corr = cov * inv[:, :, None] * inv[:, None, :] + ridge * np.eye(sx.shape[1])
    P = inv[:, :, None] * np.linalg.inv(corr) * (inv / n_train)[:, None, :]
    a_test = sums[k] / n_test
    Q = grams[k] - n_test * a_test[:, :, None] * a_test[:, None, :]
    P_aug = np.concatenate([P, -np.einsum("ujl,ul->uj", P, sum_train)[:, :, None]], axis=2)
    test_sd = np.sqrt(np.maximum(np.diagonal(Q, axis1=1, axis2=2), 0.0) / n_test)
    arrays = (np.asarray(a, dtype=np.float32) for a in (P_aug, a_test, Q, sx))
    return _FoldX(*arrays, test_constant=np.any(test_sd <= _TINY, axis=1))


def _group_y_stats(y: np.ndarray, layout) -> tuple[np.ndarray, np.ndarray]:
    """Per group: sums and sums of squares (g, v) of the targets, float64."""
    sums = np.stack([y[s].sum(axis=0, dtype=np.float64) for s in layout.slices])
    squares = np.stack([np.einsum("tv,tv->v", y[s], y[s], dtype=np.float64) for s in layout.slices])
    return sums, squares


def _fold_y(stats, layout, k: int) -> _FoldY:
    sums, squares = stats
    n_test = layout.sizes[k]
    n_train = layout.sizes.sum() - n_test
    mean = (sums.sum(axis=0) - sums[k]) / n_train
    var = (squares.sum(axis=0) - squares[k]) / n_train - mean**2
    sd = np.sqrt(np.maximum(var, 0.0))
    inv_sd = np.where(sd > _TINY, 1.0 / np.where(sd > _TINY, sd, 1.0), 0.0)
    ss_test = squares[k] - sums[k] ** 2 / n_test
    ss_test = np.where(ss_test > _TINY**2 * np.maximum(squares[k], 1e-30), ss_test, 0.0)
    return _FoldY(*(np.asarray(a, dtype=np.float32) for a in (mean, inv_sd, sums[k], ss_test)))
