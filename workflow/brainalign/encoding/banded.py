"""Joint encoding models of several feature spaces: banded ridge and variance partitioning.

A joint model (e.g. vision + language features) gives each feature space its own
regularisation: himalaya's banded ridge (``BandedRidgeCV``, primal) or, when the
features outnumber the training samples, multiple-kernel ridge on one linear kernel
per space (``MultipleKernelRidgeCV``). Both search the per-space weights by random
search on the simplex (``n_iter`` draws, seeded), crossed with the alpha grid, one
choice per voxel, by inner CV inside each outer training set (the same nested scheme
as :func:`~brainalign.encoding.fit_encoding`). Each space is z-scored with training
statistics and divided by the square root of its number of columns, so that every
space starts with the same total variance whatever its width.

Variance partitioning (set-theoretic; Lescroart et al. 2015, de Heer et al. 2017):
besides the joint model, the model without each space is fitted the same way. When one
space is left it is plain ridge over every penalty the joint search can give that space
(each grid alpha divided by each drawn space weight), so that the reduced model is not
handicapped by a coarser grid. Per voxel, with held-out R^2::

    unique_i = R2_joint - R2_without_i      # variance only space i explains
    shared   = R2_joint - sum_i unique_i    # variance two or more spaces explain

For two spaces A and B, ``shared = R2_A + R2_B - R2_joint``. Held-out estimates are
noisy: unique and shared parts can be slightly negative. ``unique_i > 0`` is the
joint-vs-reduced contrast (does space i add anything?).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import check_2d, check_alphas, check_delays, check_groups, check_n_folds, lookup
from .cv import KINDS, outer_splits
from .delays import make_delays
from .ridge import (
    EncodingResult,
    FoldFit,
    _check_batch,
    _check_scoring,
    _cv_r2,
    cross_validated_result,
    fit_encoding,
)

__all__ = ["JointResult", "fit_banded_encoding", "variance_partition"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class JointResult:
    """A joint model of several feature spaces and its variance partition.

    Attributes
    ----------
    spaces : tuple of str
        Names of the feature spaces, in input order.
    joint : EncodingResult
        The joint (banded) model.
    without : dict of str to EncodingResult
        For each space, the model of all the other spaces.
    unique : array of shape (n_spaces, n_voxels), float32
        Held-out R^2 only each space explains (joint minus the model without it).
    shared : array of shape (n_voxels,), float32
        Held-out R^2 explained by more than one space.
    """

    spaces: tuple[str, ...]
    joint: EncodingResult
    without: dict[str, EncodingResult]
    unique: np.ndarray
    shared: np.ndarray


def fit_banded_encoding(
    Xs: Sequence[np.ndarray],
    Y: np.ndarray,
    *,
    kind: str,
    groups: np.ndarray,
    alphas: Sequence[float] | np.ndarray,
    delays: Sequence[int] = (0,),
    n_outer_folds: int | None = 5,
    n_inner_folds: int = 5,
    n_iter: int = 20,
    random_state: int | None = 0,
    n_targets_batch: int | None = None,
    scoring: str = "fold_mean",
) -> EncodingResult:
    """Nested cross-validated banded ridge over several feature spaces (himalaya).

    Parameters
    ----------
    Xs : sequence of arrays of shape (n_samples, n_features_i)
        One array per feature space (at least two), rows matching ``Y``.
    Y : array of shape (n_samples, n_voxels)
        Brain responses.
    kind, groups, alphas, delays, n_outer_folds, n_inner_folds, n_targets_batch, scoring
        As in :func:`~brainalign.encoding.fit_encoding`; delays apply to every space.
    n_iter : int
        Draws of per-space weights in the random search (the first is uniform).
    random_state : int or None
        Seed of the concept folds and of the random search.

    Returns
    -------
    EncodingResult
        ``alpha`` holds himalaya's effective alpha per fold and voxel
        (``1 / sum_i exp(delta_i)``); ``solver`` is ``"primal"`` (banded ridge) or
        ``"kernel"`` (multiple-kernel ridge); ``n_features`` is the total over spaces.
    """
    Xs, Y, groups, grid, delays = _check_inputs(Xs, Y, kind, groups, alphas, delays)
    n_inner_folds = check_n_folds(n_inner_folds, "n_inner_folds")
    _check_batch(n_targets_batch)
    _check_iterations(n_iter)
    splits = outer_splits(kind, groups, n_outer_folds, random_state)
    _check_scoring(scoring, splits)
    X_fit = np.hstack([make_delays(X, delays, groups) for X in Xs])
    space = np.repeat(np.arange(len(Xs)), [X.shape[1] * len(delays) for X in Xs])
    form = "kernel" if X_fit.shape[1] > max(len(train) for train, _ in splits) else "primal"
    widths = [X.shape[1] for X in Xs]
    logger.info(
        "banded encoding (%s): %d samples, spaces of %s features x %d delays, %d voxels, "
        "%d folds, %s form, %d random-search draws",
        *(kind, Y.shape[0], widths, len(delays), Y.shape[1], len(splits), form, n_iter),
    )
    params = dict(alphas=grid, n_iter=n_iter, random_state=random_state, batch=n_targets_batch)

    def fitter(train, test, inner):
        return _fit_fold_banded(X_fit, space, Y, train, test, inner, form, params)

    return cross_validated_result(
        Y,
        kind,
        groups,
        splits,
        n_inner_folds,
        fitter,
        grid=grid,
        scoring=scoring,
        n_features=sum(widths),
        delays=delays,
        form=form,
    )


def variance_partition(
    Xs: Sequence[np.ndarray], Y: np.ndarray, *, names: Sequence[str], **kwargs: Any
) -> JointResult:
    """Fit the joint model and the model without each space; split the explained variance.

    Parameters
    ----------
    Xs : sequence of arrays of shape (n_samples, n_features_i)
        The feature spaces (at least two).
    Y : array of shape (n_samples, n_voxels)
        Brain responses.
    names : sequence of str
        A unique name per space.
    **kwargs
        Passed to :func:`fit_banded_encoding` (and, without ``n_iter``, to
        :func:`~brainalign.encoding.fit_encoding` for single-space models): kind,
        groups, alphas, delays, folds, seeds, batch size, scoring.

    Returns
    -------
    JointResult
    """
    names = tuple(str(n) for n in names)
    if len(names) != len(Xs) or len(set(names)) != len(names):
        raise ValueError(
            f"'names' must give one unique name per feature space ({len(Xs)}); got {list(names)}"
        )
    joint = fit_banded_encoding(Xs, Y, **kwargs)
    without = {}
    for i, name in enumerate(names):
        rest = [j for j in range(len(Xs)) if j != i]
        logger.info("model without %s (%d spaces)", name, len(rest))
        if len(rest) == 1:
            without[name] = _fit_single_space(Xs, rest[0], Y, kwargs)
        else:
            without[name] = fit_banded_encoding([Xs[j] for j in rest], Y, **kwargs)
    unique = np.stack([joint.r2 - without[name].r2 for name in names]).astype(np.float32)
    shared = (joint.r2 - unique.sum(axis=0)).astype(np.float32)
    return JointResult(names, joint, without, unique, shared)


def _fit_single_space(Xs, index: int, Y, kwargs: dict[str, Any]) -> EncodingResult:
    """Ridge on one space, with every penalty the joint model's search can give that space.

    In the joint model space ``i`` (z-scored, divided by ``sqrt(p_i)``) is penalised by
    ``alpha / gamma_i`` for every alpha of the grid and every draw ``gamma`` of the random
    search. Ridge on the z-scored space with ``p_i * alpha / gamma_i`` (and ``p_i * alpha``)
    is the same model; fitting the single-space model over all of them keeps a coarse grid
    from crediting the joint model, hence the other space, with variance it does not explain.
    """
    from himalaya.backend import get_backend
    from himalaya.kernel_ridge import generate_dirichlet_samples

    single = {k: v for k, v in kwargs.items() if k != "n_iter"}
    delays = check_delays(single.get("delays", (0,)))
    gammas = get_backend().to_numpy(
        generate_dirichlet_samples(
            kwargs.get("n_iter", 20),
            len(Xs),
            concentration=[0.1, 1.0],
            random_state=kwargs.get("random_state"),
        )
    )
    gammas[0] = 1.0 / len(Xs)  # as himalaya's random search
    grid = check_alphas(kwargs["alphas"])
    reachable = np.concatenate([grid, (grid[:, None] / gammas[None, :, index]).ravel()])
    width = np.shape(Xs[index])[1] * len(delays)
    single["alphas"] = np.unique(reachable * width)
    logger.info(
        "single-space model: %d penalties reachable in the joint search", single["alphas"].size
    )
    return fit_encoding(Xs[index], Y, **single)


def _fit_fold_banded(X_fit, space, Y, train, test, inner, form, params) -> FoldFit:
    """One outer fold of the banded model with himalaya; returns predictions, alpha, CV R^2."""
    from himalaya.backend import get_backend

    backend = get_backend()
    X_train, X_test = _scale_spaces(X_fit, space, train, test)
    y_mean = Y[train].mean(axis=0)
    y_train = Y[train] - y_mean
    model, train_input, test_input = _BANDED[form](X_train, X_test, space, inner, params)
    model.fit(train_input, y_train)
    pred = backend.to_numpy(model.predict(test_input))
    alpha = np.asarray(backend.to_numpy(model.best_alphas_), dtype=np.float64)
    cv_score = np.asarray(backend.to_numpy(model.cv_scores_), dtype=np.float64).max(axis=0)
    return np.asarray(pred, dtype=np.float32) + y_mean, alpha, _cv_r2(cv_score, y_train, inner)


def _scale_spaces(X_fit, space, train, test):
    """Z-score every column with training statistics; divide each space by sqrt(its width)."""
    X_train = X_fit[train]
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    width = np.bincount(space)[space].astype(np.float32)
    scale = std * np.sqrt(width)
    return (X_train - mean) / scale, (X_fit[test] - mean) / scale


def _solver_params(params) -> dict:
    return {
        "alphas": params["alphas"].astype(np.float32),
        "n_iter": params["n_iter"],
        "n_targets_batch": params["batch"],
        "n_targets_batch_refit": params["batch"],
        "progress_bar": False,
    }


def _make_banded_primal(X_train, X_test, space, inner, params):
    from himalaya.ridge import BandedRidgeCV

    model = BandedRidgeCV(
        groups=space,
        solver="random_search",
        solver_params=_solver_params(params),
        fit_intercept=False,
        cv=inner,
        random_state=params["random_state"],
    )
    return model, X_train, X_test


def _make_banded_kernel(X_train, X_test, space, inner, params):
    from himalaya.kernel_ridge import MultipleKernelRidgeCV

    columns = [space == i for i in range(int(space.max()) + 1)]
    K_train = np.stack([X_train[:, c] @ X_train[:, c].T for c in columns]).astype(np.float32)
    K_test = np.stack([X_test[:, c] @ X_train[:, c].T for c in columns]).astype(np.float32)
    model = MultipleKernelRidgeCV(
        kernels="precomputed",
        solver="random_search",
        solver_params=_solver_params(params),
        fit_intercept=False,
        cv=inner,
        random_state=params["random_state"],
    )
    return model, K_train, K_test


_BANDED = {"primal": _make_banded_primal, "kernel": _make_banded_kernel}


def _check_inputs(Xs, Y, kind, groups, alphas, delays):
    """Validate the inputs of :func:`fit_banded_encoding`; return them normalised."""
    lookup(dict.fromkeys(KINDS), kind, "kind")
    if len(Xs) < 2:
        raise ValueError(
            f"'Xs' must hold at least two feature spaces for a joint model; got {len(Xs)}. "
            "Use fit_encoding for one space"
        )
    Y = check_2d(Y, "Y")
    Xs = [_check_space(X, Y.shape[0], i) for i, X in enumerate(Xs)]
    groups = check_groups(groups, Y.shape[0])
    return Xs, Y, groups, check_alphas(alphas), check_delays(delays)


def _check_space(X: Any, n_samples: int, index: int) -> np.ndarray:
    X = check_2d(X, f"Xs[{index}]")
    if X.shape[0] != n_samples:
        raise ValueError(
            f"'Xs[{index}]' must have one row per sample of 'Y' ({n_samples}); got shape {X.shape}"
        )
    return X


def _check_iterations(n_iter: Any) -> None:
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"'n_iter' must be a positive integer; got {n_iter!r}")
