"""Tests of brainalign.encoding: FIR delays, leak-free splits, nested ridge fits."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from brainalign.encoding import (
    fit_encoding,
    inner_splits,
    make_delays,
    outer_splits,
    score_folds,
    score_predictions,
)

ALPHAS = np.logspace(-2, 5, 8)


def _ar1(rng: np.random.Generator, n: int, m: int, phi: float) -> np.ndarray:
    """AR(1) series of shape (n, m) with unit innovations."""
    noise = rng.standard_normal((n, m))
    out = np.zeros_like(noise)
    out[0] = noise[0]
    for t in range(1, n):
        out[t] = phi * out[t - 1] + noise[t]
    return out


def _per_run(make, runs: np.ndarray) -> np.ndarray:
    """Stack ``make(n)`` for each run, so that runs are independent."""
    return np.vstack([make(int(np.sum(runs == run))) for run in np.unique(runs)])


def _check_partition(splits, groups, n_samples):
    """Every sample tested exactly once; no group on both sides of a split."""
    tested = np.concatenate([test for _, test in splits])
    assert np.array_equal(np.sort(tested), np.arange(n_samples))
    for train, test in splits:
        assert np.intersect1d(groups[train], groups[test]).size == 0
        assert train.size + test.size == n_samples


# ----------------------------------------------------------------------------- delays


def test_make_delays_identity_for_zero_delay():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((21, 4)).astype(np.float32)
    runs = np.repeat([1, 2, 3], [7, 5, 9])
    out = make_delays(X, (0,), runs)
    assert out.dtype == np.float32
    assert np.array_equal(out, X)


def test_make_delays_matches_per_run_shift():
    rng = np.random.default_rng(1)
    runs = np.repeat([1, 2, 3], [7, 5, 9])
    X = rng.standard_normal((21, 3)).astype(np.float32)
    delays = (0, 1, 3, -2)
    out = make_delays(X, delays, runs)
    assert out.shape == (21, 3 * 4)
    for k, delay in enumerate(delays):
        block = out[:, 3 * k : 3 * (k + 1)]
        for t in range(21):
            source = t - delay
            same_run = 0 <= source < 21 and runs[source] == runs[t]
            expected = X[source] if same_run else np.zeros(3, np.float32)
            assert np.array_equal(block[t], expected), (delay, t)


def test_make_delays_never_copies_across_runs():
    runs = np.repeat([1, 2, 3, 4], [6, 4, 8, 5])
    X = (np.arange(runs.size, dtype=np.float32) + 1)[:, None]  # value = source index + 1
    out = make_delays(X, (1, 2, 5), runs)
    for k, delay in enumerate((1, 2, 5)):
        values = out[:, k]
        for t in np.flatnonzero(values):
            assert runs[int(values[t]) - 1] == runs[t]
        for run in np.unique(runs):
            start = np.flatnonzero(runs == run)[0]
            n_zero = min(delay, int(np.sum(runs == run)))
            assert np.all(values[start : start + n_zero] == 0)


@pytest.mark.parametrize(
    ("delays", "runs", "match"),
    [
        ((), np.zeros(5), r"'delays' must be a non-empty sequence of unique integers"),
        ((1, 1), np.zeros(5), r"'delays' must be a non-empty sequence of unique integers"),
        ((0.5,), np.zeros(5), r"'delays' must be a non-empty sequence of unique integers"),
        ((0,), np.zeros(4), r"'runs' must have shape \(5,\), one label per sample; got shape"),
    ],
)
def test_make_delays_errors(delays, runs, match):
    with pytest.raises(ValueError, match=match):
        make_delays(np.ones((5, 2)), delays, runs)


# ----------------------------------------------------------------------------- splits


def test_outer_splits_timeseries_is_leave_one_run_out():
    runs = np.repeat([3, 1, 2], [10, 12, 8])  # labels need not be sorted in the data
    splits = outer_splits("timeseries", runs, n_folds=5, random_state=0)
    assert len(splits) == 3
    assert [np.unique(runs[test]).tolist() for _, test in splits] == [[1], [2], [3]]
    _check_partition(splits, runs, runs.size)


def test_outer_splits_concepts_tests_every_concept_once():
    concepts = np.repeat(np.arange(23), 2)  # two rows per concept
    splits = outer_splits("concepts", concepts, n_folds=4, random_state=7)
    assert len(splits) == 4
    _check_partition(splits, concepts, concepts.size)
    assert sorted(np.unique(concepts[test]).size for _, test in splits) == [5, 6, 6, 6]
    again = outer_splits("concepts", concepts, n_folds=4, random_state=7)
    other = outer_splits("concepts", concepts, n_folds=4, random_state=8)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(splits, other))


@pytest.mark.parametrize(("n_runs", "n_folds", "expected_folds"), [(4, 2, 2), (3, 5, 3)])
def test_inner_splits_timeseries_groups_whole_runs(n_runs, n_folds, expected_folds):
    runs = np.repeat(np.arange(n_runs), 9)
    splits = inner_splits("timeseries", runs, n_folds)
    assert len(splits) == expected_folds
    _check_partition(splits, runs, runs.size)


def test_inner_splits_single_run_uses_contiguous_blocks():
    runs = np.full(23, 4)
    splits = inner_splits("timeseries", runs, 5)
    assert len(splits) == 5
    tested = np.concatenate([test for _, test in splits])
    assert np.array_equal(tested, np.arange(23))  # blocks in time order, no shuffling
    for train, test in splits:
        assert np.all(np.diff(test) == 1)
        assert np.intersect1d(train, test).size == 0


def test_inner_splits_concepts_deterministic_and_disjoint():
    concepts = np.array([5, 9, 2, 11, 7, 3, 8, 1, 0, 4, 6])
    splits = inner_splits("concepts", concepts, 3)
    _check_partition(splits, concepts, concepts.size)
    again = inner_splits("concepts", concepts, 3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: outer_splits("random", np.arange(5), 2, 0),
            r"^'kind' must be one of 'concepts', 'timeseries'; got 'random'$",
        ),
        (
            lambda: inner_splits("runs", np.arange(5), 2),
            r"^'kind' must be one of 'concepts', 'timeseries'; got 'runs'$",
        ),
        (
            lambda: outer_splits("timeseries", np.ones(5), 2, 0),
            r"kind 'timeseries' needs >= 2 runs in 'groups' for leave-one-run-out; got 1",
        ),
        (
            lambda: outer_splits("concepts", np.arange(4), 5, 0),
            r"outer 'n_folds' \(5\) exceeds the 4 concepts in 'groups'; lower 'n_folds'",
        ),
        (
            lambda: outer_splits("concepts", np.arange(4), 1, 0),
            r"'n_folds' must be an integer >= 2; got 1",
        ),
        (
            lambda: inner_splits("timeseries", np.ones(3), 5),
            r"inner 'n_folds' \(5\) exceeds the 3 training samples of the single training run",
        ),
        (
            lambda: inner_splits("concepts", np.arange(3), 4),
            r"inner 'n_folds' \(4\) exceeds the 3 training concepts",
        ),
    ],
)
def test_split_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- fitting


@pytest.mark.parametrize("kind", ["concepts", "timeseries"])
def test_single_alpha_matches_sklearn_ridge(kind):
    rng = np.random.default_rng(2)
    n_samples, n_features, n_voxels = 45, 8, 5
    X = rng.standard_normal((n_samples, n_features)) * rng.uniform(0.5, 3, n_features) + 2.0
    Y = X @ rng.standard_normal((n_features, n_voxels)) + rng.standard_normal((45, 5)) + 4.0
    groups = np.arange(n_samples) if kind == "concepts" else np.repeat([1, 2, 3], [14, 16, 15])
    result = fit_encoding(
        X,
        Y,
        kind=kind,
        groups=groups,
        alphas=[3.0],
        n_outer_folds=4,
        n_inner_folds=3,
        random_state=5,
    )
    expected = np.zeros_like(Y)
    for train, test in outer_splits(kind, groups, 4, 5):
        scaler = StandardScaler().fit(X[train])
        model = Ridge(alpha=3.0).fit(scaler.transform(X[train]), Y[train])
        expected[test] = model.predict(scaler.transform(X[test]))
    assert result.predictions.dtype == np.float32
    np.testing.assert_allclose(result.predictions, expected, atol=1e-4)
    np.testing.assert_array_equal(result.alpha, 3.0)
    r_ref = [
        [
            pearsonr(Y[result.fold == k, v], expected[result.fold == k, v])[0]
            for v in range(n_voxels)
        ]
        for k in range(result.alpha.shape[0])
    ]
    r2_ref = [
        r2_score(Y[result.fold == k], expected[result.fold == k], multioutput="raw_values")
        for k in range(result.alpha.shape[0])
    ]
    np.testing.assert_allclose(result.r_folds, r_ref, atol=1e-4)
    np.testing.assert_allclose(result.r, np.mean(r_ref, axis=0), atol=1e-4)
    np.testing.assert_allclose(result.r2, np.mean(r2_ref, axis=0), atol=1e-4)


def test_per_voxel_alpha_grows_with_noise():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 20))
    signal = X @ rng.standard_normal((20, 16))
    noise_sd = np.repeat([0.3, 8.0], 8)
    Y = signal / signal.std(0) + rng.standard_normal((200, 16)) * noise_sd
    result = fit_encoding(
        X, Y, kind="concepts", groups=np.arange(200), alphas=np.logspace(-2, 5, 15), random_state=0
    )
    low, high = np.median(result.alpha[:, :8]), np.median(result.alpha[:, 8:])
    assert high > 10 * low
    assert np.all(result.r[:8] > result.r[8:].max())


def _planted_timeseries(seed: int):
    """3 runs x 120 TRs; 10 smooth features reach half of 60 voxels 2 TRs later."""
    rng = np.random.default_rng(seed)
    runs = np.repeat([1, 2, 3], 120)
    X = _per_run(lambda n: _ar1(rng, n, 10, 0.7), runs)
    signal = make_delays(X, (2,), runs) @ rng.standard_normal((10, 30))
    driven = signal / signal.std(0) + _per_run(lambda n: _ar1(rng, n, 30, 0.5), runs)
    noise = _per_run(lambda n: _ar1(rng, n, 30, 0.5), runs)
    return X, np.hstack([driven, noise]), runs


def test_planted_recovery_timeseries():
    X, Y, runs = _planted_timeseries(seed=4)
    result = fit_encoding(X, Y, kind="timeseries", groups=runs, alphas=ALPHAS, delays=(1, 2, 3, 4))
    assert result.solver == "primal"
    assert result.alpha.shape == (3, 60)
    assert result.r[:30].mean() > 0.3
    assert abs(result.r[30:].mean()) < 0.05
    assert result.r2[:30].mean() > 0.1
    no_delay = fit_encoding(X, Y, kind="timeseries", groups=runs, alphas=ALPHAS)
    assert result.r[:30].mean() > no_delay.r[:30].mean() + 0.2


@pytest.mark.parametrize("kind", ["concepts", "timeseries"])
def test_test_data_never_reaches_its_own_predictions(kind):
    rng = np.random.default_rng(5)
    groups = np.arange(48) if kind == "concepts" else np.repeat([1, 2, 3, 4], 12)
    X = rng.standard_normal((48, 6))
    Y = X @ rng.standard_normal((6, 7)) + rng.standard_normal((48, 7))
    delays = (0, 1) if kind == "timeseries" else (0,)
    kwargs = dict(kind=kind, groups=groups, alphas=ALPHAS, delays=delays, n_outer_folds=4)
    before = fit_encoding(X, Y, **kwargs)
    held_out = before.fold == 0
    changed = Y.copy()
    changed[held_out] = rng.standard_normal((held_out.sum(), 7)) * 100
    after = fit_encoding(X, changed, **kwargs)
    np.testing.assert_array_equal(after.predictions[held_out], before.predictions[held_out])
    assert not np.allclose(after.predictions[~held_out], before.predictions[~held_out])


def test_kernel_path_matches_primal_path():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((40, 90))
    Y = X[:, :5] @ rng.standard_normal((5, 6)) + rng.standard_normal((40, 6))
    kwargs = dict(kind="concepts", groups=np.arange(40), alphas=np.logspace(0, 5, 6))
    kernel = fit_encoding(X, Y, **kwargs)
    primal = fit_encoding(X, Y, solver="primal", **kwargs)
    assert kernel.solver == "kernel" and primal.solver == "primal"
    np.testing.assert_array_equal(kernel.alpha, primal.alpha)
    np.testing.assert_allclose(kernel.predictions, primal.predictions, atol=1e-4)


def _planted_concepts(seed: int):
    """60 concepts x 500 features from 4 latent factors; 20 driven, 60 pure-noise voxels."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((60, 4))
    X = latent @ rng.standard_normal((4, 500)) + 0.5 * rng.standard_normal((60, 500))
    driven = latent @ rng.standard_normal((4, 20)) + rng.standard_normal((60, 20))
    return X, np.hstack([driven, rng.standard_normal((60, 60))])


