"""Tests of brainalign.rsa's RDMs, comparisons and noise ceilings against rsatoolbox and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.data import Dataset
from rsatoolbox.data.noise import prec_from_measurements
from rsatoolbox.inference import boot_noise_ceiling
from rsatoolbox.rdm import RDMs, calc_rdm, compare
from rsatoolbox.util.inference_util import pool_rdm
from scipy.spatial.distance import pdist, squareform

from brainalign.rsa import (
    compare_rdm_sets,
    compare_rdms,
    compute_crossnobis_rdm,
    compute_rdm,
    estimate_noise_precision,
    n_conditions_from_rdm,
    noise_ceiling,
    pool_rdms,
    reorder_rdm,
)

RSATOOLBOX_METHODS = [("spearman", "spearman"), ("pearson", "corr"), ("kendall_tau_a", "tau-a"),
                      ("rho_a", "rho-a")]


@pytest.fixture
def patterns() -> np.ndarray:
    """11 conditions x 17 features, offset and unevenly scaled."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((11, 17)) * rng.uniform(0.5, 2.0, 17) + 3.0


@pytest.mark.parametrize(
    ("metric", "rsatoolbox_method"),
    [("correlation", "correlation"), ("squared_euclidean", "euclidean")],
)
def test_rdm_matches_rsatoolbox(patterns, metric, rsatoolbox_method):
    expected = calc_rdm(Dataset(patterns), method=rsatoolbox_method).get_vectors()[0]
    rdm = compute_rdm(patterns, metric)
    assert rdm.shape == (11 * 10 // 2,)
    np.testing.assert_allclose(rdm, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("metric", "scipy_metric", "scale"),
    [
        ("correlation", "correlation", 1.0),
        ("cosine", "cosine", 1.0),
        ("euclidean", "euclidean", 1.0),
        ("squared_euclidean", "sqeuclidean", 1 / 17),
    ],
)
def test_rdm_matches_scipy_pdist(patterns, metric, scipy_metric, scale):
    # rsatoolbox has no cosine RDM; scipy's pdist is the reference (same condensed order)
    np.testing.assert_allclose(
        compute_rdm(patterns, metric), pdist(patterns, scipy_metric) * scale, atol=1e-6
    )


def test_rdm_is_exact_for_large_offsets():
    # Gram-matrix distances lose precision with large means; centring features avoids it
    rng = np.random.default_rng(1)
    patterns = rng.standard_normal((6, 40)) + 1e4
    np.testing.assert_allclose(compute_rdm(patterns, "euclidean"), pdist(patterns), rtol=1e-9)


@pytest.mark.parametrize(("method", "rsatoolbox_method"), RSATOOLBOX_METHODS)
def test_comparison_matches_rsatoolbox(method, rsatoolbox_method):
    rng = np.random.default_rng(2)
    a = rng.standard_normal(45)
    b = 0.5 * a + rng.standard_normal(45)
    b[:12] = np.round(b[:12])  # ties, where the rank methods differ
    a[20:30] = np.round(a[20:30])
    expected = compare(RDMs(a[None]), RDMs(b[None]), method=rsatoolbox_method)[0, 0]
    assert compare_rdms(a, b, method) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("method", "rsatoolbox_method"), RSATOOLBOX_METHODS)
def test_comparison_sets_match_rsatoolbox(method, rsatoolbox_method):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 36))
    b = np.round(a[[0, 1, 2, 0]] + rng.standard_normal((4, 36)), 1)  # ties in b
    expected = compare(RDMs(a), RDMs(b), method=rsatoolbox_method)
    np.testing.assert_allclose(compare_rdm_sets(a, b, method), expected, atol=1e-6)
    assert compare_rdm_sets(a, b, method)[2, 1] == pytest.approx(compare_rdms(a[2], b[1], method))


def test_rho_a_does_not_reward_predicting_ties():
    # a model predicting ties where the data has an order: Spearman inflates, rho-a does not
    data = np.arange(21.0)
    model = np.repeat([0.0, 1.0, 2.0], 7)
    assert compare_rdms(model, data, "rho_a") < compare_rdms(model, data, "spearman")
    assert compare_rdms(data, data, "rho_a") == pytest.approx(1.0)


def test_kendall_tau_a_differs_from_tau_b_with_model_ties():
    model = np.repeat([0.0, 1.0], [10, 11])
    rng = np.random.default_rng(3)
    data = model + rng.standard_normal(21)
    tau_b = compare(RDMs(model[None]), RDMs(data[None]), method="kendall")[0, 0]
    tau_a = compare_rdms(model, data, "kendall_tau_a")
    assert tau_a < tau_b
    assert tau_a == pytest.approx(compare(RDMs(model[None]), RDMs(data[None]), "tau-a")[0, 0])


