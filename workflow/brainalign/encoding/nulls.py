"""Permutation nulls of cross-validated ridge scores: the fit is permuted, not the responses.

:func:`~brainalign.encoding.stats.permutation_pvalues` refits every outer fold on every
permuted response set, each voxel keeping its alpha. A fold's refit is linear in the
training responses: ``pred = L y[src]`` with ``src = order[train]`` the permuted training
rows and ``L`` the fold's operator (a hat matrix per alpha, or the eigenbasis). Instead
of gathering ``y[src]`` for every voxel and permutation on the host (what dominated on
GPUs), the operator's columns are scattered to the rows they read:
``G_s[pos(src_s[j])] = L[:, j]``, so that one product ``y[:, U] @ [G_1 ... G_S]`` refits
``S`` permutations of a batch of voxels at once, ``U`` being the rows any permutation
draws from (the training rows, for block permutation within runs). Building ``G`` costs
``n_train * c`` copies per permutation and alpha group, against
``2 * n_group * n_train * c`` operations in the product. On the CPU the former gathering
path is faster (benchmarks/permutation_scale.py, study unit, 4096 voxels: 0.87 ms per
voxel x response set against 1.22 ms here, GEMM bound 0.81 ms), so ``"auto"`` of
:func:`~brainalign.encoding.stats.permutation_pvalues` takes this path on torch and cupy
devices only. The held-out side needs only ``y[order[test]]``, a gather of ``n_test``
values per voxel and permutation.

Everything runs on the device of himalaya's backend (:mod:`.device`): the responses of a
batch go in once, the statistics come out once. The products are float32 (``dtype``);
the correlations are combined in float64.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from .device import Device
from .solver import _Gram, resolve_form

__all__ = ["PermutedRefit", "null_statistics", "permuted_scores", "sets_per_product"]

logger = logging.getLogger(__name__)

Split = tuple[np.ndarray, np.ndarray]

#: Elements (of ``dtype``) of the largest temporary of one product.
BUDGET = 2**24


class PermutedRefit:
    """One outer fold's ridge with a fixed alpha per voxel, as operators on the device.

    Parameters
    ----------
    X_train : array of shape (n_train, n_features)
        Standardised training features of the fold.
    X_test : array of shape (n_test, n_features)
        Standardised test features.
    alpha : array of shape (n_voxels,)
        Penalty of every voxel.
    device : Device
        Where the operators live.
    form : {"auto", "primal", "kernel"}
        Which Gram matrix is diagonalised (same model).
    method : {"auto", "hat", "eigen"}
        ``"hat"``: one (n_train, n_test) hat matrix per distinct alpha;
        ``"eigen"``: the eigenbasis ``R`` (n_train, k) then ``A diag(d)``;
        ``"auto"``: the one with fewer operations per voxel and permutation.
    centred : bool
        Predictions centred over the test rows (all a per-fold r needs), else in the units
        of the responses (training mean added back).
    dtype : {"float32", "float64"}
        Precision of the operators and products.
    """

    def __init__(
        self,
        X_train,
        X_test,
        alpha,
        device: Device,
        *,
        form="auto",
        method="auto",
        centred=True,
        dtype="float32",
    ):
        X_train = np.asarray(X_train, dtype=np.float64)
        form = resolve_form(form, X_train.shape[1], X_train.shape[0])
        eigenvalues, R, A = _Gram(form, X_train, np.asarray(X_test, np.float64)).decompose(
            None, None
        )
        R = R - R.mean(axis=0)  # L 1 = 0: the training mean drops out
        if centred:
            A = A - A.mean(axis=0)
        (n_train, k), n_test = R.shape, A.shape[0]
        self.method = _pick_method(method, n_train, n_test, k)
        self.device, self.n_test, self.dtype = device, n_test, dtype
        alpha = np.asarray(alpha, dtype=np.float64)
        mean_column = [] if centred else [np.full((n_train, 1), 1.0 / n_train)]
        if self.method == "hat":
            values, group = np.unique(alpha, return_inverse=True)
            self.group = group
            self.operators = [  # transposed hats (n_train, n_test), + 1/n_train: the mean
                device.put(
                    R @ (A / (eigenvalues + value)).T + (0.0 if centred else 1.0 / n_train), dtype
                )
                for value in values
            ]
        else:
            self.operators = [device.put(np.hstack([R, *mean_column]), dtype)]
            self.k = k
            self.shrinkage = device.put(1.0 / (eigenvalues[None, :] + alpha[:, None]), dtype)
            self.A_T = device.put(A.T, dtype)

    def width(self) -> int:
        """Columns of one permutation's operator (``n_test`` or ``k`` [+ 1])."""
        return self.operators[0].shape[1]

    def predict(self, y_U, pos_src, cols: slice):
        """Predictions of every permutation, array of shape (n_batch, n_sets, n_test).

        Parameters
        ----------
        y_U : device array of shape (n_batch, m)
            The batch's responses at the rows ``U`` permutations draw from.
        pos_src : pair of device int arrays
            Position in ``U`` of the row each training sample reads, per permutation
            (n_sets, n_train), and its inverse (n_sets, m) where each permutation reads
            every row of ``U`` once (else None).
        cols : slice
            Which voxels of the model the batch holds (their alphas).
        """
        device, n_batch, n_sets = self.device, y_U.shape[0], pos_src[0].shape[0]
        out = device.zeros((n_batch, n_sets, self.n_test), dtype=self.dtype)
        if self.method == "hat":
            group = self.group[cols]
            for g in np.unique(group):
                members = np.flatnonzero(group == g)
                rows = y_U if members.size == n_batch else y_U[device.index(members)]
                part = rows @ self._scatter(self.operators[g], pos_src, y_U.shape[1])
                out[device.index(members)] = part.reshape(members.size, n_sets, -1)
            return out
        z = (y_U @ self._scatter(self.operators[0], pos_src, y_U.shape[1])).reshape(
            n_batch, n_sets, -1
        )
        out = (z[..., : self.k] * self.shrinkage[cols][:, None, :]) @ self.A_T
        return out if z.shape[-1] == self.k else out + z[..., self.k :]

    def _scatter(self, operator, pos_src, m: int):
        """``G`` of shape (m, n_sets * c): operator rows placed at the rows they read.

        ``pos_src`` is a pair (positions, inverse): where every permutation reads a
        permutation of ``U`` (block permutation within runs), ``inverse`` (n_sets, m) says
        which operator row lands on each row, and ``G`` is one gather, without zeros.
        """
        pos_src, inverse = pos_src
        n_sets, c = pos_src.shape[0], operator.shape[1]
        if inverse is not None:
            return operator[inverse.T].reshape(m, n_sets * c)
        G = self.device.zeros((m, n_sets, c), dtype=self.dtype)
        sets = self.device.index(np.arange(n_sets))
        G[pos_src.T, sets[None, :]] = operator[:, None, :]
        return G.reshape(m, n_sets * c)


