"""BIDS ``events.tsv`` of event-related runs: read and checked before any job runs.

No nilearn import here, so the workflow checks every events file while Snakemake builds
the DAG; :mod:`brainalign.datasets.betas` estimates the single-trial betas.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign.datasets.registry import DatasetError

__all__ = ["read_events", "check_events"]


def read_events(
    path: str | Path, *, stimulus_column: str = "concept", trial_types: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read a BIDS ``events.tsv`` (``n/a`` is missing; no other text is) and check it.

    Returns
    -------
    pandas.DataFrame
        The table of :func:`check_events`.
    """
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=["n/a"])
    return check_events(table, path, stimulus_column=stimulus_column, trial_types=trial_types)


def check_events(
    table: pd.DataFrame,
    path: str | Path,
    *,
    stimulus_column: str = "concept",
    trial_types: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Check an events table at the boundary and return it cleaned.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per event, as read from ``events.tsv``.
    path : str or Path
        The file, quoted in messages.
    stimulus_column : str
        Column naming the stimulus of each trial (``preprocess.betas.stimulus_column``).
    trial_types : list of str or None
        ``trial_type`` values that are stimulus trials; None: every row is one.

    Returns
    -------
    pandas.DataFrame
        A copy sorted by onset (ties keep file order), index 0..n_events-1, with float
        ``onset`` and ``duration``, string ``trial_type`` (``'stimulus'`` when the file has
        none) and the stimulus column as strings; other columns are kept.

    Raises
    ------
    DatasetError
        One line naming the file, the column and row, and the fix.
    """
    got = list(map(str, table.columns))
    fixes = {
        "onset": "add it (seconds from the first volume), as BIDS events files have",
        "duration": "add it (seconds; 0 for an impulse), as BIDS events files have",
        stimulus_column: "add it, or set preprocess.betas.stimulus_column to the column "
        "naming each trial's stimulus",
    }
    for column, fix in fixes.items():
        if column not in table.columns:
            article = "an" if column[:1].lower() in "aeiou" else "a"
            raise DatasetError(
                f"events '{path}' must have {article} '{column}' column; got columns {got}; {fix}."
            )
    events = table.reset_index(drop=True)  # a copy; data row n is index n - 1
    for column in ("onset", "duration"):
        events[column] = _seconds(events[column], column, path)
    events["trial_type"] = _trial_types(events, path, trial_types)
    trials = _stimulus_rows(events, path, trial_types)
    stimuli = events.loc[trials, stimulus_column]
    empty = stimuli.isna() | (stimuli.astype(str).str.strip() == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise DatasetError(
            f"events '{path}' column '{stimulus_column}' is empty in data row "
            f"{stimuli.index[row] + 1}, a stimulus trial (trial_type "
            f"'{events.loc[stimuli.index[row], 'trial_type']}'); name its stimulus, or list "
            "only stimulus trial types in preprocess.betas.trial_types."
        )
    stimulus = events[stimulus_column]
    events[stimulus_column] = stimulus.astype(object).where(stimulus.isna(), stimulus.astype(str))
    return events.sort_values("onset", kind="stable").reset_index(drop=True)


def _seconds(values: pd.Series, column: str, path: str | Path) -> pd.Series:
    """``values`` as float seconds >= 0, or a DatasetError naming the first bad row."""
    seconds = pd.to_numeric(values, errors="coerce").astype(float)
    bad = ~np.isfinite(seconds.to_numpy()) | (seconds.to_numpy() < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = values.iloc[row]
        value = value.item() if isinstance(value, np.generic) else value
        raise DatasetError(
            f"events '{path}' column '{column}' must hold numbers of seconds >= 0; got "
            f"{value!r} in data row {row + 1}; fix the file."
        )
    return seconds


def _trial_types(events: pd.DataFrame, path: str | Path, trial_types) -> pd.Series:
    """The ``trial_type`` column as strings (``'stimulus'`` when the file has none)."""
    if "trial_type" in events.columns:
        return events["trial_type"].fillna("n/a").astype(str)
    if trial_types is not None:
        raise DatasetError(
            f"events '{path}' has no 'trial_type' column, but preprocess.betas.trial_types is "
            f"{list(trial_types)}; add the column or set trial_types: null."
        )
    return pd.Series("stimulus", index=events.index)


def _stimulus_rows(events: pd.DataFrame, path: str | Path, trial_types) -> pd.Series:
    """Boolean mask of the stimulus trials; a DatasetError when there is none."""
    rows = _is_trial(events, trial_types)
    if not rows.any():
        which = "it has no rows" if events.empty else (
            f"preprocess.betas.trial_types {list(trial_types)} matches none of its trial_type "
            f"values {sorted(events['trial_type'].unique())}"
        )
        raise DatasetError(
            f"events '{path}' has no stimulus trial: {which}; fix preprocess.betas.trial_types "
            "or the file."
        )
    return rows


def _is_trial(events: pd.DataFrame, trial_types) -> pd.Series:
    """Boolean mask of the rows whose ``trial_type`` is a stimulus type (all when None)."""
    if trial_types is None:
        return pd.Series(True, index=events.index)
    return events["trial_type"].isin(list(trial_types))
