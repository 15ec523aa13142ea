"""Tests of the paired bootstrap, site selection, FDR and shares (brainalign.contrasts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from threadpoolctl import threadpool_limits

from brainalign.contrasts import (
    bootstrap_pvalues,
    bootstrap_scores,
    contrast_statistics,
    draw_resamples,
    fold_strata,
    load_resamples,
    save_resamples,
    share_table,
    wilson_interval,
)
from brainalign.encoding import fit_encoding
from brainalign.encoding.banded import fit_banded_encoding

ALPHAS = [1.0, 10.0, 100.0, 1000.0, 10000.0]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _loop_scores(y, pa, pb, resamples):
    """Reference: per resample, reindex the held-out rows of each fold, scipy pearsonr, mean."""
    out = np.zeros((3, resamples.n_resamples, y.shape[1]))
    folds = np.unique(resamples.fold)
    for b in range(resamples.n_resamples):
        for k in folds:
            cols = resamples.fold == k
            rows = np.repeat(resamples.rows[cols], resamples.counts[b, cols])
            for u in range(y.shape[1]):
                out[0, b, u] += stats.pearsonr(y[rows, u], pa[rows, u])[0] / folds.size
                out[1, b, u] += stats.pearsonr(y[rows, u], pb[rows, u])[0] / folds.size
    out[2] = out[0] - out[1]
    return out


def test_vectorised_bootstrap_equals_a_loop_of_pearsonr():
    rng = np.random.default_rng(3)
    n, n_units = 37, 5
    y = rng.standard_normal((n, n_units)).astype(np.float32) + 10.0
    pa = (0.5 * y + rng.standard_normal((n, n_units))).astype(np.float32)
    pb = (0.2 * y + rng.standard_normal((n, n_units))).astype(np.float32)
    fold = np.arange(n) % 4
    resamples = draw_resamples(fold_strata(fold, "epochs", fold), 25, random_state=1)
    scores = bootstrap_scores(y, pa, pb, resamples, chunk=2, keep_resamples=True,
                              fold_correction=False)
    reference = _loop_scores(y.astype(np.float64), pa, pb, resamples)
    np.testing.assert_allclose(scores["boot_a"], reference[0], atol=1e-6)
    np.testing.assert_allclose(scores["boot_b"], reference[1], atol=1e-6)
    np.testing.assert_allclose(scores["boot_delta"], reference[2], atol=1e-6)
    observed = [
        np.mean([stats.pearsonr(y[fold == k, u], p[fold == k, u])[0] for k in range(4)])
        for p in (pa, pb)
        for u in range(n_units)
    ]
    np.testing.assert_allclose(np.r_[scores["r_a"], scores["r_b"]], observed, atol=1e-9)
    assert np.array_equal(scores["n_le0"], (reference[2] <= 0).sum(axis=0))
    # the fold correction widens the same resamples around the observed scores by
    # sqrt(1 + K n_test / n_train) (Nadeau & Bengio 2003); 37 rows in folds of 10, 9, 9, 9
    factor = 1 + 4 * np.mean([10 / 27, 9 / 28, 9 / 28, 9 / 28])
    widened = bootstrap_scores(y, pa, pb, resamples, keep_resamples=True)
    assert widened["variance_factor"] == pytest.approx(factor)
    np.testing.assert_allclose(
        widened["boot_delta"], scores["delta"] + np.sqrt(factor) * (reference[2] - scores["delta"]),
        atol=1e-5)


def test_timeseries_blocks_stay_within_runs_and_folds():
    runs = np.repeat([1, 2, 3], [23, 20, 17])
    fold = runs - 1
    strata = fold_strata(fold, "timeseries", runs, block_size=5)
    assert [len(blocks) for blocks in strata] == [5, 4, 4]
    assert [b.size for b in strata[0]] == [5, 5, 5, 5, 3]
    for k, blocks in enumerate(strata):
        for block in blocks:
            assert np.all(np.diff(block) == 1) and np.all(fold[block] == k)
    resamples = draw_resamples(strata, 200, random_state=0)
    # a block is drawn whole: counts are equal within every block
    for k in range(3):
        for j in range(len(strata[k])):
            cols = (resamples.fold == k) & (resamples.block == j)
            assert np.all(resamples.counts[:, cols] == resamples.counts[:, cols][:, :1])
    # each fold draws as many blocks as it has
    block_draws = resamples.counts[:, (resamples.fold == 1)].sum(axis=1)
    assert np.all(block_draws == 20)


def test_resamples_depend_only_on_seed_and_structure(tmp_path):
    fold = np.arange(30) % 3
    a = draw_resamples(fold_strata(fold, "epochs", fold), 50, random_state=7)
    b = draw_resamples(fold_strata(fold, "epochs", fold), 50, random_state=7)
    c = draw_resamples(fold_strata(fold, "epochs", fold), 50, random_state=8)
    assert np.array_equal(a.counts, b.counts) and not np.array_equal(a.counts, c.counts)
    save_resamples(tmp_path / "r.npz", a)
    loaded = load_resamples(tmp_path / "r.npz")
    assert np.array_equal(loaded.counts, a.counts) and loaded.seed == 7
    assert loaded.structure_key() == a.structure_key()
    with pytest.raises(ValueError, match="'n_resamples' must be a positive integer; got 0"):
        draw_resamples(fold_strata(fold, "epochs", fold), 0, random_state=7)


def _dataset(seed, n_units=400, planted=0.13, shared=0.3, n=300):
    """Concept-like data: side A = [own, shared] features, side B = [other, shared].

    ``planted`` of the units are driven by A's own features only, ``shared`` of the units
    by the shared features, the rest are noise.
    """
    rng = np.random.default_rng(seed)
    own, other, common = (rng.standard_normal((n, 8)) for _ in range(3))
    n_planted, n_shared = round(planted * n_units), round(shared * n_units)
    Y = rng.standard_normal((n, n_units))
    Y[:, :n_planted] += own @ rng.standard_normal((8, n_planted)) * 0.25
    Y[:, n_planted : n_planted + n_shared] += common @ rng.standard_normal((8, n_shared)) * 0.25
    return (
        np.hstack([own, common]),
        np.hstack([other, common]),
        Y.astype(np.float32),
        n_planted,
        n_shared,
    )


def _contrast(Xa, Xb, Y, seed, n_resamples=1000, **options):
    kwargs = dict(
        kind="concepts",
        groups=np.arange(Y.shape[0]),
        alphas=ALPHAS,
        n_outer_folds=5,
        n_inner_folds=3,
        random_state=seed,
    )
    fit_a, fit_b = (
        (
            fit_encoding(X, Y, **kwargs)
            if isinstance(X, np.ndarray)
            else fit_banded_encoding(X, Y, n_iter=3, **{**kwargs, "alphas": [0.01, 0.1] + ALPHAS})
        )
        for X in (Xa, Xb)
    )
    resamples = draw_resamples(fold_strata(fit_a.fold, "concepts", None), n_resamples, seed)
    scores = bootstrap_scores(Y, fit_a.predictions, fit_b.predictions, resamples)
    np.testing.assert_allclose(scores["r_a"], fit_a.r, atol=1e-5)
    return contrast_statistics(scores, **options), scores


@pytest.mark.parametrize("seed", range(5))
def test_null_contrasts_keep_false_positives_under_five_percent(seed):
    Xa, Xb, Y, _, _ = _dataset(seed, planted=0.0, shared=0.5)
    # equally good sides: the same shared features plus different irrelevant ones
    equal, _ = _contrast(Xa, Xb, Y, seed)
    assert equal["selected"].mean() > 0.3
    assert equal["significant"].mean() <= 0.05
    # pure noise on both sides
    rng = np.random.default_rng(100 + seed)
    noise, _ = _contrast(Xa, Xb, rng.standard_normal(Y.shape).astype(np.float32), seed)
    assert noise["significant"].mean() <= 0.05


def test_planted_share_of_a_only_units_is_recovered():
    Xa, Xb, Y, n_planted, n_shared = _dataset(11)
    table, _ = _contrast(Xa, Xb, Y, 11)
    share = table["significant"].mean()
    assert abs(share - 0.13) <= 0.03, share
    assert table["significant"][:n_planted].mean() > 0.8
    assert table["significant"][n_planted : n_planted + n_shared].mean() <= 0.02
    # noise units: rare, but not absent: selecting on A's own bootstrap interval favours noise
    # units whose A score is high by chance (measured 5 of 228 here; see selection docstring)
    assert table["significant"][n_planted + n_shared :].mean() <= 0.05


def test_banded_side_runs_through_the_same_machinery():
    Xa, Xb, Y, n_planted, _ = _dataset(5, n_units=120)
    # A = banded ridge over (own, common), B = banded ridge over (other, common): the same
    # model class on both sides, so only the A-only units differ
    table, _ = _contrast([Xa[:, :8], Xa[:, 8:]], [Xb[:, :8], Xb[:, 8:]], Y, 5, n_resamples=300)
    assert table["significant"][:n_planted].mean() > 0.6
    assert table["significant"][n_planted:].mean() <= 0.05


def test_pvalues_fdr_selection_and_exclusion():
    rng = np.random.default_rng(0)
    n = 50
    ci_a = np.vstack([rng.uniform(-0.2, 0.2, n), np.ones(n)])
    ci_b = np.vstack([rng.uniform(-0.2, 0.2, n), np.ones(n)])
    scores = {
        "r_a": rng.uniform(size=n),
        "r_b": rng.uniform(size=n),
        "ci_a": ci_a,
        "ci_b": ci_b,
        "n_le0": rng.integers(0, 60, n),
        "n_ge0": rng.integers(0, 1000, n),
        "n_resamples": 999,
    }
    scores["delta"] = scores["r_a"] - scores["r_b"]
    scores["ci_delta"] = np.vstack([scores["delta"] - 0.1, scores["delta"] + 0.1])
    usable = np.ones(n + 3, dtype=bool)
    usable[[0, 10, 20]] = False
    table = contrast_statistics(scores, usable, fdr_q=0.05, select="either")
    fitted = table[~table["excluded"]]
    selected = (ci_a[0] > 0) | (ci_b[0] > 0)
    p = (1 + scores["n_le0"]) / 1000
    np.testing.assert_allclose(fitted["p"], p)
    np.testing.assert_allclose(fitted["q"][selected], stats.false_discovery_control(p[selected]))
    assert fitted["q"][~selected].isna().all() and table.loc[[0, 10, 20], "r_a"].isna().all()
    assert not table.loc[[0, 10, 20], ["selected", "significant"]].any().any()
    expected = selected & (fitted["q"].to_numpy() <= 0.05) & (scores["delta"] > 0)
    assert np.array_equal(fitted["significant"].to_numpy(), expected)
    both = contrast_statistics(scores, usable, select="both")
    assert np.array_equal(both.loc[usable, "selected"], (ci_a[0] > 0) & (ci_b[0] > 0))
    two = bootstrap_pvalues(np.array([0, 500, 999]), np.array([999, 500, 0]), 999, "two-sided")
    np.testing.assert_allclose(two, [2 / 1000, 1.0, 2 / 1000])
    with pytest.raises(ValueError, match="'select' must be one of"):
        contrast_statistics(scores, usable, select="any")


def _wilson_by_roots(k, n, z):
    """The Wilson interval as the roots of (k/n - t)^2 = z^2 t (1 - t) / n."""
    phat = k / n
    return sorted(np.roots([1 + z**2 / n, -(2 * phat + z**2 / n), phat**2]).real)


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (13, 100), (50, 50), (1, 3)])
def test_wilson_interval_matches_its_definition(k, n):
    low, high = wilson_interval(k, n, 0.95)
    np.testing.assert_allclose(
        [low, high], _wilson_by_roots(k, n, stats.norm.ppf(0.975)), atol=1e-9
    )
    try:
        from statsmodels.stats.proportion import proportion_confint
    except ImportError:
        return
    np.testing.assert_allclose(
        [low, high], proportion_confint(k, n, 0.05, method="wilson"), atol=1e-9
    )


def test_wilson_interval_of_no_trials_is_nan():
    low, high = wilson_interval(np.array([0, 2]), np.array([0, 4]))
    assert np.isnan(low[0]) and np.isnan(high[0]) and low[1] < 0.5 < high[1]


def test_share_table_counts_rois_sites_and_leaves_out_excluded_units():
    n_channels, n_bins = 6, 4
    channel = np.repeat(np.arange(n_channels), n_bins)
    units = pd.DataFrame(
        {"unit": np.arange(channel.size), "delta": np.linspace(-1, 1, channel.size)}
    )
    units["excluded"] = False
    units.loc[[0, 1], "excluded"] = True
    units["selected"] = (channel % 2 == 0) & ~units["excluded"]
    units["significant"] = units["selected"] & (np.arange(channel.size) % n_bins == 3)
    masks = {"left": channel < 3, "right": channel >= 2}  # overlapping at channel 2
    table = share_table(units, masks, channel).set_index("roi")
    assert table.loc["all", "n_units"] == 22 and table.loc["all", "n_excluded"] == 2
    assert table.loc["all", "n_selected"] == 10  # channels 0 (2 usable bins), 2, 4
    assert table.loc["all", "n_significant"] == 3
    assert (
        table.loc["all", "n_sites_selected"] == 3 and table.loc["all", "n_sites_significant"] == 3
    )
    assert table.loc["left", "n_selected"] == 6 and table.loc["right", "n_sites"] == 4
    assert table.loc["all", "share"] == pytest.approx(0.3)
    low, high = wilson_interval(3, 10)
    assert table.loc["all", "share_low"] == pytest.approx(low) and table.loc[
        "all", "share_high"
    ] == pytest.approx(high)
    assert table.loc["all", "share_sites"] == pytest.approx(1.0)
