"""brainalign.neurons.analyses and .resample: hand-built maps with known answers, exact nulls
against scipy, planted redundancy / polarity / architecture recovered from map_units."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import binom

from brainalign.encoding.delays import make_delays
from brainalign.neurons import (
    ModelUnits,
    UnitVoxelMap,
    architecture_contrast,
    architecture_shares,
    count_null_pmf,
    jaccard_pairs,
    map_units,
    network_shares,
    polarity,
    redundancy,
)


def _map(significant, score=None, sign=None):
    significant = np.asarray(significant, bool)
    score = np.where(significant, 0.5, 0.0).astype(np.float32) if score is None else np.asarray(score, np.float32)
    sign = np.ones(significant.shape, np.int8) if sign is None else np.asarray(sign, np.int8)
    weights = np.zeros((significant.shape[0], 1, significant.shape[1]), np.float32)
    p = np.where(significant, 0.01, 1.0).astype(np.float32)
    return UnitVoxelMap(score, sign, weights, p, significant, "maxstat", {})


def test_network_shares_count_units_per_layer_and_network():
    significant = np.zeros((4, 6), bool)
    significant[0, 0] = significant[1, 4] = significant[2, 1] = True  # networks: 0 0 1 1 1 -1
    score = np.arange(24, dtype=np.float32).reshape(4, 6) / 100
    table = network_shares(_map(significant, score), np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1, 1, -1]), ["vis", "lang"])
    row = table.set_index(["layer", "network"])
    assert row.loc[(0, "vis"), "n_significant_units"] == 1 and row.loc[(0, "lang"), "share"] == 0.5
    assert row.loc[(1, "vis"), "share"] == 0.5 and row.loc[(1, "lang"), "n_significant_units"] == 0
    assert row.loc[(1, "lang"), "mean_best_score"] == pytest.approx((0.16 + 0.22) / 2)
    assert row.loc[(0, "vis"), "n_voxels"] == 2 and len(table) == 4


def test_count_null_is_binomial_for_equal_sets_and_sums_to_one():
    pmf = count_null_pmf(np.full(9, 3), 12)
    np.testing.assert_allclose(pmf, binom.pmf(np.arange(10), 9, 3 / 12), atol=1e-12)
    mixed = count_null_pmf(np.array([0, 1, 5, 12]), 12)
    assert mixed.sum() == pytest.approx(1.0) and mixed[0] == 0  # a unit hits every voxel


def test_jaccard_pairs_against_python_sets():
    rng = np.random.default_rng(0)
    significant = rng.random((6, 15)) < 0.3
    significant[2] = False
    sets = [set(np.flatnonzero(row)) for row in significant if row.any()]
    expected = [len(a & b) / len(a | b) for a, b in itertools.combinations(sets, 2)]
    np.testing.assert_allclose(jaccard_pairs(significant), expected)


def _ar(rng, n, k, phi=0.5):
    out = rng.standard_normal((n, k))
    for t in range(1, n):
        out[t] = phi * out[t - 1] + np.sqrt(1 - phi**2) * out[t]
    return out


def _planted_maps(seed=0, n_runs=4, n_trs=100):
    """Units 0-3 share voxels 0-7 (one source), units 4-5 drive voxels 8-11 with opposite signs."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_runs), n_trs)
    units = _ar(rng, n_runs * n_trs, 10)
    source = _ar(rng, n_runs * n_trs, 1)
    units[:, :4] = source + 0.3 * units[:, :4]  # redundant units
    targets = _ar(rng, n_runs * n_trs, 48)
    lagged = make_delays(units, (1,), groups)
    targets[:, :8] += 0.8 * source
    targets[:, 8:12] += 0.8 * lagged[:, [4]] - 0.8 * lagged[:, [5]]
    return units, targets, groups


@pytest.fixture(scope="module")
def planted():
    units, targets, groups = _planted_maps()
    return units, targets, groups, map_units(units, targets, groups, delays=(0, 1, 2), n_permutations=49)


