"""Per-unit model contrasts with a paired bootstrap (Subramaniam et al. 2024).

Where does model A predict held-out brain activity better than model B (a multimodal vs
a unimodal model, vs a linear-integration baseline of two unimodal spaces, a trained vs
a randomly initialised model)? Both sides are fitted once with the encoding's folds; the
held-out samples are resampled (stratified by fold, shared by both sides) and the held-out
r re-scored (:mod:`.bootstrap`); units where a side is above chance are tested for A > B
with BH-FDR, and shares of significant units are reported per ROI (:mod:`.selection`).

The configuration checks (``check_contrasts``, ``contrast_settings``, ``contrast_spaces``)
live in :mod:`._checks` and are imported from there by ``brainalign.config`` and the rules:
they reach ``brainalign.config``, which the rule jobs' environments need not carry.
"""

from ._checks import DEFAULT_SETTINGS
from .bootstrap import (
    ResampleIndices,
    bootstrap_scores,
    draw_resamples,
    fold_strata,
    fold_variance_factor,
    load_resamples,
    save_resamples,
)
from .selection import (
    bootstrap_pvalues,
    contrast_statistics,
    select_units,
    share_table,
    site_statistics,
    wilson_interval,
)
from .steps import run_contrast, summarize_contrasts

__all__ = [
    "DEFAULT_SETTINGS",
    "ResampleIndices",
    "bootstrap_pvalues",
    "bootstrap_scores",
    "contrast_statistics",
    "draw_resamples",
    "fold_strata",
    "fold_variance_factor",
    "load_resamples",
    "run_contrast",
    "save_resamples",
    "select_units",
    "share_table",
    "site_statistics",
    "summarize_contrasts",
    "wilson_interval",
]
