"""The papers' figures (000: layer curves and ablation bars) from synthetic estimand tables:
files written, tables of the plotted numbers next to them."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from brainalign import io
from brainalign.figures import table_path
from brainalign.papers.paper000 import plot_ablation, plot_layer_curves


def _estimands() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for estimand, roi, (model, layers), cond in itertools.product(
            ["subject_mean", "group_mean_rdm"], ["language", "visual"],
            [("clip", [0, 1, 2]), ("bert", [0, 2, 4])], ["sentence", "picture"]):
        for layer in layers:
            score = rng.uniform(0, 0.3)
            rows.append(dict(estimand=estimand, roi=roi, model=model, condition=cond, layer=layer,
                             score=score, ci_low=score - 0.05, ci_high=score + 0.05,
                             q=0.01 if score > 0.15 else 0.5, ceiling_lower=0.3, ceiling_upper=0.4))
    return pd.DataFrame(rows)


def test_ablation_bars_are_each_models_best_layer(tmp_path):
    estimands = _estimands()
    paths = [tmp_path / "ablation.png"]
    plot_ablation(estimands, paths, dpi=50)
    table = io.read_table(table_path(paths[0]))
    sub = estimands[estimands["estimand"] == "subject_mean"]
    best = sub.groupby(["model", "roi", "layer"])["score"].mean().groupby(["model", "roi"]).idxmax()
    assert sorted(table.groupby(["model", "roi"])["layer"].first().items()) == sorted(
        ((m, r), k[2]) for (m, r), k in best.items())
    assert len(table) == 2 * 2 * 2  # models x ROIs x conditions


def test_layer_curves_use_relative_depth(tmp_path):
    paths = [tmp_path / "layers.png"]
    plot_layer_curves(_estimands(), {"clip": "contrastive", "bert": "language only"}, paths, dpi=50)
    table = io.read_table(table_path(paths[0]))
    np.testing.assert_allclose(sorted(set(table.loc[table["model"] == "bert", "depth"])), [0, 0.5, 1])
    assert set(table["family"]) == {"contrastive", "language only"}
