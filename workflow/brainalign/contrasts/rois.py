"""Per-ROI t-tests across subjects of a contrast (paper 002's ROI bars and marks).

Each subject contributes one number per ROI: the mean over its usable units in the ROI
of the per-unit value (``delta`` of a contrast table written by
:func:`~brainalign.contrasts.steps.run_contrast`, or the difference of two conditions'
held-out r). The subject means are tested against 0 with a one-sample t-test across
subjects (``scipy.stats.ttest_1samp``), one-sided ``greater`` by default (A better than
B; ``two-sided`` and ``less`` are accepted), and the ROIs of one family (one task x
contrast, or one condition pair) are corrected with Holm's step-down method (family-wise
error; the families hold a handful of ROIs, where Holm costs little power and makes each
mark a claim about that ROI). Units of overlapping ROIs count in each of them (the
``roi`` column holds comma-joined names); units in no ROI are left out; units marked
``excluded`` are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import ttest_1samp

__all__ = ["condition_pair_ttests", "holm", "roi_ttests", "subject_roi_means"]

logger = logging.getLogger(__name__)

ALTERNATIVES = ("greater", "two-sided", "less")


def holm(p: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, as statsmodels' ``multipletests(method='holm')``.

    Parameters
    ----------
    p : array of shape (n,)
        p-values (NaN stays NaN and is not counted in the family).

    Returns
    -------
    p_adjusted : array of shape (n,), float64
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = order.size
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(stepped, 1.0)
    return out


def subject_roi_means(
    units: pd.DataFrame, value: str = "delta", by: Sequence[str] = ()
) -> pd.DataFrame:
    """Mean of ``value`` over each subject's usable units in each ROI.

    Parameters
    ----------
    units : DataFrame
        One row per subject x unit (x ``by``): columns ``subject``, ``roi`` (comma-joined
        ROI names, "" for none), ``value`` and optionally ``excluded``.
    value : str
        The column to average.
    by : sequence of str
        Further columns that split the table (``task``, ``contrast``, ``layer``...).

    Returns
    -------
    means : DataFrame
        Columns ``*by``, ``roi``, ``subject``, ``value``, ``n_units``.
    """
    needed = {"subject", "roi", value, *by}
    if missing := sorted(needed - set(units.columns)):
        raise ValueError(
            f"unit table lacks columns {missing}; got {sorted(units.columns)}. Pass the "
            "unit tables written by run_contrast (concatenated over subjects)"
        )
    kept = units[~units["excluded"].astype(bool)] if "excluded" in units else units
    kept = kept[np.isfinite(kept[value].to_numpy(dtype=float))]
    kept = kept.assign(roi=kept["roi"].fillna("").astype(str).str.split(",")).explode("roi")
    kept = kept[kept["roi"] != ""]
    keys = [*by, "roi", "subject"]
    grouped = kept.groupby(keys, sort=True)[value]
    return grouped.mean().to_frame(value).join(grouped.size().rename("n_units")).reset_index()


def roi_ttests(
    units: pd.DataFrame,
    value: str = "delta",
    *,
    by: Sequence[str] = (),
    alternative: str = "greater",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """One-sample t-test of the subjects' ROI means of ``value`` against 0, Holm per family.

    Parameters
    ----------
    units : DataFrame
        Per-unit tables of all subjects (see :func:`subject_roi_means`).
    value : str
        Column to test (``delta`` of a contrast).
    by : sequence of str
        Columns whose values make separate families (e.g. ``("task", "contrast")``);
        Holm corrects across the ROIs within each.
    alternative : {"greater", "two-sided", "less"}
        Of ``scipy.stats.ttest_1samp``; ``greater``: mean > 0.
    alpha : float
        Level of ``significant`` (on the Holm-adjusted p).

    Returns
    -------
    table : DataFrame, one row per family x ROI
        ``*by``, ``roi``, ``n_subjects``, ``mean``, ``sd`` (ddof 1), ``sem``, ``t``,
        ``df``, ``p``, ``p_holm``, ``significant``, ``alternative``. ROIs with fewer than
        2 subjects get NaN t and p.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"'alternative' must be one of {ALTERNATIVES}; got {alternative!r}")
    means = subject_roi_means(units, value, by)
    rows = []
    for key, sub in means.groupby([*by, "roi"], sort=True):
        x = sub[value].to_numpy(dtype=float)
        t, p = ttest_1samp(x, 0.0, alternative=alternative) if x.size >= 2 else (np.nan, np.nan)
        sd = x.std(ddof=1) if x.size >= 2 else np.nan
        rows.append(
            dict(zip([*by, "roi"], key), n_subjects=x.size, mean=x.mean(), sd=sd,
                 sem=sd / np.sqrt(x.size), t=float(t), df=x.size - 1, p=float(p))
        )
    table = pd.DataFrame(rows)
    if table.empty:
        raise ValueError(f"no usable units in any ROI to test '{value}'; check the 'roi' column")
    family = table.groupby(list(by))["p"] if by else [(None, table["p"])]
    table["p_holm"] = np.nan
    for _, p in family:
        table.loc[p.index, "p_holm"] = holm(p.to_numpy())
    table["significant"] = table["p_holm"] <= alpha
    table["alternative"] = alternative
    logger.info(
        "ROI t-tests of %s (%s, Holm per family): %d of %d ROI tests significant",
        value, alternative, table["significant"].sum(), len(table),
    )
    return table


