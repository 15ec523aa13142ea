"""The end-of-run summary: report and bundle paths, the planted-truth headline, the note on r < 0."""

from __future__ import annotations

import pandas as pd
import pytest

from brainalign import io
from brainalign.summary import BESTLAYER_GROUP, NEGATIVE_NOTE, run_summary
from brainalign.group import group_ttest

CONFIG = {
    "dataset": {"format": "synthetic"},
    "demo": {"generators": {"language": {"model": "minilm", "condition": "sentence", "layer": 6},
                            "visual": {"model": "clip", "condition": "image", "layer": 2}}},
}


def _subjects() -> pd.DataFrame:
    rows = []
    for s, subject in enumerate(["01", "02", "03"]):
        for roi, minilm, clip, bert in (("language", 0.5, 0.01, 0.02), ("visual", 0.02, 0.8, -0.13),
                                        ("control", 0.01, 0.0, -0.01)):
            jitter = 0.01 * (s - 1)
            rows += [dict(subject=subject, task="concepts", roi=roi, model="minilm", condition="sentence", mean_r=minilm + jitter),
                     dict(subject=subject, task="concepts", roi=roi, model="clip", condition="picture", mean_r=clip + jitter),
                     dict(subject=subject, task="concepts", roi=roi, model="bert", condition="sentence", mean_r=bert + jitter)]
    return pd.DataFrame(rows)


def test_demo_summary_shows_driven_rois_against_control_and_explains_negative_r(tmp_path):
    group = group_ttest(_subjects(), "mean_r", ["task", "model", "condition", "roi"])
    io.write_table(group, tmp_path / BESTLAYER_GROUP)
    (tmp_path / "results" / "bundle").mkdir(parents=True, exist_ok=True)
    (tmp_path / "results" / "bundle" / "MANIFEST.tsv").write_text("path\tsha256\n")
    (tmp_path / "results" / "bundle" / "report.html").write_text("<html></html>")
    lines = run_summary(CONFIG, tmp_path)
    text = "\n".join(lines)
    assert lines[0] == f"report: {tmp_path / 'results' / 'bundle' / 'report.html'}"
    assert "brainalign verify results/bundle" in lines[1]
    language = next(line for line in lines if "language" in line)
    assert "minilm/sentence: r = +0.500" in language and "vs control r = +0.010" in language
    visual = next(line for line in lines if "visual" in line)
    assert "clip/picture: r = +0.800" in visual  # the image generator is seen through 'picture'
    assert NEGATIVE_NOTE in text  # bert's r = -0.13 in the visual ROI
    bert = group[(group.model == "bert") & (group.roi == "visual")]
    assert bert["p"].item() > 0.99  # one-sided: not 'significant' below chance


def test_summary_of_real_data_lists_the_best_model_per_roi_and_claims_nothing_missing(tmp_path):
    group = group_ttest(_subjects(), "mean_r", ["task", "model", "condition", "roi"])
    io.write_table(group[group["mean"] > 0], tmp_path / BESTLAYER_GROUP)
    lines = run_summary({"dataset": {"format": "bids"}}, tmp_path)
    assert not any(line.startswith(("report:", "bundle:")) for line in lines)
    assert any("visual" in line and "clip/picture" in line for line in lines)
    assert not any("note:" in line for line in lines)


@pytest.mark.slow
def test_a_run_ends_with_the_summary(copy_of_run):
    from .conftest import snakemake

    # one cheap job (a run with nothing to do calls no handler), then the summary
    proc = snakemake(copy_of_run, "--cores", "1", "--force", "results/dataset_description.json")
    out = proc.stdout + proc.stderr
    assert "planted-truth check" in out and "report: " in out, out[-3000:]
