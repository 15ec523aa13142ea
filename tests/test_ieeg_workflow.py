"""The intracranial demo (config/ieeg.yaml) through the whole workflow: synthetic SEEG in
BIDS-iEEG, MNE preprocessing, event-locked encoding and paper 003's per-site contrasts,
checked against the planted site classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import yaml

from .conftest import REPO, snakemake, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

UNIMODAL_CONTRASTS = ("vlVsLanguage", "vlVsVision", "vlVsLinear")


def ieeg_config() -> dict:
    """config/ieeg.yaml cut to one subject and the language-aligned task (the test's time)."""
    config = yaml.safe_load((REPO / "config" / "ieeg.yaml").read_text())
    config["dataset"]["subjects"] = ["01"]
    config["dataset"]["tasks"] = {"words": config["dataset"]["tasks"]["words"]}
    return config


@pytest.fixture(scope="module")
def ieeg_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("ieeg")
    write_config(workdir, ieeg_config())
    snakemake(workdir, "--cores", "2")
    return workdir


def _sites(workdir: Path, task: str) -> pd.DataFrame:
    """Per subject and bipolar site: planted class and, per contrast, the site test's verdict."""
    units = pd.read_parquet(workdir / "results" / "group" / "contrasts_units.parquet")
    units = units[(units["task"] == task) & ~units["excluded"]]
    significant = units.groupby(["subject", "channel", "contrast"])["site_significant"].any().unstack()
    truth = pd.concat([
        pd.read_csv(path, sep="\t", dtype={"channel": str}).assign(subject=path.name[4:6])
        for path in sorted((workdir / "results/demo/ieeg/ground_truth").glob("sub-*_sites.tsv"))
    ]).set_index(["subject", "channel"])
    return significant.join(truth["class"], how="inner")


def test_planted_multimodal_share_is_recovered(ieeg_run):
    sites = _sites(ieeg_run, "words")
    multimodal = sites[list(UNIMODAL_CONTRASTS)].all(axis=1)  # beats each unimodal and linear
    planted = (sites["class"] == "multimodal").mean()
    found = multimodal.mean()
    print(f"multimodal sites: planted {planted:.3f}, found {found:.3f} of {len(sites)}")
    assert abs(found - planted) <= 0.03
    assert multimodal[sites["class"] == "noise"].mean() <= 0.05


def test_trained_beats_random_where_planted(ieeg_run):
    sites = _sites(ieeg_run, "words")
    trained = sites["trainedVsRandom"]
    assert trained[sites["class"] == "language"].mean() >= 0.8
    assert trained[sites["class"] == "noise"].mean() <= 0.05


def test_rerun_reuses_nothing_and_gives_identical_p_values(ieeg_run):
    table = ieeg_run / "results/contrasts/sub-01/task-words/sub-01_task-words_contrast-vlVsLinear_units.parquet"
    before = pd.read_parquet(table)
    snakemake(ieeg_run, "--cores", "2", "--forcerun", "fit_contrast", "--allowed-rules", "fit_contrast",
              "--until", str(table.relative_to(ieeg_run)))
    after = pd.read_parquet(table)
    np.testing.assert_array_equal(before["p"].to_numpy(), after["p"].to_numpy())
    assert before["p"].notna().sum() > 100


def test_figures_and_bundle(ieeg_run):
    figures = ieeg_run / "results" / "figures"
    for name in ("contrasts_shares", "contrasts_task-words", "encoding_map_task-words"):
        assert (figures / f"{name}.png").stat().st_size > 10_000
    group = pd.read_parquet(ieeg_run / "results/group/contrasts_group.parquet")
    assert {"share_sites", "share_sites_low", "share_sites_high", "n_sites_selected"} <= set(group)
    assert (ieeg_run / "results/bundle/MANIFEST.tsv").exists()
