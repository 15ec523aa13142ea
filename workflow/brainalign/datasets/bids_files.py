"""BIDS file names: entities parsed with pybids' patterns, one folder scanned, one file picked.

The building blocks of :mod:`brainalign.datasets.bids` and :mod:`brainalign.datasets.bids_anat`:
:func:`parse_entities` reads a name with the ``bids`` and ``derivatives`` entity patterns of
:mod:`bids.layout`; ``_scan`` parses the files of one folder; ``_pick`` chooses among
candidates by the entities they share with a reference file, refusing ambiguities in one line.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .registry import DatasetError

__all__ = ["parse_entities"]

# entities read from names; the OTHER ones must agree between the files chosen for one run
_ENTITIES = ("subject", "session", "task", "run", "space", "desc", "hemi", "atlas", "suffix",
             "extension")
_OTHER = ("acquisition", "ceagent", "reconstruction", "direction", "echo", "part", "res", "den")
_SHORT = {"subject": "sub", "session": "ses", "acquisition": "acq", "ceagent": "ce",
          "reconstruction": "rec", "direction": "dir"}
_VOLUME = (".nii.gz", ".nii")
_TPL = re.compile(r"(?:^|_)tpl-([a-zA-Z0-9+]+)")


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern]:
    from bids.layout.models import Config

    entities: dict[str, Any] = {}
    for name in ("bids", "derivatives"):
        entities.update(Config.load(name).entities)
    return {name: entities[name].regex for name in (*_ENTITIES, *_OTHER)}


def parse_entities(name: str) -> dict[str, Any]:
    """Entities of one file name with pybids' patterns; ``run`` as int, ``tpl`` added.

    >>> parse_entities("sub-01_ses-1_task-movie_run-2_space-X_desc-preproc_bold.nii.gz")["run"]
    2
    """
    text = "/" + name
    found: dict[str, Any] = {}
    for entity, pattern in _patterns().items():
        match = pattern.search(text)
        if match:
            found[entity] = match.group(1)
    if "run" in found:
        found["run"] = int(found["run"])
    tpl = _TPL.search(name)
    if tpl:
        found["tpl"] = tpl.group(1)
    return found


@dataclass(frozen=True)
class _File:
    path: str
    ents: dict

    def get(self, key: str) -> Any:
        return self.ents.get(key)


def _scan(folder: str) -> list[_File]:
    """Parsed files of one folder (not recursive); [] when it does not exist."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [_File(e.path, parse_entities(e.name)) for e in entries
            if e.is_file() and not e.name.startswith(".")]


def _describe(files: Iterable[_File], keys: Sequence[str]) -> str:
    """'space MNI152NLin6Asym desc preproc (4 files); ...' for messages."""
    counts: dict[str, int] = defaultdict(int)
    for f in files:
        counts[" ".join(f"{_SHORT.get(k, k)} {f.get(k)}" for k in keys)] += 1
    return "; ".join(f"{label} ({n} files)" for label, n in sorted(counts.items())[:6]) or "none"


def _pick(candidates: list[_File], like: Mapping[str, Any] | None, what: str) -> _File:
    """The one candidate agreeing best with ``like`` on the other entities (res, acq...)."""
    if len(candidates) > 1 and like is not None:
        score = [sum(f.get(k) == like.get(k) for k in _OTHER) for f in candidates]
        candidates = [f for f, s in zip(candidates, score) if s == max(score)]
    if len(candidates) > 1:
        names = ", ".join(sorted(os.path.basename(f.path) for f in candidates)[:3])
        raise DatasetError(
            f"{what} is ambiguous: {len(candidates)} files match ({names}); they differ in "
            f"entities {_differing(candidates)}. Move the unwanted ones out of the dataset."
        )
    return candidates[0]


def _differing(files: list[_File]) -> list[str]:
    keys = sorted({k for f in files for k in f.ents})
    return [_SHORT.get(k, k) for k in keys if len({str(f.get(k)) for f in files}) > 1]
