"""Figures: saved deterministically with text kept as text, tables of the plotted numbers,
layer profiles (relative depth, FDR across layers, noise ceiling, families), RDM panels
(labels, category order) and the mark layout (stars never under brackets)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from brainalign import io
from brainalign.encoding.stats import fdr_bh
from brainalign.figures import (
    _pyplot,
    category_order,
    fit_marks,
    layer_profile_table,
    plot_layer_profiles,
    plot_rdms,
    save_figure,
    table_path,
)


def _group(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """encoding_group / encoding_subjects shaped tables made from per-subject values."""
    subjects = []
    for task in ("concepts", "naturalistic"):
        for roi, effect in (("language", 0.2), ("control", 0.0)):
            for model, layers in (("clip", [0, 1, 2]), ("minilm", [0, 3, 6])):
                for layer in layers:
                    for s, value in enumerate(effect + rng.normal(0, 0.02, 4)):
                        subjects.append(dict(subject=f"0{s}", task=task, roi=roi, model=model,
                                             condition="sentence", layer=layer, mean_r=value,
                                             mean_ceiling=0.36 + 0.04 * s if task == "concepts" else np.nan))
    subjects = pd.DataFrame(subjects)
    from brainalign.group import group_ttest

    return group_ttest(subjects, "mean_r", ["task", "roi", "model", "condition", "layer"]), subjects


def test_layer_profile_table_relative_depth_fdr_across_layers_and_ceiling():
    group, subjects = _group(np.random.default_rng(0))
    table = layer_profile_table(group, subjects, families={"clip": "contrastive"}, relative_depth=True)
    minilm = table[table["model"] == "minilm"]
    np.testing.assert_allclose(sorted(set(minilm["x"])), [0, 0.5, 1])
    assert set(table.loc[table["model"] == "minilm", "family"]) == {"other"}
    # one-sided p from scipy, BH over the 3 layers of one model x condition x ROI x task
    one = table[(table["task"] == "concepts") & (table["roi"] == "language") & (table["model"] == "clip")]
    raw = subjects[(subjects["task"] == "concepts") & (subjects["roi"] == "language") & (subjects["model"] == "clip")]
    p = [stats.ttest_1samp(raw[raw["layer"] == k]["mean_r"], 0, alternative="greater").pvalue for k in (0, 1, 2)]
    np.testing.assert_allclose(one.sort_values("layer")["q"], fdr_bh(np.array(p)), rtol=1e-6)
    assert one["significant"].all()
    two_sided = group.assign(p=2 * np.minimum(group["p"], 1 - group["p"]), alternative="two-sided")
    again = layer_profile_table(two_sided, subjects, relative_depth=True)
    np.testing.assert_allclose(again["q"], table["q"], rtol=1e-9)  # older two-sided tables: same q
    assert not table[table["roi"] == "control"]["significant"].all()
    ceiling = np.sqrt([0.36, 0.40, 0.44, 0.48])
    low = ceiling.mean() - stats.sem(ceiling)
    np.testing.assert_allclose(table.loc[table["task"] == "concepts", "ceiling_low"], low)
    assert table.loc[table["task"] == "naturalistic", "ceiling_low"].isna().all()


def test_layer_profiles_figure_and_table_hold_the_plotted_numbers(tmp_path):
    group, subjects = _group(np.random.default_rng(1))
    paths = [tmp_path / "profiles.png", tmp_path / "profiles.svg"]
    plot_layer_profiles(group, subjects=subjects, value_label="held-out r", paths=paths, dpi=60,
                        families={"clip": "contrastive", "minilm": "language only"})
    assert all(p.stat().st_size > 5000 for p in paths)
    written = io.read_table(table_path(paths[0]))
    merged = group.merge(written, on=["task", "roi", "model", "condition", "layer"], suffixes=("", "_fig"))
    assert len(merged) == len(group)
    np.testing.assert_allclose(merged["mean"], merged["mean_fig"])
    svg = paths[1].read_text()
    assert "held-out r" in svg and "<text" in svg  # text kept as text, not glyph paths
    assert "noise ceiling" in svg and "q \u2264 0.05" in svg


def test_save_figure_is_deterministic_without_dates_in_every_format(tmp_path):
    plt = _pyplot()
    digests = []
    for attempt in range(2):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [1, 0], label="a line")
        ax.set_xlabel("time (s)")
        paths = [tmp_path / f"f{attempt}.{ext}" for ext in ("png", "svg", "pdf")]
        save_figure(fig, paths, dpi=50, table=pd.DataFrame({"x": [0, 1], "y": [1, 0]}))
        digests.append([io.sha256_file(p) for p in paths])
    assert digests[0] == digests[1]
    svg, pdf = (tmp_path / "f0.svg").read_text(), (tmp_path / "f0.pdf").read_bytes()
    assert "<dc:date>" not in svg and "time (s)" in svg
    assert b"CreationDate" not in pdf and b"FontFile2" in pdf  # TrueType (Type 42) embedded
    assert io.read_table(tmp_path / "f0.tsv")["y"].tolist() == [1, 0]


def test_save_figure_refuses_an_unknown_format(tmp_path):
    plt = _pyplot()
    fig = plt.figure()
    with pytest.raises(ValueError, match=r"must end in \.png, \.svg or \.pdf; got '\.jpg'.*figures\.formats"):
        save_figure(fig, [tmp_path / "x.jpg"])


def test_rdm_panels_are_labelled_and_ordered_by_category(tmp_path):
    rng = np.random.default_rng(2)
    names = [f"c{i}" for i in range(12)]
    categories = {n: ("tool", "animal")[i % 2] for i, n in enumerate(names)}
    brain = {"language": pdist(rng.normal(size=(12, 5)))}
    models = {"clip / picture / layer 2": pdist(rng.normal(size=(12, 3)))}
    paths = [tmp_path / "rdms.png", tmp_path / "rdms.svg"]
    table = plot_rdms(brain, models, paths=paths, dpi=50, stimuli=names, categories=categories)
    assert category_order(names, categories) == [0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11]
    svg = paths[1].read_text()
    assert "c11" in svg and "dissimilarity (rank" in svg  # labels and the colour bar
    written = io.read_table(table_path(paths[0]))
    lang = written[written["panel"] == "language"]
    ranks = squareform(stats.rankdata(brain["language"]) / len(brain["language"]))
    i, j = names.index(lang["concept_a"].iloc[0]), names.index(lang["concept_b"].iloc[0])
    assert lang["rank"].iloc[0] == pytest.approx(ranks[i, j])
    assert lang["concept_a"].iloc[0] == "c0" and lang["concept_b"].iloc[0] == "c2"
    assert len(table) == 2 * 66


def test_stars_never_sit_under_brackets():
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(5, 2.5), sharey=True)
    panels = []
    for ax, high in zip(axes, (0.3, 3.0)):  # one small and one large data range
        xs, tops = [0, 1, 2], [high, 0.9 * high, 0.5 * high]
        ax.bar(xs, tops)
        panels.append((ax, xs, tops, ["*", "*", "*"], [(0, 1, "*"), (1, 2, "*"), (0, 2, "*")]))
    fig.tight_layout()
    fit_marks(panels)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        texts = [t.get_window_extent(renderer) for t in ax.texts]
        lines = [line.get_window_extent(renderer) for line in ax.lines]
        stars, labels = texts[:3], texts[3:]
        for star in stars:
            assert not any(star.overlaps(line) for line in lines)
        for k, label in enumerate(labels):  # a bracket's label stays below the next bracket
            assert not any(label.overlaps(line) for line in lines[k + 1:])
        assert all(b.y1 <= ax.bbox.y1 + 1 for b in texts + lines)  # everything inside the axes
    plt.close(fig)


def test_colourbar_ticks_never_come_close():
    from brainalign.figures import colourbar_ticks

    assert colourbar_ticks(0.3, 0.1) == [-0.3, -0.1, 0.1, 0.3]
    assert colourbar_ticks(0.055, 0.05) == [-0.055, 0.0, 0.055]  # 0.05 next to 0.055 would overprint
    assert colourbar_ticks(1.0, 0.01) == [-1.0, 0.0, 1.0]  # -0.01 on 0.01
    assert colourbar_ticks(1.0, None) == [-1.0, 0.0, 1.0]
