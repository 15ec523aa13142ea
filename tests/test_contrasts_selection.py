"""Site selection and site-level tests: false positives at noise units next to true effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainalign.contrasts import site_statistics
from brainalign.encoding.stats import fdr_bh
from tests.test_contrasts import _contrast, _dataset


@pytest.mark.parametrize("seed", range(3))
def test_mean_selection_keeps_noise_units_out_where_either_lets_them_in(seed):
    """With many true effects (40% of units a-only), BH admits noise units whose p is small;
    selecting on one side being high makes their p small (selection bias), selecting on
    the mean of the sides does not."""
    Xa, Xb, Y, n_planted, _ = _dataset(seed, planted=0.4, shared=0.0)
    rates = {}
    for select in ("mean", "either"):
        units, _ = _contrast(Xa, Xb, Y, seed, select=select)
        noise = units.iloc[n_planted:]
        rates[select] = noise["significant"].mean()
        assert units.iloc[:n_planted]["significant"].mean() >= 0.6  # power kept
    assert rates["mean"] <= 0.02
    assert rates["either"] >= rates["mean"]


def test_site_statistics_bonferroni_within_site_then_bh_across_sites():
    units = pd.DataFrame({
        "p": [0.001, 0.5, 0.01, 0.03, 0.9, 0.04, np.nan, np.nan],
        "delta": [0.1, 0.0, 0.2, -0.1, 0.0, 0.05, np.nan, np.nan],
        "selected": [True, True, True, True, True, False, False, False],
    })
    channel = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    out = site_statistics(units, channel, fdr_q=0.05)
    site_p = np.array([min(1, 2 * 0.001), min(1, 2 * 0.01), min(1, 1 * 0.9)])
    expected_q = fdr_bh(site_p)
    np.testing.assert_allclose(out["site_p"].to_numpy()[[0, 2, 4]], site_p)
    np.testing.assert_allclose(out["site_q"].to_numpy()[[1, 3, 5]], expected_q)
    # site 1: p 2 x 0.01, q 0.03, best bin delta 0.2 > 0: significant; site 2: q 0.9
    assert out["site_significant"].tolist() == [True, True, True, True, False, False, False, False]
    assert np.isnan(out["site_p"].to_numpy()[6:]).all()  # no selected bin: no site test