def test_planted_cluster_structure_is_recovered():
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1], [7, 9])
    centroids = rng.standard_normal((2, 50)) * 2.0
    patterns = centroids[labels] + rng.standard_normal((16, 50))
    model = compute_rdm(np.eye(2)[labels], "squared_euclidean")  # 0 within, >0 between
    shuffled = compute_rdm(np.eye(2)[rng.permutation(labels)], "squared_euclidean")
    for metric in ("correlation", "cosine", "squared_euclidean", "euclidean"):
        rdm = compute_rdm(patterns, metric)
        assert compare_rdms(rdm, model, "spearman") > 0.7, metric
        assert abs(compare_rdms(rdm, shuffled, "spearman")) < 0.3, metric
        assert compare_rdms(rdm, model, "kendall_tau_a") > 0.3, metric


@pytest.fixture
def runs() -> np.ndarray:
    """3 runs x 9 conditions x 14 features: shared structure plus run-specific noise."""
    rng = np.random.default_rng(6)
    signal = rng.standard_normal((9, 14)) + 2.0
    return signal + rng.standard_normal((3, 9, 14)) * rng.uniform(0.5, 3.0, 14)


def _rsatoolbox_runs(runs: np.ndarray) -> Dataset:
    n_runs, n_conditions, _ = runs.shape
    return Dataset(
        runs.reshape(n_runs * n_conditions, -1),
        obs_descriptors={"conds": np.tile(np.arange(n_conditions), n_runs),
                         "runs": np.repeat(np.arange(n_runs), n_conditions)},
    )


def test_crossnobis_matches_rsatoolbox(runs):
    data = _rsatoolbox_runs(runs)
    expected = calc_rdm(data, method="crossnobis", descriptor="conds", cv_descriptor="runs")
    np.testing.assert_allclose(compute_crossnobis_rdm(runs), expected.get_vectors()[0], atol=1e-6)


def test_crossnobis_with_diagonal_noise_matches_rsatoolbox(runs):
    data = _rsatoolbox_runs(runs)
    dof = runs.shape[1] * (runs.shape[0] - 1)  # rsatoolbox's default dof is (n_conds - 1) * n_runs
    precision = prec_from_measurements(data, obs_desc="conds", dof=dof, method="diag")
    np.testing.assert_allclose(estimate_noise_precision(runs), np.diag(precision), rtol=1e-9)
    expected = calc_rdm(data, method="crossnobis", descriptor="conds", cv_descriptor="runs",
                        noise=precision)
    ours = compute_crossnobis_rdm(runs, estimate_noise_precision(runs))
    np.testing.assert_allclose(ours, expected.get_vectors()[0], atol=1e-6)


def test_crossnobis_is_unbiased_by_noise():
    # identical conditions in truth: plain distances grow with the noise, crossnobis stays at 0
    rng = np.random.default_rng(7)
    runs = np.ones((4, 6, 300)) + rng.standard_normal((4, 6, 300)) * 2.0
    plain = compute_rdm(runs.mean(axis=0), "squared_euclidean")
    cross = compute_crossnobis_rdm(runs)
    assert plain.mean() > 1.5  # 2 * noise variance / n_runs
    assert abs(cross.mean()) < 0.1
    assert (cross < 0).any()


def test_noise_precision_normalises_noisy_voxels():
    # one voxel with huge noise dominates the identity crossnobis, not the noise-normalised one
    rng = np.random.default_rng(8)
    signal = np.repeat(np.eye(3), [3, 3, 2], axis=0) @ rng.standard_normal((3, 20))
    runs = signal + rng.standard_normal((2, 8, 20)) * 0.3
    runs[:, :, 0] += rng.standard_normal((2, 8)) * 50.0
    model = compute_rdm(np.repeat(np.eye(3), [3, 3, 2], axis=0), "squared_euclidean")
    plain = compare_rdms(compute_crossnobis_rdm(runs), model)
    normalised = compare_rdms(compute_crossnobis_rdm(runs, estimate_noise_precision(runs)), model)
    assert normalised > 0.7 and normalised > plain + 0.2