def test_planted_shared_voxel_sets_overlap_above_null(planted):
    *_, result = planted
    assert result.significant[:4, :8].mean() >= 0.9 and result.significant[6:].sum() == 0
    per_voxel, pairs = redundancy(result, n_null=200, seed=0)
    assert pairs.loc[0, "observed"] > pairs.loc[0, "null_mean"] + 3 * pairs.loc[0, "null_sd"]
    assert pairs.loc[0, "p"] == pytest.approx(1 / 201)
    assert per_voxel.loc[:7, "p"].max() < 0.05 and per_voxel.loc[12:, "n_predicting_units"].sum() == 0
    random_sets = np.random.default_rng(1).random((12, 40)) < 0.2
    _, null_pairs = redundancy(_map(random_sets), n_null=200, seed=0)
    assert null_pairs.loc[0, "p"] > 0.05


def test_planted_signs_and_mirrored_layer_profiles(planted):
    *_, result = planted
    assert np.all(result.sign[4, 8:12][result.significant[4, 8:12]] == 1)
    assert np.all(result.sign[5, 8:12][result.significant[5, 8:12]] == -1)
    significant = np.zeros((6, 4), bool)  # layers 0-2, two units each: positive share falls,
    sign = -np.ones((6, 4), np.int8)  # negative share rises
    significant[[0, 1, 2], 0] = True
    sign[[0, 1, 2], 0] = 1
    significant[[3, 4, 5], 1] = significant[5, 2] = True
    table = polarity(_map(significant, sign=sign), np.array([0, 0, 1, 1, 2, 2]), 3)
    np.testing.assert_allclose(table["share_positive"][:3].astype(float), [1, 0.5, 0])
    np.testing.assert_allclose(table["share_negative"][:3].astype(float), [0, 0.5, 1])
    assert table["layer"].iloc[-1] == "mirror" and table["mirror_r"].iloc[-1] == pytest.approx(-1.0)


def test_architecture_shares_by_modality():
    significant = np.zeros((4, 6), bool)
    significant[0, [0, 1]] = significant[1, [1, 2]] = significant[2, 4] = True
    table = architecture_shares(
        _map(significant), np.array(["vision", "text", "cross", "text"]), np.array([0, 0, 0, 1, 1, 1]), ["a", "b"]
    ).set_index("network")
    assert table.loc["a", "share_vision_only"] == pytest.approx(1 / 3)
    assert table.loc["a", "share_both"] == pytest.approx(1 / 3) and table.loc["a", "share_text_only"] == pytest.approx(1 / 3)
    assert table.loc["b", "share_cross"] == pytest.approx(1 / 3) and table.loc["b", "share_unified"] == pytest.approx(1 / 3)


def test_architecture_contrast_finds_unified_voxels_of_the_cross_model():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(4), 60)
    cross_units, tower_units = rng.standard_normal((240, 6)), rng.standard_normal((240, 6))
    targets = rng.standard_normal((240, 20))
    targets[:, :10] += 0.9 * cross_units[:, [0]]  # network 0: unified under the cross model
    targets[:, :5] += 0.9 * tower_units[:, [0]]  # two-tower: vision unit here, text unit there
    targets[:, 5:10] += 0.9 * tower_units[:, [3]]
    network = np.repeat([0, 1], 10)
    modality = np.array(["vision"] * 3 + ["text"] * 3)
    sides = [
        ModelUnits(u, m, map_units(u, targets, groups, n_permutations=49))
        for u, m in ((cross_units, np.array(["cross"] * 6)), (tower_units, modality))
    ]
    table = architecture_contrast(*sides, targets, groups, network, ["net0", "net1"], n_boot=100).set_index("network")
    assert table.loc["net0", "share_a"] == 1.0 and table.loc["net0", "share_b"] == 0.0
    assert table.loc["net0", "p"] < 0.05 and table.loc["net0", "ci_low"] > 0.5
    same = architecture_contrast(sides[1], sides[1], targets, groups, network, ["net0", "net1"], n_boot=20)
    assert np.all(same["difference"] == 0) and np.all(same["p"] == 1.0)
