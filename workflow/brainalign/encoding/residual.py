"""Residual representations: joint features with the unimodal features regressed out.

Paper 002 asks whether a joint (vision + language [+ audio]) representation predicts the
brain beyond what its unimodal counterparts carry. The residual of the joint features on
the unimodal ones is that part, and it is encoded per voxel like any feature space.

The residualising regression is ordinary least squares from the z-scored unimodal
features (all sets side by side) to the joint features (:func:`residualize`; a fixed
ridge penalty is allowed, but its shrinkage leaves a scaled copy of the unimodal features
in the residuals, which the z-scoring before the encoding restores: measured, a ridge
whose alpha was chosen by inner CV let unimodal-only voxels reach r = 0.62, against
0.49 for the planted interaction voxels). It is fitted inside each outer training fold
only and applied to that fold's training rows (in-sample residuals, orthogonal to the
unimodal features) and test rows (out-of-sample). The residuals then go through exactly
the encoding's fold (FIR delays, z-scoring with training statistics, nested ridge by
:func:`~brainalign.encoding.solver.fit_predict_ridge_cv`) with the encoding's outer and
inner folds (:func:`~brainalign.encoding.ridge.fit_encoding`'s ``outer_splits`` /
``inner_splits``, through :func:`~brainalign.encoding.ridge.cross_validated_result`).

Why in-fold. Residualising on all the data makes the residuals exactly orthogonal to the
unimodal features over all rows, hence *not* orthogonal within a training fold: the
training part of a residual correlates with the unimodal features exactly as much as the
test part does, with the opposite sign (the two sums cancel). A voxel driven only by the
unimodal features is then fitted through that correlation in training and predicted with
the wrong sign in test: its held-out r is biased (measured in
tests/test_encoding_residual.py: negative for unimodal voxels, while the in-fold residual
gives r centred on 0), and the interaction
voxels score higher than a residualisation fitted without the test rows would let them
(the test rows' residuals are cleaned by a map that saw them). Measured (150 samples, 40
unimodal and 20 joint features, 5 folds, 6 seeds, the planted data of the tests):
unimodal voxels mean r -0.147 (all data) vs -0.004 (in-fold);
interaction voxels 0.477 vs 0.461, higher in 6 of 6 seeds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ._checks import check_2d, check_n_folds
from .cv import outer_splits
from .delays import make_delays
from .ridge import (
    EncodingResult,
    _check_batch,
    _check_inputs,
    _check_scoring,
    cross_validated_result,
    standardize,
)
from .solver import fit_predict_ridge_cv, resolve_form

__all__ = ["fit_residual_encoding", "residualize"]

logger = logging.getLogger(__name__)


def residualize(
    X: np.ndarray,
    unimodal: Sequence[np.ndarray],
    train: np.ndarray,
    alpha: float = 0.0,
    n_components: int | None = None,
) -> np.ndarray:
    """Joint features minus their linear prediction from the unimodal features.

    Parameters
    ----------
    X : array of shape (n_samples, n_joint)
        Joint features.
    unimodal : sequence of arrays of shape (n_samples, n_unimodal_i)
        Unimodal feature sets (language-only, vision-only, ...), z-scored with the
        training rows' statistics and put side by side (n_unimodal in all).
    train : int array of shape (n_train,)
        Rows the regression is fitted on (an outer training fold; never test rows).
    alpha : float
        0 (default): ordinary least squares, which needs n_train > n_unimodal. A positive
        value: ridge with that penalty (its shrinkage leaves part of the unimodal
        features in the residuals; see the module docstring).
    n_components : int, optional
        Regress on the first ``n_components`` principal components of the z-scored
        unimodal features instead of on all of them, the components computed from the
        training rows only (SVD). For unimodal spaces wider than the training fold:
        OLS on the components stays exact on them; what they leave out (the low-variance
        directions) stays in the residuals.

    Returns
    -------
    residuals : array of shape (n_samples, n_joint), float32
        ``X`` minus the fitted map applied to every row (in-sample on ``train``, where
        they are orthogonal to the unimodal features for OLS; out-of-sample elsewhere).
    """
    U = np.hstack([check_2d(u, f"unimodal[{i}]") for i, u in enumerate(unimodal)])
    X = check_2d(X, "X")
    train = np.asarray(train)
    if U.shape[0] != X.shape[0]:
        raise ValueError(
            f"unimodal features must have the {X.shape[0]} rows of the joint features; "
            f"got {U.shape[0]}. Pair them with the same stimuli"
        )
    if not (np.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"'alpha' of the residualisation must be >= 0; got {alpha!r}")
    width = U.shape[1] if n_components is None else int(n_components)
    if n_components is not None and not 1 <= width <= min(U.shape[1], train.size - 1):
        raise ValueError(
            f"config 'paper002.residual_components' must be between 1 and "
            f"{min(U.shape[1], train.size - 1)} (unimodal features, training rows - 1); got "
            f"{n_components}. Lower it"
        )
    if alpha == 0 and train.size <= width:
        raise ValueError(
            f"OLS residualisation needs more training rows than unimodal features; got "
            f"{train.size} rows and {U.shape[1]} features. Set config "
            "'paper002.residual_components' (PCA within the fold) or a positive "
            "'paper002.residual_alpha'"
        )
    U_train, U_all = standardize(U.astype(np.float64), train, np.arange(U.shape[0]))
    if n_components is not None:
        basis = np.linalg.svd(U_train, full_matrices=False)[2][:width].T
        U_train, U_all = U_train @ basis, U_all @ basis
    X = X.astype(np.float64)
    x_mean = X[train].mean(axis=0)
    gram = U_train.T @ U_train + alpha * np.eye(U_train.shape[1])
    coef = np.linalg.solve(gram, U_train.T @ (X[train] - x_mean))
    return (X - x_mean - U_all @ coef).astype(np.float32)


def fit_residual_encoding(
    X: np.ndarray,
    unimodal: Sequence[np.ndarray],
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
    scoring: str = "fold_mean",
    alpha: float = 0.0,
    n_components: int | None = None,
) -> EncodingResult:
    """Encode the residual of joint on unimodal features, residualised inside each fold.

    Parameters
    ----------
    X : array of shape (n_samples, n_joint)
        Joint features (e.g. a VLM's joint-condition layer), rows matching ``Y``.
    unimodal : sequence of arrays of shape (n_samples, n_unimodal_i)
        Unimodal features to regress out (language-only, vision-only, audio-only).
    Y : array of shape (n_samples, n_voxels)
        Brain responses.
    kind, groups, alphas, delays, n_outer_folds, n_inner_folds, random_state,
    n_targets_batch, scoring
        As :func:`~brainalign.encoding.ridge.fit_encoding` (same folds, same seeds).
    alpha : float
        Penalty of the residualising regression (:func:`residualize`; 0 = OLS).
    n_components : int, optional
        Principal components of the unimodal features regressed out (:func:`residualize`;
        None = all the features).

    Returns
    -------
    EncodingResult
        Held-out r, R^2, predictions and folds of the residual features
        (``n_features`` = n_joint).
    """
    X, Y, groups, grid, delays = _check_inputs(X, Y, kind, groups, alphas, delays)
    if isinstance(unimodal, np.ndarray) or not len(unimodal):
        raise ValueError(
            "'unimodal' must be a non-empty list of (n_samples, n_features) arrays; "
            f"got {type(unimodal).__name__}. Wrap a single set in a list"
        )
    n_inner_folds = check_n_folds(n_inner_folds, "n_inner_folds")
    _check_batch(n_targets_batch)
    splits = outer_splits(kind, groups, n_outer_folds, random_state)
    _check_scoring(scoring, splits)
    form = resolve_form("auto", X.shape[1] * len(delays), max(len(t) for t, _ in splits))
    logger.info(
        "residual encoding (%s): %d joint features minus %d unimodal sets, %d voxels, "
        "%d folds, residualised inside each training fold",
        kind, X.shape[1], len(unimodal), Y.shape[1], len(splits),
    )

    def fitter(train, test, inner):
        residuals = make_delays(
            residualize(X, unimodal, train, alpha, n_components), delays, groups)
        R_train, R_test = standardize(residuals, train, test)
        fit = fit_predict_ridge_cv(
            R_train, Y, R_test, grid, inner, rows=train, form=form,
            n_targets_batch=n_targets_batch,
        )
        return fit.predictions, fit.alpha, fit.cv_r2

    return cross_validated_result(
        Y, kind, groups, splits, n_inner_folds, fitter, grid=grid, scoring=scoring,
        n_features=X.shape[1], delays=delays, form=form,
    )
