"""Ridge regression with per-voxel alphas, every alpha solved from one eigendecomposition.

Why this exists: himalaya's ``RidgeCV`` predicts each validation fold once per alpha,
an (n_alphas, n_test, n_train) @ (n_train, n_voxels) product, and refits every alpha on
the whole training set. Here each fold's Gram matrix (``X^T X`` in the primal form,
``X X^T`` in the kernel form) is diagonalised once, ``G = Q diag(lambda) Q^T``, and the
validation error of every alpha follows from three products with the voxels per fold,
whatever the number of alphas. Measured (benchmarks/encoding.py, 3000 TRs x 768
features x 50,000 voxels, 10 alphas, 5 folds, 2 cores): 3.3-4.6x faster than
``RidgeCV`` with 0.3x its peak memory.

For one fold, with ``z = R^T y_train`` (``R = X_train Q`` in the primal form, ``Q`` in
the kernel form), ``A`` the validation samples in the same basis, ``b = A^T y_test`` and
``C = A^T A``, the prediction is ``A D z`` with ``D = diag(1 / (lambda + alpha))``, so::

    ||y_test - A D z||^2 = ||y_test||^2 - 2 sum_i d_i z_i b_i + sum_ij z_i z_j C_ij d_i d_j

Partial fractions, ``d_i d_j = (d_i - d_j) / (lambda_j - lambda_i)``, turn the double sum
into ``2 sum_i d_i z_i (W z)_i`` with ``W_ij = C_ij / (lambda_j - lambda_i)``: one product
``W z`` per fold, then every alpha costs a weighted sum over ``i`` (a small matrix
product for all alphas at once). Eigenvalues closer than ``CLUSTER_TOL`` (relative) form
clusters; pairs inside a cluster use ``d_i d_j ~ d_i^2`` (second-order error, below
1e-12) instead of the ill-conditioned fraction. This part runs in float64; the products
with the voxels (``R^T Y``, ``A^T Y``, the final predictions) run in float32. As every
alpha shares the same ``z`` and ``b``, the differences between alphas are accurate to
about 1e-8 (relative): where himalaya's float32 losses cannot tell two alphas apart
(near-ties), this solver picks the alpha that a float64 fit picks.

Voxels are solved in batches of ``n_targets_batch``: besides ``Y`` and the predictions,
memory holds a few (n_components, n_targets_batch) arrays and one fold's decomposition.
Array work goes through ``himalaya.backend.get_backend()`` (:mod:`.device`). On a torch or
cupy backend the responses go to the device once per call (or are there already:
:func:`~brainalign.encoding.ridge.fit_encoding` moves them once per job), and the training
means, the per-fold norms, the validation errors of every alpha and the predictions are
computed there; the chosen alphas and the predictions come back once. float32 on the
device except the validation-error terms and norms (float64: the alpha choice compares
errors that differ by less than float32 resolution at near-ties, see above); the small
decompositions run on the CPU in float64.

The alpha of each voxel maximises the mean over inner folds of the negative mean squared
error (himalaya's ``l2_neg_loss``, its default), ties going to the larger alpha, so the
choices agree with himalaya's ``RidgeCV`` / ``KernelRidgeCV``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import check_2d, check_alphas
from .device import GPU_BACKENDS, Device

__all__ = ["FORMS", "FixedAlphaRidge", "RidgeCVFit", "fit_predict_ridge_cv", "resolve_form"]

logger = logging.getLogger(__name__)

Split = tuple[np.ndarray, np.ndarray]

FORMS = ("primal", "kernel")

#: Relative eigenvalue gap below which two eigenvalues share a cluster.
CLUSTER_TOL = 1e-6

#: Relative size of the tie-breaking slope towards larger alphas (as himalaya).
TIE_SLOPE = 1e-10


@dataclass(frozen=True, eq=False)
class RidgeCVFit:
    """Held-out predictions of a cross-validated ridge, and what the inner CV chose.

    Attributes
    ----------
    predictions : array of shape (n_test, n_voxels), float32
        Predictions for ``X_test``, in the units of ``Y`` (training mean added back).
    alpha : array of shape (n_voxels,), float64
        Chosen alpha per voxel (a grid value).
    cv_score : array of shape (n_voxels,), float64
        Mean over inner folds of the negative mean squared error, at the chosen alpha.
    cv_r2 : array of shape (n_voxels,), float64
        ``1 - sum_folds SSE / sum_folds SS`` at the chosen alpha, SS around the training
        mean: an R^2 computed on the training set only (for choosing between models).
    form : {"primal", "kernel"}
        Which Gram matrix was diagonalised.
    """

    predictions: np.ndarray
    alpha: np.ndarray
    cv_score: np.ndarray
    cv_r2: np.ndarray
    form: str


def resolve_form(form: str, n_features: int, n_train: int) -> str:
    """``"primal"`` or ``"kernel"``; ``"auto"``: the kernel when features outnumber samples."""
    if form == "auto":
        return "kernel" if n_features > n_train else "primal"
    elif form in FORMS:
        return form
    else:
        allowed = ", ".join(repr(name) for name in ("auto", *sorted(FORMS)))
        raise ValueError(f"'solver' must be one of {allowed}; got {form!r}")


def fit_predict_ridge_cv(
    X_train: np.ndarray,
    Y: np.ndarray,
    X_test: np.ndarray,
    alphas: np.ndarray,
    cv: Sequence[Split],
    *,
    rows: np.ndarray | None = None,
    form: str = "auto",
    n_targets_batch: int | None = None,
) -> RidgeCVFit:
    """Choose one alpha per voxel by inner cross-validation, refit, predict ``X_test``.

    Parameters
    ----------
    X_train : array of shape (n_train, n_features)
        Training features, already standardised (no intercept is fitted for ``X``).
    Y : array of shape (n_rows, n_voxels)
        Responses; the training responses are ``Y[rows]``. Centred per voxel with the
        training mean inside, batch by batch (``Y`` is never copied whole).
    X_test : array of shape (n_test, n_features)
        Features to predict, standardised like ``X_train``.
    alphas : array of shape (n_alphas,)
        Sorted positive penalties.
    cv : sequence of (train_idx, test_idx)
        Inner folds, positions in the training set (0 to n_train - 1).
    rows : array of shape (n_train,) or None
        Rows of ``Y`` that are the training samples; None means every row.
    form : {"auto", "primal", "kernel"}
        Diagonalise ``X^T X`` (primal) or ``X X^T`` (kernel); ``"auto"`` picks the smaller.
    n_targets_batch : int or None
        Voxels solved at a time; None solves all at once.

    Returns
    -------
    RidgeCVFit
    """
    X_train, X_test, rows, alphas = _check_fit_inputs(X_train, Y, X_test, alphas, rows)
    form = resolve_form(form, X_train.shape[1], X_train.shape[0])
    device = Device()
    if device.name != "numpy":  # one transfer in; the folds and alphas run on the device
        Y = device.put(Y, "float32")
    batches = _batches(Y.shape[1], n_targets_batch)
    y_mean = _train_mean(device, Y, rows, batches)
    gram = _Gram(form, X_train, X_test)
    sse = device.zeros((len(alphas), Y.shape[1]), "float64")
    sst = device.zeros((Y.shape[1],), "float64")
    for train, test in cv:
        system = gram.system(train, test, alphas[0])
        for cols in batches:
            y_train = _centred_rows(device, Y, rows[train], cols, y_mean)
            y_test = _centred_rows(device, Y, rows[test], cols, y_mean)
            norm = _sum_squares(device, y_test)
            excess = system.validation_excess(y_train, y_test, alphas)
            sse[:, cols] += (excess + norm) / test.size
            sst[cols] += norm / test.size
        del system
    best, cv_score, cv_r2 = _choose(device.get(sse), device.get(sst), alphas, len(cv))
    system = gram.system(None, None, None)
    predictions = device.zeros((X_test.shape[0], Y.shape[1]), "float32")
    for cols in batches:
        y_train = _centred_rows(device, Y, rows, cols, y_mean)
        predictions[:, cols] = system.predict(y_train, alphas[best[cols]]) + y_mean[cols]
    predictions = device.get(predictions)  # one transfer out
    return RidgeCVFit(predictions, alphas[best], cv_score, cv_r2, form)


class FixedAlphaRidge:
    """Ridge with one given alpha per target, for refitting many response sets cheaply.

    Used to refit the outer folds on permuted responses, many permutations per product:
    :meth:`predict` takes response sets of shape (n_targets, n_sets, n_train). Two
    equivalent ways to apply the fit, chosen by their cost per response column:

    ``"hat"``
        ``H(alpha) = A diag(1 / (lambda + alpha)) R^T``, the (n_test, n_train) matrix
        that maps training responses to predictions, built once per distinct alpha (the
        alphas come from a grid, so few); one product per alpha group, n_test * n_train
        multiply-adds per column.
    ``"eigen"``
        ``A (d * (R^T y))`` with per-target shrinkage ``d``: two products,
        n_components * (n_train + n_test) multiply-adds per column.

    The hat form wins on the CPU when the test set is small against the training set or
    the number of components (concept folds; leave-one-run-out over many runs: 10x fewer
    operations with 10 runs). On a GPU the products are cheap and the host-side work
    dominates, which the hat form adds to (one gather per alpha group), so ``"auto"``
    takes the eigen form there. Measured (benchmarks/permutation.py, leave-one-run-out,
    100 permutations, 4000 voxels): 10 runs x 300 TRs, 2 CPU cores: hat 5.2x faster;
    2 runs x 200 TRs, 16 CPU cores: 2.4x; on an H100 (torch_cuda) the hat form is 0.8x. The centring of the training responses is folded into the operators
    (``R`` centred over training rows), and so is the centring of the predictions over
    the test rows when only correlations are wanted (``centred=True``), so that
    :meth:`predict` makes no extra pass over the responses.

    Parameters
    ----------
    X_train : array of shape (n_train, n_features)
        Standardised training features.
    X_test : array of shape (n_test, n_features)
        Standardised features to predict.
    alpha : array of shape (n_targets,)
        Penalty of every target.
    form : {"auto", "primal", "kernel"}
        As in :func:`fit_predict_ridge_cv`.
    method : {"auto", "hat", "eigen"}
        How :meth:`predict` applies the fit; ``"auto"`` takes the one with fewer
        operations on the CPU, the eigen form on a GPU (the same predictions up to float32
        round-off).
    centred : bool
        Return predictions minus their mean over the test rows (all a correlation per fold
        needs) instead of predictions in the units of the responses.
    """

    def __init__(
        self,
        X_train: np.ndarray,
        X_test: np.ndarray,
        alpha: np.ndarray,
        *,
        form: str = "auto",
        method: str = "auto",
        centred: bool = False,
    ):
        from himalaya.backend import get_backend

        X_train = np.asarray(X_train, dtype=np.float64)
        form = resolve_form(form, X_train.shape[1], X_train.shape[0])
        eigenvalues, R, A = _Gram(form, X_train, np.asarray(X_test, dtype=np.float64)).decompose(
            None, None
        )
        self.backend = backend = get_backend()
        self.centred = bool(centred)
        alpha = np.asarray(alpha, dtype=np.float64)
        (n_train, n_components), n_test = R.shape, A.shape[0]
        if method == "auto":
            cheaper = n_test * n_train <= n_components * (n_train + n_test)
            on_gpu = backend.name in GPU_BACKENDS
            method = "hat" if cheaper and not on_gpu else "eigen"
        elif method not in ("hat", "eigen"):
            raise ValueError(f"'method' must be one of 'auto', 'eigen', 'hat'; got {method!r}")
        self.method = method
        R = R - R.mean(axis=0)  # H y = H (y - mean(y)): centres the training responses
        if self.centred:
            A = A - A.mean(axis=0)  # predictions centred over the test rows
        if method == "hat":
            values, self._group = np.unique(alpha, return_inverse=True)
            # transposed hat matrices (n_train, n_test), built in float64
            self._hats = [
                backend.asarray(R @ (A / (eigenvalues + value)).T, dtype="float32")
                for value in values
            ]
        else:
            self._R = backend.asarray(R, dtype="float32")
            self._A_T = backend.asarray(A.T, dtype="float32")
            d = 1.0 / (eigenvalues[None, :] + alpha[:, None])  # (n_targets, n_components)
            self._shrinkage = backend.asarray(d[:, None, :], dtype="float32")

    def predict(self, Y_train: np.ndarray, targets: slice = slice(None)) -> np.ndarray:
        """Fit every response set with its targets' alphas and predict ``X_test``.

        Parameters
        ----------
        Y_train : array of shape (n_batch, n_sets, n_train)
            Training responses of the targets ``targets``, target-major; ``n_sets``
            response sets (e.g. permutations) share the alphas of those targets.
        targets : slice
            Which of the model's targets ``Y_train`` holds (a batch of voxels): the
            decomposition is made once, for all targets.

        Returns
        -------
        predictions : array of shape (n_batch, n_sets, n_test), float32
            In the units of ``Y_train`` (each set's training mean added back), or centred
            over the test rows if the model was made with ``centred=True``.
        """
        backend = self.backend
        Y_train = np.asarray(Y_train, dtype=np.float32)
        n_targets, n_sets, n_train = Y_train.shape
        if self.method == "hat":
            group = self._group[targets]
            present = np.unique(group)
            if present.size == 1:
                hat = self._hats[present[0]]
                out = _product(backend, Y_train.reshape(-1, n_train), hat)
                out = out.reshape(n_targets, n_sets, -1)
            else:
                out = np.empty((n_targets, n_sets, self._hats[0].shape[1]), dtype=np.float32)
                for g in present:
                    members = np.flatnonzero(group == g)
                    part = Y_train[members].reshape(-1, n_train)
                    out[members] = _product(backend, part, self._hats[g]).reshape(
                        members.size, n_sets, -1
                    )
        else:
            z = backend.asarray(Y_train) @ self._R
            z = z * self._shrinkage[targets]
            z = z.reshape(n_targets * n_sets, -1)
            out = backend.to_numpy(z @ self._A_T).reshape(n_targets, n_sets, -1)
        if not self.centred:
            out += Y_train.mean(axis=-1, keepdims=True)
        return out


def _product(backend, rows: np.ndarray, matrix: Any) -> np.ndarray:
    """``rows @ matrix`` as one 2D product on the backend, back as a numpy array."""
    return backend.to_numpy(backend.asarray(rows) @ matrix)


def _check_fit_inputs(X_train, Y, X_test, alphas, rows):
    """Shapes of :func:`fit_predict_ridge_cv`'s inputs; float64 features, sorted alphas."""
    X_train = check_2d(X_train, "X_train").astype(np.float64)
    X_test = check_2d(X_test, "X_test").astype(np.float64)
    if np.ndim(Y) != 2:
        raise ValueError(f"'Y' must be a 2D array (n_rows, n_voxels); got shape {np.shape(Y)}")
    rows = np.arange(Y.shape[0]) if rows is None else np.asarray(rows)
    if rows.shape != (X_train.shape[0],) or X_test.shape[1] != X_train.shape[1]:
        raise ValueError(
            f"'rows' must give one row of 'Y' per row of 'X_train' ({X_train.shape[0]}) and "
            f"'X_test' must have the {X_train.shape[1]} columns of 'X_train'; got rows of shape "
            f"{rows.shape} and X_test of shape {X_test.shape}"
        )
    return X_train, X_test, rows, check_alphas(alphas)


def _batches(n_targets: int, n_targets_batch: int | None) -> list[slice]:
    size = n_targets if n_targets_batch is None else int(n_targets_batch)
    return [slice(start, start + size) for start in range(0, n_targets, max(size, 1))]


def _train_mean(device: Device, Y, rows: np.ndarray, batches: list[slice]):
    """Training mean of every voxel (accumulated in float64), float32 on the device."""
    if device.name == "numpy":
        mean = np.empty(Y.shape[1], dtype=np.float32)
        for cols in batches:
            mean[cols] = Y[:, cols][rows].mean(axis=0, dtype=np.float64)
        return mean
    mean = device.zeros((Y.shape[1],), "float32")
    index = device.index(rows)
    for cols in batches:
        mean[cols] = device.cast(device.sum(Y[:, cols][index], 0, "float64") / rows.size, "float32")
    return mean


def _centred_rows(device: Device, Y, rows: np.ndarray, cols: slice, y_mean):
    """``Y[rows, cols]`` minus the training mean: a new float32 array on the device."""
    if device.name == "numpy":
        y = Y[:, cols][rows]
        y -= y_mean[cols]
        return y
    return Y[:, cols][device.index(rows)] - y_mean[cols]


def _sum_squares(device: Device, y):
    """Sum of squares of every column, accumulated in float64 (the validation norms)."""
    if device.name == "numpy":
        return np.einsum("ij,ij->j", y, y, dtype=np.float64)
    y = device.cast(y, "float64")
    return device.sum(y * y, 0)


def _choose(sse: np.ndarray, sst: np.ndarray, alphas: np.ndarray, n_folds: int):
    """Best alpha index per voxel, its mean negative MSE, and the CV R^2."""
    score = -sse / n_folds
    scale = sst / n_folds
    best = np.argmax(score + TIE_SLOPE * scale * np.log(alphas)[:, None], axis=0)
    chosen = np.take_along_axis(sse, best[None], axis=0)[0]
    cv_r2 = np.where(sst > 0, 1.0 - chosen / np.where(sst > 0, sst, 1.0), 0.0)
    return best, -chosen / n_folds, cv_r2


class _Gram:
    """The training (and test) features of one outer fold, ready to be diagonalised per fold."""

    def __init__(self, form: str, X_train: np.ndarray, X_test: np.ndarray):
        self.form = form
        self.X_train, self.X_test = X_train, X_test
        if form == "kernel":
            self.K_train = X_train @ X_train.T
            self.K_test = X_test @ X_train.T

    def system(self, train: np.ndarray | None, test: np.ndarray | None, alpha_min: float | None):
        """Eigen-system of an inner fold, or of the whole training set (``train=None``)."""
        return _EigenSystem(*self.decompose(train, test), alpha_min)

    def decompose(
        self, train: np.ndarray | None, test: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Eigenvalues and the float64 ``R`` and ``A`` of a fold (``train=None``: the whole set)."""
        if self.form == "primal":
            X_tr = self.X_train if train is None else self.X_train[train]
            X_te = self.X_test if train is None else self.X_train[test]
            eigenvalues, Q = _eigh(X_tr.T @ X_tr)
            return eigenvalues, X_tr @ Q, X_te @ Q
        else:
            K_tr = self.K_train if train is None else self.K_train[np.ix_(train, train)]
            K_te = self.K_test if train is None else self.K_train[np.ix_(test, train)]
            eigenvalues, Q = _eigh(K_tr)
            return eigenvalues, Q, K_te @ Q


def _eigh(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of a Gram matrix, numerically null ones dropped."""
    eigenvalues, vectors = np.linalg.eigh(gram)
    top = max(float(eigenvalues[-1]), 0.0)
    keep = eigenvalues > top * max(gram.shape) * np.finfo(np.float64).eps
    return eigenvalues[keep], vectors[:, keep]


class _EigenSystem:
    """One fold in the eigenbasis: ``predict = A D(alpha) R^T y_train``.

    With ``alpha_min`` given, also the float64 terms of the validation error
    (``W``, the diagonal of ``C`` and its within-cluster block).
    """

    def __init__(self, eigenvalues, R, A, alpha_min: float | None):
        from himalaya.backend import get_backend

        self.backend = backend = get_backend()
        self.eigenvalues = eigenvalues
        self.R = backend.asarray(R, dtype="float32")
        self.A = backend.asarray(A, dtype="float32")
        if alpha_min is None:
            return
        C = A.T @ A
        cluster = _clusters(eigenvalues, alpha_min)
        same = cluster[:, None] == cluster[None, :]
        gaps = eigenvalues[None, :] - eigenvalues[:, None]
        self.W = backend.asarray(
            np.where(same, 0.0, C / np.where(same, 1.0, gaps)), dtype="float64"
        )
        self.C_diag = backend.asarray(np.diag(C).copy()[:, None], dtype="float64")
        self.block = _cluster_block(C, same)
        if self.block is not None:
            self.block = (self.block[0], backend.asarray(self.block[1], dtype="float64"))

    def validation_excess(self, y_train: np.ndarray, y_test: np.ndarray, alphas: np.ndarray):
        """``SSE(alpha) - ||y_test||^2`` of every alpha: array of shape (n_alphas, n_targets).

        The alpha-dependent part of the validation error, in float64; every alpha shares
        the same ``z`` and ``b``, so differences between alphas stay accurate even where
        the errors themselves differ by less than float32 resolution.
        """
        backend = self.backend
        z = self.R.T @ backend.asarray(y_train, dtype="float32")
        b = self.A.T @ backend.asarray(y_test, dtype="float32")
        z = backend.asarray(z, dtype="float64")
        cross = self.W @ z  # becomes z_i ((W z)_i - b_i), in place
        cross -= backend.asarray(b, dtype="float64")
        cross *= z
        quad = self.C_diag * z  # becomes z_i (C_S z)_i
        if self.block is not None:
            span, block = self.block
            quad[span] += block @ z[span]
        quad *= z
        d = backend.asarray(1.0 / (self.eigenvalues[None, :] + alphas[:, None]), dtype="float64")
        return 2.0 * (d @ cross) + (d * d) @ quad

    def predict(self, y_train: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Predictions with one alpha per target, (n_test, n_targets) float32 on the device."""
        backend = self.backend
        z = self.R.T @ backend.asarray(y_train, dtype="float32")
        d = 1.0 / (self.eigenvalues[:, None] + alpha[None, :])
        return self.A @ (z * backend.asarray(d, dtype="float32"))


def _clusters(eigenvalues: np.ndarray, alpha_min: float) -> np.ndarray:
    """Cluster of each (ascending) eigenvalue: neighbours closer than CLUSTER_TOL share one."""
    if eigenvalues.size == 0:
        return np.zeros(0, dtype=np.int64)
    gaps = np.diff(eigenvalues)
    new = gaps > CLUSTER_TOL * (eigenvalues[1:] + alpha_min)
    return np.concatenate([[0], np.cumsum(new)])


def _cluster_block(C: np.ndarray, same: np.ndarray) -> tuple[slice, np.ndarray] | None:
    """Off-diagonal within-cluster part of ``C`` over the span of multi-member clusters."""
    off = same & ~np.eye(same.shape[0], dtype=bool)
    members = np.flatnonzero(off.any(axis=1))
    if members.size == 0:
        return None
    span = slice(int(members[0]), int(members[-1]) + 1)
    return span, np.where(off[span, span], C[span, span], 0.0)
