"""Tests of RSA inference: permutation tests, bootstrap, FDR, held-out layer selection.

References: brute-force loops over scipy/our comparisons, rsatoolbox's eval_bootstrap* and
bootstrap_pair_tests on the same draws, scipy's false_discovery_control; planted structure
and null simulations for power and false-positive rates.
"""

from __future__ import annotations

import numpy as np
import pytest
from rsatoolbox.inference import eval_bootstrap, eval_bootstrap_pattern, eval_bootstrap_rdm
from rsatoolbox.model import ModelFixed
from rsatoolbox.rdm import RDMs
from rsatoolbox.util.inference_util import bootstrap_pair_tests as rsatoolbox_pair_tests
from scipy.spatial.distance import squareform
from scipy.stats import binom, false_discovery_control

from brainalign.rsa import compare_rdms, compute_rdm, fdr_bh, permutation_test
from brainalign.rsa.bootstrap import (
    bootstrap_ci,
    bootstrap_p_zero,
    bootstrap_pair_tests,
    bootstrap_samples_from_indices,
    bootstrap_scores,
    draw_bootstrap,
    group_bootstrap,
)
from brainalign.rsa.inference import _permutation_batches
from brainalign.rsa.selection import heldout_group_score, heldout_layer_scores

METHODS = ["spearman", "pearson", "rho_a", "kendall_tau_a"]
RSATOOLBOX = {"spearman": "spearman", "pearson": "corr", "rho_a": "rho-a", "kendall_tau_a": "tau-a"}


def _simulate(rng, n_conditions=11, n_subjects=4, n_voxels=30, signal=1.0):
    """A model RDM from features, and subject RDMs from a noisy projection of the same features."""
    features = rng.standard_normal((n_conditions, 8))
    model = compute_rdm(features, "correlation")
    subjects = np.stack([
        compute_rdm(signal * features @ rng.standard_normal((8, n_voxels))
                    + rng.standard_normal((n_conditions, n_voxels)) * 3.0)
        for _ in range(n_subjects)
    ])
    return model, subjects


# ---- permutation test ----
@pytest.mark.parametrize("method", METHODS)
def test_permutation_test_matches_brute_force(method):
    rng = np.random.default_rng(0)
    n = 8
    models = rng.random((2, n * (n - 1) // 2))
    models[1] = np.round(models[1] * 3)  # a model RDM with ties
    subjects = rng.random((2, 3, models.shape[1])) + 0.4 * models[0]
    result = permutation_test(models, subjects, method=method, n_permutations=50, random_state=1)
    perms = np.concatenate(list(_permutation_batches(n, 50, np.random.default_rng(1))))
    for k, model in enumerate(models):
        square = squareform(model)
        for g, group in enumerate(subjects):
            observed = np.mean([compare_rdms(model, s, method) for s in group])
            permuted = [np.mean([compare_rdms(squareform(square[np.ix_(p, p)], checks=False), s, method)
                                 for s in group]) for p in perms]
            assert result.statistic[k, g] == pytest.approx(observed, abs=1e-12)
            assert result.p_value[k, g] == pytest.approx(
                (1 + np.sum(np.array(permuted) >= observed - 1e-10)) / 51)


def test_permutation_test_is_deterministic_and_thread_independent():
    rng = np.random.default_rng(2)
    model, subjects = _simulate(rng, signal=0.3)
    one = permutation_test(model[None], subjects, n_permutations=500, random_state=3)
    two = permutation_test(model[None], subjects, n_permutations=500, random_state=3, n_jobs=2)
    np.testing.assert_array_equal(one.p_value, two.p_value)
    np.testing.assert_array_equal(one.statistic, two.statistic)
    assert one.statistic.shape == (1, 1)


def test_permutation_test_finds_planted_structure():
    rng = np.random.default_rng(4)
    model, subjects = _simulate(rng, n_conditions=16, signal=1.0)
    unrelated = compute_rdm(rng.standard_normal((16, 8)))
    result = permutation_test(np.stack([model, unrelated]), subjects, n_permutations=2000,
                              random_state=5)
    assert result.p_value[0, 0] < 0.002
    assert result.p_value[1, 0] > 0.01
    assert result.n_permutations == 2000


def test_permutation_p_values_are_uniform_under_the_null():
    # 200 null datasets (brains unrelated to the model), 99 permutations each:
    # the false-positive rate at 0.05 is within its binomial 99.9% interval, p-values are uniform
    rng = np.random.default_rng(6)
    p = []
    for _ in range(200):
        model, subjects = _simulate(rng, n_conditions=10, n_subjects=3, signal=0.0)
        p.append(permutation_test(model[None], subjects, n_permutations=99, random_state=rng).p_value[0, 0])
    p = np.array(p)
    low, high = binom.ppf([0.0005, 0.9995], 200, 0.05)
    assert low <= np.sum(p <= 0.05) <= high, np.sum(p <= 0.05)
    assert 0.42 < p.mean() < 0.58
    assert 0.05 < np.mean(p <= 0.25) / 0.25 * 0.25 < 0.35


# ---- FDR ----
def test_fdr_bh_matches_scipy():
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.uniform(0, 0.01, 5), rng.uniform(0, 1, 30), [0.02, 0.02]])
    np.testing.assert_allclose(fdr_bh(p), false_discovery_control(p, method="bh"), atol=1e-12)
    with_nan = np.concatenate([p, [np.nan]])
    assert np.isnan(fdr_bh(with_nan)[-1])
    np.testing.assert_allclose(fdr_bh(with_nan)[:-1], fdr_bh(p))


