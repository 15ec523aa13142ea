"""Dataset readers, one module per format behind one registry.

Formats: ``bids`` (BIDS / fMRIPrep derivatives: volumes or fsaverage surfaces, concept
single-trial volumes, naturalistic time series, event-related runs whose single-trial
betas are estimated here), ``synthetic`` (the embedded demo, written in the bids layout),
and ``pereira`` (Pereira et al. 2018 experiment 1 ``.mat`` files). Every reader writes the
labelled representation of :mod:`brainalign.datasets.units`, which encoding and RSA read
whatever the source.

Import from the submodules (``brainalign.datasets.registry.get_reader``,
``brainalign.datasets.units.roi_mask``...): this package imports nothing, so an analysis
step that reads the labelled representation does not load the readers' dependencies
(pybids, nilearn, scipy).
"""
