"""brainalign.neurons.mapping: every unit x voxel pair against per-pair references, planted
truth, null false-positive rates, determinism and boundary errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control
from sklearn.linear_model import LinearRegression, Ridge

from brainalign.encoding.delays import make_delays
from brainalign.neurons import by_adjust, fold_atoms, map_units, maxstat_pvalues
from brainalign.neurons.mapping import _Layout


def _ar1(rng, n_runs, n_trs, n_columns, phi=0.5):
    """Independent AR(1) columns, restarted in every run (unit variance)."""
    out = np.empty((n_runs * n_trs, n_columns))
    for run in range(n_runs):
        noise = rng.standard_normal((n_trs, n_columns))
        z = np.empty_like(noise)
        z[0] = noise[0]
        for t in range(1, n_trs):
            z[t] = phi * z[t - 1] + np.sqrt(1 - phi**2) * noise[t]
        out[run * n_trs : (run + 1) * n_trs] = z
    return out


def _reference(units, targets, groups, delays, ridge):
    """Per-pair loop: scikit-learn fit on training-standardised columns, np.corrcoef on test."""
    n_units, n_voxels = units.shape[1], targets.shape[1]
    score = np.zeros((n_units, n_voxels))
    weights = np.zeros((n_units, len(delays), n_voxels))
    for u in range(n_units):
        X = make_delays(units[:, [u]], delays, groups).astype(np.float64)
        for v in range(n_voxels):
            rs, ws = [], []
            for label in np.unique(groups):
                train, test = groups != label, groups == label
                mean, sd = X[train].mean(0), X[train].std(0)
                y = targets[:, v]
                y_train = (y[train] - y[train].mean()) / y[train].std()
                model = Ridge(alpha=ridge * train.sum()) if ridge else LinearRegression()
                model.fit((X[train] - mean) / sd, y_train)
                rs.append(np.corrcoef(model.predict((X[test] - mean) / sd), y[test])[0, 1])
                ws.append(model.coef_)
            score[u, v], weights[u, :, v] = np.mean(rs), np.mean(ws, axis=0)
    return score, weights


def test_scores_and_weights_match_per_pair_reference():
    rng = np.random.default_rng(0)
    groups = np.repeat([3, 1, 2], 40)  # unsorted labels: samples are regrouped inside
    units = rng.standard_normal((120, 5)) * 3 + 5  # non-zero means: zero-filled delays matter
    targets = rng.standard_normal((120, 7)) * 2 + 10
    targets[:, 0] += units[:, 1]
    delays = (0, 1, 3)
    result = map_units(units, targets, groups, delays=delays, n_permutations=3, ridge=1e-3)
    score, weights = _reference(units, targets, groups, delays, 1e-3)
    np.testing.assert_allclose(result.score, score, atol=2e-5)
    np.testing.assert_allclose(result.weights, weights, atol=2e-5)
    np.testing.assert_array_equal(result.sign, np.where(weights.sum(axis=1) >= 0, 1, -1))
    assert result.score.dtype == np.float32 and result.weights.shape == (5, 3, 7)


def test_patterns_without_ridge_match_linear_regression():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(5), 12)  # stimulus folds of 12 concepts
    units, targets = rng.standard_normal((60, 4)), rng.standard_normal((60, 6))
    result = map_units(units, targets, groups, n_permutations=3, ridge=0.0)
    score, weights = _reference(units, targets, groups, (0,), 0.0)
    np.testing.assert_allclose(result.score, score, atol=2e-5)
    np.testing.assert_allclose(result.weights, weights, atol=2e-5)
    assert result.meta["block_length"] == 1


def test_constant_unit_and_voxel_score_zero():
    rng = np.random.default_rng(2)
    units, targets = rng.standard_normal((80, 3)), rng.standard_normal((80, 4))
    units[:, 1] = 2.0
    targets[:20, 2] = 5.0  # constant in the first group only
    result = map_units(units, targets, np.repeat(np.arange(4), 20), n_permutations=3)
    assert np.all(result.score[1] == 0) and np.all(result.weights[1] == 0)
    assert np.all(np.isfinite(result.score)) and np.all(np.abs(result.score) <= 1)


def _planted(rng, n_runs=4, n_trs=80):
    units = _ar1(rng, n_runs, n_trs, 12)
    targets = _ar1(rng, n_runs, n_trs, 30)
    lagged = make_delays(units, (2,), np.repeat(np.arange(n_runs), n_trs))
    targets[:, 0:6] += 0.8 * lagged[:, [3]]  # unit 3 drives voxels 0-5 positively
    targets[:, 10:16] -= 0.8 * lagged[:, [7]]  # unit 7 drives voxels 10-15 negatively
    targets[:, 16:20] += 0.8 * lagged[:, [7]]  # ... and voxels 16-19 positively
    return units, targets, np.repeat(np.arange(n_runs), n_trs)


@pytest.mark.parametrize("correction", ["maxstat", "fdr_by"])
def test_planted_units_voxels_and_signs_recovered(correction):
    units, targets, groups = _planted(np.random.default_rng(3), n_trs=120)  # 6 blocks a run
    result = map_units(units, targets, groups, delays=(1, 2, 3), n_permutations=99, correction=correction)
    planted = np.zeros(result.score.shape, bool)
    planted[3, 0:6] = planted[7, 10:20] = True
    assert np.array_equal(result.significant, planted)
    assert np.all(result.sign[3, 0:6] == 1) and np.all(result.sign[7, 16:20] == 1)
    assert np.all(result.sign[7, 10:16] == -1)
    assert np.all(result.weights[7, 1, 10:16] < -0.3)  # the planted delay carries the weight


def test_null_family_wise_error_rate_maxstat():
    """Measured: 4 of 100 AR(1) null datasets (phi 0.5) with any false pair (alpha 0.05)."""
    hits = 0
    for i in range(100):
        rng = np.random.default_rng(1000 + i)
        units, targets = _ar1(rng, 4, 60, 6), _ar1(rng, 4, 60, 10)
        groups = np.repeat(np.arange(4), 60)
        result = map_units(units, targets, groups, delays=(1, 2, 3), n_permutations=49, seed=i)
        hits += bool(result.significant.any())
    assert hits <= 5


def test_false_discovery_proportion_fdr_by():
    """Mean FDP over datasets with 16 planted pairs among 360 (AR(1) nulls) stays below alpha."""
    proportions, found = [], []
    for i in range(10):
        units, targets, groups = _planted(np.random.default_rng(2000 + i), n_trs=120)
        result = map_units(units, targets, groups, delays=(1, 2, 3), n_permutations=49, correction="fdr_by", seed=i)
        false = result.significant.copy()
        false[3, 0:6] = false[7, 10:20] = False
        proportions.append(false.sum() / max(1, result.significant.sum()))
        found.append(result.significant.sum() - false.sum())
    assert np.mean(proportions) <= 0.05
    assert np.mean(found) >= 12  # the test has discoveries to be wrong about


def test_same_seed_same_bytes_other_seed_other_null():
    units, targets, groups = _planted(np.random.default_rng(4), n_trs=40)
    kwargs = dict(delays=(1, 2), n_permutations=20, correction="fdr_by")
    a, b = map_units(units, targets, groups, **kwargs), map_units(units, targets, groups, **kwargs)
    for name in ("score", "weights", "p", "sign", "significant"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    c = map_units(units, targets, groups, seed=1, **kwargs)
    assert a.meta["max_null"] != c.meta["max_null"] and a.score.tobytes() == c.score.tobytes()


def test_batches_and_memory_maps_give_the_same_map(tmp_path):
    units, targets, groups = _planted(np.random.default_rng(5), n_trs=40)
    whole = map_units(units, targets, groups, delays=(1, 2), n_permutations=10)
    parts = map_units(
        units, targets, groups, delays=(1, 2), n_permutations=10, unit_batch=5, voxel_batch=7, out_dir=tmp_path
    )
    np.testing.assert_allclose(parts.score, whole.score, atol=1e-6)
    np.testing.assert_array_equal(parts.p, whole.p)
    assert isinstance(parts.score, np.memmap) and np.load(tmp_path / "significant.npy").sum() == whole.significant.sum()


def test_maxstat_and_by_against_definitions():
    rng = np.random.default_rng(6)
    score, null = rng.uniform(-0.2, 0.6, (7, 9)).astype(np.float32), rng.uniform(0, 0.5, 40)
    expected = (1 + (null[None, None, :] >= score[..., None] - 1e-6).sum(-1)) / 41
    np.testing.assert_allclose(maxstat_pvalues(score, null), expected, rtol=1e-6)
    p = rng.uniform(0, 1, (30, 11)) ** 3
    np.testing.assert_allclose(by_adjust(p), false_discovery_control(p.ravel(), method="by").reshape(p.shape), rtol=1e-5)


def test_atoms_fitted_on_training_folds_only():
    rng = np.random.default_rng(7)
    units = rng.standard_normal((90, 8))
    layout = _Layout(np.repeat(np.arange(3), 30))
    codes, match = fold_atoms(units, layout.splits, 4, seed=0, max_iter=5)
    changed = units.copy()
    changed[:30] = rng.standard_normal((30, 8)) * 5  # fold 0's test samples
    codes_changed, _ = fold_atoms(changed, layout.splits, 4, seed=0, max_iter=5)
    np.testing.assert_allclose(codes_changed[0][30:], codes[0][30:], atol=1e-6)
    assert not np.allclose(codes_changed[1][30:], codes[1][30:])  # fold 1 trains on them
    assert match.shape == (3, 4) and np.all(match[0] > 0.999)
    result = map_units(
        units, rng.standard_normal((90, 5)), layout.codes, atoms=4, n_permutations=5, atom_params=dict(max_iter=5)
    )
    assert result.score.shape == (4, 5) and result.meta["atoms"] == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(targets=np.zeros((79, 3))), r"same number of samples.*units \(80, 4\), targets \(79, 3\)"),
        (dict(delays=(0, 20)), r"'delays' reach 20 samples but the shortest group has 20"),
        (dict(block_length=25), r"'block_length' \(25\) is longer than the shortest group \(20 samples\)"),
        (dict(atoms=61), r"'atoms' \(61\) exceeds the 60 training samples.*at most 60 atoms"),
        (dict(correction="bonferroni"), r"'correction' must be one of 'fdr_by', 'maxstat'"),
        (dict(groups=np.zeros(80)), r"'groups' must hold >= 2 distinct labels"),
    ],
)
def test_errors_name_the_parameter_and_the_fix(kwargs, match):
    rng = np.random.default_rng(8)
    arguments = dict(units=rng.standard_normal((80, 4)), targets=rng.standard_normal((80, 3)))
    arguments["groups"] = np.repeat(np.arange(4), 20)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        map_units(arguments.pop("units"), arguments.pop("targets"), arguments.pop("groups"), **arguments)