def condition_pair_ttests(
    units: pd.DataFrame,
    conditions: Sequence[str],
    value: str = "r",
    *,
    unit: str = "unit",
    by: Sequence[str] = (),
    alternative: str = "greater",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """ROI t-tests of every pair of conditions (joint vs language-only vs vision-only...).

    For each pair ``(a, b)`` taken in the order of ``conditions`` (a before b, e.g. joint
    first), the per-unit difference ``value[a] - value[b]`` of the same subject and unit
    is tested as :func:`roi_ttests` does (one-sample across subjects of the ROI means =
    a paired t-test of the two conditions' ROI means), with Holm across the ROIs of each
    pair (x ``by``) family.

    Parameters
    ----------
    units : DataFrame
        One row per subject x condition x unit: ``subject``, ``condition``, ``unit``,
        ``roi``, ``value`` (e.g. held-out r), optionally ``excluded``.
    conditions : sequence of str
        At least two conditions, all present in ``units``.
    value, unit : str
        Column compared, and the column naming a unit within a subject.
    by, alternative, alpha
        As :func:`roi_ttests`.

    Returns
    -------
    table : DataFrame
        The columns of :func:`roi_ttests` plus ``condition_a`` and ``condition_b``.
    """
    present = set(units["condition"]) if "condition" in units else set()
    if len(conditions) < 2 or not set(conditions) <= present:
        raise ValueError(
            f"'conditions' must name >= 2 conditions of the unit table; got "
            f"{list(conditions)}, table has {sorted(present)}"
        )
    keys = ["subject", unit, *by]
    tables = []
    for a, b in combinations(conditions, 2):
        pair = _pair_difference(units, a, b, keys, value)
        tables.append(
            roi_ttests(pair, value, by=by, alternative=alternative, alpha=alpha)
            .assign(condition_a=a, condition_b=b)
        )
    return pd.concat(tables, ignore_index=True)


def _pair_difference(units, a, b, keys, value) -> pd.DataFrame:
    """Rows of condition a with ``value`` replaced by a - b, matched on subject x unit."""
    side_a = units[units["condition"] == a].set_index(keys)
    side_b = units[units["condition"] == b].set_index(keys)
    if len(side_a) != len(side_b) or not side_a.index.sort_values().equals(side_b.index.sort_values()):
        raise ValueError(
            f"conditions '{a}' and '{b}' do not cover the same subject x unit rows "
            f"({len(side_a)} vs {len(side_b)}); fit both on the same brain data"
        )
    diff = side_a.copy()
    diff[value] = side_a[value] - side_b.loc[side_a.index, value]
    if "excluded" in diff:
        diff["excluded"] = side_a["excluded"].astype(bool) | side_b.loc[side_a.index, "excluded"].astype(bool)
    return diff.reset_index()
