"""One registry of dataset readers: each format is a module that registers its reader here.

A reader turns the ``dataset`` section of the configuration into (1) the list of files a
subject x task reads, known when Snakemake builds the DAG, so that a missing file or entity
is reported before any job runs, and (2) at run time, the labelled representation of
:mod:`brainalign.datasets.units`. The workflow has one preprocessing rule for every format.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["DatasetError", "DatasetReader", "register_reader", "get_reader", "READERS"]


class DatasetError(ValueError):
    """The dataset on disk does not match the configuration; one line naming file and fix."""


class DatasetReader(Protocol):
    """What a dataset format provides.

    Constructed with the validated ``dataset`` section, the stimuli root, the name of
    the configuration file (quoted in messages) and, as keyword ``preprocess``, the
    ``preprocess`` section.
    """

    def check(self) -> None:
        """Discover the inputs and raise :class:`DatasetError` on the first problem."""

    def inputs(self, subject: str, task: str) -> dict[str, str | list[str]]:
        """Files one subject x task preprocessing job reads, by name (Snakemake inputs)."""

    def preprocess(
        self,
        inputs: Mapping[str, Any],
        subject: str,
        task: str,
        params: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read and preprocess one subject x task into the labelled representation."""


# format name -> module that registers it (imported on first use, so that the
# configuration check never imports a reader's heavy dependencies it does not need)
READERS: dict[str, str] = {
    "bids": "brainalign.datasets.bids_reader",
    "synthetic": "brainalign.datasets.bids_reader",
    "pereira": "brainalign.datasets.pereira",
    "ieeg": "brainalign.datasets.ieeg_reader",
    "synthetic_ieeg": "brainalign.datasets.ieeg_reader",
    "synthetic_neurons": "brainalign.demo.neurons_dataset",
    "braintreebank": "brainalign.datasets.braintreebank",
}
# Formats read by another format's reader: the intracranial demo is written in BIDS-iEEG.
_READ_AS = {"synthetic_ieeg": "ieeg"}
_REGISTERED: dict[str, type] = {}


def register_reader(name: str) -> Callable[[type], type]:
    """Class decorator: register a dataset reader under a format name."""

    def decorate(cls: type) -> type:
        _REGISTERED[name] = cls
        return cls

    return decorate


def get_reader(
    dataset: Mapping[str, Any],
    stimuli_root: str,
    source: str = "config/config.yaml",
    preprocess: Mapping[str, Any] | None = None,
) -> DatasetReader:
    """The reader of ``dataset['format']``, constructed on the configuration.

    ``preprocess`` (the config section) lets a reader check, before any job, the inputs
    its settings need (e.g. the confound columns a strategy reads).

    Raises
    ------
    DatasetError
        When the format is not registered (the message lists the registered ones).
    """
    name = dataset["format"]
    if name not in READERS:
        close = difflib.get_close_matches(name, list(READERS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise DatasetError(
            f"config 'dataset.format' is '{name}', which is not a registered reader; expected "
            f"one of: {', '.join(sorted(READERS))}{hint}. Edit {source}."
        )
    importlib.import_module(READERS[name])
    reader = _REGISTERED[_READ_AS.get(name, name)]
    return reader(dataset, stimuli_root, source, preprocess=preprocess or {})