def _pick_method(method: str, n_train: int, n_test: int, k: int) -> str:
    if method == "auto":
        return "hat" if n_test * n_train <= k * (n_train + n_test) else "eigen"
    elif method in ("hat", "eigen"):
        return method
    else:
        raise ValueError(f"'method' must be one of 'auto', 'eigen', 'hat'; got {method!r}")


def sets_per_product(
    n_voxels: int, n_rows: int, width: int, n_test: int, budget: int = BUDGET
) -> int:
    """Permutations per product so that ``G`` and the predictions stay below ``budget``."""
    return max(1, min(budget // max(1, n_rows * width), budget // max(1, n_voxels * n_test)))


def permuted_scores(
    y,
    orders: np.ndarray,
    refits: Sequence[PermutedRefit],
    splits: Sequence[Split],
    cols: slice,
    scoring: str,
):
    """The reported score of each permuted response set, refitting every fold.

    Parameters
    ----------
    y : device array of shape (n_batch, n_samples)
        A batch of voxels, voxel-major, on the device.
    orders : array of shape (n_sets, n_samples), int
        Row order of each response set (the identity: the real data).
    refits : sequence of PermutedRefit
        One per outer fold.
    splits : sequence of (train_idx, test_idx)
        The outer folds.
    cols : slice
        Which voxels the batch holds.
    scoring : {"fold_mean", "concatenated"}
        Mean of the per-fold r, or r of the concatenated predictions.

    Returns
    -------
    scores : device array of shape (n_sets, n_batch), float64
    """
    device = refits[0].device
    per_fold, parts = None, []
    for refit, (train, test) in zip(refits, splits):
        U, pos_src = _support(orders[:, train], y.shape[1])
        y_U = y if U is None else y[:, device.index(U)]
        inverse = np.argsort(pos_src, axis=1) if pos_src.shape[1] == y_U.shape[1] else None
        pair = (device.index(pos_src), None if inverse is None else device.index(inverse))
        pred = refit.predict(y_U, pair, cols)
        if scoring == "fold_mean":  # predictions centred over the test rows
            r = pearson_centred(device, y[:, device.index(orders[:, test])], pred)
            per_fold = r if per_fold is None else per_fold + r
        else:
            parts.append((test, pred))
    if scoring == "fold_mean":
        return (per_fold / len(splits)).T
    rows = np.argsort(np.concatenate([test for test, _ in parts]))
    cat = device.backend.concatenate([pred for _, pred in parts], axis=-1)[..., device.index(rows)]
    cat = cat - device.sum(cat, -1)[..., None] / cat.shape[-1]
    return pearson_centred(device, y[:, device.index(orders)], cat).T


def _support(src: np.ndarray, n: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Rows ``U`` that ``src`` reads (None: all ``n``) and the position in ``U`` of each read."""
    U = np.unique(src)
    if U.size == n:
        return None, src
    lookup = np.full(n, -1, dtype=np.int64)
    lookup[U] = np.arange(U.size)
    return U, lookup[src]


def pearson_centred(device: Device, y, p):
    """Pearson r along the last axis of (n_voxels, n_sets, n) arrays, ``p`` centred.

    As :func:`brainalign.encoding.stats._pearson_centred`: ``sum(y_c p) = sum(y p)``, and
    ``sum(y_c^2) = sum(y^2) - n mean(y)^2`` in float64; 0 where either side is constant.
    """
    yy = device.dot_last(y, y)
    sy = yy - device.sum(y, -1, dtype="float64") ** 2 / y.shape[-1]
    sp = device.dot_last(p, p)
    both = (sy > 1e-6 * yy) & (sp > 0)
    cross = device.dot_last(y, p)
    denominator = device.sqrt(device.where(both, sy * sp, device.full(sy.shape, 1.0)))
    return device.where(both, cross / denominator, device.full(sy.shape, 0.0))


def null_statistics(
    Y,
    orders: np.ndarray,
    refits: Sequence[PermutedRefit],
    splits: Sequence[Split],
    *,
    scoring: str,
    n_targets_batch: int | None,
    n_top: int,
) -> dict[str, np.ndarray]:
    """Observed score and running null statistics of every voxel, computed on the device.

    Parameters
    ----------
    Y : array of shape (n_samples, n_voxels)
        Responses (host); each batch of ``n_targets_batch`` voxels goes to the device once.
    orders : array of shape (n_permutations, n_samples), int
        The permutations.
    refits, splits, scoring
        As :func:`permuted_scores`.
    n_targets_batch : int or None
        Voxels per batch; None: all.
    n_top : int
        How many of the largest null values to keep per voxel (for the GPD tail).

    Returns
    -------
    stats : dict of host arrays
        ``observed``, ``exceed``, ``sum``, ``sum_sq`` of shape (n_voxels,) and ``top`` of
        shape (n_top, n_voxels), float64.
    """
    device, dtype = refits[0].device, refits[0].dtype
    size = Y.shape[1] if n_targets_batch is None else int(n_targets_batch)
    stats = {key: np.zeros(Y.shape[1]) for key in ("observed", "exceed", "sum", "sum_sq")}
    stats["top"] = np.zeros((n_top, Y.shape[1]))
    for start in range(0, Y.shape[1], size):
        cols = slice(start, start + size)
        y = device.put(np.ascontiguousarray(np.asarray(Y[:, cols]).T), dtype)  # one transfer in
        batch = _batch_statistics(device, y, orders, refits, splits, cols, scoring, n_top)
        for key, value in batch.items():  # one transfer out
            stats[key][..., cols] = device.get(value)
    return stats


def _batch_statistics(device, y, orders, refits, splits, cols, scoring, n_top):
    """Exceedances, sums, sums of squares and largest null values of one batch (device)."""
    observed = permuted_scores(y, np.arange(y.shape[1])[None], refits, splits, cols, scoring)[0]
    width = max(refit.width() for refit in refits)
    n_test = max(test.size for _, test in splits) if scoring == "fold_mean" else y.shape[1]
    per = sets_per_product(y.shape[0], y.shape[1], width, n_test)
    stats = {key: device.zeros((y.shape[0],), "float64") for key in ("exceed", "sum", "sum_sq")}
    stats["top"] = device.full((n_top, y.shape[0]), -np.inf)
    for group in np.array_split(orders, -(-len(orders) // per)):
        null = permuted_scores(y, group, refits, splits, cols, scoring)
        stats["exceed"] += device.sum(device.cast(null >= observed - 1e-6, "float64"), 0)
        stats["sum"] += device.sum(null, 0)
        stats["sum_sq"] += device.sum(null * null, 0)
        stats["top"] = device.largest(stats["top"], null)
    stats["observed"] = observed
    return stats