def test_fdr_bh_controls_false_discoveries():
    rng = np.random.default_rng(8)
    false = 0
    for _ in range(200):
        p = np.concatenate([rng.uniform(0, 1, 40), rng.uniform(0, 1e-4, 10)])
        false += np.sum(fdr_bh(p)[:40] <= 0.05) / max(np.sum(fdr_bh(p) <= 0.05), 1)
    assert false / 200 <= 0.05


# ---- bootstrap ----
def _rsatoolbox_draws(seed, n_boot, n_subjects, n_conditions, kind):
    """The indices rsatoolbox's eval_bootstrap* draw after np.random.seed(seed)."""
    np.random.seed(seed)
    subjects, conditions = [], []
    for _ in range(n_boot):
        subjects.append(np.random.randint(0, n_subjects, size=n_subjects) if kind != "stimuli"
                        else np.arange(n_subjects))
        conditions.append(np.random.randint(0, n_conditions, size=n_conditions) if kind != "subjects"
                          else np.arange(n_conditions))
    return bootstrap_samples_from_indices(np.array(subjects), np.array(conditions), n_subjects,
                                          n_conditions)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("kind", "evaluate"),
    [("both", eval_bootstrap), ("stimuli", eval_bootstrap_pattern), ("subjects", eval_bootstrap_rdm)],
)
def test_bootstrap_matches_rsatoolbox(method, kind, evaluate):
    rng = np.random.default_rng(9)
    n, n_subjects = 8, 4
    models = rng.random((3, n * (n - 1) // 2))
    models[2] = np.round(models[2] * 3)
    subjects = rng.random((n_subjects, models.shape[1])) + 0.5 * models[0]
    subjects[1] = np.round(subjects[1] * 4)  # ties in the data too
    fixed = [ModelFixed(f"m{i}", RDMs(m[None])) for i, m in enumerate(models)]
    np.random.seed(11)
    expected = evaluate(fixed, RDMs(subjects), method=RSATOOLBOX[method], N=30, boot_noise_ceil=False)
    samples = _rsatoolbox_draws(11, 30, n_subjects, n, kind)
    ours = group_bootstrap(bootstrap_scores(models, subjects, samples, method=method), samples)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected.evaluations))
    np.testing.assert_allclose(ours, expected.evaluations, atol=1e-6)


def test_bootstrap_ci_matches_rsatoolbox_framing():
    rng = np.random.default_rng(10)
    evaluations = rng.standard_normal((200, 3))
    low, high = bootstrap_ci(evaluations, 0.95)
    framed = np.concatenate([[[-np.inf] * 3, [np.inf] * 3], evaluations])
    np.testing.assert_allclose(low, np.quantile(framed, 0.025, axis=0))
    np.testing.assert_allclose(high, np.quantile(framed, 0.975, axis=0))
    assert np.all(np.isinf(bootstrap_ci(evaluations[:5], 0.95)[0]))  # too few samples: honest


