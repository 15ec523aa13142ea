"""Config-time checks against the stimulus tables: spans select their word; the FIR delays
and permutation blocks of ``encoding`` fit the runs (:func:`check_encoding_config`).

Light on purpose (numpy, pandas): :func:`brainalign.config.validate_config` calls these
while Snakemake parses the workflow, before any job.

A span (``char_start``, ``char_end``) of ``sentences.tsv`` picks the concept word whose
hidden states are pooled; one that misses it (shifted, or off the sentence) silently
pools other tokens. The check runs before any job (:func:`check_spans`, called by
:func:`brainalign.config.validate_config` when the stimuli exist on disk).

Accepted: the span lies inside the sentence and its text equals the concept, ignoring
case, or starts with it up to an inflection (its first ``max(3, len(concept) - 2)``
characters: ``bird`` -> ``birds``, ``carry`` -> ``carried``). Spans of
``naturalistic/words.tsv`` must equal their ``word`` exactly.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["check_spans", "span_misses", "check_encoding_config", "run_lengths", "block_orders"]


def span_misses(sentence: str, start: int, end: int, word: str, exact: bool = False) -> bool:
    """True when ``sentence[start:end]`` is not ``word`` (see the module docstring)."""
    if not 0 <= start < end <= len(sentence):
        return True
    text = sentence[start:end]
    if exact:
        return text != word
    text, word = text.lower(), word.lower()
    return not (text == word or text.startswith(word[: max(3, len(word) - 2)]))


def _first_miss(table, word_column: str, exact: bool) -> tuple[int, Any] | None:
    for row, item in enumerate(table.itertuples(index=False)):
        values = item._asdict()
        if span_misses(str(values["sentence"]), int(values["char_start"]),
                       int(values["char_end"]), str(values[word_column]), exact):
            return row, values
    return None


def check_spans(stimuli_root: str | Path, source: str = "config/config.yaml") -> None:
    """Check the spans of ``sentences.tsv`` and ``naturalistic/words.tsv`` (when present).

    Raises
    ------
    ValueError
        One line naming the file, the row, the span's text, the word it should select and
        the fix.
    """
    import pandas as pd

    root = Path(stimuli_root)
    for name, column, exact in (("sentences.tsv", "concept", False),
                                ("naturalistic/words.tsv", "word", True)):
        path = root / name
        if not path.is_file():
            continue
        table = pd.read_csv(path, sep="\t", keep_default_na=False)
        if not {"sentence", "char_start", "char_end", column} <= set(table.columns):
            continue  # the feature step names the missing columns
        miss = _first_miss(table, column, exact)
        if miss is not None:
            row, values = miss
            start, end = int(values["char_start"]), int(values["char_end"])
            bad = sum(span_misses(str(s), int(a), int(b), str(w), exact) for s, a, b, w in zip(
                table["sentence"], table["char_start"], table["char_end"], table[column]))
            raise ValueError(
                f"stimuli '{path}' row {row + 2}: span [{start}, {end}) selects "
                f"{str(values['sentence'])[start:end]!r}, expected the {column} "
                f"{values[column]!r} ({bad} of {len(table)} rows miss it); fix char_start / "
                f"char_end (0-based, end exclusive) or config 'stimuli.root' in {source}."
            )


# ----------------------------------------------------------------------------- runs
#: Distinct block orders below which a permutation p can never reach 0.05.
MIN_BLOCK_ORDERS = 20


def run_lengths(config: Mapping[str, Any], workdir: Any = ".") -> tuple[list[int], str]:
    """TRs of each naturalistic run as known before any job, and where they come from.

    ``demo.n_trs`` for the synthetic demo, else the ``n_trs`` column of the stimuli's
    ``naturalistic/runs.tsv`` (empty when it does not exist yet).
    """
    if config["dataset"]["format"] == "synthetic":
        return [int(config["demo"]["n_trs"])] * len(config["dataset"]["naturalistic_runs"]), \
            "config 'demo.n_trs'"
    path = Path(workdir) / config["stimuli"]["root"] / "naturalistic" / "runs.tsv"
    if not path.is_file():
        return [], str(path)
    import pandas as pd

    table = pd.read_csv(path, sep="\t")
    if "n_trs" not in table:
        return [], str(path)
    return [int(n) for n in table["n_trs"]], f"'{path}' (column n_trs)"


def block_orders(n_trs: list[int], block_size: int) -> float:
    """Distinct block permutations of runs of ``n_trs`` TRs (product of n_blocks!)."""
    from math import lgamma

    return float(np.exp(sum(lgamma(-(-n // block_size) + 1) for n in n_trs)))


def check_encoding_config(config: Mapping[str, Any], source: str, workdir: Any = ".") -> None:
    """Config-time checks of ``encoding`` against the runs: FIR delays and permutation blocks.

    Raises
    ------
    ValueError
        One line naming the key, what was expected, what was found and the fix.
    """
    tasks = config["dataset"]["tasks"].values()
    if not any(spec["kind"] == "naturalistic" for spec in tasks):
        return
    encoding = config["encoding"]
    lengths, where = run_lengths(config, workdir)
    if not lengths:
        return
    shortest, delays = min(lengths), list(encoding["delays"])
    if max(delays) >= shortest:
        raise ValueError(
            f"config 'encoding.delays' must be shorter than every naturalistic run "
            f"({shortest} TRs in {where}); got delays {delays}. Use delays of a few TRs "
            f"(e.g. [1, 2, 3, 4]) in {source}."
        )
    block = int(encoding["block_size"])
    if encoding["n_permutations"] and block_orders(lengths, block) < MIN_BLOCK_ORDERS:
        raise ValueError(
            f"config 'encoding.block_size' must cut the runs ({lengths} TRs in {where}) into "
            f"blocks that give at least {MIN_BLOCK_ORDERS} distinct permutations, or no p can "
            f"reach 0.05; got {block} (blocks per run {[-(-n // block) for n in lengths]}). "
            f"Use shorter blocks (10-25 TRs) in {source}."
        )
