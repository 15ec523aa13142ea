"""Dataset readers, one module per format behind one registry.

Formats: ``bids`` (BIDS / fMRIPrep derivatives: volumes or fsaverage surfaces, concept
single-trial volumes, naturalistic time series, event-related runs whose single-trial
betas are estimated here), ``synthetic`` (the embedded demo, written in the bids layout),
and ``pereira`` (Pereira et al. 2018 experiment 1 ``.mat`` files). Every reader writes the
labelled representation of :mod:`brainalign.datasets.units`, which encoding and RSA read
whatever the source.
"""

from .registry import READERS, DatasetError, DatasetReader, get_reader, register_reader
from .units import check_units, roi_mask, roi_masks_from_sets

__all__ = [
    "READERS",
    "DatasetError",
    "DatasetReader",
    "get_reader",
    "register_reader",
    "check_units",
    "roi_mask",
    "roi_masks_from_sets",
]
