"""Config-time checks of the stimulus tables: character spans must select their word.

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
from typing import Any

__all__ = ["check_spans", "span_misses"]


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
