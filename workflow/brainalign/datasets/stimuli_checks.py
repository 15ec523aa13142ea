"""Config-time checks against the stimulus tables: spans select their word; the FIR delays,
permutation blocks and CV folds of ``encoding`` fit the runs and concepts, and crossnobis
RDMs have repeated runs (:func:`check_encoding_config`).

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

__all__ = ["check_spans", "span_misses", "check_encoding_config", "run_lengths", "block_orders",
           "concept_count", "check_cv_counts", "run_counts", "check_run_counts"]


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
    _check_permutation_count(config["encoding"], source)
    check_cv_counts(config, source, workdir)
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


def _check_permutation_count(encoding: Mapping[str, Any], source: str) -> None:
    """0 (no test) or enough permutations for a test; the empirical p must reach ``fdr_q``."""
    n, q = int(encoding["n_permutations"]), float(encoding["fdr_q"])
    if n == 1:
        raise ValueError(
            f"config 'encoding.n_permutations' must be 0 (no permutation test) or >= 2 (a "
            f"null needs permutations); got 1. Use 1000 or more, or 0, in {source}."
        )
    if n and encoding.get("tail") == "empirical" and 1.0 / (n + 1) > q:
        raise ValueError(
            f"config 'encoding.n_permutations' must be >= {int(np.ceil(1 / q - 1))} with "
            f"'encoding.tail' empirical, whose p cannot go below 1 / (n_permutations + 1), "
            f"or no voxel can reach 'encoding.fdr_q' {q:g}; got {n}. Use 1000 or more in "
            f"{source}."
        )


# ----------------------------------------------------------------------------- folds
def concept_count(config: Mapping[str, Any], task: str, workdir: Any = ".") -> tuple[int, str] | None:
    """Concepts of a concept task as known before any job, and where they come from.

    ``demo.n_concepts`` for the synthetic demo, else the distinct ``concept`` values of the
    task's ``concepts.tsv`` (None when it does not exist yet, or for other formats).
    """
    dataset = config["dataset"]
    if dataset["format"] == "synthetic":
        return int(config["demo"]["n_concepts"]), "config 'demo.n_concepts'"
    if dataset["format"] in ("synthetic_ieeg", "synthetic_neurons"):
        return None
    root = dataset["tasks"][task].get("stimuli") or config["stimuli"]["root"]
    path = Path(workdir) / root / "concepts.tsv"
    if not path.is_file():
        return None
    import pandas as pd

    table = pd.read_csv(path, sep="\t", keep_default_na=False)
    if "concept" not in table:
        return None  # the feature step names the missing column
    return int(table["concept"].nunique()), f"'{path}'"


def check_cv_counts(config: Mapping[str, Any], source: str, workdir: Any = ".") -> None:
    """Folds against the concepts and runs, and crossnobis against the concept runs.

    Concept tasks: ``encoding.outer_folds`` at most the concepts, ``encoding.inner_folds``
    at most the training concepts of the smallest outer fold's training set. Naturalistic
    tasks of the synthetic demo: at least 2 runs (leave-one-run-out). ``rsa.brain_metric``
    crossnobis: at least 2 concept runs (the synthetic demo's ``dataset.concept_runs``).

    Raises
    ------
    ValueError
        One line naming the key, what was expected, what was found and the fix.
    """
    encoding, dataset = config["encoding"], config["dataset"]
    outer, inner = int(encoding["outer_folds"]), int(encoding["inner_folds"])
    for task, spec in dataset["tasks"].items():
        counted = concept_count(config, task, workdir) if spec["kind"] in ("concepts",
                                                                           "events") else None
        if counted is None:
            continue
        n, where = counted
        if outer > n:
            raise ValueError(
                f"config 'encoding.outer_folds' must be at most the {n} concepts of task "
                f"'{task}' ({where}); got {outer}. Lower it to {n} or less in {source}."
            )
        train = n - -(-n // outer)  # concepts left to train on beside the largest test fold
        if inner > train:
            raise ValueError(
                f"config 'encoding.inner_folds' must be at most the {train} training concepts "
                f"of task '{task}' ({n} concepts in {where}, {outer} outer folds); got {inner}. "
                f"Lower it in {source}."
            )
    if dataset["format"] != "synthetic":
        return  # the runs of a dataset on disk are counted by its reader
    kinds = {spec["kind"] for spec in dataset["tasks"].values()}
    runs = dataset["naturalistic_runs"]
    if "naturalistic" in kinds and len(runs) < 2:
        raise ValueError(
            f"config 'dataset.naturalistic_runs' must list at least 2 runs: the naturalistic "
            f"task is cross-validated leaving one run out; got {runs}. Add a run in {source}."
        )
    runs = dataset["concept_runs"]
    if config["rsa"]["brain_metric"] == "crossnobis" and "concepts" in kinds and len(runs) < 2:
        raise ValueError(
            f"config 'rsa.brain_metric' crossnobis needs at least 2 concept runs (distances "
            f"cross-validated across runs); got 'dataset.concept_runs' {runs}. Add a run, or "
            f"use brain_metric correlation, in {source}."
        )


# ----------------------------------------------------------------------------- runs on disk
def run_counts(reader: Any, config: Mapping[str, Any]) -> dict[tuple[str, str], list[str]]:
    """BOLD files (one per run; left hemisphere on surfaces) of every subject x task, as the
    dataset's reader lists them while the DAG is built; formats whose inputs list no runs
    (pereira, ieeg) are left out."""
    counts = {}
    for subject in config["dataset"]["subjects"]:
        for task in config["dataset"]["tasks"]:
            files = reader.inputs(subject, task)
            runs = files.get("bold", files.get("bold_L"))
            if isinstance(runs, list):
                counts[(subject, task)] = [str(run) for run in runs]
    return counts


def check_run_counts(config: Mapping[str, Any], runs: Mapping[tuple[str, str], list[str]],
                     source: str = "config/config.yaml") -> None:
    """Runs on disk against the CV and crossnobis: a naturalistic task is cross-validated
    leaving one run out, and ``rsa.brain_metric`` crossnobis cross-validates concept
    distances across runs; both need at least 2 runs per subject (:func:`run_counts`).

    Raises
    ------
    ValueError
        One line naming the subject, task, files found, the config key and the fix.
    """
    crossnobis = config["rsa"]["brain_metric"] == "crossnobis"
    for (subject, task), files in runs.items():
        if len(files) >= 2:
            continue
        kind = config["dataset"]["tasks"][task]["kind"]
        names = ", ".join(f"'{f}'" for f in files) or "none"
        found = f"{len(files)} run{'' if len(files) == 1 else 's'} ({names})"
        if kind == "naturalistic":
            raise ValueError(
                f"sub-{subject} task '{task}' has {found}; expected at least 2: the "
                f"naturalistic task is cross-validated leaving one run out. Add a run (with "
                f"'dataset.session_mode' concatenate the runs of all sessions count), or "
                f"remove the task from 'dataset.tasks' in {source}."
            )
        if kind in ("concepts", "events") and crossnobis:
            raise ValueError(
                f"config 'rsa.brain_metric' crossnobis needs at least 2 runs of task '{task}' "
                f"(distances cross-validated across runs); sub-{subject} has {found}. Use "
                f"brain_metric correlation, or add runs, in {source}."
            )
