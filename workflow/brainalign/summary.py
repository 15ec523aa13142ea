"""What a finished run tells the terminal: where the report and bundle are, and the headline numbers.

The Snakefile's ``onsuccess:`` handler logs the lines of :func:`run_summary`. For the
embedded demo the headline is the planted-truth check: in each ROI the demo drives
(``demo.generators``), the held-out r of the model x condition that drives it, against the
same model in the never-driven ``control`` ROI. Elsewhere: the best model x condition per ROI.
Negative values get a note: a below-chance held-out r is the fold-wise mean shift of
cross-validation, not anti-alignment, and the group tests are one-sided.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["BESTLAYER_GROUP", "NEGATIVE_NOTE", "headline_rows", "run_summary"]

BESTLAYER_GROUP = "results/group/encoding_bestlayer_group.parquet"
REPORT = "results/bundle/report.html"
BUNDLE = "results/bundle"
NEGATIVE_NOTE = (
    "r < 0 is the fold-wise mean shift of cross-validation (a voxel without signal scores "
    "slightly below 0), not anti-alignment; p is one-sided (r > 0)"
)


def _row(table: pd.DataFrame, roi: str, model: str, condition: str) -> pd.Series | None:
    rows = table[(table["roi"] == roi) & (table["model"] == model) & (table["condition"] == condition)]
    return None if rows.empty else rows.iloc[0]


def _condition(table: pd.DataFrame, roi: str, model: str, condition: str) -> str:
    """The generator's condition, or the model's best one in ``roi`` where that was not run
    (the concept task shows pictures with their sentences, not images alone)."""
    rows = table[(table["roi"] == roi) & (table["model"] == model)]
    if rows.empty or (rows["condition"] == condition).any():
        return condition
    return str(rows.sort_values("mean", ascending=False)["condition"].iloc[0])


def _fmt(row: pd.Series | None) -> str:
    if row is None:
        return "not run"
    return f"r = {row['mean']:+.3f} (p = {row['p']:.2g}, n = {int(row['n_subjects'])})"


def headline_rows(table: pd.DataFrame, config: Mapping[str, Any]) -> list[str]:
    """The headline lines from the best-layer group table.

    Parameters
    ----------
    table : DataFrame
        ``results/group/encoding_bestlayer_group.parquet``: task, model, condition, roi,
        mean, p, n_subjects.
    config : mapping
        The validated configuration (``demo.generators`` and ``dataset.format`` are read).

    Returns
    -------
    list of str
    """
    generators = (config.get("demo") or {}).get("generators") or {}
    lines = []
    if str(config.get("dataset", {}).get("format", "")).startswith("synthetic") and generators:
        lines.append("planted-truth check (held-out r, best layer chosen in nested CV; driven ROI vs control):")
        for task, sub in table.groupby("task", sort=True):
            for roi, gen in generators.items():
                condition = _condition(sub, roi, gen["model"], gen["condition"])
                driven = _row(sub, roi, gen["model"], condition)
                control = _row(sub, "control", gen["model"], condition)
                lines.append(f"  {task}: {roi:<9} {gen['model']}/{condition}: {_fmt(driven)}"
                             f"  vs control {_fmt(control)}")
    else:
        lines.append("best model x condition per ROI (held-out r, one-sided group t-test):")
        best = table.sort_values("mean", ascending=False).groupby(["task", "roi"], sort=True).head(1)
        for row in best.sort_values(["task", "roi"]).itertuples():
            lines.append(f"  {row.task}: {row.roi:<12} {row.model}/{row.condition}: "
                         f"{_fmt(pd.Series(row._asdict()))}")
    if (table["mean"] < 0).any():
        lines.append(f"  note: {NEGATIVE_NOTE}")
    return lines


def run_summary(config: Mapping[str, Any], workdir: str | os.PathLike = ".") -> list[str]:
    """Lines for the end of a successful run (nothing that is not there is claimed).

    Parameters
    ----------
    config : mapping
        The validated configuration.
    workdir : path-like
        The run's working folder.
    """
    root = Path(workdir)
    lines = []
    if (root / REPORT).is_file():
        lines.append(f"report: {(root / REPORT).resolve()}")
    if (root / BUNDLE / "MANIFEST.tsv").is_file():
        lines.append(f"bundle: {(root / BUNDLE).resolve()}  (check it: brainalign verify {BUNDLE})")
    table_path = root / BESTLAYER_GROUP
    if table_path.is_file():
        lines += headline_rows(pd.read_parquet(table_path), config)
    lines.append("job logs: results/logs/<rule>/ (every warning in full)")
    return lines
