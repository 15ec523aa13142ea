"""Residual representations: in-fold residualisation, planted interaction voxels, the leak."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from threadpoolctl import threadpool_limits

from brainalign.encoding import fit_encoding
from brainalign.encoding.residual import fit_residual_encoding, residualize

ALPHAS = np.logspace(-2, 4, 7)
N = 150
INTERACTION, UNIMODAL = slice(0, 8), slice(8, 16)  # voxels 16-29: noise
KW = dict(kind="concepts", groups=np.arange(N), alphas=ALPHAS, n_outer_folds=5, n_inner_folds=4)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _planted(seed, n_unimodal=40):
    """Joint features = unimodal part + interaction part Z; voxels 0-7 follow Z (the
    joint features' part the unimodal ones do not explain), 8-15 the unimodal features."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((N, n_unimodal))
    Z = rng.standard_normal((N, 3))
    X = U @ rng.standard_normal((n_unimodal, 20)) + Z @ rng.standard_normal((3, 20))
    Y = rng.standard_normal((N, 30))
    Y[:, INTERACTION] += Z @ rng.standard_normal((3, 8)) * 0.5
    Y[:, UNIMODAL] += U @ rng.standard_normal((n_unimodal, 8)) * 0.3
    return X, U, Y


def test_residualize_matches_sklearn_ols_fitted_on_the_training_rows():
    rng = np.random.default_rng(3)
    X, U1, U2 = rng.standard_normal((37, 5)), rng.standard_normal((37, 4)), rng.standard_normal((37, 2))
    train = np.arange(5, 37)
    R = residualize(X * 3 + 1, [U1, U2], train)
    model = LinearRegression().fit(np.hstack([U1, U2])[train], (X * 3 + 1)[train])
    expected = X * 3 + 1 - model.predict(np.hstack([U1, U2]))
    np.testing.assert_allclose(R, expected, atol=1e-4)
    # test rows never enter the fit: changing them changes only their own residuals
    X2 = X.copy()
    X2[:5] += 100.0
    np.testing.assert_allclose(residualize(X2 * 3 + 1, [U1, U2], train)[5:], R[5:], atol=1e-4)


def test_residual_encoding_finds_interaction_voxels_not_unimodal_ones():
    X, U, Y = _planted(0)
    r = fit_residual_encoding(X, [U], Y, random_state=0, **KW).r
    joint = fit_encoding(X, Y, random_state=0, **KW).r
    assert r[INTERACTION].min() > 0.2
    assert abs(r[UNIMODAL].mean()) < 0.05 and r[UNIMODAL].max() < 0.2
    assert joint[UNIMODAL].mean() > 0.4  # the unimodal voxels were predictable from X itself


@pytest.mark.parametrize("seed", [1, 2])
def test_residualising_on_all_the_data_leaks(seed):
    """All-data residuals bias held-out r (unimodal voxels negative, interaction voxels
    up); the in-fold residuals of fit_residual_encoding do not."""
    X, U, Y = _planted(seed)
    in_fold = fit_residual_encoding(X, [U], Y, random_state=seed, **KW).r
    leaky = fit_encoding(residualize(X, [U], np.arange(N)), Y, random_state=seed, **KW).r
    assert leaky[UNIMODAL].mean() < -0.08
    assert abs(in_fold[UNIMODAL].mean()) < 0.05
    assert leaky[INTERACTION].mean() > in_fold[INTERACTION].mean()


def test_timeseries_with_delays_and_result_shape():
    X, U, Y = _planted(4, n_unimodal=6)
    groups = np.repeat([1, 2, 3], N // 3)
    result = fit_residual_encoding(
        X, [U[:, :3], U[:, 3:]], Y, kind="timeseries", groups=groups, alphas=ALPHAS,
        delays=(0, 1), n_inner_folds=2,
    )
    assert result.predictions.shape == Y.shape and result.r.shape == (30,)
    assert result.alpha.shape == (3, 30) and set(result.fold) == {0, 1, 2}
    assert result.n_features == 20 and result.delays == (0, 1)
    assert result.r[INTERACTION].mean() > result.r[UNIMODAL].mean() + 0.2


def test_pca_residualisation_handles_unimodal_spaces_wider_than_a_fold():
    """A 300-wide unimodal space (rank 6, as real hidden states are far from full rank) and
    120 training rows: OLS cannot be fitted, the first 6 training-fold components can, and
    the planted voxels come out as with OLS on the 6 generating features."""
    X, U, Y = _planted(0, n_unimodal=6)
    wide = U @ np.random.default_rng(9).standard_normal((6, 300))
    with pytest.raises(ValueError, match="Set config 'paper002.residual_components'"):
        fit_residual_encoding(X, [wide], Y, random_state=0, **KW)
    components = fit_residual_encoding(X, [wide], Y, random_state=0, n_components=6, **KW).r
    exact = fit_residual_encoding(X, [U], Y, random_state=0, **KW).r
    np.testing.assert_allclose(components, exact, atol=1e-3)
    assert components[INTERACTION].mean() > 0.3 and abs(components[UNIMODAL].mean()) < 0.05
    with pytest.raises(ValueError, match=r"'paper002.residual_components' must be between 1 and 119"):
        residualize(X, [wide], np.arange(120), n_components=500)


def test_errors():
    X, U, Y = _planted(5, n_unimodal=6)
    with pytest.raises(ValueError, match="'unimodal' must be a non-empty list"):
        fit_residual_encoding(X, U, Y, **KW)
    with pytest.raises(ValueError, match="rows of the joint features; got 10"):
        residualize(X, [U[:10]], np.arange(50))
    with pytest.raises(ValueError, match="more training rows than unimodal features; got 5"):
        residualize(X, [U], np.arange(5))
    with pytest.raises(ValueError, match="'alpha' of the residualisation must be >= 0"):
        residualize(X, [U], np.arange(50), alpha=-1.0)
