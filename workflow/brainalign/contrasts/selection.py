"""Per-unit contrast statistics, site selection, FDR and shares of significant units.

Following Subramaniam et al. (2024), a unit (voxel, vertex, or electrode x time bin)
enters a contrast only where the models predict held-out activity above chance: the lower
bound of a bootstrap interval of held-out r is above 0 (``select``: ``mean`` of the two
sides, the default, see :func:`select_units`; ``either`` side, the paper's rule; ``a``;
``b``; ``both``; or ``none`` to keep every unit). The one-sided bootstrap p of A > B,
``(1 + #{delta* <= 0}) / (n_resamples + 1)`` (or the two-sided ``2 x`` the smaller tail,
capped at 1), is corrected by Benjamini-Hochberg across the *selected* units of one
subject x task x contrast. A unit is significant when it is selected, ``q <= fdr_q`` and
``delta > 0``. Units flagged by preprocessing are left out: NaN in the tables, in no FDR
family or count.

With ``either``, selection and test are not independent: a noise unit selected because
side A is high by chance tends to have ``delta > 0`` too. In tests/test_contrasts.py
(planted data: 13% A-only units, 30% shared, 57% noise, 300 samples, 1000 resamples,
``either``) 5 of 228 noise units (2.2%) came out significant; pure-null data (both sides
noise, or both equally good) gave 0 of 400 in each of 5 seeds. On the benchmark's reduced
planted case (500 events x 200 units, 3 seeds) noise units significant were 0-6 of 114
with ``either`` and 0-2 with ``mean``; what remains comes from the bootstrap's fixed fits
(:mod:`.bootstrap`, "Calibration").

Shares are counts of significant units over selected units (and over all usable units),
per ROI (ROIs may overlap) and overall, with Wilson score intervals. For electrode data a
site (channel) counts as selected / significant when any of its time bins is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..encoding.stats import fdr_bh

__all__ = [
    "ALTERNATIVES",
    "SELECTIONS",
    "bootstrap_pvalues",
    "contrast_statistics",
    "select_units",
    "share_table",
    "site_statistics",
    "wilson_interval",
]

logger = logging.getLogger(__name__)

SELECTIONS = ("mean", "either", "a", "b", "both", "none")
ALTERNATIVES = ("greater", "two-sided")


def bootstrap_pvalues(
    n_le0: np.ndarray, n_ge0: np.ndarray, n_resamples: int, alternative: str = "greater"
) -> np.ndarray:
    """Bootstrap p-values of A > B from the counts of resampled differences.

    Parameters
    ----------
    n_le0, n_ge0 : arrays of shape (n_units,)
        Resamples with delta* <= 0 and delta* >= 0.
    n_resamples : int
    alternative : {"greater", "two-sided"}
        ``greater``: ``(1 + n_le0) / (n_resamples + 1)``; ``two-sided``: twice the
        smaller of that and ``(1 + n_ge0) / (n_resamples + 1)``, capped at 1.

    Returns
    -------
    p : array of shape (n_units,), float64
    """
    lower = (1.0 + np.asarray(n_le0, dtype=float)) / (n_resamples + 1)
    if alternative == "greater":
        return lower
    if alternative == "two-sided":
        upper = (1.0 + np.asarray(n_ge0, dtype=float)) / (n_resamples + 1)
        return np.minimum(2.0 * np.minimum(lower, upper), 1.0)
    raise ValueError(f"'alternative' must be one of {ALTERNATIVES}; got {alternative!r}")


def select_units(ci_a: np.ndarray, ci_b: np.ndarray, select: str = "mean",
                 ci_mean: np.ndarray | None = None) -> np.ndarray:
    """Units where the chosen side(s) predict above chance (lower interval bound > 0).

    ``mean`` (the default) selects on the mean of the two sides' r, whose resampling
    distribution is, when both sides predict equally well, uncorrelated with the difference
    tested after selection (Cov(a + b, a - b) = Var a - Var b = 0). ``either`` (paper 003's
    "a model predicts the site") selects units where one side is high by chance, and the
    one-sided test of a > b then finds them: on the intracranial demo, 12-20% of pure-noise
    sites came out significant that way, against none with ``mean``.

    Parameters
    ----------
    ci_a, ci_b : arrays of shape (2, n_units)
        Bootstrap interval bounds of the held-out r of each side.
    select : {"mean", "either", "a", "b", "both", "none"}
    ci_mean : array of shape (2, n_units), optional
        Interval bounds of the mean of the two sides' r (needed for ``mean``).

    Returns
    -------
    selected : bool array of shape (n_units,)
    """
    above_a, above_b = np.asarray(ci_a)[0] > 0, np.asarray(ci_b)[0] > 0
    if select == "mean":
        if ci_mean is None:
            raise ValueError("select 'mean' needs 'ci_mean' (bootstrap_scores returns it)")
        return np.asarray(ci_mean)[0] > 0
    rules = {
        "either": lambda: above_a | above_b,
        "a": lambda: above_a,
        "b": lambda: above_b,
        "both": lambda: above_a & above_b,
        "none": lambda: np.ones_like(above_a),
    }
    if select not in rules:
        raise ValueError(f"'select' must be one of {SELECTIONS}; got {select!r}")
    return rules[select]()


def contrast_statistics(
    scores: Mapping[str, np.ndarray],
    usable: np.ndarray | None = None,
    *,
    fdr_q: float = 0.05,
    select: str = "mean",
    alternative: str = "greater",
) -> pd.DataFrame:
    """Per-unit table of a contrast: scores, intervals, p, q, selection and significance.

    Parameters
    ----------
    scores : mapping
        The output of :func:`~brainalign.contrasts.bootstrap.bootstrap_scores` over the
        usable units (arrays of shape (n_usable,) or (2, n_usable)).
    usable : bool array of shape (n_units,) or None
        Units that were fitted; the others get NaN scores, ``excluded`` True and are in
        no FDR family. None: all.
    fdr_q : float
        Benjamini-Hochberg level across the selected units.
    select, alternative : str
        See :func:`select_units` and :func:`bootstrap_pvalues`.

    Returns
    -------
    table : DataFrame, one row per unit (n_units rows)
        ``unit``, ``r_a``, ``r_b``, ``delta``, ``r_a_low``, ``r_a_high``, ``r_b_low``,
        ``r_b_high``, ``delta_low``, ``delta_high``, ``p``, ``q`` (NaN where not
        selected), ``selected``, ``significant``, ``excluded``.
    """
    n_usable = np.asarray(scores["r_a"]).shape[0]
    usable = np.ones(n_usable, dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    if usable.sum() != n_usable:
        raise ValueError(f"'usable' marks {usable.sum()} units but the scores cover {n_usable}")
    p = bootstrap_pvalues(scores["n_le0"], scores["n_ge0"], int(scores["n_resamples"]), alternative)
    selected = select_units(scores["ci_a"], scores["ci_b"], select, scores.get("ci_mean"))
    q = np.full(n_usable, np.nan)
    q[selected] = fdr_bh(p[selected])
    columns = {
        "r_a": scores["r_a"],
        "r_b": scores["r_b"],
        "delta": scores["delta"],
        "r_a_low": scores["ci_a"][0],
        "r_a_high": scores["ci_a"][1],
        "r_b_low": scores["ci_b"][0],
        "r_b_high": scores["ci_b"][1],
        "delta_low": scores["ci_delta"][0],
        "delta_high": scores["ci_delta"][1],
        "p": p,
        "q": q,
    }
    table = pd.DataFrame({"unit": np.arange(usable.size)})
    for name, values in columns.items():
        full = np.full(usable.size, np.nan)
        full[usable] = values
        table[name] = full
    table["selected"] = _spread(selected, usable)
    table["significant"] = _spread(
        selected & (q <= fdr_q) & (np.asarray(scores["delta"]) > 0), usable
    )
    table["excluded"] = ~usable
    logger.info(
        "contrast: %d of %d usable units selected (%s), %d significant (q <= %g, %s)",
        selected.sum(),
        n_usable,
        select,
        table["significant"].sum(),
        fdr_q,
        alternative,
    )
    return table


def _spread(values: np.ndarray, usable: np.ndarray) -> np.ndarray:
    full = np.zeros(usable.size, dtype=bool)
    full[usable] = values
    return full


def wilson_interval(
    k: np.ndarray | int, n: np.ndarray | int, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``k / n``.

    Parameters
    ----------
    k, n : int or arrays of the same shape
        Successes and trials (``0 <= k <= n``).
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    low, high : float64 arrays of the shape of ``k``
        NaN where ``n`` is 0 (as ``statsmodels.stats.proportion.proportion_confint``
        with ``method='wilson'``, which it matches otherwise).
    """
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError(f"'k' must lie in [0, n]; got k={k} and n={n}")
    z = norm.ppf(1 - (1 - level) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = k / n
        centre = (share + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(share * (1 - share) / n + z**2 / (4 * n**2))
    empty = n == 0
    low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)  # rounding
    low, high = np.where(k == 0, 0.0, low), np.where(k == n, 1.0, high)  # exact at the ends
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def share_table(
    units: pd.DataFrame,
    masks: Mapping[str, np.ndarray],
    channel: np.ndarray | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Counts and shares of significant units per ROI and overall (``roi`` = ``all``).

    Parameters
    ----------
    units : DataFrame
        A table of :func:`contrast_statistics` (n_units rows, in unit order).
    masks : mapping of str to bool array of shape (n_units,)
        ROI membership (ROIs may overlap).
    channel : int array of shape (n_units,) or None
        Electrode of each unit (electrode x time bin data): adds site counts.
    level : float
        Level of the Wilson intervals.

    Returns
    -------
    shares : DataFrame, one row per ROI plus ``all``
        ``roi``, ``n_units`` (usable), ``n_excluded``, ``n_selected``, ``n_significant``,
        ``share`` (= n_significant / n_selected) with ``share_low``/``share_high``,
        ``share_units`` (= n_significant / n_units) with its interval, ``mean_delta`` (over
        usable units), ``mean_delta_selected``; with ``channel``: ``n_sites``,
        ``n_sites_selected``, ``n_sites_significant``, ``share_sites`` (over selected
        sites) and its interval.
    """
    everything = {"all": np.ones(len(units), dtype=bool)}
    rows = []
    for name, mask in {**masks, **everything}.items():
        mask = np.asarray(mask, dtype=bool)
        sub = units[mask & ~units["excluded"].to_numpy()]
        row = {
            "roi": name,
            "n_units": len(sub),
            "n_excluded": int((mask & units["excluded"]).sum()),
            "n_selected": int(sub["selected"].sum()),
            "n_significant": int(sub["significant"].sum()),
            "mean_delta": _mean(sub["delta"]),
            "mean_delta_selected": _mean(sub.loc[sub["selected"], "delta"]),
        }
        if channel is not None:
            row.update(_site_counts(sub, np.asarray(channel)[sub["unit"].to_numpy()]))
        rows.append(row)
    return add_shares(pd.DataFrame(rows), level)


def add_shares(table: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Shares and Wilson intervals from the count columns of a share table."""
    pairs = [("share", "n_significant", "n_selected"), ("share_units", "n_significant", "n_units")]
    if "n_sites" in table:
        pairs.append(("share_sites", "n_sites_significant", "n_sites_selected"))
    table = table.copy()
    for name, k, n in pairs:
        counts, trials = table[k].to_numpy(float), table[n].to_numpy(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            table[name] = np.where(trials > 0, counts / np.where(trials > 0, trials, 1), np.nan)
        table[f"{name}_low"], table[f"{name}_high"] = wilson_interval(counts, trials, level)
    return table


def site_statistics(units: pd.DataFrame, channel: np.ndarray, fdr_q: float = 0.05) -> pd.DataFrame:
    """Site-level (electrode) test from its time bins: ``site_p``, ``site_q``, ``site_significant``.

    A site's p is the Bonferroni-corrected smallest p of its selected bins
    (``min(1, k * min p)`` over its ``k`` selected bins), and the sites with a selected bin
    form one Benjamini-Hochberg family. "Any bin significant" would instead let each of a
    site's bins make it a discovery, so that the share of false sites grows with the number
    of bins. Site significance also needs the best bin's delta > 0.

    Parameters
    ----------
    units : DataFrame
        A table of :func:`contrast_statistics` (n_units rows, in unit order).
    channel : int array of shape (n_units,)
        Electrode of each unit.

    Returns
    -------
    DataFrame
        ``units`` with the three columns added (the same value on every bin of a site; NaN
        / False for sites with no selected bin).
    """
    frame = pd.DataFrame({"site": np.asarray(channel), "p": units["p"].to_numpy(float),
                          "delta": units["delta"].to_numpy(float),
                          "selected": units["selected"].to_numpy(bool)})
    chosen = frame[frame["selected"]]
    grouped = chosen.groupby("site")
    best = chosen.loc[grouped["p"].idxmin()].set_index("site")
    site_p = np.minimum(1.0, grouped.size() * grouped["p"].min())
    site_q = pd.Series(fdr_bh(site_p.to_numpy()) if len(site_p) else [], index=site_p.index)
    significant = (site_q <= fdr_q) & (best["delta"].reindex(site_q.index) > 0)
    units = units.copy()
    units["site_p"] = frame["site"].map(site_p).to_numpy(float)
    units["site_q"] = frame["site"].map(site_q).to_numpy(float)
    units["site_significant"] = frame["site"].map(significant).fillna(False).to_numpy(bool)
    return units


def _site_counts(sub: pd.DataFrame, channel: np.ndarray) -> dict[str, int]:
    """Sites (channels) with any usable and selected bin, and the significant sites
    (:func:`site_statistics`; any significant bin when the table has no site test)."""
    frame = pd.DataFrame(
        {
            "channel": channel,
            "selected": sub["selected"].to_numpy(),
            "significant": sub["site_significant" if "site_significant" in sub
                               else "significant"].to_numpy(),
        }
    )
    per_site = frame.groupby("channel")[["selected", "significant"]].any()
    return {
        "n_sites": len(per_site),
        "n_sites_selected": int(per_site["selected"].sum()),
        "n_sites_significant": int(per_site["significant"].sum()),
    }


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else float("nan")
