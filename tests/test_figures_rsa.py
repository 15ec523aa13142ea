"""RSA figures from small synthetic tables: the model comparison's stars sit below its
brackets, and every figure's table holds the plotted numbers."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from brainalign import io
from brainalign.figures import table_path
from brainalign.figures_rsa import plot_rsa_layer_profiles, plot_rsa_model_comparison

SERIES = [("bert", "sentence"), ("clip", "picture"), ("clip", "sentence")]


def _tables():
    rng = np.random.default_rng(0)
    models, pairwise, group = [], [], []
    for roi in ("language", "visual"):
        for model, cond in SERIES:
            score = rng.uniform(0.05, 0.3)
            models.append(dict(roi=roi, model=model, condition=cond, score=score, ci_low=score - 0.05,
                               ci_high=score + 0.05, significant=True))
            for layer in (0, 1, 2):
                group.append(dict(roi=roi, model=model, condition=cond, layer=layer, mean=score * layer,
                                  ci_low=score * layer - 0.02, ci_high=score * layer + 0.02,
                                  significant=layer > 0))
        for a, b in itertools.combinations(SERIES, 2):
            pairwise.append(dict(roi=roi, model_a=a[0], condition_a=a[1], model_b=b[0], condition_b=b[1],
                                 significant=roi == "visual"))
    ceiling = pd.DataFrame({"roi": ["language", "visual"], "lower": [0.3, 0.2], "upper": [0.4, 0.3]})
    return pd.DataFrame(models), pd.DataFrame(pairwise), pd.DataFrame(group), ceiling


def test_model_comparison_table_holds_bars_and_significant_pairs(tmp_path):
    models, pairwise, _, ceiling = _tables()
    paths = [tmp_path / "comparison.png", tmp_path / "comparison.svg"]
    plot_rsa_model_comparison(models, pairwise, ceiling, value_label="RSA (Spearman rho)", paths=paths, dpi=50)
    assert all(p.stat().st_size > 3000 for p in paths)
    table = io.read_table(table_path(paths[0]))
    bars = table[table["kind"] == "bar"].set_index(["roi", "model", "condition"])
    np.testing.assert_allclose(bars.loc[models.set_index(["roi", "model", "condition"]).index, "score"],
                               models["score"])
    pairs = table[table["kind"] == "pair"]
    assert len(pairs) == 3 and set(pairs["roi"]) == {"visual"}
    svg = paths[1].read_text()
    assert "bracket *: the pair differs (FDR)" in svg and "noise ceiling" in svg


def test_rsa_layer_profiles_table_has_the_ceiling(tmp_path):
    _, _, group, ceiling = _tables()
    paths = [tmp_path / "profiles.png"]
    plot_rsa_layer_profiles(group, ceiling, value_label="RSA", paths=paths, dpi=50)
    table = io.read_table(table_path(paths[0]))
    assert len(table) == len(group)
    np.testing.assert_allclose(table["mean"], group["mean"])
    assert table.loc[table["roi"] == "visual", "ceiling_upper"].eq(0.3).all()
