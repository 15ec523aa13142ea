"""Group statistics and label matching between brain data and features."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brainalign.group import group_ttest
from brainalign.pipeline import match_features, parse_entities


def test_group_ttest_matches_scipy():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({
        "subject": np.tile(["01", "02", "03", "04", "05"], 2),
        "roi": np.repeat(["language", "visual"], 5),
        "mean_r": rng.normal(0.2, 0.1, 10),
    })
    out = group_ttest(table, "mean_r", ["roi"]).set_index("roi")
    for roi in ("language", "visual"):
        values = table.loc[table.roi == roi, "mean_r"]
        t, p = stats.ttest_1samp(values, 0, alternative="greater")  # one-sided by default
        assert out.loc[roi, "t"] == pytest.approx(t)
        assert out.loc[roi, "p"] == pytest.approx(p)
        assert out.loc[roi, "n_subjects"] == 5
        assert out.loc[roi, "alternative"] == "greater"
    both = group_ttest(table, "mean_r", ["roi"], alternative="two-sided").set_index("roi")
    assert both.loc["visual", "p"] == pytest.approx(2 * out.loc["visual", "p"])


def test_group_ttest_is_one_sided_so_below_chance_is_not_significant():
    table = pd.DataFrame({"subject": ["01", "02", "03"], "roi": "visual", "mean_r": [-0.14, -0.12, -0.13]})
    out = group_ttest(table, "mean_r", ["roi"])
    assert out["t"].item() < -10 and out["p"].item() > 0.99
    assert group_ttest(table, "mean_r", ["roi"], alternative="two-sided")["p"].item() < 0.05


def test_group_ttest_names_missing_columns():
    with pytest.raises(ValueError, match=r"group_ttest: table lacks columns \['score'\]"):
        group_ttest(pd.DataFrame({"subject": ["01"], "roi": ["x"]}), "score", ["roi"])


def test_match_features_reorders_by_concept_name():
    features = {"layer-02": np.arange(12, dtype=np.float32).reshape(3, 4)}
    fmeta = {"stimuli": ["apple", "bird", "car"]}
    bmeta = {"task": "concepts", "stimuli": ["car", "apple", "bird"]}
    X = match_features(features, fmeta, bmeta, 2)
    np.testing.assert_array_equal(X[:, 0], [8, 0, 4])
    with pytest.raises(ValueError, match=r"has no layer-05; it has layer-02"):
        match_features(features, fmeta, bmeta, 5)
    with pytest.raises(ValueError, match=r"lacks concepts present in the brain data: \['dog'\]"):
        match_features(features, fmeta, {"task": "concepts", "stimuli": ["dog"]}, 2)


def test_match_features_checks_runs_and_trs():
    features = {"layer-00": np.zeros((10, 3), np.float32)}
    with pytest.raises(ValueError, match=r"covers runs \[1, 2\] but the brain data has runs \[1\]"):
        match_features(features, {"runs": [1, 2]}, {"task": "naturalistic", "runs": [1], "n_samples": 10}, 0)
    with pytest.raises(ValueError, match=r"has 10 TRs but the brain data has 12"):
        match_features(features, {"runs": [1]}, {"task": "naturalistic", "runs": [1], "n_samples": 12}, 0)


def test_parse_entities():
    ent = parse_entities("results/x/sub-01_task-concepts_model-clip_cond-noise_layer-2_stat-r_statmap.nii.gz")
    assert ent == {"sub": "01", "task": "concepts", "model": "clip", "cond": "noise", "layer": "2", "stat": "r"}
