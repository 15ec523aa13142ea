"""Voxel-wise encoding models: FIR delays, leak-free cross-validation, ridge fits.

Submodules: :mod:`.delays` (FIR delays within runs), :mod:`.cv` (outer and inner
splits), :mod:`.ridge` (nested cross-validated himalaya ridge), :mod:`.scoring`
(per-voxel r and R^2).
"""

from .cv import KINDS, inner_splits, outer_splits
from .delays import make_delays
from .ridge import SOLVERS, EncodingResult, fit_encoding, log_alpha_edges, snap_to_grid
from .scoring import SCORINGS, score_folds, score_predictions

__all__ = [
    "KINDS",
    "SCORINGS",
    "SOLVERS",
    "EncodingResult",
    "fit_encoding",
    "inner_splits",
    "log_alpha_edges",
    "make_delays",
    "outer_splits",
    "score_folds",
    "score_predictions",
    "snap_to_grid",
]