@pytest.mark.parametrize(("method", "rsatoolbox_method"), RSATOOLBOX_METHODS)
def test_noise_ceiling_matches_rsatoolbox(method, rsatoolbox_method):
    rng = np.random.default_rng(9)
    shared = rng.standard_normal(45)
    subjects = shared + rng.standard_normal((5, 45)) * np.array([[0.5], [1.0], [1.5], [1.0], [2.0]])
    lower, upper = boot_noise_ceiling(RDMs(subjects), method=rsatoolbox_method)
    ceiling = noise_ceiling(subjects, method)
    assert ceiling.lower == pytest.approx(lower, abs=1e-6)
    assert ceiling.upper == pytest.approx(upper, abs=1e-6)
    assert ceiling.lower < ceiling.upper
    pooled = pool_rdm(RDMs(subjects), rsatoolbox_method).get_vectors()[0]  # 'corr' adds a shift
    ours = pool_rdms(subjects, method)
    np.testing.assert_allclose(ours - ours.mean(), pooled - pooled.mean(), atol=1e-9)


def test_noise_ceiling_tracks_the_noise():
    rng = np.random.default_rng(10)
    shared = rng.standard_normal(105)
    quiet = noise_ceiling(shared + rng.standard_normal((6, 105)) * 0.3)
    noisy = noise_ceiling(shared + rng.standard_normal((6, 105)) * 3.0)
    assert quiet.lower > 0.85 and noisy.lower < 0.4
    assert noisy.upper - noisy.lower > quiet.upper - quiet.lower
    assert np.isnan(noise_ceiling(shared[None]).lower)


def test_reorder_rdm_matches_reordering_the_patterns(patterns):
    order = np.array([4, 0, 10, 7, 1])
    np.testing.assert_allclose(reorder_rdm(compute_rdm(patterns), order),
                               compute_rdm(patterns[order]), atol=1e-12)
    square = squareform(compute_rdm(patterns))
    np.testing.assert_allclose(reorder_rdm(compute_rdm(patterns), order),
                               squareform(square[np.ix_(order, order)], checks=False))


def test_rdm_pairs_follow_squareform_order():
    patterns = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [0.0, 1.0]])
    assert compute_rdm(patterns, "euclidean").tolist() == pytest.approx(
        [5.0, 10.0, 1.0, 5.0, np.sqrt(18.0), np.sqrt(85.0)]
    )
    assert n_conditions_from_rdm(np.zeros(6)) == 4


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: compute_rdm(np.ones((4, 3)), "manhattan"),
            r"^'metric' must be one of 'correlation', 'cosine', 'squared_euclidean', 'euclidean'; "
            r"got 'manhattan'$",
        ),
        (
            lambda: compute_rdm(np.ones((2, 3))),
            r"'patterns' must be a 2D array \(n_conditions, n_features\) with >= 3 conditions",
        ),
        (
            lambda: compute_rdm(np.array([[1.0, 2.0], [1.0, 1.0], [3.0, 0.0]])),
            r"metric 'correlation' is undefined for patterns with zero variance; got such rows \[1\]",
        ),
        (lambda: compute_rdm(np.array([[np.nan, 1.0]] * 3)), r"'patterns' must be finite"),
        (
            lambda: compare_rdms(np.arange(6.0), np.arange(3.0)),
            r"RDMs 'a' and 'b' must have the same length \(same conditions\); got shapes",
        ),
        (
            lambda: compare_rdms(np.arange(6.0), np.arange(6.0), "kendall"),
            r"^'method' must be one of 'spearman', 'pearson', 'kendall_tau_a', 'rho_a'; "
            r"got 'kendall'$",
        ),
        (
            lambda: compare_rdms(np.ones(6), np.arange(6.0)),
            r"RDM 'a' is constant; its correlation with another RDM is undefined",
        ),
        (
            lambda: compare_rdms(np.arange(5.0), np.arange(5.0)),
            r"a condensed RDM has n \* \(n - 1\) / 2 entries; got 5",
        ),
        (lambda: compare_rdms(np.eye(4), np.eye(4)), r"RDM 'a' must be condensed, 1D"),
        (
            lambda: compute_crossnobis_rdm(np.ones((1, 4, 3))),
            r"crossnobis needs repeated measurements: 'patterns_by_run' must have >= 2 runs",
        ),
        (
            lambda: compute_crossnobis_rdm(np.ones((2, 4, 3)), np.ones(5)),
            r"'noise_precision' must be None or 3 finite non-negative values",
        ),
        (
            lambda: estimate_noise_precision(np.ones((2, 4, 3))),
            r"'patterns_by_run' has 3 features with no variance across runs",
        ),
        (lambda: reorder_rdm(np.arange(6.0), [0, 0, 1]), r"'order' must list distinct condition"),
    ],
)
def test_rsa_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
