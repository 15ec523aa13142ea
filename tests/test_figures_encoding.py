"""Encoding bar charts and brain maps, made from small synthetic tables and images: each
figure file is written and its table holds the plotted numbers."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brainalign import io
from brainalign.encoding.stats import fdr_bh
from brainalign.figures import table_path
from brainalign.figures_encoding import (
    plot_condition_bars,
    plot_significant_shares,
    plot_variance_partition,
)
from brainalign.figures_maps import group_map, plot_encoding_maps
from brainalign.group import group_paired_ttest, group_ttest

ROIS = ["visual", "control"]


@pytest.fixture(scope="module")
def subjects() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for roi, model, cond, layer, s in itertools.product(ROIS, ["clip"], ["picture", "sentence"], [0, 2], range(4)):
        effect = 0.2 if (roi, cond) == ("visual", "picture") else 0.02
        rows.append(dict(subject=f"0{s}", task="concepts", roi=roi, model=model, condition=cond, layer=layer,
                         mean_r=effect + rng.normal(0, 0.01), share_significant=rng.uniform(0, 0.5)))
    for roi, layer, s in itertools.product(ROIS, [0, 6], range(4)):
        rows.append(dict(subject=f"0{s}", task="concepts", roi=roi, model="minilm", condition="sentence",
                         layer=layer, mean_r=rng.normal(0, 0.01), share_significant=rng.uniform(0, 0.1)))
    return pd.DataFrame(rows)


def test_condition_bars_plot_the_deepest_layer_and_the_paired_tests(subjects, tmp_path):
    by = ["task", "roi", "model", "condition", "layer"]
    group = group_ttest(subjects, "mean_r", by)
    paired = group_paired_ttest(subjects, "mean_r", "condition", ["task", "roi", "model", "layer"])
    paths = [tmp_path / "conditions.png", tmp_path / "conditions.svg"]
    plot_condition_bars(group, paired, paths, dpi=50)
    assert all(p.stat().st_size > 3000 for p in paths)
    table = io.read_table(table_path(paths[0]))
    bars = table[table["kind"] == "bar"]
    assert set(zip(bars["model"], bars["layer"])) == {("clip", 2), ("minilm", 6)}
    row = bars[(bars["roi"] == "visual") & (bars["condition"] == "picture")].iloc[0]
    raw = subjects[(subjects["roi"] == "visual") & (subjects["condition"] == "picture") & (subjects["layer"] == 2)]
    assert row["mean"] == pytest.approx(raw["mean_r"].mean())
    pairs = table[table["kind"] == "pair"]
    assert set(pairs["roi"]) == {"visual"} and (pairs["layer"] == 2).all()  # picture > sentence there only
    assert "paired t-test" in paths[1].read_text()


def test_significant_shares_are_subject_means(subjects, tmp_path):
    paths = [tmp_path / "shares.png"]
    plot_significant_shares(subjects, paths, fdr_q=0.05, dpi=50)
    table = io.read_table(table_path(paths[0]))
    raw = subjects[(subjects["layer"] == subjects.groupby("model")["layer"].transform("max"))]
    expected = raw.groupby(["roi", "model", "condition"])["share_significant"].agg(["mean", "sem"])
    got = table.set_index(["roi", "model", "condition"]).loc[expected.index]
    np.testing.assert_allclose(got["mean"], expected["mean"])
    np.testing.assert_allclose(got["sem"], expected["sem"])
    assert (got["n_subjects"] == 4).all()


def test_variance_partition_bars_and_their_fdr(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for roi, (measure, space), s in itertools.product(
            ROIS, [("joint_r2", ""), ("shared", ""), ("unique", "vision"), ("unique", "language"),
                   ("r2_without", "vision")], range(5)):
        value = 0.05 if (roi, space) == ("visual", "vision") else 0.0
        rows.append(dict(subject=s, task="naturalistic", joint="vl", roi=roi, measure=measure, space=space,
                         value=value + rng.normal(0, 0.005)))
    group = group_ttest(pd.DataFrame(rows), "value", ["task", "joint", "roi", "measure", "space"])
    paths = [tmp_path / "joint.png"]
    plot_variance_partition(group, paths, dpi=50)
    table = io.read_table(table_path(paths[0]))
    assert "r2_without" not in set(table["measure"])
    unique = table[(table["measure"] == "unique") & (table["space"] == "vision")].set_index("roi")
    raw = pd.DataFrame(rows)
    raw = raw[(raw["measure"] == "unique") & (raw["space"] == "vision")]
    p = [stats.ttest_1samp(raw[raw["roi"] == r]["value"], 0, alternative="greater").pvalue for r in ROIS]
    np.testing.assert_allclose(unique.loc[ROIS, "q"], fdr_bh(np.array(p)), rtol=1e-6)
    assert unique.loc["visual", "significant"] and not unique.loc["control", "significant"]


def _images(rng, effect, n_subjects=4):
    affine = np.diag([8.0, 8.0, 8.0, 1.0])
    affine[:3, 3] = [-72, -104, -40]
    images = []
    for _ in range(n_subjects):
        data = rng.normal(0, 0.05, (19, 23, 17))
        data[4:7, 10:13, 8:11] = effect + rng.normal(0, 0.005, (3, 3, 3))
        data[0] = np.nan  # units left out
        images.append(nib.Nifti1Image(data.astype(np.float32), affine))
    return images


def test_group_map_keeps_only_fdr_significant_voxels_with_their_mean():
    rng = np.random.default_rng(2)
    images = _images(rng, 0.3)
    shown, table = group_map(images, alpha=0.05)
    data = np.stack([img.get_fdata() for img in images])
    tested = np.isfinite(data).all(axis=0)
    p = stats.ttest_1samp(data[:, tested], 0, alternative="greater").pvalue
    q = np.full(tested.shape, np.nan)
    q[tested] = fdr_bh(p)
    expected = np.argwhere(np.nan_to_num(q, nan=1) <= 0.05)
    np.testing.assert_array_equal(table[["i", "j", "k"]].to_numpy(), expected)
    assert {(4, 10, 8), (6, 12, 10)} <= set(map(tuple, expected))
    np.testing.assert_allclose(table["value"], data.mean(axis=0)[tuple(expected.T)], rtol=1e-6)
    assert np.count_nonzero(shown.get_fdata()) == len(table)
    x, y, z = table.loc[(table["i"] == 4) & (table["j"] == 10) & (table["k"] == 8), ["x", "y", "z"]].iloc[0]
    assert (x, y, z) == (-40, -24, 24)  # mm, from the affine
    null_shown, null_table = group_map(_images(rng, 0.0), alpha=0.05)
    assert len(null_table) <= 3  # noise: (almost) nothing passes FDR
    # single-volume 4D maps (the contrasts' stat-delta maps) give the same table
    four = [nib.Nifti1Image(img.get_fdata()[..., None], img.affine) for img in images]
    pd.testing.assert_frame_equal(group_map(four, alpha=0.05)[1], table)


@pytest.mark.slow
def test_encoding_map_figure_states_its_threshold(tmp_path):
    rng = np.random.default_rng(3)
    paths = [tmp_path / "map.png", tmp_path / "map.svg"]
    table = plot_encoding_maps({"clip / picture / layer 2": _images(rng, 0.3)}, paths=paths, title="held-out r",
                               dpi=50, alpha=0.05)
    svg = paths[1].read_text()
    assert "q \u2264 0.05" in svg and f"{table['value'].min():.3f}" in svg and "z=" in svg
    assert ">L<" in svg.replace(" ", "") or "L</text>" in svg  # left/right marks
    assert len(io.read_table(table_path(paths[0]))) == len(table) > 0
