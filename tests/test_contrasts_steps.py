"""Tests of the contrast steps and config checks, on tiny files written with brainalign.io."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from brainalign import io
from brainalign.config import ConfigError
from brainalign.contrasts._checks import check_contrasts, contrast_spaces
from brainalign.contrasts import (
    draw_resamples,
    fold_strata,
    load_resamples,
    run_contrast,
    save_resamples,
    summarize_contrasts,
    wilson_interval,
)

PARAMS = {
    "alphas": [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0],
    "delays": [1, 2],
    "outer_folds": 4,
    "inner_folds": 3,
    "n_targets_batch": 16,
    "block_size": 5,
    "banded_iterations": 3,
}
SETTINGS = {"n_resamples": 400}
N_CHANNELS, N_BINS, N_EVENTS = 8, 3, 250


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


def _features(path, model, condition, X, names):
    meta = {
        "model": model,
        "model_id": None,
        "revision": None,
        "extractor": "x",
        "condition": condition,
        "task": "words",
        "layers": [2],
        "pooling": "word",
        "units": "a.u.",
        "stimuli": names,
    }
    io.save_arrays(path, {"layer-02": X.astype(np.float32)}, meta)


def _electrodes(tmp_path, subject="01", seed=0):
    """8 channels x 3 bins, 250 word events in 5 CV blocks; channels 0-1 follow A-only
    features ('own'), channels 2-4 the features both sides have ('common'); unit 23 flagged."""
    rng = np.random.default_rng(seed)
    events = [f"word-{i:05d}" for i in range(N_EVENTS)]
    own, other, common = (rng.standard_normal((N_EVENTS, 6)) for _ in range(3))
    Y = rng.standard_normal((N_EVENTS, N_CHANNELS * N_BINS))
    channel = np.repeat(np.arange(N_CHANNELS), N_BINS).astype(np.int32)
    Y[:, channel < 2] += own @ rng.standard_normal((6, 2 * N_BINS)) * 0.35
    Y[:, (channel >= 2) & (channel < 5)] += common @ rng.standard_normal((6, 3 * N_BINS)) * 0.35
    Y[:, 23] = 0.0
    roi = np.where(channel < 4, 1, 2).astype(np.int32)
    arrays = {
        "responses": Y.astype(np.float32),
        "group": np.repeat(np.arange(5), N_EVENTS // 5).astype(np.int32),
        "roi": roi,
        "channel": channel,
        "bin": np.tile(np.arange(N_BINS), N_CHANNELS).astype(np.int32),
        "xyz": np.repeat(rng.uniform(-60, 60, (N_CHANNELS, 3)), N_BINS, axis=0).astype(np.float32),
    }
    meta = {
        "subject": subject,
        "task": "words",
        "kind": "epochs",
        "geometry": "electrodes",
        "rois": {"temporal": 1, "frontal": 2},
        "space": "MNI152NLin2009cAsym",
        "coord_space": "MNI152NLin2009cAsym",
        "channels": [f"LA{c}-LA{c + 1}" for c in range(N_CHANNELS)],
        "bins": [[0.0, 0.1], [0.1, 0.2], [0.2, 0.3]],
        "events": events,
        "event_times": (np.arange(N_EVENTS) * 0.5).tolist(),
        "alignment": "language",
        "regions": ["temporal"] * 4 + ["frontal"] * 4,
        "qc": {"flagged_units": [23]},
    }
    brain = tmp_path / f"sub-{subject}_brain.safetensors"
    io.save_arrays(brain, arrays, meta)
    paths = {}
    for name, X in (
        ("a", np.hstack([own, common])),
        ("b", np.hstack([other, common])),
        ("own", own),
        ("common", common),
        ("other", other),
    ):
        paths[name] = tmp_path / f"sub-{subject}_{name}.safetensors"
        order = rng.permutation(N_EVENTS)  # labels travel with the rows: stored shuffled
        _features(paths[name], name, "language", X[order], [events[i] for i in order])
    return brain, paths


def _run(tmp_path, brain, sides, stem, **kwargs):
    out = {
        key: tmp_path / f"{stem}_{key}.{ext}"
        for key, ext in (("units", "parquet"), ("shares", "parquet"), ("resamples", "npz"))
    }
    run_contrast(
        brain,
        sides,
        name="avsb",
        params=PARAMS,
        settings=SETTINGS,
        seed=3,
        out_units=out["units"],
        out_shares=out["shares"],
        out_resamples=out["resamples"],
        **kwargs,
    )
    return io.read_table(out["units"]), io.read_table(out["shares"]), out["resamples"]


def test_run_contrast_on_electrodes_finds_the_a_only_channels(tmp_path):
    brain, paths = _electrodes(tmp_path)
    units, shares, _ = _run(tmp_path, brain, {"a": [(paths["a"], 2)], "b": [(paths["b"], 2)]}, "c")
    assert len(units) == N_CHANNELS * N_BINS
    assert (
        units.loc[23, "excluded"]
        and np.isnan(units.loc[23, "r_a"])
        and not units.loc[23, "selected"]
    )
    assert units.loc[4, "channel"] == "LA1-LA2" and units.loc[4, "bin"] == 1
    assert units.loc[4, "bin_start"] == pytest.approx(0.1) and units.loc[4, "roi"] == "temporal"
    assert (units["a_spaces"] == "a/language/2").all() and (units["contrast"] == "avsb").all()
    significant = units["significant"].to_numpy()
    assert significant[: 2 * N_BINS].mean() >= 5 / 6
    assert significant[2 * N_BINS :].sum() <= 1  # shared and noise units: at most a chance hit
    row = shares.set_index("roi").loc["all"]
    assert row["n_units"] == 23 and row["n_excluded"] == 1 and row["n_sites"] == N_CHANNELS
    sites = units.groupby("channel", sort=False)["site_significant"].any()
    assert row["n_sites_significant"] == sites.sum() == 2 and sites.iloc[:2].all()  # the a-only ones
    low, high = wilson_interval(row["n_sites_significant"], row["n_sites_selected"])
    assert row["share_sites_low"] == pytest.approx(low) and row[
        "share_sites_high"
    ] == pytest.approx(high)
    assert set(shares["roi"]) == {"temporal", "frontal", "all"}
    frontal = units["roi"] == "frontal"
    assert (
        shares.set_index("roi").loc["frontal", "n_significant"]
        == units["significant"][frontal].sum()
    )
    assert shares.set_index("roi").loc["temporal", "n_significant"] >= 5


def test_saved_resamples_give_identical_pvalues(tmp_path):
    brain, paths = _electrodes(tmp_path)
    sides = {"a": [(paths["a"], 2)], "b": [(paths["b"], 2)]}
    first, _, saved = _run(tmp_path, brain, sides, "first")
    again, _, _ = _run(tmp_path, brain, sides, "again", resamples_in=saved)
    fresh, _, _ = _run(tmp_path, brain, sides, "fresh")
    assert np.array_equal(first["p"].to_numpy(), again["p"].to_numpy(), equal_nan=True)
    assert np.array_equal(first["p"].to_numpy(), fresh["p"].to_numpy(), equal_nan=True)
    assert np.array_equal(
        load_resamples(saved).counts, load_resamples(tmp_path / "again_resamples.npz").counts
    )
    other = tmp_path / "other.npz"
    fold = np.arange(N_EVENTS) % 4
    save_resamples(other, draw_resamples(fold_strata(fold, "epochs", fold), 400, 3))
    with pytest.raises(ValueError, match="was drawn for another fold/block structure"):
        _run(tmp_path, brain, sides, "bad", resamples_in=other)


def test_identical_events_give_identical_resamples_in_every_subject(tmp_path):
    brain1, paths1 = _electrodes(tmp_path, "01", seed=0)
    brain2, paths2 = _electrodes(tmp_path, "02", seed=1)
    _, _, r1 = _run(tmp_path, brain1, {"a": [(paths1["a"], 2)], "b": [(paths1["b"], 2)]}, "s1")
    _, _, r2 = _run(tmp_path, brain2, {"a": [(paths2["a"], 2)], "b": [(paths2["b"], 2)]}, "s2")
    assert np.array_equal(load_resamples(r1).counts, load_resamples(r2).counts)


def test_joint_side_and_group_summary(tmp_path):
    tables = {"units": [], "shares": []}
    for subject, seed in (("01", 0), ("02", 1)):
        brain, paths = _electrodes(tmp_path, subject, seed)
        # A: banded ridge over (own, common); B: banded ridge over (other, common)
        sides = {
            "a": [(paths["own"], 2), (paths["common"], 2)],
            "b": [(paths["other"], 2), (paths["common"], 2)],
        }
        units, shares, _ = _run(tmp_path, brain, sides, f"j{subject}")
        assert (units["b_spaces"] == "other/language/2+common/language/2").all()
        assert units["significant"][: 2 * N_BINS].mean() >= 4 / 6
        assert units["significant"][2 * N_BINS :].sum() <= 1
        tables["units"].append(tmp_path / f"j{subject}_units.parquet")
        tables["shares"].append(shares)
    group, all_units = summarize_contrasts(tables["units"], tables["shares"])
    assert len(all_units) == 2 * N_CHANNELS * N_BINS
    pooled = group.set_index("roi").loc["all"]
    per_subject = [s.set_index("roi").loc["all"] for s in tables["shares"]]
    assert pooled["n_subjects"] == 2
    assert pooled["n_significant"] == sum(s["n_significant"] for s in per_subject)
    assert pooled["share"] == pytest.approx(pooled["n_significant"] / pooled["n_selected"])
    assert pooled["mean_delta"] == pytest.approx(np.mean([s["mean_delta"] for s in per_subject]))
    assert pooled["share_low"] == pytest.approx(
        wilson_interval(pooled["n_significant"], pooled["n_selected"])[0]
    )


def _config():
    return {
        "models": {"vl": {"layers": [0, 2]}, "minilm": {"layers": [0, 6]}, "clip": {"layers": [2]}},
        "conditions": ["joint", "language", "vision"],
        "contrasts": {
            "settings": {
                "n_resamples": 1000,
                "ci_level": 0.95,
                "fdr_q": 0.05,
                "select": "either",
                "alternative": "greater",
            },
            "pairs": {
                "vlVsLanguage": {
                    "a": {"model": "vl", "condition": "joint", "layer": 2},
                    "b": {"model": "minilm", "condition": "language", "layer": 6},
                },
                "vlVsLinear": {
                    "a": {"model": "vl", "condition": "joint", "layer": 2},
                    "b": {
                        "joint": [
                            {"model": "clip", "condition": "vision", "layer": 2},
                            {"model": "minilm", "condition": "language", "layer": 6},
                        ]
                    },
                },
            },
        },
    }


def test_contrast_spaces():
    config = _config()
    check_contrasts(config, "config/config.yaml")
    assert contrast_spaces(config) == {
        "vlVsLanguage": {"a": [("vl", "joint", 2)], "b": [("minilm", "language", 6)]},
        "vlVsLinear": {
            "a": [("vl", "joint", 2)],
            "b": [("clip", "vision", 2), ("minilm", "language", 6)],
        },
    }
    check_contrasts({"models": {}, "conditions": []}, "config/config.yaml")  # no section: fine


@pytest.mark.parametrize(
    "mutate, match",
    [
        (
            lambda c: c["contrasts"]["pairs"]["vlVsLanguage"]["a"].update(model="gpt"),
            r"'contrasts.vlVsLanguage.a.model' must be one of the configured models \(vl, minilm, clip\); got 'gpt'",
        ),
        (
            lambda c: c["contrasts"]["pairs"]["vlVsLanguage"]["b"].update(condition="audio"),
            r"'contrasts.vlVsLanguage.b.condition' must be one of 'conditions'",
        ),
        (
            lambda c: c["contrasts"]["pairs"]["vlVsLanguage"]["a"].update(layer=5),
            r"'contrasts.vlVsLanguage.a.layer' must be one of models.vl.layers \[0, 2\]; got 5",
        ),
        (
            lambda c: c["contrasts"]["pairs"]["vlVsLinear"]["b"]["joint"].pop(),
            r"'contrasts.vlVsLinear.b.joint' must be a list of two or more",
        ),
        (
            lambda c: c["contrasts"]["pairs"]["vlVsLinear"]["b"]["joint"][1].update(
                model="clip", condition="vision", layer=2
            ),
            r"'contrasts.vlVsLinear.b.joint' must list distinct spaces",
        ),
        (
            lambda c: c["contrasts"]["pairs"]["vlVsLanguage"].pop("b"),
            r"'contrasts.vlVsLanguage' must have exactly the keys a and b; got \['a'\]",
        ),
        (
            lambda c: c["contrasts"]["pairs"]["vlVsLanguage"].update(
                b={"model": "vl", "condition": "joint", "layer": 2}
            ),
            r"'contrasts.vlVsLanguage.b' must differ from side a",
        ),
        (
            lambda c: c["contrasts"]["pairs"].update(
                vl_vs_x=c["contrasts"]["pairs"]["vlVsLanguage"]
            ),
            r"'contrasts.pairs.vl_vs_x' must be named with letters and digits only",
        ),
        (
            lambda c: c["contrasts"]["settings"].update(n_resamples=10),
            r"'contrasts.settings.n_resamples' must be an integer in \[100, 1000000\]; got 10\. Edit config/config.yaml\.",
        ),
        (
            lambda c: c["contrasts"]["settings"].update(ci_level=1.5),
            r"'contrasts.settings.ci_level' must be a number in \(0, 1\); got 1.5",
        ),
        (
            lambda c: c["contrasts"]["settings"].update(select="any"),
            r"'contrasts.settings.select' must be one of mean, either, a, b, both, none; got 'any'",
        ),
        (
            lambda c: c["contrasts"]["settings"].update(alternative="less"),
            r"'contrasts.settings.alternative' must be one of greater, two-sided; got 'less'",
        ),
        (
            lambda c: c["contrasts"]["settings"].update(nresamples=10),
            r"'contrasts.settings.nresamples' is not a known setting",
        ),
    ],
)
def test_check_contrasts_messages(mutate, match):
    config = copy.deepcopy(_config())
    mutate(config)
    with pytest.raises(ConfigError, match=match):
        check_contrasts(config, "config/config.yaml")
