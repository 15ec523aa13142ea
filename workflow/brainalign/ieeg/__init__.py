"""Intracranial recordings (SEEG / ECoG): MNE preprocessing into event-locked responses.

Modules: :mod:`._checks` (settings and file validation, :data:`DEFAULT_IEEG`),
:mod:`.preprocess` (notch, re-reference, high-gamma envelope, resample, z-score with MNE),
:mod:`.epochs` (binned event-locked responses, CV blocks, the labelled arrays),
:mod:`.regions` (channel coordinates and regions) and :mod:`.simulate` (synthetic SEEG
written as BIDS-iEEG). MNE and mne-bids are imported only where a function needs them.
The reader (``dataset.format: ieeg``) is :mod:`brainalign.datasets.ieeg_reader`.
"""

from ._checks import DEFAULT_IEEG, REFERENCES, ieeg_settings
from .epochs import cv_blocks, epoch_bins, epochs_arrays, time_bins
from .preprocess import bipolar_pairs, laplacian_matrix, preprocess_raw
from .regions import channel_regions, channel_xyz, read_electrodes

__all__ = [
    "DEFAULT_IEEG",
    "REFERENCES",
    "ieeg_settings",
    "preprocess_raw",
    "bipolar_pairs",
    "laplacian_matrix",
    "epoch_bins",
    "cv_blocks",
    "epochs_arrays",
    "time_bins",
    "channel_regions",
    "channel_xyz",
    "read_electrodes",
]