def test_planted_recovery_concepts_kernel_path():
    X, Y = _planted_concepts(seed=7)
    result = fit_encoding(
        X, Y, kind="concepts", groups=np.arange(60), alphas=np.logspace(0, 6, 7), random_state=1
    )
    assert result.solver == "kernel"
    assert result.predictions.shape == (60, 80)
    assert np.array_equal(np.bincount(result.fold), [12] * 5)
    assert result.r[:20].mean() > 0.3
    assert abs(result.r[20:].mean()) < 0.1


def test_fold_mean_is_unbiased_under_null_where_concatenation_is_not():
    # Why scoring defaults to 'fold_mean': per-fold alphas and training means make the
    # concatenated held-out predictions anti-correlate with pure noise.
    X, Y = _planted_concepts(seed=8)
    kwargs = dict(kind="concepts", groups=np.arange(60), alphas=np.logspace(0, 6, 7))
    fold_mean = fit_encoding(X, Y, **kwargs)
    concatenated = fit_encoding(X, Y, scoring="concatenated", **kwargs)
    assert abs(fold_mean.r[20:].mean()) < 0.06
    assert concatenated.r[20:].mean() < -0.05


def test_fit_encoding_is_deterministic():
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((30, 4)), rng.standard_normal((30, 3))
    kwargs = dict(kind="concepts", groups=np.arange(30), alphas=ALPHAS, random_state=3)
    first, second = fit_encoding(X, Y, **kwargs), fit_encoding(X, Y, **kwargs)
    assert first.predictions.tobytes() == second.predictions.tobytes()
    assert first.r.tobytes() == second.r.tobytes()
    other = fit_encoding(X, Y, **{**kwargs, "random_state": 4})
    assert not np.array_equal(first.fold, other.fold)


