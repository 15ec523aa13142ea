"""Neuron-level alignment (paper 001): single artificial units (or atoms) mapped to voxels.

Science modules: :mod:`.mapping` (every unit x voxel pair's held-out r, FIR weights and
sign, from matrix products over batches; a block-permutation null corrected over the
unit x voxel family), :mod:`.significance` (max-statistic FWER and Benjamini-Yekutieli
FDR), :mod:`.dictionary` (sparse dictionary atoms learnt on training folds only) and
:mod:`.analyses` (networks, redundancy, polarity, architecture shares and their bootstrap
contrast). The pipeline side (reading units from feature files, steps, rules) lives in
:mod:`.units` and :mod:`.steps`.
"""

from .dictionary import fold_atoms
from .mapping import CORRECTIONS, UnitVoxelMap, map_units
from .significance import by_adjust, maxstat_pvalues, normal_pvalues

__all__ = [
    "CORRECTIONS",
    "UnitVoxelMap",
    "by_adjust",
    "fold_atoms",
    "map_units",
    "maxstat_pvalues",
    "normal_pvalues",
]
