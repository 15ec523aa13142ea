"""Tests of brainalign.rsa against rsatoolbox and scipy, and on planted structure."""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.data import Dataset
from rsatoolbox.rdm import RDMs, calc_rdm, compare
from scipy.spatial.distance import pdist

from brainalign.rsa import compare_rdms, compute_rdm, n_conditions_from_rdm


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


@pytest.mark.parametrize(
    ("method", "rsatoolbox_method"),
    [("spearman", "spearman"), ("pearson", "corr"), ("kendall_tau_a", "tau-a")],
)
def test_comparison_matches_rsatoolbox(method, rsatoolbox_method):
    rng = np.random.default_rng(2)
    a = rng.standard_normal(45)
    b = 0.5 * a + rng.standard_normal(45)
    b[:12] = np.round(b[:12])  # ties, where the rank methods differ
    a[20:30] = np.round(a[20:30])
    expected = compare(RDMs(a[None]), RDMs(b[None]), method=rsatoolbox_method)[0, 0]
    assert compare_rdms(a, b, method) == pytest.approx(expected, abs=1e-6)


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
            r"^'method' must be one of 'spearman', 'pearson', 'kendall_tau_a'; got 'kendall'$",
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
    ],
)
def test_rsa_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
