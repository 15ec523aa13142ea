"""Group statistics across subjects."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import io

__all__ = ["collect_tables", "group_ttest"]


def collect_tables(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate per-job tables into one tidy table (rows in input order)."""
    if not paths:
        raise ValueError("collect_tables needs at least one table path; got none")
    return pd.concat([io.read_table(p) for p in paths], ignore_index=True)


def group_ttest(table: pd.DataFrame, value: str, by: Sequence[str]) -> pd.DataFrame:
    """One-sample t-test of ``value`` against 0 across subjects, per group of ``by``.

    Parameters
    ----------
    table : DataFrame
        One row per subject and group, with a ``subject`` column.
    value : str
        Column to test (e.g. ``mean_r`` or ``score``).
    by : sequence of str
        Columns identifying a group (task, model, condition, layer, roi...).

    Returns
    -------
    DataFrame
        One row per group: ``mean``, ``sem``, ``t``, ``p`` (two-sided), ``n_subjects``.
        With fewer than two subjects ``t`` and ``p`` are NaN.
    """
    from scipy import stats

    missing = [c for c in [value, "subject", *by] if c not in table.columns]
    if missing:
        raise ValueError(f"group_ttest: table lacks columns {missing}; it has {list(table.columns)}")
    rows = []
    for keys, sub in table.groupby(list(by), sort=True, dropna=False):
        values = sub[value].to_numpy(dtype=float)
        n = int(np.isfinite(values).sum())
        if n >= 2:
            t, p = stats.ttest_1samp(values, 0.0, nan_policy="omit")
            sem = float(stats.sem(values, nan_policy="omit"))
        else:
            t, p, sem = np.nan, np.nan, np.nan
        rows.append({**dict(zip(by, keys)), "mean": float(np.nanmean(values)), "sem": sem,
                     "t": float(t), "p": float(p), "n_subjects": n})
    return pd.DataFrame(rows)