def test_bootstrap_pair_tests_match_rsatoolbox():
    rng = np.random.default_rng(11)
    evaluations = rng.standard_normal((300, 4)) * 0.1 + np.array([0.5, 0.52, 0.0, 0.5])
    evaluations[:10, 3] = evaluations[:10, 0]  # ties
    np.testing.assert_allclose(bootstrap_pair_tests(evaluations), rsatoolbox_pair_tests(evaluations))
    p = bootstrap_pair_tests(evaluations)
    assert p[0, 2] < 0.01 and p[0, 1] > 0.05


def test_bootstrap_ci_covers_the_population_value():
    # subjects drawn from a population: the subject-bootstrap 95% CI of the group score covers
    # the population mean score in about 95% of replications (percentile CIs with 12 subjects
    # undercover a little)
    rng = np.random.default_rng(12)
    features = rng.standard_normal((10, 6))
    model = compute_rdm(features)
    projection = rng.standard_normal((6, 25))

    def subject_scores(n):
        return np.array([compare_rdms(model, compute_rdm(features @ projection + rng.standard_normal(
            (10, 25)) * 4.0)) for _ in range(n)])

    truth = subject_scores(1500).mean()
    covered = 0
    for _ in range(80):
        scores = subject_scores(12)
        samples = draw_bootstrap(12, 10, 300, kind="subjects", random_state=rng)
        evaluations = group_bootstrap(np.broadcast_to(scores, (300, 1, 12)), samples)
        low, high = bootstrap_ci(evaluations, 0.95)
        covered += low[0] <= truth <= high[0]
    assert 0.83 <= covered / 80 <= 0.99, covered


def test_bootstrap_samples_and_errors():
    samples = draw_bootstrap(5, 7, 40, kind="stimuli", random_state=0)
    assert (samples.subject_counts == 1).all() and (samples.condition_counts.sum(axis=1) == 7).all()
    again = draw_bootstrap(5, 7, 40, kind="stimuli", random_state=0)
    np.testing.assert_array_equal(samples.condition_counts, again.condition_counts)
    assert bootstrap_p_zero(np.array([[0.1], [0.2], [-0.1], [np.nan]]))[0] == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match=r"^'kind' must be one of 'both', 'stimuli', 'subjects'"):
        draw_bootstrap(5, 7, 10, kind="patterns")
    with pytest.raises(ValueError, match=r"bootstrap samples draw from 7 conditions but the RDMs have 4"):
        bootstrap_scores(np.random.rand(2, 6), np.random.rand(3, 6), samples)
    with pytest.raises(ValueError, match=r"'level' must be in \(0, 1\)"):
        bootstrap_ci(np.zeros((5, 2)), 95)


# ---- held-out layer selection ----
def test_heldout_selection_picks_on_the_other_subjects():
    scores = np.array([[0.9, 0.1, 0.1],    # layer 0: best for subject 0 only
                       [0.2, 0.5, 0.6]])   # layer 1: best on average without subject 0
    heldout, chosen = heldout_layer_scores(scores)
    np.testing.assert_array_equal(chosen, [1, 0, 0])  # 0: on {1,2} -> layer 1; 1: on {0,2} -> 0
    np.testing.assert_allclose(heldout, [0.2, 0.1, 0.1])
    weighted, chosen = heldout_layer_scores(scores, np.array([2, 1, 0]))
    np.testing.assert_array_equal(chosen, [1, 0, -1])
    assert heldout_group_score(weighted, np.array([2, 1, 0])) == pytest.approx((2 * 0.2 + 0.1) / 3)
    alone, _ = heldout_layer_scores(scores, np.array([3, 0, 0]))  # nobody else to choose on
    assert np.isnan(heldout_group_score(alone, np.array([3, 0, 0])))


def test_heldout_selection_is_unbiased_where_the_argmax_is_not():
    # ten layers of pure noise around 0.2: the argmax of the group mean is biased upwards,
    # the held-out score is not
    rng = np.random.default_rng(13)
    argmax, heldout = [], []
    for _ in range(400):
        scores = 0.2 + rng.standard_normal((10, 6)) * 0.1
        argmax.append(scores.mean(axis=1).max())
        heldout.append(heldout_group_score(heldout_layer_scores(scores)[0]))
    assert np.mean(argmax) > 0.25
    assert abs(np.mean(heldout) - 0.2) < 0.01
