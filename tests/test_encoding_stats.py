"""Tests of per-voxel significance (permutations, FDR) and noise ceilings of encoding scores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control, pearsonr
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from brainalign.encoding import fit_encoding, fit_predict_ridge_cv, make_delays, standardize
from brainalign.encoding.ceiling import noise_ceiling, normalise_scores
from brainalign.encoding.stats import (
    block_permutation,
    fdr_bh,
    permutation_pvalues,
    permutation_test,
)

ALPHAS = np.logspace(-2, 5, 8)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _ar1(rng: np.random.Generator, n: int, m: int, phi: float) -> np.ndarray:
    """Stationary AR(1) series of shape (n, m) with unit innovations."""
    noise = rng.standard_normal((n, m))
    out = np.empty_like(noise)
    out[0] = noise[0] / np.sqrt(1 - phi**2)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + noise[t]
    return out


def _runs(rng, make, n_runs, n_trs):
    return np.vstack([make(rng, n_trs) for _ in range(n_runs)])


# ----------------------------------------------------------------------------- FDR


def test_fdr_bh_matches_scipy():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=300), rng.uniform(0, 1e-3, size=40), [0.0, 1.0, 0.5, 0.5]])
    np.testing.assert_allclose(fdr_bh(p), false_discovery_control(p, method="bh"), rtol=1e-12)
    with_nan = p.copy()
    with_nan[[3, 50]] = np.nan
    q = fdr_bh(with_nan)
    assert np.isnan(q[[3, 50]]).all()
    valid = np.isfinite(with_nan)
    np.testing.assert_allclose(q[valid], false_discovery_control(with_nan[valid]), rtol=1e-12)


@pytest.mark.parametrize(
    ("p", "match"),
    [
        (np.ones((2, 2)), r"^'p' must be a 1D array of p-values; got shape \(2, 2\)$"),
        (np.array([0.1, 1.5]), r"^'p' must hold p-values in \[0, 1\]"),
    ],
)
def test_fdr_bh_errors(p, match):
    with pytest.raises(ValueError, match=match):
        fdr_bh(p)


# ----------------------------------------------------------------------------- permutations


def test_block_permutation_moves_whole_blocks():
    order = block_permutation(23, 5, np.random.default_rng(1))
    assert sorted(order) == list(range(23))
    position = np.argsort(order)
    for start in range(0, 23, 5):
        block = position[start : start + 5]
        assert np.all(np.diff(block) == 1)  # the block's samples stay together, in order
    assert not np.array_equal(order, np.arange(23))


def _null_timeseries(seed):
    """4 runs x 100 TRs: smooth features (AR 0.9), AR(1) phi = 0.5 noise voxels, no signal."""
    rng = np.random.default_rng(seed)
    runs = np.repeat([1, 2, 3, 4], 100)
    X = _runs(rng, lambda r, n: _ar1(r, n, 20, 0.9), 4, 100)
    Y = _runs(rng, lambda r, n: _ar1(r, n, 300, 0.5), 4, 100).astype(np.float32)
    return X, Y, runs


def _random_split_pvalues(X, Y, runs, seed):
    """What a naive analysis does: random folds of time points, labels permuted freely."""
    X_fit = make_delays(X, (1, 2, 3, 4), runs)
    splits = list(KFold(4, shuffle=True, random_state=seed).split(X_fit))
    alpha = []
    for train, test in splits:
        inner = list(KFold(4, shuffle=True, random_state=seed).split(train))
        fit = fit_predict_ridge_cv(
            *standardize(X_fit, train, test)[:1],
            Y,
            standardize(X_fit, train, test)[1],
            ALPHAS,
            inner,
            rows=train,
        )
        alpha.append(fit.alpha)
    return permutation_pvalues(
        X_fit,
        Y,
        splits,
        np.array(alpha),
        kind="concepts",
        groups=np.arange(len(Y)),
        n_permutations=200,
        random_state=seed,
    ).p


def test_null_false_positive_rate_grouped_cv_versus_random_splits():
    """AR(1) noise (phi = 0.5), no signal: leave-one-run-out CV with a block-permutation null
    declares <= 5% of voxels significant at q = 0.05 (and its p-values are close to
    calibrated); random splits of time points, tested the same way, declare most of them."""
    grouped_q, grouped_p, random_q = [], [], []
    for seed in (0, 1):
        X, Y, runs = _null_timeseries(seed)
        result = fit_encoding(
            X, Y, kind="timeseries", groups=runs, alphas=ALPHAS, delays=(1, 2, 3, 4)
        )
        test = permutation_test(
            result,
            X,
            Y,
            kind="timeseries",
            groups=runs,
            n_permutations=200,
            block_size=10,
            random_state=seed,
        )
        np.testing.assert_allclose(test.observed, result.r, atol=1e-4)
        assert np.mean(test.p_perm < 0.05) <= 0.09
        grouped_p.append(np.mean(test.p < 0.05))
        grouped_q.append(np.mean(fdr_bh(test.p) <= 0.05))
        random_q.append(np.mean(fdr_bh(_random_split_pvalues(X, Y, runs, seed)) <= 0.05))
    assert max(grouped_q) <= 0.05, grouped_q
    assert np.mean(grouped_p) <= 0.09, grouped_p  # uncorrected: 5% expected (6-7% measured)
    assert min(random_q) > 0.5, random_q  # leakage through autocorrelation


def test_permutation_test_detects_planted_voxels():
    rng = np.random.default_rng(3)
    runs = np.repeat([1, 2, 3], 90)
    X = _runs(rng, lambda r, n: _ar1(r, n, 8, 0.7), 3, 90)
    signal = make_delays(X, (2,), runs) @ rng.standard_normal((8, 15))
    noise = _runs(rng, lambda r, n: _ar1(r, n, 45, 0.5), 3, 90)
    Y = (noise + np.hstack([signal / signal.std(0), np.zeros((270, 30))])).astype(np.float32)
    result = fit_encoding(X, Y, kind="timeseries", groups=runs, alphas=ALPHAS, delays=(1, 2, 3))
    test = permutation_test(
        result, X, Y, kind="timeseries", groups=runs, n_permutations=100, random_state=0
    )
    q = fdr_bh(test.p)
    assert np.all(q[:15] <= 0.05)
    assert np.mean(q[15:] <= 0.05) <= 0.05
    assert np.all(test.p_perm[:15] == 1 / 101)  # the empirical p stops at 1 / (n + 1)
    assert np.median(test.p[:15]) < 1e-4  # the normal fit to the null does not
    again = permutation_test(
        result, X, Y, kind="timeseries", groups=runs, n_permutations=100, random_state=0
    )
    assert again.p.tobytes() == test.p.tobytes()


def test_concept_label_permutation():
    rng = np.random.default_rng(4)
    latent = rng.standard_normal((40, 3))
    X = latent @ rng.standard_normal((3, 30)) + 0.3 * rng.standard_normal((40, 30))
    Y = np.hstack([latent @ rng.standard_normal((3, 6)), np.zeros((40, 20))]) + rng.standard_normal(
        (40, 26)
    )
    result = fit_encoding(
        X, Y, kind="concepts", groups=np.arange(40), alphas=ALPHAS, n_outer_folds=4
    )
    p = permutation_test(result, X, Y, kind="concepts", groups=np.arange(40), n_permutations=100).p
    assert np.all(p[:6] < 0.02)
    assert np.median(p[6:]) > 0.2
    repeated = np.repeat(np.arange(20), [2] * 19 + [1])
    with pytest.raises(
        ValueError, match=r"label permutation needs the same number of samples per concept"
    ):
        permutation_pvalues(
            X[:39],
            Y[:39],
            [(np.arange(20), np.arange(20, 39))],
            result.alpha[:1],
            kind="concepts",
            groups=repeated,
            n_permutations=3,
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "runs"}, r"^'kind' must be one of 'concepts', 'timeseries'; got 'runs'$"),
        ({"n_permutations": 1}, r"^'n_permutations' must be an integer >= 2; got 1$"),
        ({"block_size": 0}, r"^'block_size' must be an integer >= 1; got 0$"),
    ],
)
def test_permutation_errors(kwargs, match):
    X = np.random.default_rng(5).standard_normal((20, 3))
    Y = X[:, :2].astype(np.float32)
    splits = [(np.arange(10), np.arange(10, 20)), (np.arange(10, 20), np.arange(10))]
    params = dict(kind="timeseries", groups=np.repeat([1, 2], 10), n_permutations=3) | kwargs
    with pytest.raises(ValueError, match=match):
        permutation_pvalues(X, Y, splits, np.ones((2, 2)), **params)


# ----------------------------------------------------------------------------- noise ceiling


def test_noise_ceiling_recovers_the_reliability_of_the_mean():
    rng = np.random.default_rng(6)
    n_runs, n_concepts = 3, 20000
    signal_sd = np.array([0.0, 0.5, 1.0, 2.0])
    signal = rng.standard_normal((n_concepts, 4)) * signal_sd
    by_run = signal[None] + rng.standard_normal((n_runs, n_concepts, 4))
    expected = signal_sd**2 / (signal_sd**2 + 1.0 / n_runs)
    ceiling = noise_ceiling(by_run)
    np.testing.assert_allclose(ceiling, expected, atol=0.03)
    # a perfect model (the true signal) reaches normalised r ~ 1
    mean = by_run.mean(axis=0)
    r = np.array([pearsonr(signal[:, v], mean[:, v])[0] for v in range(1, 4)])
    r_norm, r2_norm = normalise_scores(r, r**2, ceiling[1:], min_ceiling=0.1)
    np.testing.assert_allclose(r_norm, 1.0, atol=0.03)
    np.testing.assert_allclose(r2_norm, 1.0, atol=0.06)


def test_noise_ceiling_matches_spearman_brown_of_two_runs():
    rng = np.random.default_rng(7)
    by_run = rng.standard_normal((2, 15, 5))
    r = np.array([pearsonr(by_run[0, :, v], by_run[1, :, v])[0] for v in range(5)])
    np.testing.assert_allclose(noise_ceiling(by_run), 2 * r / (1 + r), rtol=1e-10)


def test_normalised_scores_need_a_minimum_ceiling():
    r_norm, r2_norm = normalise_scores(
        np.array([0.2, 0.2, 0.2]),
        np.array([0.04, 0.04, 0.04]),
        np.array([0.05, 0.25, np.nan]),
        min_ceiling=0.1,
    )
    assert np.isnan(r_norm[[0, 2]]).all() and np.isnan(r2_norm[[0, 2]]).all()
    assert r_norm[1] == pytest.approx(0.4) and r2_norm[1] == pytest.approx(0.16)
    with pytest.raises(ValueError, match=r"^'min_ceiling' must be in \(0, 1\]; got 0$"):
        normalise_scores(np.ones(1), np.ones(1), np.ones(1), min_ceiling=0)
    with pytest.raises(
        ValueError, match=r"^'patterns_by_run' must have shape \(n_runs >= 2, n_stimuli >= 3"
    ):
        noise_ceiling(np.ones((1, 10, 3)))
