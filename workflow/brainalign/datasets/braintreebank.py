"""The Brain TreeBank release (Wang et al. 2024, braintreebank.dev): SEEG while watching movies.

Paper 003 (Subramaniam et al. 2024) uses this release. It is not BIDS; ``dataset.root`` is
the folder the release's zips extract to. Layout, as public code reads it (insight-neuro/
neuroprobe ``neuroprobe/braintreebank_subject.py``, ``neuroprobe/config.py``,
``analyses/process_subjects_trials/process_subject_trials.py``; czlwang/BrainBERT
``data/h5_data_reader.py``, ``data/edf2h5.py``; the BaRISTA README's directory tree):

- ``sub_<s>_trial<ttt>.h5`` (neuroprobe: at the root; BaRISTA: under ``all_subject_data/``;
  both are looked for): group ``data`` with one 1-D dataset ``electrode_<i>`` per channel,
  ``i`` = position in the subject's *uncleaned* label list; samples at 2048 Hz (neuroprobe
  ``SAMPLING_RATE``; the file stores no rate). Units are not documented: BrainBERT's
  ``edf2h5.py`` writes MNE's EDF output (volts); they are used as stored.
- ``electrode_labels/sub_<s>/electrode_labels.json``: list of labels in h5 order; labels are
  cleaned by removing ``*`` and ``#``; labels starting with ``DC`` or ``TRIG`` are trigger
  channels, not brain (neuroprobe), and are not read.
- ``corrupted_elec.json``: ``{"sub_<s>": [labels]}``; they become bad channels.
- ``localization/sub_<s>/depth-wm.csv``: columns ``Electrode`` (label, cleaned as above),
  ``L``, ``P``, ``I`` (mm, the subject's own scan, LPI axes: neuroprobe
  ``get_electrode_coordinates_lpi``) and ``DesikanKilliany`` (region). ``xyz`` is
  (L, P, I) as released, ``coord_space`` ``native-LPI``: not a template space (the
  release's ``elec_coords_full.csv`` is a plotting projection and is not read).
- ``subject_metadata/sub_<s>_trial<ttt>_metadata.json``: ``title`` and ``filename`` (the
  movie id, the folder name under ``transcripts/``).
- ``subject_timings/sub_<s>_trial<ttt>_timings.csv``: triggers, ``movie_time`` (s into the
  movie) and ``index`` (sample of the h5 recording). A movie time becomes a sample as
  neuroprobe does it: the first trigger at or after it, plus the difference times 2048.
- ``transcripts/<movie>/features.csv``: one row per word, first column unnamed (the row
  index, ``Unnamed: 0``), ``text``, ``start``, ``end`` (s into the movie), ``sentence``,
  and per-word features (``is_onset``, ``pos``, ``idx_in_sentence``, ``gpt2_surprisal``,
  ``face_num``, ``rms``...). Rows with no ``text`` are dropped (BrainBERT, neuroprobe).

Stimulus tables (run once per movie, before the workflow)::

    from brainalign.datasets.braintreebank import stimulus_tables
    words, frames = stimulus_tables("/data/braintreebank", "3", 0)   # cars-2
    words.to_csv("stimuli/cars2/naturalistic/words.tsv", sep="\\t", index=False)
    frames.to_csv("stimuli/cars2/naturalistic/frames.tsv", sep="\\t", index=False)

One trial is one whole movie: ``run`` is 1. The release has no frame or scene-cut table
(neuroprobe's ``scene_onset`` guesses column names that are not shown to exist), so
``frames`` is empty: for ``scene_events`` write frames.tsv from the movie file yourself (a
shot detector); its onsets are mapped through the same triggers.

Configuration: each task names its movie by ``bids_task`` (else the task name), matched to
the subject's trials by the metadata ``filename`` with non-alphanumerics removed
(``cars2`` for ``cars-2``); ``stimuli`` of the task is that movie's stimuli folder.
Subjects are the release numbers (``"3"`` for ``sub_3``).

Not read: ``elec_coords_full.csv``, ``time-stamp`` / wall-clock columns, the per-word
features of features.csv other than text, times and sentence (the feature side computes
its own), neuroprobe's curated electrode subsets and word filtering (split words such as
"gon" + "na" stay two rows).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .registry import DatasetError, register_reader
from .units import ALIGNMENTS, event_ids

__all__ = [
    "SAMPLING_RATE", "COORD_SPACE", "release_files", "find_trial", "read_channels",
    "read_signals", "movie_to_samples", "stimulus_tables", "read_braintreebank",
    "BrainTreebankReader",
]

logger = logging.getLogger(__name__)

#: Sampling rate of every recording (Hz), as neuroprobe's config states it.
SAMPLING_RATE = 2048.0
#: Space of the depth-wm.csv coordinates (L, P, I in the subject's own scan).
COORD_SPACE = "native-LPI"
_TRIGGER = re.compile(r"^(DC|TRIG)", re.IGNORECASE)
_WORD_COLUMNS = ["run", "onset", "duration", "word", "sentence", "char_start", "char_end"]
_FRAME_COLUMNS = ["run", "onset", "duration", "image", "scene_cut"]


def _clean(label: str) -> str:
    return str(label).replace("*", "").replace("#", "")


def _movie_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _sub(subject: str) -> str:
    if not re.fullmatch(r"[0-9]+", str(subject)):
        raise DatasetError(
            f"config 'dataset.subjects' has '{subject}'; format braintreebank expects the "
            "release's subject numbers ('3' for sub_3). Edit the config."
        )
    return f"sub_{int(subject)}"


def release_files(root: str | Path, subject: str, trial: int) -> dict[str, str]:
    """The release's files of one subject and trial (paths; not checked to exist).

    Returns
    -------
    dict
        ``h5``, ``labels``, ``corrupted``, ``localization``, ``metadata``, ``timings``.
    """
    root, sub = Path(root), _sub(subject)
    name = f"{sub}_trial{int(trial):03d}"
    h5 = root / f"{name}.h5"
    if not h5.exists() and (root / "all_subject_data" / f"{name}.h5").exists():
        h5 = root / "all_subject_data" / f"{name}.h5"
    return {
        "h5": str(h5),
        "labels": str(root / "electrode_labels" / sub / "electrode_labels.json"),
        "corrupted": str(root / "corrupted_elec.json"),
        "localization": str(root / "localization" / sub / "depth-wm.csv"),
        "metadata": str(root / "subject_metadata" / f"{name}_metadata.json"),
        "timings": str(root / "subject_timings" / f"{name}_timings.csv"),
    }


def _read_json(path: str | Path) -> Any:
    if not Path(path).is_file():
        raise DatasetError(
            f"Brain TreeBank file '{path}' does not exist; expected it in the release "
            "layout (see brainalign.datasets.braintreebank). Fix 'dataset.root' or the download."
        )
    return json.loads(Path(path).read_text())


def _movie_of(metadata_path: str | Path) -> str:
    meta = _read_json(metadata_path)
    if "filename" not in meta:
        raise DatasetError(
            f"Brain TreeBank metadata '{metadata_path}' has keys {sorted(meta)}; expected "
            "'filename' (the movie id). Re-extract the release."
        )
    return str(meta["filename"])


def find_trial(root: str | Path, subject: str, movie: str) -> int:
    """The trial in which ``subject`` watched ``movie`` (compared without non-alphanumerics).

    Raises
    ------
    DatasetError
        When no trial (or more than one) of the subject is that movie; lists its movies.
    """
    sub = _sub(subject)
    pattern = re.compile(rf"^{sub}_trial(\d+)_metadata\.json$")
    found = {}
    for path in sorted((Path(root) / "subject_metadata").glob(f"{sub}_trial*_metadata.json")):
        match = pattern.match(path.name)
        if match:
            found[int(match.group(1))] = _movie_of(path)
    trials = [t for t, m in found.items() if _movie_key(m) == _movie_key(movie)]
    if len(trials) != 1:
        raise DatasetError(
            f"{sub} has {len(trials)} trials of movie '{movie}' under "
            f"'{Path(root) / 'subject_metadata'}' (its movies: "
            f"{', '.join(f'{t}: {m}' for t, m in found.items()) or 'none'}); expected one. "
            "Set the task's 'bids_task' to one of them, or drop the subject."
        )
    return trials[0]


def read_channels(files: Mapping[str, str], subject: str) -> pd.DataFrame:
    """The subject's brain channels: h5 key, coordinates, region and corrupted flag.

    Parameters
    ----------
    files : mapping
        ``labels``, ``corrupted`` and ``localization`` of :func:`release_files`.
    subject : str
        Release number ('3').

    Returns
    -------
    DataFrame
        One row per non-trigger channel in h5 order; columns ``name`` (cleaned label),
        ``key`` (``electrode_<i>``), ``x``, ``y``, ``z`` (L, P, I in mm; NaN when not
        localized), ``region`` (DesikanKilliany, '' when unknown), ``corrupted`` (bool).
    """
    labels = [_clean(e) for e in _read_json(files["labels"])]
    corrupted = {_clean(e) for e in _read_json(files["corrupted"]).get(_sub(subject), [])}
    path = files["localization"]
    if not Path(path).is_file():
        raise DatasetError(f"Brain TreeBank file '{path}' does not exist; expected the "
                           "subject's localization table. Fix 'dataset.root' or the download.")
    loc = pd.read_csv(path)
    missing = {"Electrode", "L", "P", "I", "DesikanKilliany"} - set(loc.columns)
    if missing:
        raise DatasetError(
            f"Brain TreeBank file '{path}' lacks columns {sorted(missing)} (has "
            f"{list(loc.columns)}); expected Electrode, L, P, I, DesikanKilliany. Re-extract it."
        )
    loc = loc.assign(Electrode=loc["Electrode"].map(_clean)).drop_duplicates("Electrode")
    loc = loc.set_index("Electrode")
    rows = [(name, f"electrode_{i}") for i, name in enumerate(labels) if not _TRIGGER.match(name)]
    table = pd.DataFrame(rows, columns=["name", "key"])
    coords = loc.reindex(table["name"])
    for axis, column in zip("xyz", "LPI"):
        table[axis] = coords[column].to_numpy(dtype=float)
    table["region"] = coords["DesikanKilliany"].fillna("").astype(str).to_numpy()
    table["corrupted"] = table["name"].isin(corrupted)
    return table


def _channel_group(h5, keys: list[str], path: str | Path):
    """The ``data`` group of an open h5, checked to hold every key (one-line error)."""
    group = h5.get("data")
    absent = [k for k in keys if group is None or k not in group]
    if absent:
        raise DatasetError(
            f"Brain TreeBank recording '{path}' lacks data/{absent[0]} ({len(absent)} "
            "channels of electrode_labels.json missing); expected one dataset per label. "
            "Check the subject's electrode_labels.json matches the recording."
        )
    return group


def read_signals(h5_path: str | Path, keys: list[str], load: bool = True) -> np.ndarray | None:
    """The samples of ``keys`` (``electrode_<i>``) from a trial's h5, as stored.

    Returns
    -------
    data : float64 array of shape (n_channels, n_samples), or None when ``load`` is False
        (the file and keys are only checked).
    """
    import h5py

    if not Path(h5_path).is_file():
        raise DatasetError(f"Brain TreeBank recording '{h5_path}' does not exist; expected "
                           "sub_<s>_trial<ttt>.h5 at the root or in all_subject_data/.")
    with h5py.File(h5_path, "r") as h5:
        group = _channel_group(h5, keys, h5_path)
        lengths = {group[k].shape[0] for k in keys}
        if len(lengths) > 1:
            raise DatasetError(f"Brain TreeBank recording '{h5_path}' has channels of "
                               f"lengths {sorted(lengths)}; expected one length. Re-download it.")
        if not load:
            return None
        data = np.empty((len(keys), lengths.pop() if lengths else 0), dtype=np.float64)
        for row, key in enumerate(keys):
            data[row] = group[key][:]
    return data


def _read_timings(path: str | Path) -> pd.DataFrame:
    if not Path(path).is_file():
        raise DatasetError(f"Brain TreeBank file '{path}' does not exist; expected the "
                           "trial's triggers (subject_timings/). Fix 'dataset.root'.")
    timings = pd.read_csv(path)
    if not {"movie_time", "index"} <= set(timings.columns) or len(timings) < 2:
        raise DatasetError(
            f"Brain TreeBank timings '{path}' has columns {list(timings.columns)} and "
            f"{len(timings)} rows; expected 'movie_time' and 'index' and two or more triggers."
        )
    return timings.sort_values("movie_time").reset_index(drop=True)


def movie_to_samples(
    movie_times: np.ndarray, timings: pd.DataFrame, sfreq: float = SAMPLING_RATE
) -> tuple[np.ndarray, np.ndarray]:
    """Samples of the recording at movie times, through the triggers (neuroprobe's rule).

    Each time takes the first trigger at or after it and adds (time - trigger time) x sfreq.

    Parameters
    ----------
    movie_times : array of shape (n_events,)
        Seconds from the movie start.
    timings : DataFrame
        ``movie_time`` (s) and ``index`` (sample), sorted by ``movie_time``.

    Returns
    -------
    samples : float64 array of shape (n_events,)
        Sample index (rounded); NaN where the time is past the last trigger or before sample 0.
    valid : bool array of shape (n_events,)
    """
    times = np.asarray(movie_times, dtype=float)
    trig_t = timings["movie_time"].to_numpy(dtype=float)
    trig_i = timings["index"].to_numpy(dtype=float)
    after = np.minimum(np.searchsorted(trig_t, times, side="left"), len(trig_t) - 1)
    samples = np.round(trig_i[after] + (times - trig_t[after]) * sfreq)
    valid = (times < trig_t[-1]) & (samples >= 0) & np.isfinite(times)
    return np.where(valid, samples, np.nan), valid


def _char_spans(words: list[str], sentences: list[str]) -> tuple[list[int], list[int]]:
    """Character span of each word in its sentence, searched after the previous word's."""
    starts, ends, previous, cursor = [], [], None, 0
    for word, sentence in zip(words, sentences):
        cursor = cursor if sentence == previous else 0
        start = sentence.find(word, cursor)
        end = start + len(word) if start >= 0 else -1
        starts.append(start)
        ends.append(end)
        cursor = max(cursor, end)
        previous = sentence
    return starts, ends


def stimulus_tables(
    release_root: str | Path, subject: str, trial: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """words.tsv and frames.tsv of the movie of one subject's trial (see the module docstring).

    Parameters
    ----------
    release_root : path
        The extracted release (``subject_metadata/``, ``transcripts/``...).
    subject : str
        Release number ('3').
    trial : int
        Trial number (0 for ``trial000``).

    Returns
    -------
    words : DataFrame
        ``run`` (1), ``onset`` (s into the movie), ``duration``, ``word``, ``sentence``,
        ``char_start``, ``char_end`` (span of the word in its sentence; -1 when not found);
        one row per features.csv row with text, in file order.
    frames : DataFrame
        Columns ``run``, ``onset``, ``duration``, ``image``, ``scene_cut``, no rows: the
        release has no frame or scene-cut table.
    """
    files = release_files(release_root, subject, trial)
    movie = _movie_of(files["metadata"])
    path = Path(release_root) / "transcripts" / movie / "features.csv"
    if not path.is_file():
        raise DatasetError(f"Brain TreeBank transcript '{path}' does not exist; expected "
                           f"the word table of movie '{movie}'. Fix the release root.")
    table = pd.read_csv(path)
    n_rows = len(table)
    missing = {"text", "start", "end", "sentence"} - set(table.columns)
    if missing:
        raise DatasetError(f"Brain TreeBank transcript '{path}' lacks columns "
                           f"{sorted(missing)}; expected text, start, end, sentence.")
    table = table[table["text"].notna() & table["start"].notna() & table["end"].notna()]
    word = table["text"].astype(str).tolist()
    sentence = table["sentence"].fillna("").astype(str).tolist()
    start, end = _char_spans(word, sentence)
    words = pd.DataFrame({
        "run": 1, "onset": table["start"].to_numpy(float),
        "duration": (table["end"] - table["start"]).to_numpy(float), "word": word,
        "sentence": sentence, "char_start": start, "char_end": end,
    }, columns=_WORD_COLUMNS)
    logger.info("sub_%s trial %03d (%s): %d words (%d rows without text dropped; %d not "
                "found in their sentence); no scene cuts in the release",
                subject, int(trial), movie, len(words), n_rows - len(words),
                sum(s < 0 for s in start))
    return words, pd.DataFrame(columns=_FRAME_COLUMNS)


def _events(table_path: str | Path, alignment: str) -> tuple[list[str], np.ndarray]:
    """Event ids and movie onsets (s) of run 1 of words.tsv (language) or frames.tsv cuts."""
    from .. import io

    if not Path(table_path).is_file():
        raise DatasetError(f"stimuli file '{table_path}' does not exist; write it with "
                           "brainalign.datasets.braintreebank.stimulus_tables (see its docstring).")
    table = io.read_table(table_path)
    needed = {"run", "onset"} | ({"scene_cut"} if alignment == "vision" else set())
    if not needed <= set(table.columns):
        raise DatasetError(f"stimuli file '{table_path}' has columns {list(table.columns)}; "
                           f"expected {sorted(needed)}. Rewrite it with stimulus_tables.")
    rows = table["run"].astype(int) == 1
    if alignment == "vision":
        rows &= table["scene_cut"].astype(int) == 1
    ids = event_ids(alignment, np.flatnonzero(rows.to_numpy()))
    return ids, table.loc[rows, "onset"].to_numpy(dtype=float)


def _channel_geometry(names: list[str], table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """xyz and region of channels after re-referencing; a bipolar ``A-B`` at the midpoint.

    A bipolar channel's region is its contacts' region when they share it, else ''.
    """
    known = table.set_index("name")
    xyz, regions = np.full((len(names), 3), np.nan), []
    for k, name in enumerate(names):
        contacts = [name] if name in known.index else name.split("-")
        rows = known.reindex(contacts)
        xyz[k] = rows[["x", "y", "z"]].to_numpy(float).mean(axis=0)
        found = set(rows["region"].fillna(""))
        regions.append(found.pop() if len(found) == 1 else "")
    return xyz, regions


def _raw(files: Mapping[str, str], subject: str):
    """An ``mne.io.RawArray`` of the subject's SEEG channels (corrupted ones marked bad)."""
    import mne

    table = read_channels(files, subject)
    data = read_signals(files["h5"], table["key"].tolist())
    info = mne.create_info(table["name"].tolist(), SAMPLING_RATE, ch_types="seeg")
    raw = mne.io.RawArray(data, info, verbose=False)
    raw.info["bads"] = table.loc[table["corrupted"], "name"].tolist()
    raw.info["line_freq"] = 60.0  # US recordings: BrainBERT notches 60 Hz and harmonics
    return raw, table


def _keep_inside(ids, samples, valid, duration, window, where):
    """Events whose mapped time and window lie inside the recording; the rest counted."""
    times = samples / SAMPLING_RATE
    inside = valid & (times + window[0] >= 0) & (times + window[1] <= duration)
    dropped = [ids[k] for k in np.flatnonzero(~inside)]
    if dropped:
        logger.warning("%s: %d of %d events left out (past the last trigger or window outside "
                       "the recording), e.g. %s", where, len(dropped), len(ids), dropped[:5])
    if not inside.any():
        raise DatasetError(f"{where}: none of {len(ids)} events falls inside the recording; "
                           "expected the stimuli folder of the movie of this trial. Check "
                           "the task's 'stimuli' and 'bids_task'.")
    return [ids[k] for k in np.flatnonzero(inside)], times[inside], dropped


def read_braintreebank(
    files: Mapping[str, str], events_path: str, *, subject: str, task: str, alignment: str,
    rois: list[str], settings: Mapping[str, Any],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One subject x trial as kind ``epochs`` / geometry ``electrodes`` (units.py).

    Parameters
    ----------
    files : mapping
        :func:`release_files` of the trial.
    events_path : str
        words.tsv (``alignment`` 'language') or frames.tsv ('vision') of the movie.
    subject, task : str
    alignment : {'language', 'vision'}
    rois : list of str
        Regions (DesikanKilliany without non-alphanumerics, e.g. ``ctxlhsuperiortemporal``).
    settings : mapping
        ``preprocess.ieeg`` (:func:`brainalign.ieeg._checks.ieeg_settings`).

    Returns
    -------
    arrays, meta
        ``responses`` float32 (n_events, n_channels x n_bins), ``group``, ``channel``,
        ``bin``, ``xyz``, ``roi``; ``meta`` as units.py describes, ``qc`` included.
    """
    from ..ieeg.epochs import cv_blocks, epoch_bins, epochs_arrays, time_bins
    from ..ieeg.preprocess import preprocess_raw

    where = Path(files["h5"]).name
    ids, onsets = _events(events_path, alignment)
    samples, valid = movie_to_samples(onsets, _read_timings(files["timings"]))
    raw, table = _raw(files, subject)
    duration = raw.n_times / SAMPLING_RATE
    window = [float(v) for v in settings["window"]]
    ids, times, dropped = _keep_inside(ids, samples, valid, duration, window, where)
    raw, qc = preprocess_raw(raw, settings, where)
    xyz, regions = _channel_geometry(list(raw.ch_names), table)
    regions = [re.sub(r"[^A-Za-z0-9]", "", r) for r in regions]  # as ROI names are
    responses = epoch_bins(raw.get_data(), raw.info["sfreq"], times, window,
                           float(settings["bin"]), where)
    arrays, meta = epochs_arrays(responses, raw.ch_names, xyz, regions, rois,
                                 time_bins(window, float(settings["bin"])), COORD_SPACE)
    arrays["group"] = cv_blocks(len(ids), int(settings["n_blocks"]))
    qc.update(n_events={"1": len(ids)}, events_dropped=dropped, signal_units="as stored",
              sfreq_release=SAMPLING_RATE, corrupted=table.loc[table["corrupted"], "name"].tolist())
    meta.update(subject=subject, task=task, events=ids, event_times=times.tolist(),
                alignment=alignment, source=str(files["h5"]), qc=qc)
    logger.info("sub_%s task %s: %d %s events x %d units", subject, task, len(ids),
                alignment, arrays["responses"].shape[1])
    return arrays, meta




@register_reader("braintreebank")
class BrainTreebankReader:
    """``dataset.format: braintreebank``: each task is one movie (see the module docstring).

    Tasks are of kind ``word_events`` (events: the rows of the movie's words.tsv) or
    ``scene_events`` (the scene cuts of its frames.tsv); the movie is the task's
    ``bids_task``, else its name; its stimuli folder the task's ``stimuli``, else stimuli.root.
    """

    def __init__(
        self,
        dataset: Mapping[str, Any],
        stimuli_root: str,
        source: str = "config/config.yaml",
        preprocess: Mapping[str, Any] | None = None,
    ) -> None:
        self.dataset, self.stimuli_root, self.source = dataset, str(stimuli_root), source
        self.preprocess_section = dict(preprocess or {})
        tasks = dataset["tasks"]
        self.tasks = dict(tasks) if isinstance(tasks, Mapping) else {t: {"kind": t} for t in tasks}

    def _spec(self, task: str) -> tuple[str, str]:
        """(movie, alignment) of a task; checked."""
        spec = self.tasks.get(task)
        if spec is None or spec.get("kind") not in ALIGNMENTS:
            raise DatasetError(
                f"config 'dataset.tasks.{task}' is {spec!r}; format braintreebank expects "
                f"kind word_events or scene_events. Edit {self.source}."
            )
        return str(spec.get("bids_task") or task), ALIGNMENTS[spec["kind"]]

    def _events_path(self, task: str) -> str:
        folder = self.tasks[task].get("stimuli") or self.stimuli_root
        name = "words.tsv" if self._spec(task)[1] == "language" else "frames.tsv"
        return str(Path(folder) / "naturalistic" / name)

    def inputs(self, subject: str, task: str) -> dict[str, str | list[str]]:
        """The trial's release files (:func:`release_files`) and ``events`` (the stimuli table)."""
        movie, _ = self._spec(task)
        trial = find_trial(self.dataset["root"], subject, movie)
        return {**release_files(self.dataset["root"], subject, trial),
                "events": self._events_path(task)}

    def check(self) -> None:
        """Every subject x task: its trial, files, h5 channels and stimuli table (no samples read)."""
        for task in self.tasks:
            for subject in self.dataset["subjects"]:
                files = self.inputs(subject, task)
                for name in ("labels", "corrupted", "localization", "metadata", "timings", "events"):
                    if not Path(files[name]).is_file():
                        raise DatasetError(
                            f"sub_{subject} task {task}: file '{files[name]}' does not exist; "
                            "expected the release layout (module brainalign.datasets."
                            f"braintreebank) and the movie's stimuli tables. Fix {self.source}."
                        )
                _events(files["events"], self._spec(task)[1])
                _read_timings(files["timings"])
                read_signals(files["h5"], read_channels(files, subject)["key"].tolist(), load=False)

    def preprocess(
        self,
        inputs: Mapping[str, Any],
        subject: str,
        task: str,
        params: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read one subject x task with :func:`read_braintreebank`.

        ``params`` is the ``preprocess`` section (its ``ieeg`` part is used).
        """
        from ..ieeg._checks import ieeg_settings

        settings = ieeg_settings(params or self.preprocess_section, self.source)
        files = {k: str(v) for k, v in inputs.items()}
        return read_braintreebank(
            files, files["events"], subject=subject, task=task,
            alignment=self._spec(task)[1], rois=list(self.dataset["rois"]), settings=settings,
        )
