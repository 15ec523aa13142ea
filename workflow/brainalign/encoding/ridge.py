"""Voxel-wise encoding models: nested cross-validated ridge with one alpha per voxel.

For every outer fold: features are z-scored with training statistics, the voxels
are centred with their training means, an inner cross-validation on the outer
training set only picks one alpha per voxel, and the held-out samples are
predicted. Each sample is predicted exactly once; the predictions are scored per
voxel, by default per test fold and averaged over folds (see
:mod:`brainalign.encoding.scoring` for why not on the concatenation).

Two engines solve a fold (``ENGINES``): ``"eigen"`` (default,
:mod:`brainalign.encoding.solver`: every alpha from one eigendecomposition per
fold, voxels in batches) and ``"himalaya"`` (himalaya's ``RidgeCV`` /
``KernelRidgeCV``, the reference it is tested and benchmarked against). Both use
the kernel (dual) form when the delayed features outnumber the training samples.

The library asks ``himalaya.backend.get_backend()``; it never sets the backend
(scripts do, once, at their entry). On a torch or cupy backend the responses go to the
device once per :func:`fit_encoding` and stay there for every fold, alpha and batch
(:mod:`.device`); only the predictions of each fold come back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import check_2d, check_alphas, check_delays, check_groups, check_n_folds, lookup
from .cv import KINDS, Split, inner_splits, outer_splits
from .delays import make_delays
from .device import Device
from .scoring import MIN_FOLD_SAMPLES, SCORINGS, score_folds
from .solver import fit_predict_ridge_cv, resolve_form

__all__ = [
    "ENGINES",
    "EncodingResult",
    "FoldFit",
    "SOLVERS",
    "cross_validate",
    "cross_validated_result",
    "fit_encoding",
    "log_alpha_edges",
    "snap_to_grid",
    "standardize",
]

logger = logging.getLogger(__name__)

EDGE_WARN_SHARE = 0.10

SOLVERS = ("auto", "primal", "kernel")

#: What a fold fitter returns: test predictions (float32), alpha and inner-CV R^2 per voxel.
FoldFit = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class EncodingResult:
    """Cross-validated encoding performance of one feature set.

    Attributes
    ----------
    r : array of shape (n_voxels,), float32
        Pearson correlation between held-out predictions and data, summarised
        over folds as ``scoring`` says.
    r2 : array of shape (n_voxels,), float32
        Coefficient of determination of the held-out predictions, likewise.
    r_folds, r2_folds : arrays of shape (n_outer_folds, n_voxels), float32
        The same scores for each test fold alone (NaN for folds of < 3 samples).
    alpha : array of shape (n_outer_folds, n_voxels), float64
        Alpha chosen by the inner cross-validation, per fold and voxel.
    cv_r2 : array of shape (n_outer_folds, n_voxels), float32
        Inner-CV R^2 at the chosen alpha, computed on each outer training set
        only (what nested model selection compares; never a reported score).
    predictions : array of shape (n_samples, n_voxels), float32
        Held-out predictions, in the units of ``Y``, rows in input order.
    fold : array of shape (n_samples,), int32
        Outer fold in which each sample was predicted.
    n_features : int
        Number of input features (before delays).
    n_samples : int
        Number of samples.
    delays : tuple of int
        FIR delays used (samples).
    solver : {"primal", "kernel"}
        Which form of ridge was solved.
    scoring : {"fold_mean", "concatenated"}
        How ``r`` and ``r2`` summarise the folds.
    """

    r: np.ndarray
    r2: np.ndarray
    r_folds: np.ndarray
    r2_folds: np.ndarray
    alpha: np.ndarray
    cv_r2: np.ndarray
    predictions: np.ndarray
    fold: np.ndarray
    n_features: int
    n_samples: int
    delays: tuple[int, ...]
    solver: str
    scoring: str


def fit_encoding(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    kind: str,
    groups: np.ndarray,
    alphas: Sequence[float] | np.ndarray,
    delays: Sequence[int] = (0,),
    n_outer_folds: int | None = 5,
    n_inner_folds: int = 5,
    random_state: int | None = 0,
    n_targets_batch: int | None = None,
    solver: str = "auto",
    scoring: str = "fold_mean",
    engine: str = "eigen",
) -> EncodingResult:
    """Fit and score a voxel-wise ridge encoding model by nested cross-validation.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Stimulus features (for ``"timeseries"``: runs concatenated, TR-aligned).
    Y : array of shape (n_samples, n_voxels)
        Brain responses, rows matching ``X``.
    kind : {"timeseries", "concepts"}
        Design; sets the splits (see :func:`outer_splits`, :func:`inner_splits`).
    groups : array of shape (n_samples,)
        Run label (timeseries) or concept label (concepts) of every sample.
    alphas : sequence of float
        Ridge penalties to choose from, per voxel and fold (positive).
    delays : sequence of int
        FIR delays in samples, ``"timeseries"`` only (:func:`make_delays`).
    n_outer_folds : int or None
        Outer folds for ``"concepts"``; ``"timeseries"`` uses one per run.
    n_inner_folds : int
        Inner folds used to choose alphas.
    random_state : int or None
        Seed of the concept shuffle of the outer folds.
    n_targets_batch : int or None
        Voxels solved at a time (memory); None solves all at once.
    solver : {"auto", "primal", "kernel"}
        ``"auto"`` uses the kernel form when the (delayed) features outnumber
        the largest training set, else the primal form. Both give the same model.
    scoring : {"fold_mean", "concatenated"}
        ``"fold_mean"`` (default): Pearson r and R^2 of each test fold, averaged
        over folds with equal weight; needs >= 3 samples per test fold.
        ``"concatenated"``: r and R^2 of all held-out predictions together
        (negatively biased for null voxels; see :mod:`.scoring`).
    engine : {"eigen", "himalaya"}
        Who solves a fold (see the module docstring); same model, same alphas.

    Returns
    -------
    EncodingResult
        Scores (see :func:`score_folds`), chosen alphas and the predictions.
    """
    X, Y, groups, grid, delays = _check_inputs(X, Y, kind, groups, alphas, delays)
    n_inner_folds = check_n_folds(n_inner_folds, "n_inner_folds")
    _check_batch(n_targets_batch)
    fit_fold = lookup(ENGINES, engine, "engine")
    splits = outer_splits(kind, groups, n_outer_folds, random_state)
    _check_scoring(scoring, splits)
    X_fit = make_delays(X, delays, groups)
    form = resolve_form(solver, X_fit.shape[1], max(len(train) for train, _ in splits))
    logger.info(
        "encoding (%s): %d samples, %d features x %d delays, %d voxels, %d folds, %s ridge (%s)",
        kind,
        X.shape[0],
        X.shape[1],
        len(delays),
        Y.shape[1],
        len(splits),
        form,
        engine,
    )

    Y_fit = _on_device(Y) if engine == "eigen" else Y

    def fitter(train, test, inner):
        return fit_fold(X_fit, Y_fit, train, test, grid, inner, form, n_targets_batch)

    return cross_validated_result(
        Y,
        kind,
        groups,
        splits,
        n_inner_folds,
        fitter,
        grid=grid,
        scoring=scoring,
        n_features=X.shape[1],
        delays=delays,
        form=form,
    )


def cross_validated_result(
    Y: np.ndarray,
    kind: str,
    groups: np.ndarray,
    splits: Sequence[Split],
    n_inner_folds: int,
    fitter: Callable[[np.ndarray, np.ndarray, Sequence[Split]], FoldFit],
    *,
    grid: np.ndarray,
    scoring: str,
    n_features: int,
    delays: tuple[int, ...],
    form: str,
) -> EncodingResult:
    """Run :func:`cross_validate` with ``fitter``, score the folds, wrap an EncodingResult.

    The shared last step of :func:`fit_encoding` and of the banded (joint) models: the
    chosen alphas are checked against the edges of ``grid``, the held-out predictions are
    scored with ``scoring`` per outer fold.
    """
    predictions, alpha, cv_r2, fold = cross_validate(
        Y.shape, kind, groups, splits, n_inner_folds, fitter
    )
    log_alpha_edges(alpha, grid)
    scores = [s.astype(np.float32) for s in score_folds(Y, predictions, fold, scoring)]
    return EncodingResult(
        *scores,
        alpha=alpha,
        cv_r2=cv_r2.astype(np.float32),
        predictions=predictions,
        fold=fold,
        n_features=n_features,
        n_samples=Y.shape[0],
        delays=delays,
        solver=form,
        scoring=scoring,
    )


def cross_validate(
    shape: tuple[int, int],
    kind: str,
    groups: np.ndarray,
    splits: list[Split],
    n_inner_folds: int,
    fit_fold: Callable[[np.ndarray, np.ndarray, list[Split]], FoldFit],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run ``fit_fold`` on every outer fold, with inner folds made from its training set only.

    Parameters
    ----------
    shape : (n_samples, n_voxels)
        Shape of the responses.
    kind : {"timeseries", "concepts"}
        Design (sets the inner splits, see :func:`inner_splits`).
    groups : array of shape (n_samples,)
        Run or concept label of every sample.
    splits : list of (train_idx, test_idx)
        Outer folds.
    n_inner_folds : int
        Inner folds wanted.
    fit_fold : callable
        ``fit_fold(train, test, inner) -> (predictions, alpha, cv_r2)``; ``inner``
        holds positions within ``train``.

    Returns
    -------
    predictions : array of shape (n_samples, n_voxels), float32
    alpha, cv_r2 : arrays of shape (n_folds, n_voxels), float64
    fold : array of shape (n_samples,), int32
    """
    predictions = np.zeros(shape, dtype=np.float32)
    alpha = np.zeros((len(splits), shape[1]))
    cv_r2 = np.zeros((len(splits), shape[1]))
    fold = np.full(shape[0], -1, dtype=np.int32)
    for k, (train, test) in enumerate(splits):
        inner = inner_splits(kind, groups[train], n_inner_folds)
        predictions[test], alpha[k], cv_r2[k] = fit_fold(train, test, inner)
        fold[test] = k
        logger.info(
            "fold %d/%d: %d train, %d test samples, %d inner folds, median alpha %.3g",
            k + 1,
            len(splits),
            train.size,
            test.size,
            len(inner),
            np.median(alpha[k]),
        )
    return predictions, alpha, cv_r2, fold