@pytest.mark.parametrize("n_features", [4, 50])  # primal and kernel paths
def test_target_batching_does_not_change_results(n_features):
    rng = np.random.default_rng(13)
    X, Y = rng.standard_normal((30, n_features)), rng.standard_normal((30, 7))
    kwargs = dict(kind="concepts", groups=np.arange(30), alphas=np.logspace(0, 5, 6))
    whole, batched = fit_encoding(X, Y, **kwargs), fit_encoding(X, Y, n_targets_batch=3, **kwargs)
    np.testing.assert_array_equal(whole.alpha, batched.alpha)
    np.testing.assert_allclose(whole.predictions, batched.predictions, atol=1e-5)


def test_concatenated_scoring_scores_all_predictions_together():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((36, 5))
    Y = X @ rng.standard_normal((5, 4)) + rng.standard_normal((36, 4))
    result = fit_encoding(
        X, Y, kind="concepts", groups=np.arange(36), alphas=ALPHAS, scoring="concatenated"
    )
    r, r2 = score_predictions(Y, result.predictions)
    np.testing.assert_allclose(result.r, r, atol=1e-6)
    np.testing.assert_allclose(result.r2, r2, atol=1e-6)
    assert not np.allclose(result.r, np.mean(result.r_folds, axis=0))


