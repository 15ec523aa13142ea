"""Voxel-wise encoding models: FIR delays, leak-free cross-validation, ridge fits.

Submodules: :mod:`.delays` (FIR delays within runs), :mod:`.cv` (outer and inner
splits), :mod:`.solver` (all alphas from one eigendecomposition per fold, voxels in
batches), :mod:`.ridge` (nested cross-validated ridge), :mod:`.scoring` (per-voxel r
and R^2),
:mod:`.residual` (joint features with the unimodal ones regressed out inside each fold).
"""

from .cv import KINDS, inner_splits, outer_splits
from .delays import make_delays
from .ridge import (
    ENGINES,
    SOLVERS,
    EncodingResult,
    cross_validate,
    fit_encoding,
    log_alpha_edges,
    snap_to_grid,
    standardize,
)
from .residual import fit_residual_encoding, residualize
from .scoring import SCORINGS, score_folds, score_predictions
from .solver import RidgeCVFit, fit_predict_ridge_cv

__all__ = [
    "ENGINES",
    "KINDS",
    "SCORINGS",
    "SOLVERS",
    "EncodingResult",
    "RidgeCVFit",
    "cross_validate",
    "fit_encoding",
    "fit_predict_ridge_cv",
    "fit_residual_encoding",
    "inner_splits",
    "log_alpha_edges",
    "make_delays",
    "outer_splits",
    "residualize",
    "score_folds",
    "score_predictions",
    "snap_to_grid",
    "standardize",
]