def standardize(
    X: np.ndarray, train: np.ndarray, test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Z-score the training and test rows of ``X`` with the training mean and std.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    train, test : int arrays
        Row indices.

    Returns
    -------
    X_train, X_test : arrays of shape (n_train, n_features), (n_test, n_features), float32
        Constant training columns become 0.
    """
    X_train = X[train]
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    return (X_train - mean) / std, (X[test] - mean) / std


def _fit_fold_eigen(X_fit, Y, train, test, grid, inner, form, n_targets_batch) -> FoldFit:
    """One outer fold with :func:`fit_predict_ridge_cv` (Y is never copied whole)."""
    X_train, X_test = standardize(X_fit, train, test)
    fit = fit_predict_ridge_cv(
        X_train, Y, X_test, grid, inner, rows=train, form=form, n_targets_batch=n_targets_batch
    )
    return fit.predictions, fit.alpha, fit.cv_r2


def _on_device(Y: np.ndarray):
    """``Y`` moved once to the backend's device (float32) for the whole job; numpy: as is."""
    device = Device()
    if device.name == "numpy":
        return Y
    logger.info("responses on the %s device for the whole fit (float32)", device.name)
    return device.put(Y, "float32")


def _fit_fold_himalaya(X_fit, Y, train, test, grid, inner, form, n_targets_batch) -> FoldFit:
    """One outer fold with himalaya's RidgeCV / KernelRidgeCV (the reference)."""
    from himalaya.backend import get_backend

    backend = get_backend()
    X_train, X_test = standardize(X_fit, train, test)
    y_mean = Y[train].mean(axis=0)
    y_train = Y[train] - y_mean
    model = _HIMALAYA[form](grid.astype(np.float32), inner, n_targets_batch)
    model.fit(X_train, y_train)
    pred = backend.to_numpy(model.predict(X_test))
    chosen = snap_to_grid(backend.to_numpy(model.best_alphas_), grid)
    cv_r2 = _cv_r2(backend.to_numpy(model.cv_scores_).reshape(-1, Y.shape[1])[-1], y_train, inner)
    return np.asarray(pred, dtype=np.float32) + y_mean, chosen, cv_r2


def _cv_r2(cv_score: np.ndarray, y_train: np.ndarray, inner: list[Split]) -> np.ndarray:
    """Inner-CV R^2 from himalaya's mean negative MSE, as :mod:`.solver` defines it."""
    ss = np.mean(
        [np.mean(np.square(y_train[test], dtype=np.float64), axis=0) for _, test in inner], axis=0
    )
    return np.where(ss > 0, 1.0 + cv_score / np.where(ss > 0, ss, 1.0), 0.0)


def _make_primal(alphas: np.ndarray, cv: list[Split], n_targets_batch: int | None) -> Any:
    from himalaya.ridge import RidgeCV

    params = dict(
        n_targets_batch=n_targets_batch, n_targets_batch_refit=n_targets_batch, warn=False
    )
    return RidgeCV(alphas=alphas, fit_intercept=False, cv=cv, solver_params=params)


def _make_kernel(alphas: np.ndarray, cv: list[Split], n_targets_batch: int | None) -> Any:
    from himalaya.kernel_ridge import KernelRidgeCV

    params = dict(n_targets_batch=n_targets_batch, n_targets_batch_refit=n_targets_batch)
    return KernelRidgeCV(
        alphas=alphas, kernel="linear", fit_intercept=False, cv=cv, solver_params=params, warn=False
    )


_HIMALAYA = {"primal": _make_primal, "kernel": _make_kernel}

ENGINES: dict[str, Callable[..., FoldFit]] = {
    "eigen": _fit_fold_eigen,
    "himalaya": _fit_fold_himalaya,
}


def _check_inputs(X, Y, kind, groups, alphas, delays):
    """Validate the inputs of :func:`fit_encoding`; return them normalised."""
    lookup(dict.fromkeys(KINDS), kind, "kind")
    X = check_2d(X, "X")
    Y = check_2d(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            "'X' and 'Y' must have the same number of samples (rows); "
            f"got X shape {X.shape} and Y shape {Y.shape}"
        )
    groups = check_groups(groups, X.shape[0])
    grid = check_alphas(alphas)
    delays = check_delays(delays)
    if kind != "timeseries" and delays != (0,):
        raise ValueError(
            f"'delays' apply only to kind 'timeseries'; got delays {delays} with kind "
            f"'{kind}'. Use delays=(0,)"
        )
    return X, Y, groups, grid, delays


def _check_batch(n_targets_batch: Any) -> None:
    """``n_targets_batch`` is None or a positive int."""
    is_int = isinstance(n_targets_batch, (int, np.integer)) and not isinstance(
        n_targets_batch, bool
    )
    if n_targets_batch is not None and not (is_int and n_targets_batch >= 1):
        raise ValueError(
            f"'n_targets_batch' must be a positive integer or None; got {n_targets_batch!r}"
        )


def _check_scoring(scoring: str, splits: list[Split]) -> None:
    """Fail before fitting if ``scoring`` is unknown or the test folds are too small."""
    lookup(dict.fromkeys(SCORINGS), scoring, "scoring")
    smallest = min(test.size for _, test in splits)
    if scoring == "fold_mean" and smallest < MIN_FOLD_SAMPLES:
        raise ValueError(
            f"scoring 'fold_mean' needs >= {MIN_FOLD_SAMPLES} samples per test fold; got a "
            f"fold of {smallest}. Use fewer outer folds or scoring='concatenated'"
        )


def snap_to_grid(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Replace each value by the nearest grid alpha (in log space), undoing float32 round-off.

    Parameters
    ----------
    values : array of shape (n,)
        Alphas as returned by himalaya (``exp(-log(alpha))`` in float32).
    grid : array of shape (n_alphas,)
        The alpha grid, sorted.

    Returns
    -------
    snapped : array of shape (n,), float64
    """
    log_grid = np.log(grid)
    distance = np.abs(np.log(np.asarray(values, dtype=np.float64))[:, None] - log_grid[None, :])
    return grid[np.argmin(distance, axis=1)]


def log_alpha_edges(alpha: np.ndarray, grid: np.ndarray) -> float:
    """Log the share of chosen alphas at either end of the grid; warn above 10%.

    Parameters
    ----------
    alpha : array of shape (n_folds, n_voxels)
        Chosen alphas (grid values).
    grid : array of shape (n_alphas,)
        The sorted alpha grid.

    Returns
    -------
    share : float
        Fraction of (fold, voxel) choices at the smallest or largest alpha;
        NaN for a single-alpha grid (nothing was chosen).
    """
    if grid.size < 2:
        logger.info("single alpha %.3g: no alpha selection", grid[0])
        return float("nan")
    low, high = float(np.mean(alpha == grid[0])), float(np.mean(alpha == grid[-1]))
    message = (
        "%.1f%% of chosen alphas lie at an edge of the grid (%.1f%% at min %.3g, "
        "%.1f%% at max %.3g)"
    )
    args = (100 * (low + high), 100 * low, grid[0], 100 * high, grid[-1])
    if low + high > EDGE_WARN_SHARE:
        logger.warning(
            message + "; widen 'alphas' unless these are noise voxels (which pick " "the max)",
            *args,
        )
    else:
        logger.info(message, *args)
    return low + high