def test_alpha_at_grid_edge_is_warned(caplog):
    rng = np.random.default_rng(10)
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 5))
    with caplog.at_level(logging.INFO, logger="brainalign.encoding"):
        fit_encoding(X, Y, kind="concepts", groups=np.arange(40), alphas=[1e-3, 1e-2])
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "100.0% of chosen alphas lie at an edge of the grid" in warnings[0].getMessage()


def test_score_predictions_matches_scipy_and_sklearn():
    rng = np.random.default_rng(11)
    Y = rng.standard_normal((25, 6))
    P = Y + rng.standard_normal((25, 6))
    Y[:, 5] = 2.0  # constant voxel: both scores defined as 0
    r, r2 = score_predictions(Y, P, chunk_size=4)
    np.testing.assert_allclose(r[:5], [pearsonr(Y[:, v], P[:, v])[0] for v in range(5)], atol=1e-12)
    np.testing.assert_allclose(
        r2[:5], r2_score(Y[:, :5], P[:, :5], multioutput="raw_values"), atol=1e-12
    )
    assert r[5] == 0 and r2[5] == 0


def test_score_folds_rejects_tiny_folds():
    Y = np.arange(8.0).reshape(4, 2)
    with pytest.raises(ValueError, match=r"scoring 'fold_mean' needs >= 3 samples per test fold"):
        score_folds(Y, Y, np.array([0, 0, 1, 1]))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            {"Y": np.ones((29, 3))},
            r"^'X' and 'Y' must have the same number of samples \(rows\); "
            r"got X shape \(30, 4\) and Y shape \(29, 3\)$",
        ),
        ({"alphas": []}, r"'alphas' must be a non-empty list of positive finite numbers; got \[\]"),
        ({"alphas": [1.0, -1.0]}, r"'alphas' must be a non-empty list of positive finite numbers"),
        (
            {"n_outer_folds": 31},
            r"outer 'n_folds' \(31\) exceeds the 30 concepts in 'groups'; lower 'n_folds' "
            r"\('n_outer_folds' of fit_encoding\)$",
        ),
        ({"delays": (0, 1)}, r"'delays' apply only to kind 'timeseries'; got delays \(0, 1\)"),
        ({"kind": "voxels"}, r"'kind' must be one of 'concepts', 'timeseries'; got 'voxels'"),
        ({"solver": "cholesky"}, r"'solver' must be one of 'auto', 'kernel', 'primal'"),
        ({"scoring": "median"}, r"'scoring' must be one of 'concatenated', 'fold_mean'"),
        ({"n_outer_folds": 15}, r"scoring 'fold_mean' needs >= 3 samples per test fold; got"),
        ({"n_inner_folds": 0}, r"'n_inner_folds' must be an integer >= 2; got 0"),
        ({"n_targets_batch": 0}, r"'n_targets_batch' must be a positive integer or None; got 0"),
        ({"groups": np.arange(29)}, r"'groups' must have shape \(30,\), one label per sample"),
        ({"X": np.full((30, 4), np.nan)}, r"'X' must be finite; got 120 NaN/inf values"),
    ],
)
def test_fit_encoding_errors(overrides, match):
    rng = np.random.default_rng(12)
    kwargs = dict(
        X=rng.standard_normal((30, 4)),
        Y=rng.standard_normal((30, 3)),
        kind="concepts",
        groups=np.arange(30),
        alphas=ALPHAS,
    )
    kwargs.update(overrides)
    with pytest.raises(ValueError, match=match):
        fit_encoding(**kwargs)
