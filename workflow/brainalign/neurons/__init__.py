"""Neuron-level alignment (paper 001): single artificial units (or atoms) mapped to voxels.

Science modules: :mod:`.mapping` (every unit x voxel pair's held-out r, FIR weights and
sign, from matrix products over batches; a block-permutation null corrected over the
unit x voxel family), :mod:`.significance` (max-statistic FWER and Benjamini-Yekutieli
FDR), :mod:`.dictionary` (sparse dictionary atoms learnt on training folds only) and
:mod:`.analyses` (networks, redundancy, polarity, architecture shares) and :mod:`.resample`
(the bootstrap contrast of two architectures). The pipeline side (reading units from feature files, steps, rules) lives in
:mod:`.units` and :mod:`.steps`.
"""

from .analyses import (
    architecture_shares,
    count_null_pmf,
    jaccard_pairs,
    network_shares,
    polarity,
    redundancy,
    unit_polarity,
)
from .dictionary import fold_atoms
from .mapping import CORRECTIONS, UnitVoxelMap, map_units
from .resample import ModelUnits, architecture_contrast
from .significance import by_adjust, maxstat_pvalues, normal_pvalues

__all__ = [
    "CORRECTIONS",
    "ModelUnits",
    "UnitVoxelMap",
    "architecture_contrast",
    "architecture_shares",
    "by_adjust",
    "count_null_pmf",
    "fold_atoms",
    "jaccard_pairs",
    "map_units",
    "maxstat_pvalues",
    "network_shares",
    "normal_pvalues",
    "polarity",
    "redundancy",
    "unit_polarity",
]
