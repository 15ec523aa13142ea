"""Group statistics across subjects.

Tests of a score against chance are one-sided by default (``alternative="greater"``: is the
model aligned with the brain?): a held-out r below 0 is not anti-alignment but the fold-wise
mean shift of cross-validation (a voxel without signal scores slightly below 0 on average;
see :mod:`brainalign.encoding.scoring`), so a significantly *negative* group mean would
answer no question. Tables say which test they hold in their ``alternative`` column.
Paired tests between two models or conditions stay two-sided: either may be better.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import io

__all__ = ["ALTERNATIVES", "collect_tables", "group_ttest", "group_paired_ttest"]


def collect_tables(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Concatenate per-job tables into one tidy table (rows in input order)."""
    if not paths:
        raise ValueError("collect_tables needs at least one table path; got none")
    return pd.concat([io.read_table(p) for p in paths], ignore_index=True)


ALTERNATIVES = ("greater", "two-sided", "less")


def group_ttest(table: pd.DataFrame, value: str, by: Sequence[str], alternative: str = "greater") -> pd.DataFrame:
    """One-sample t-test of ``value`` against 0 across subjects, per group of ``by``.

    Parameters
    ----------
    table : DataFrame
        One row per subject and group, with a ``subject`` column.
    value : str
        Column to test (e.g. ``mean_r`` or ``score``).
    by : sequence of str
        Columns identifying a group (task, model, condition, layer, roi...).
    alternative : {"greater", "two-sided", "less"}
        ``"greater"`` (default): one-sided, mean above 0 (see the module docstring).

    Returns
    -------
    DataFrame
        One row per group: ``mean``, ``sem``, ``t``, ``p`` (as ``alternative`` says),
        ``n_subjects``, ``alternative``. With fewer than two subjects ``t`` and ``p`` are NaN.
    """
    from scipy import stats

    if alternative not in ALTERNATIVES:
        raise ValueError(f"group_ttest: 'alternative' must be one of {', '.join(ALTERNATIVES)}; got {alternative!r}")
    missing = [c for c in [value, "subject", *by] if c not in table.columns]
    if missing:
        raise ValueError(f"group_ttest: table lacks columns {missing}; it has {list(table.columns)}")
    rows = []
    for keys, sub in table.groupby(list(by), sort=True, dropna=False):
        values = sub[value].to_numpy(dtype=float)
        n = int(np.isfinite(values).sum())
        if n >= 2:
            t, p = stats.ttest_1samp(values, 0.0, nan_policy="omit", alternative=alternative)
            sem = float(stats.sem(values, nan_policy="omit"))
        else:
            t, p, sem = np.nan, np.nan, np.nan
        rows.append({**dict(zip(by, keys)), "mean": float(np.nanmean(values)), "sem": sem,
                     "t": float(t), "p": float(p), "n_subjects": n, "alternative": alternative})
    return pd.DataFrame(rows)


def group_paired_ttest(table: pd.DataFrame, value: str, between: str, by: Sequence[str]) -> pd.DataFrame:
    """Paired t-tests across subjects between every two levels of ``between``, per group of ``by``.

    Subjects are paired by the ``subject`` column; a subject missing either level is left
    out of that pair. ``q`` is the Benjamini-Hochberg adjusted p over every row of the
    returned table (one family of contrasts).

    Parameters
    ----------
    table : DataFrame
        One row per subject, group and level, with a ``subject`` column.
    value : str
        Column to compare (e.g. ``mean_r``).
    between : str
        Column whose levels are compared pairwise (e.g. ``condition`` or ``model``).
    by : sequence of str
        Columns identifying a group within which levels are compared.

    Returns
    -------
    DataFrame
        One row per group and pair (levels ``a`` < ``b`` in sorted order): the ``by``
        columns, ``between``, ``a``, ``b``, ``mean_a``, ``mean_b``, ``mean_diff``
        (a - b), ``sem_diff``, ``t``, ``p`` (two-sided, ``scipy.stats.ttest_rel``), ``q``,
        ``n_subjects``. With fewer than two paired subjects ``t``, ``p`` and ``q`` are NaN.
    """
    from scipy import stats

    from .encoding.stats import fdr_bh

    missing = [c for c in [value, "subject", between, *by] if c not in table.columns]
    if missing:
        raise ValueError(f"group_paired_ttest: table lacks columns {missing}; it has {list(table.columns)}")
    rows = []
    groups = table.groupby(list(by), sort=True, dropna=False) if by else [((), table)]
    for keys, sub in groups:
        keys = keys if isinstance(keys, tuple) else (keys,)
        wide = sub.pivot_table(index="subject", columns=between, values=value, aggfunc="mean")
        levels = sorted(wide.columns)
        for i, a in enumerate(levels):
            for b in levels[i + 1:]:
                pair = wide[[a, b]].dropna()
                diff = (pair[a] - pair[b]).to_numpy(dtype=float)
                n = len(diff)
                t, p = stats.ttest_rel(pair[a], pair[b]) if n >= 2 else (np.nan, np.nan)
                rows.append({**dict(zip(by, keys)), "between": between, "a": a, "b": b,
                             "mean_a": float(pair[a].mean()), "mean_b": float(pair[b].mean()),
                             "mean_diff": float(diff.mean()) if n else np.nan,
                             "sem_diff": float(stats.sem(diff)) if n >= 2 else np.nan,
                             "t": float(t), "p": float(p), "n_subjects": n})
    out = pd.DataFrame(rows, columns=[*by, "between", "a", "b", "mean_a", "mean_b", "mean_diff",
                                      "sem_diff", "t", "p", "n_subjects"])
    out["q"] = fdr_bh(out["p"].to_numpy(dtype=float)) if len(out) else []
    return out
