"""Tail p-values of permutation nulls (encoding.tail): GPD fit against scipy, calibration on
normal nulls, and the false-positive rate of each tail on autocorrelated (AR(1)) null data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import genpareto, norm
from threadpoolctl import threadpool_limits

from brainalign.encoding import fit_encoding
from brainalign.encoding.stats import fdr_bh, permutation_test
from brainalign.encoding.tail import TAILS, empirical_p, gpd_fit, gpd_sf, gpd_tail_p, normal_p

from .test_encoding_stats import _ar1

ALPHAS = np.logspace(-2, 5, 8)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield




@pytest.mark.parametrize("c", [-0.3, 0.0, 0.25])
def test_gpd_fit_recovers_scipy_genpareto(c):
    """PWM estimates of scipy's genpareto samples (c = -shape) and the survival function."""
    rng = np.random.default_rng(0)
    sample = np.sort(genpareto.rvs(c, scale=2.0, size=(20000, 3), random_state=rng), axis=0)
    scale, shape = gpd_fit(sample)
    np.testing.assert_allclose(scale, 2.0, rtol=0.05)
    np.testing.assert_allclose(-shape, c, atol=0.04)
    y = np.array([0.5, 1.0, 3.0])
    np.testing.assert_allclose(gpd_sf(y, 2.0, -c), genpareto.sf(y, c, scale=2.0), rtol=1e-10)


def test_gpd_tail_is_calibrated_on_normal_nulls():
    """iid null and observed: P(p <= a) <= a at every level, resolved below 1 / (n + 1)."""
    rng = np.random.default_rng(1)
    n, m = 400, 40000
    null = rng.standard_normal((n, m))
    observed = rng.standard_normal(m)
    exceed = (null >= observed).sum(axis=0)
    top = np.sort(null, axis=0)[-101:]
    tail = gpd_tail_p(observed, exceed, top, n)
    for level in (1e-4, 1e-3, 1e-2, 0.05):
        assert np.mean(tail.p <= level) <= 1.2 * level + 2e-5, level
    assert np.mean(tail.p <= 0.05) > 0.04  # not trivially conservative where resolved
    assert set(tail.method) <= {"empirical", "gpd", "fallback"}
    # far beyond the permutations the GPD resolves what the empirical p cannot
    far = gpd_tail_p(np.full(5, 5.0), np.zeros(5), top[:, :5], n)
    assert np.all(far.p < empirical_p(0, n)) and np.median(far.p) >= norm.sf(5.0)


def test_gpd_falls_back_to_the_empirical_p_when_no_fit_passes():
    """A null of two values (no GPD fits): each voxel gets the empirical p and says so."""
    null = np.tile(np.repeat([0.0, 1.0], 100)[:, None], (1, 3))
    tail = gpd_tail_p(np.full(3, 2.0), np.zeros(3), null[-51:], 200)
    assert list(tail.method) == ["fallback"] * 3
    np.testing.assert_allclose(tail.p, 1 / 201)


def test_normal_p_matches_scipy():
    p = normal_p(np.array([0.3, 0.1, 0.0]), np.array([0.0, 0.0, 0.0]), np.array([0.1, 0.1, 0.0]))
    np.testing.assert_allclose(p[:2], norm.sf([3.0, 1.0]))
    assert p[2] == 1.0


def test_unknown_tail_is_refused():
    rng = np.random.default_rng(0)
    X, Y, runs = rng.standard_normal((40, 3)), rng.standard_normal((40, 2)), np.repeat([1, 2], 20)
    result = fit_encoding(X, Y, kind="timeseries", groups=runs, alphas=ALPHAS, delays=(1,))
    with pytest.raises(ValueError, match=r"'tail' must be one of 'empirical', 'gpd', 'normal'"):
        permutation_test(result, X, Y, kind="timeseries", groups=runs, n_permutations=10,
                         tail="pareto")


def _null_rates(block_size: int, n_datasets: int, n_permutations: int = 200) -> dict:
    """Per tail: share of null voxels at q <= 0.05 and share of datasets with any."""
    voxels = {tail: [] for tail in TAILS}
    any_hit = {tail: [] for tail in TAILS}
    for seed in range(n_datasets):
        rng = np.random.default_rng(100 + seed)
        runs = np.repeat([1, 2, 3, 4], 100)
        X = np.vstack([_ar1(rng, 100, 6, 0.8) for _ in range(4)])
        Y = np.vstack([_ar1(rng, 100, 150, 0.5) for _ in range(4)]).astype(np.float32)
        result = fit_encoding(X, Y, kind="timeseries", groups=runs, alphas=ALPHAS, delays=(1, 2))
        test = permutation_test(result, X, Y, kind="timeseries", groups=runs,
                                n_permutations=n_permutations, block_size=block_size,
                                random_state=seed)
        for tail, p in (("normal", test.p_normal), ("gpd", test.p_gpd), ("empirical", test.p_perm)):
            significant = fdr_bh(p) <= 0.05
            voxels[tail].append(significant.mean())
            any_hit[tail].append(significant.any())
    return {tail: (float(np.mean(voxels[tail])), float(np.mean(any_hit[tail]))) for tail in TAILS}


def test_false_positive_rate_of_each_tail_on_ar1_nulls():
    """AR(1) noise (phi = 0.5), smooth features, no signal; BH at 0.05 over 150 voxels.

    Under the complete null every rejection is false, so the FDR is the share of datasets
    with any rejection. Blocks of 10 TRs keep the autocorrelation; blocks of 2 do not (the
    null is too narrow), which the normal fit's tail turns into rejections.
    """
    rates = {10: _null_rates(10, n_datasets=8), 2: _null_rates(2, n_datasets=4)}
    for block, by_tail in rates.items():
        for tail, (voxel_rate, dataset_rate) in by_tail.items():
            print(f"block {block:2d} tail {tail:9s}: {voxel_rate:.4f} of null voxels at q <= 0.05,"
                  f" {dataset_rate:.3f} of datasets with any")
    for tail in ("empirical", "gpd"):
        assert rates[10][tail][0] <= 0.05 + 0.01, (tail, rates[10])
        assert rates[10][tail][1] <= 0.05 + 0.15, (tail, rates[10])  # 8 datasets: 1 allowed
