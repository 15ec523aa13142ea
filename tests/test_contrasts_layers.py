"""Per-layer contrasts (contrasts.layers) and per-ROI t-tests across subjects (contrasts.rois)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_1samp, ttest_rel
from threadpoolctl import threadpool_limits

from brainalign import io
from brainalign.contrasts import run_contrast
from brainalign.contrasts.layers import matched_layers, run_layer_contrast
from brainalign.contrasts.rois import condition_pair_ttests, holm, roi_ttests
from tests.test_contrasts_steps import N_BINS, PARAMS, SETTINGS, _electrodes


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _holm_reference(p):
    """Holm by its definition: p_(i) adjusted = max_{j<=i} min(1, (m - j + 1) p_(j))."""
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def test_holm_matches_its_definition():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=7)
        np.testing.assert_allclose(holm(p), _holm_reference(p))
    np.testing.assert_allclose(holm(np.array([0.01, np.nan, 0.04])), [0.02, np.nan, 0.04])


def _unit_tables(n_subjects=6, seed=0):
    """Per-subject unit tables as run_contrast writes them: 3 ROIs (AG with a planted
    delta of +0.05, PCC none, MFG overlapping AG on 2 units), 1 excluded unit each."""
    rng = np.random.default_rng(seed)
    roi = ["AG", "AG", "AG,MFG", "AG,MFG", "PCC", "PCC", "PCC", "MFG", "", "PCC"]
    tables = []
    for s in range(n_subjects):
        delta = rng.normal(0, 0.02, len(roi))
        delta[:4] += 0.05
        excluded = np.zeros(len(roi), bool)
        excluded[9] = True
        delta[9] = 5.0  # excluded: must not count
        tables.append(pd.DataFrame({"subject": f"{s:02d}", "unit": np.arange(len(roi)),
                                    "roi": roi, "delta": delta, "excluded": excluded,
                                    "contrast": "joint_vs_language"}))
    return pd.concat(tables, ignore_index=True)


def test_roi_ttests_match_scipy_and_find_the_planted_roi():
    units = _unit_tables()
    table = roi_ttests(units, by=("contrast",)).set_index("roi")
    assert list(table.index) == ["AG", "MFG", "PCC"]
    for name, members in {"AG": [0, 1, 2, 3], "MFG": [2, 3, 7], "PCC": [4, 5, 6]}.items():
        means = units[units["unit"].isin(members)].groupby("subject")["delta"].mean()
        expected = ttest_1samp(means, 0.0, alternative="greater")
        assert table.loc[name, "t"] == pytest.approx(expected.statistic)
        assert table.loc[name, "p"] == pytest.approx(expected.pvalue)
        assert table.loc[name, "n_subjects"] == 6
    np.testing.assert_allclose(table["p_holm"], _holm_reference(table["p"].to_numpy()))
    assert table.loc["AG", "significant"] and not table.loc["PCC", "significant"]


def test_null_rois_are_rarely_significant():
    hits = 0
    for seed in range(40):
        units = _unit_tables(seed=seed + 100)
        units.loc[units["unit"] < 4, "delta"] -= 0.05  # remove the planted effect
        hits += roi_ttests(units)["significant"].any()
    assert hits <= 5  # family-wise 5% over 40 families: expect ~2


def test_condition_pairs_are_paired_t_tests_of_roi_means():
    rng = np.random.default_rng(1)
    rows = []
    for s in range(5):
        base = rng.normal(0.1, 0.03, 6)
        for condition, shift in {"joint": 0.04, "language": 0.02, "vision": 0.0}.items():
            rows.append(pd.DataFrame({"subject": s, "unit": np.arange(6), "condition": condition,
                                      "roi": ["AG"] * 3 + ["PCC"] * 3,
                                      "r": base + shift + rng.normal(0, 0.01, 6)}))
    units = pd.concat(rows, ignore_index=True)
    table = condition_pair_ttests(units, ["joint", "language", "vision"])
    assert len(table) == 6
    assert set(zip(table["condition_a"], table["condition_b"])) == {
        ("joint", "language"), ("joint", "vision"), ("language", "vision")}
    row = table[(table["condition_a"] == "joint") & (table["condition_b"] == "vision")
                & (table["roi"] == "PCC")].iloc[0]
    pcc = units[units["roi"] == "PCC"].groupby(["condition", "subject"])["r"].mean()
    expected = ttest_rel(pcc["joint"], pcc["vision"], alternative="greater")
    assert row["t"] == pytest.approx(expected.statistic) and row["p"] == pytest.approx(expected.pvalue)
    assert table["significant"].all()


def test_roi_errors():
    units = _unit_tables()
    with pytest.raises(ValueError, match=r"unit table lacks columns \['delta'\]"):
        roi_ttests(units.drop(columns="delta"))
    with pytest.raises(ValueError, match="'alternative' must be one of"):
        roi_ttests(units, alternative="bigger")
    with pytest.raises(ValueError, match="'conditions' must name >= 2 conditions"):
        condition_pair_ttests(units.assign(condition="joint"), ["joint", "audio"], "delta")


# ---- per-layer contrasts ---------------------------------------------------------------


def _layered(path, model, layers, events):
    """A multi-layer feature file (rows stored shuffled; labels travel with them)."""
    order = np.random.default_rng(len(model)).permutation(len(events))
    meta = {"model": model, "model_id": None, "revision": None, "extractor": "x",
            "condition": "language", "task": "words", "layers": sorted(layers),
            "pooling": "word", "units": "a.u.", "stimuli": [events[i] for i in order]}
    io.save_arrays(path, {f"layer-{k:02d}": X[order].astype(np.float32) for k, X in layers.items()},
                   meta)
    return path


def _models(tmp_path):
    """Fine-tuned = pretrained at layers 1 and 3; at layer 2 the fine-tuned model carries
    the features driving channels 0-1 ('own'), the pretrained one does not."""
    brain, paths = _electrodes(tmp_path)
    events = io.load_arrays(brain)[1]["events"]
    loaded = {k: io.load_arrays(paths[k]) for k in ("a", "b")}
    by_event = {}
    for k, (arrays, meta) in loaded.items():
        rank = {e: i for i, e in enumerate(meta["stimuli"])}
        by_event[k] = arrays["layer-02"][[rank[e] for e in events]]
    tuned = _layered(tmp_path / "tuned.safetensors", "tuned",
                     {1: by_event["b"], 2: by_event["a"], 3: by_event["b"] * 2}, events)
    pretrained = _layered(tmp_path / "pre.safetensors", "pre",
                          {1: by_event["b"], 2: by_event["b"], 3: by_event["b"] * 2, 4: by_event["b"]},
                          events)
    return brain, tuned, pretrained, paths


def test_every_layer_is_contrasted_with_shared_resamples(tmp_path):
    brain, tuned, pretrained, _ = _models(tmp_path)
    assert matched_layers(tuned, pretrained) == [(1, 1), (2, 2), (3, 3)]
    out = {k: tmp_path / f"layers_{k}" for k in ("units.parquet", "shares.tsv", "res.npz")}
    units, shares = run_layer_contrast(
        brain, tuned, pretrained, name="tuned_vs_pre", params=PARAMS, settings=SETTINGS, seed=3,
        out_units=out["units.parquet"], out_shares=out["shares.tsv"], out_resamples=out["res.npz"],
    )
    pd.testing.assert_frame_equal(io.read_table(out["units.parquet"]), units)
    assert len(units) == 3 * 24 and list(units["layer"].unique()) == [1, 2, 3]
    significant = units.pivot(index="unit", columns="layer", values="significant")
    assert significant[2].iloc[: 2 * N_BINS].mean() >= 5 / 6 and significant[2].iloc[2 * N_BINS:].sum() <= 1
    assert not significant[1].any() and not significant[3].any()  # identical features: delta 0
    all_rows = shares[shares["roi"] == "all"].set_index("layer")
    assert all_rows.loc[2, "n_significant"] >= 5 and all_rows.loc[1, "n_significant"] == 0
    assert set(shares["roi"]) == {"temporal", "frontal", "all"}


def test_a_layer_equals_run_contrast_at_that_layer(tmp_path):
    """The per-layer table at layer 2 is what the single-layer contrast job writes (same
    seed, hence the same resamples)."""
    brain, tuned, pretrained, _ = _models(tmp_path)
    kw = dict(name="c", params=PARAMS, settings=SETTINGS, seed=3)
    units, _ = run_layer_contrast(brain, tuned, pretrained, layers=[(2, 2)], **kw,
                                  out_units=tmp_path / "u.tsv", out_shares=tmp_path / "s.tsv",
                                  out_resamples=tmp_path / "r.npz")
    run_contrast(brain, {"a": [(tuned, 2)], "b": [(pretrained, 2)]}, **kw,
                 out_units=tmp_path / "u1.parquet", out_shares=tmp_path / "s1.parquet",
                 out_resamples=tmp_path / "r1.npz")
    single = io.read_table(tmp_path / "u1.parquet")
    for column in ("r_a", "r_b", "delta", "p", "q", "significant", "roi", "channel"):
        pd.testing.assert_series_equal(units[column], single[column], check_dtype=False)


def test_layer_errors(tmp_path):
    brain, tuned, pretrained, paths = _models(tmp_path)
    kw = dict(name="c", params=PARAMS, settings=SETTINGS, seed=3, out_units=tmp_path / "u.tsv",
              out_shares=tmp_path / "s.tsv", out_resamples=tmp_path / "r.npz")
    with pytest.raises(ValueError, match="'layers' must be \\(layer_a, layer_b\\) pairs"):
        run_layer_contrast(brain, tuned, pretrained, layers=[1, 2], **kw)
    other = _layered(tmp_path / "o.safetensors", "o", {7: np.zeros((250, 2))},
                     io.load_arrays(brain)[1]["events"])
    with pytest.raises(ValueError, match="share no layer"):
        matched_layers(tuned, other)
