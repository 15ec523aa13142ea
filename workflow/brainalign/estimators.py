"""A voxel-wise ridge encoding model in scikit-learn style, for notebooks.

:class:`RidgeEncoder` fits one ridge per voxel, each with its own alpha chosen by an inner
cross-validation on the training data (the folds of :func:`~brainalign.encoding.cv.inner_splits`:
whole runs for time series, whole concepts for concept designs), and keeps the weights, so
that ``predict`` works on new stimuli. Alphas are chosen with the workflow's solver
(:func:`~brainalign.encoding.solver.fit_predict_ridge_cv`); the weights are the closed-form
ridge solution at each voxel's alpha, from one SVD of the training features.

For *held-out* scores (what a paper reports) use :func:`brainalign.fit_encoding`, which nests
this inside an outer cross-validation; ``RidgeEncoder.score`` scores whatever data it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .encoding._checks import check_2d, check_alphas, check_delays, check_groups, check_n_folds, lookup
from .encoding.cv import KINDS, inner_splits
from .encoding.delays import make_delays
from .encoding.solver import fit_predict_ridge_cv

__all__ = ["RidgeEncoder"]

_SCORINGS = ("r", "r2")


class RidgeEncoder:
    """Ridge regression from stimulus features to brain responses, one alpha per voxel.

    Parameters
    ----------
    alphas : sequence of float
        Ridge penalties to choose from (positive); one is chosen per voxel.
    delays : sequence of int
        FIR delays in samples (``kind="timeseries"``): the features of sample ``t - d`` are
        stacked for every ``d`` (:func:`~brainalign.encoding.delays.make_delays`).
    n_folds : int
        Inner folds used to choose the alphas.
    kind : {"timeseries", "concepts"}
        Design: sets the inner folds (runs / contiguous blocks, or concepts).
    scoring : {"r", "r2"}
        What :meth:`score` returns per voxel: Pearson r or the coefficient of determination.

    Attributes
    ----------
    coef_ : array of shape (n_features * n_delays, n_voxels)
        Weights on the standardised, delayed features (himalaya's orientation).
    intercept_ : array of shape (n_voxels,)
        Training mean of every voxel.
    alphas_ : array of shape (n_voxels,)
        Alpha chosen for every voxel (a value of ``alphas``).
    cv_scores_ : array of shape (n_voxels,)
        Inner-CV R^2 at the chosen alpha (training data only).
    n_features_in_ : int
        Number of features before delays.

    Examples
    --------
    >>> enc = RidgeEncoder(alphas=[1, 10, 100], delays=[1, 2], n_folds=3).fit(X, Y, groups=runs)
    >>> enc.predict(X_new, groups=new_runs).shape  # doctest: +SKIP
    (n_new, n_voxels)
    """

    def __init__(
        self,
        alphas: Sequence[float] = tuple(np.logspace(-2, 6, 9)),
        delays: Sequence[int] = (0,),
        n_folds: int = 5,
        kind: str = "timeseries",
        scoring: str = "r",
    ) -> None:
        self.alphas = alphas
        self.delays = delays
        self.n_folds = n_folds
        self.kind = kind
        self.scoring = scoring

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters (scikit-learn's protocol)."""
        return {k: getattr(self, k) for k in ("alphas", "delays", "n_folds", "kind", "scoring")}

    def set_params(self, **params) -> RidgeEncoder:
        """Set constructor parameters (scikit-learn's protocol); returns self."""
        for key, value in params.items():
            if key not in self.get_params():
                raise ValueError(f"RidgeEncoder has no parameter {key!r}; use one of {sorted(self.get_params())}")
            setattr(self, key, value)
        return self

    def fit(self, X: np.ndarray, Y: np.ndarray, groups: np.ndarray | None = None) -> RidgeEncoder:
        """Choose one alpha per voxel by inner CV and fit the weights on all of ``X``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Stimulus features (time series: runs concatenated, TR-aligned).
        Y : array of shape (n_samples, n_voxels)
            Responses, rows matching ``X``.
        groups : array of shape (n_samples,) or None
            Run (time series) or concept label of every sample. None: one run, or one
            concept per sample.

        Returns
        -------
        self
        """
        lookup(dict.fromkeys(KINDS), self.kind, "kind")
        lookup(dict.fromkeys(_SCORINGS), self.scoring, "scoring")
        X, Y = check_2d(X, "X"), check_2d(Y, "Y")
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"'X' and 'Y' must have the same number of rows; got {X.shape} and {Y.shape}")
        groups = self._groups(groups, X.shape[0])
        grid = check_alphas(self.alphas)
        X_fit = self._design(X, groups, fitting=True)
        inner = inner_splits(self.kind, groups, check_n_folds(self.n_folds, "n_folds"))
        chosen = fit_predict_ridge_cv(X_fit, Y, X_fit[:1], grid, inner)
        self.alphas_, self.cv_scores_ = chosen.alpha, chosen.cv_r2
        self.intercept_ = Y.mean(axis=0, dtype=np.float64)
        self.coef_ = _ridge_weights(X_fit, Y - self.intercept_, self.alphas_)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """Predicted responses, array of shape (n_samples, n_voxels).

        ``groups`` gives the runs of ``X`` so that delays do not cross run boundaries.
        """
        self._check_fitted()
        X = check_2d(X, "X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"'X' must have the {self.n_features_in_} features the encoder was fitted on; "
                f"got {X.shape[1]}"
            )
        X_fit = self._design(X, self._groups(groups, X.shape[0]), fitting=False)
        return X_fit @ self.coef_ + self.intercept_

    def score(self, X: np.ndarray, Y: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """Per-voxel Pearson r (or R^2, see ``scoring``) of the predictions of ``X`` against ``Y``.

        Returns
        -------
        scores : array of shape (n_voxels,)
            NaN where a voxel or its prediction is constant (r).
        """
        Y = check_2d(Y, "Y")
        pred = self.predict(X, groups)
        if self.scoring == "r2":
            ss_res = np.sum((Y - pred) ** 2, axis=0)
            ss_tot = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0)
            return 1.0 - ss_res / ss_tot
        yc, pc = Y - Y.mean(axis=0), pred - pred.mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sum(yc * pc, axis=0) / np.sqrt(np.sum(yc**2, axis=0) * np.sum(pc**2, axis=0))

    def _groups(self, groups, n: int) -> np.ndarray:
        if groups is None:
            return np.zeros(n, dtype=int) if self.kind == "timeseries" else np.arange(n)
        return check_groups(groups, n)

    def _design(self, X: np.ndarray, groups: np.ndarray, fitting: bool) -> np.ndarray:
        delays = check_delays(self.delays)
        if self.kind != "timeseries" and delays != (0,):
            raise ValueError(f"'delays' apply only to kind 'timeseries'; got {delays} with kind {self.kind!r}. Use delays=(0,)")
        X_delayed = make_delays(np.asarray(X, dtype=np.float32), delays, groups).astype(np.float64)
        if fitting:
            self.x_mean_ = X_delayed.mean(axis=0)
            scale = X_delayed.std(axis=0)
            self.x_scale_ = np.where(scale == 0, 1.0, scale)
        return (X_delayed - self.x_mean_) / self.x_scale_

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("this RidgeEncoder is not fitted yet; call fit(X, Y) first")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"RidgeEncoder({params})"


def _ridge_weights(X: np.ndarray, Y: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Closed-form ridge weights, one alpha per column of ``Y``, from one thin SVD of ``X``.

    ``W[:, j] = V diag(s / (s^2 + alpha_j)) U^T Y[:, j]``: array of shape (n_features, n_voxels).
    """
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    UtY = U.T @ Y
    W = np.empty((X.shape[1], Y.shape[1]))
    for alpha in np.unique(alphas):
        cols = np.flatnonzero(alphas == alpha)
        W[:, cols] = Vt.T @ ((s / (s**2 + alpha))[:, None] * UtY[:, cols])
    return W
