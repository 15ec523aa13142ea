"""The ``ieeg`` reader: BIDS-iEEG recordings (SEEG / ECoG) watched movies, as event-locked
responses (kind ``epochs``, geometry ``electrodes`` of :mod:`brainalign.datasets.units`).

Files, per subject (``dataset.root``/sub-<s>[/ses-<x>]/ieeg/): recordings
``sub-<s>[_ses-<x>]_task-<t>[_acq-<a>][_run-<r>][_space-<S>]_ieeg.{edf,vhdr}`` read with
``mne_bids.read_raw_bids`` (channel types and bads from ``_channels.tsv``, the line
frequency from ``_ieeg.json``), their ``_events.tsv`` (rows with trial_type ``movie``, or
MNE's ``movie/<run>``, and ``value`` = the stimulus run that starts at ``onset`` s),
and the subject's ``_electrodes.tsv`` / ``_coordsystem.json`` (x, y, z and their space;
a region column ``dataset.region_column``). ``.nwb`` is refused with how to convert it
(mne-bids has no NWB reader). The recordings of one subject x task are taken in (session,
run) order and concatenated.

Events (task kind ``word_events``: the rows of ``<stimuli>/naturalistic/words.tsv``, ids
``word-{row:05d}``; ``scene_events``: the ``scene_cut == 1`` rows of ``frames.tsv``, ids
``cut-{row:05d}``) are placed in a recording at movie onset + stimulus onset; stimulus runs
that no recording plays are left out (logged, counted in ``qc``). Each recording is
preprocessed on its own (:func:`brainalign.ieeg.preprocess.preprocess_raw`) and binned
(:func:`brainalign.ieeg.epochs.epoch_bins`); channels missing from a run are dropped from
all. ``meta['event_times']`` are seconds from the start of the first recording, the runs
laid end to end (each run's offset is the summed durations of the runs before it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .registry import DatasetError, register_reader
from .units import ALIGNMENTS, event_ids
from .units import check_units

__all__ = ["IeegReader", "find_recordings", "movie_rows", "stimulus_events"]

logger = logging.getLogger(__name__)

_EXTENSIONS = (".edf", ".vhdr", ".nwb")
_TABLES = {"language": ("words.tsv", ("run", "onset", "word")),
           "vision": ("frames.tsv", ("run", "onset", "scene_cut"))}


def _entities(name: str) -> dict[str, str]:
    stem = name.split(".")[0]
    return dict(part.split("-", 1) for part in stem.split("_") if "-" in part)


def find_recordings(root: str, subject: str, task: str, sessions=None) -> list[str]:
    """The subject's recordings of a BIDS task, in (session, run) order.

    Returns
    -------
    paths : list of str
        ``*_ieeg.edf``, ``*_ieeg.vhdr`` or ``*_ieeg.nwb`` files.
    """
    base = Path(root) / f"sub-{subject}"
    found = [p for p in [*base.glob("ieeg/*_ieeg.*"), *base.glob("ses-*/ieeg/*_ieeg.*")]
             if p.suffix in _EXTENSIONS and _entities(p.name).get("task") == task]
    if sessions:
        found = [p for p in found if _entities(p.name).get("ses") in set(map(str, sessions))]

    def order(path: Path):
        ents = _entities(path.name)
        run = ents.get("run", "0")
        return (ents.get("ses", ""), int(run) if run.isdigit() else 0, path.name)

    return [str(p) for p in sorted(found, key=order)]


def _sidecar(recording: str, suffix: str) -> str:
    return re.sub(r"_ieeg\.[a-z]+$", suffix, recording)


def _electrodes_for(recording: str, space: str | None) -> str:
    path = Path(recording)
    ents = _entities(path.name)
    candidates = []
    for f in sorted(path.parent.glob("*_electrodes.tsv")):
        e = _entities(f.name)
        if e.get("sub") == ents.get("sub") and all(
                e.get(k) in (None, ents.get(k)) for k in ("ses", "acq")):
            candidates.append((e.get("space") not in (space, ents.get("space")), str(f)))
    if not candidates:
        raise DatasetError(
            f"recording '{recording}' has no _electrodes.tsv in {path.parent}; expected "
            f"sub-{ents.get('sub')}[_ses-*][_space-*]_electrodes.tsv with name, x, y, z. Write "
            "it (mne_bids.write_raw_bids with a montage on the raw)."
        )
    return sorted(candidates)[0][1]


def _read_tsv(path: str):
    import pandas as pd

    if not Path(path).is_file():
        raise DatasetError(f"file '{path}' does not exist; expected it beside its recording "
                           "(BIDS-iEEG). Write it, or fix 'dataset.root'.")
    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)


def movie_rows(events_file: str) -> list[tuple[int, float]]:
    """(stimulus run, onset in s) of the ``movie`` rows of a BIDS ``_events.tsv``."""
    table = _read_tsv(events_file)
    for column in ("onset", "trial_type", "value"):
        if column not in table.columns:
            raise DatasetError(
                f"events '{events_file}' lacks column '{column}'; expected onset, trial_type and "
                "value (rows trial_type movie, value = stimulus run). Fix the events file."
            )
    kind = table["trial_type"].astype(str)
    rows = table[(kind == "movie") | kind.str.startswith("movie/")]
    if rows.empty:
        raise DatasetError(
            f"events '{events_file}' column 'trial_type' has no 'movie' row (found "
            f"{sorted(set(kind))[:5]}); expected one per movie segment played, value = its run "
            "in the stimuli tables. Add the rows."
        )
    return [(int(v), float(o)) for v, o in zip(rows["value"], rows["onset"])]


def stimulus_events(table_file: str, alignment: str):
    """Events of the stimuli table: ``id``, ``run``, ``onset`` (s in the movie segment).

    ``language``: every row of words.tsv (``word-{row:05d}``); ``vision``: the rows of
    frames.tsv with ``scene_cut == 1`` (``cut-{row:05d}``), row = 0-based row of the table.
    """
    name, columns = _TABLES[alignment]
    table = _read_tsv(table_file)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DatasetError(
            f"stimuli table '{table_file}' lacks columns {missing}; expected {list(columns)} "
            f"({name} of the naturalistic stimuli). Fix 'stimuli.root' or the table."
        )
    rows = np.arange(len(table))
    if alignment == "vision":
        keep = table["scene_cut"].astype(int).to_numpy() == 1
        table, rows = table[keep], rows[keep]
    return table.assign(id=event_ids(alignment, rows))[["id", "run", "onset"]]


def _recording_events(events_file: str, stimuli, table_file: str):
    """Ids and recording times of the events one recording plays, in time order."""
    ids, times = [], []
    known = set(stimuli["run"].astype(int))
    for run, onset in movie_rows(events_file):
        if run not in known:
            raise DatasetError(
                f"events '{events_file}' column 'value' names movie segment {run}, which "
                f"'{table_file}' column 'run' lacks (runs {sorted(known)}); expected a "
                "stimulus run. Fix the events or the stimuli table."
            )
        segment = stimuli[stimuli["run"].astype(int) == run]
        ids += segment["id"].tolist()
        times += (onset + segment["onset"].astype(float)).tolist()
    order = np.argsort(times, kind="stable")
    return [ids[k] for k in order], np.asarray(times, dtype=float)[order]


def _check_nwb(recording: str) -> None:
    if recording.endswith(".nwb"):
        raise DatasetError(
            f"recording '{recording}' is NWB, which mne-bids {_mne_bids_version()} cannot read; "
            "expected .edf or .vhdr. Convert it: read it (e.g. pynwb) into an mne.io.RawArray "
            "and write it with mne_bids.write_raw_bids(raw, bids_path, format='EDF')."
        )


def _mne_bids_version() -> str:
    try:
        from importlib.metadata import version

        return version("mne-bids")
    except Exception:  # noqa: BLE001 - only for the message
        return "(installed)"


def _channel_types(channels_file: str) -> dict[str, str]:
    table = _read_tsv(channels_file)
    for column in ("name", "type"):
        if column not in table.columns:
            raise DatasetError(
                f"channels '{channels_file}' lacks column '{column}'; expected name, type, "
                "units[, status] (BIDS-iEEG). Fix the file."
            )
    types = table["type"].astype(str)
    if "status" in table.columns:  # bad channels need no coordinates: typed 'bad' here
        types = types.where(table["status"].astype(str) != "bad", "bad")
    return dict(zip(table["name"].astype(str), types))


def _check_recording(recording: str, files: Mapping[str, str], settings, table_file, stimuli):
    from ..ieeg._checks import check_band, check_electrodes, check_window
    from ..ieeg.regions import read_electrodes

    _check_nwb(recording)
    sidecar = json.loads(Path(files["sidecar"]).read_text()) if Path(files["sidecar"]).is_file() else {}
    sfreq = sidecar.get("SamplingFrequency")
    if sfreq:
        check_band(settings.get("band"), float(sfreq), recording)
    electrodes, _ = read_electrodes(files["electrodes"], files["coordsystem"])
    check_electrodes(_channel_types(files["channels"]), list(electrodes.index),
                     files["channels"], files["electrodes"])
    ids, times = _recording_events(files["events"], stimuli, table_file)
    if sidecar.get("RecordingDuration"):
        check_window(times, settings["window"], float(sidecar["RecordingDuration"]),
                     f"events '{files['events']}' of recording '{recording}'", ids)
    return electrodes


def _join_runs(runs: list[dict]) -> tuple[list[str], np.ndarray]:
    """Channels present in every run (first run's order) and the concatenated responses."""
    common = [c for c in runs[0]["channels"] if all(c in r["channels"] for r in runs)]
    for r in runs:
        lost = [c for c in r["channels"] if c not in common]
        if lost:
            logger.warning("%s: channels %s are missing from another run; dropped", r["where"], lost)
    parts = [r["responses"][:, [r["channels"].index(c) for c in common]] for r in runs]
    return common, np.concatenate(parts, axis=0)


@register_reader("ieeg")
class IeegReader:
    """``dataset.format: ieeg``: BIDS-iEEG movie recordings (see the module docstring).

    Dataset keys: ``root``, ``subjects``, ``tasks`` (kind ``word_events`` or
    ``scene_events``; ``bids_task`` the BIDS task entity, default the name; ``stimuli`` a
    stimuli folder, default ``stimuli.root``), optional ``sessions``, ``space`` (which
    ``_electrodes.tsv`` to prefer), ``region_column`` (a column of ``_electrodes.tsv``),
    ``atlas`` (a NIfTI label atlas with its ``.tsv``, used without ``region_column``) and
    ``rois`` (regions that become ROIs). Settings: ``preprocess.ieeg``.
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

    def _alignment(self, task: str) -> str:
        spec = self.tasks.get(task)
        if spec is None or spec.get("kind") not in ALIGNMENTS:
            raise DatasetError(
                f"config 'dataset.tasks.{task}' is {spec!r}; format ieeg expects kind "
                f"word_events or scene_events. Edit {self.source}."
            )
        return ALIGNMENTS[spec["kind"]]

    def _table(self, task: str) -> str:
        folder = self.tasks[task].get("stimuli") or self.stimuli_root
        return str(Path(folder) / "naturalistic" / _TABLES[self._alignment(task)][0])

    def inputs(self, subject: str, task: str) -> dict[str, str | list[str]]:
        """Files of one subject x task: ``recordings`` (+ BrainVision ``data``), per
        recording ``sidecar``, ``channels``, ``events``, ``electrodes``, ``coordsystem``
        (lists in recording order), ``stimuli`` (words.tsv or frames.tsv), ``atlas``."""
        bids_task = str(self.tasks[task].get("bids_task") or task) if task in self.tasks else task
        self._alignment(task)
        recordings = find_recordings(self.dataset["root"], subject, bids_task,
                                     self.dataset.get("sessions"))
        if not recordings:
            raise DatasetError(
                f"sub-{subject} has no recording of task '{bids_task}' under "
                f"{self.dataset['root']}: expected sub-{subject}[/ses-*]/ieeg/sub-{subject}"
                f"[_ses-*]_task-{bids_task}[_run-*]_ieeg.edf (or .vhdr). Fix 'dataset.root', "
                f"'dataset.subjects' or the task's 'bids_task' in {self.source}."
            )
        electrodes = [_electrodes_for(r, self.dataset.get("space")) for r in recordings]
        files: dict[str, Any] = {
            "recordings": recordings,
            "data": [re.sub(r"\.vhdr$", s, r) for r in recordings if r.endswith(".vhdr")
                     for s in (".eeg", ".vmrk")],
            "sidecar": [_sidecar(r, "_ieeg.json") for r in recordings],
            "channels": [_sidecar(r, "_channels.tsv") for r in recordings],
            "events": [_sidecar(r, "_events.tsv") for r in recordings],
            "electrodes": electrodes,
            "coordsystem": [e.replace("_electrodes.tsv", "_coordsystem.json") for e in electrodes],
            "stimuli": self._table(task),
        }
        if not files["data"]:
            del files["data"]
        if self.dataset.get("atlas_image") and not self.dataset.get("region_column"):
            files["atlas"] = str(self.dataset["atlas_image"])
        return files

    def check(self) -> None:
        """Every subject x task before any job: settings, sidecars, channels vs electrodes,
        region column, events vs the stimuli table and the recording's duration, sampling
        rate vs band. No signal is read."""
        from ..ieeg._checks import ieeg_settings

        settings = ieeg_settings(self.preprocess_section, self.source)
        atlas = self.dataset.get("atlas_image")
        if atlas and not self.dataset.get("region_column") and not Path(atlas).is_file():
            raise DatasetError(
                f"config 'dataset.atlas_image' is '{atlas}', which does not exist; expected a NIfTI "
                f"label atlas (with its .tsv beside it). Fix it in {self.source}."
            )
        for task in self.tasks:
            table_file = self._table(task)
            stimuli = stimulus_events(table_file, self._alignment(task))
            for subject in self.dataset["subjects"]:
                files = self.inputs(subject, task)
                _check_unique([i for e in files["events"] for i in
                               _recording_events(e, stimuli, table_file)[0]], files["events"])
                for k, recording in enumerate(files["recordings"]):
                    per = {key: files[key][k] for key in
                           ("sidecar", "channels", "events", "electrodes", "coordsystem")}
                    electrodes = _check_recording(recording, per, settings, table_file, stimuli)
                    column = self.dataset.get("region_column")
                    if column and column not in electrodes.columns:
                        raise DatasetError(
                            f"electrodes '{per['electrodes']}' has no column '{column}' (config "
                            f"'dataset.region_column'); found {list(electrodes.columns)}. Fix "
                            f"{self.source}."
                        )

    def _run(self, files: Mapping[str, Any], k: int, stimuli, settings) -> dict:
        import mne_bids

        from ..ieeg._checks import check_electrodes
        from ..ieeg.epochs import epoch_bins
        from ..ieeg.preprocess import preprocess_raw
        from ..ieeg.regions import read_electrodes

        recording = str(files["recordings"][k])
        _check_nwb(recording)
        electrodes, space = read_electrodes(str(files["electrodes"][k]), str(files["coordsystem"][k]))
        check_electrodes(_channel_types(str(files["channels"][k])), list(electrodes.index),
                         str(files["channels"][k]), str(files["electrodes"][k]))
        raw = mne_bids.read_raw_bids(mne_bids.get_bids_path_from_fname(recording),
                                     verbose="error")  # no fiducials in a template space
        duration = raw.n_times / raw.info["sfreq"]
        raw, qc = preprocess_raw(raw, settings, recording)
        ids, times = _recording_events(str(files["events"][k]), stimuli, str(files["stimuli"]))
        responses = epoch_bins(raw.get_data(), raw.info["sfreq"], times, settings["window"],
                               float(settings["bin"]),
                               f"events '{files['events'][k]}' of recording '{recording}'")
        ents = _entities(Path(recording).name)
        qc.update(file=recording, n_events=len(ids), duration=duration,
                  run="_".join(f"{k}-{ents[k]}" for k in ("ses", "run") if k in ents) or str(k + 1))
        return {"where": recording, "channels": list(raw.ch_names), "responses": responses,
                "ids": ids, "times": times, "duration": duration, "qc": qc,
                "electrodes": electrodes, "space": space}

    def preprocess(
        self,
        inputs: Mapping[str, Any],
        subject: str,
        task: str,
        params: Mapping[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One subject x task as kind ``epochs`` / geometry ``electrodes``.

        ``params`` is the ``preprocess`` section (its ``ieeg`` part is used).
        """
        from ..ieeg._checks import ieeg_settings
        from ..ieeg.epochs import cv_blocks, epochs_arrays, time_bins
        from ..ieeg.regions import channel_regions, channel_xyz

        settings = ieeg_settings(params or self.preprocess_section, self.source)
        alignment = self._alignment(task)
        stimuli = stimulus_events(str(inputs["stimuli"]), alignment)
        runs = [self._run(inputs, k, stimuli, settings) for k in range(len(inputs["recordings"]))]
        channels, responses = _join_runs(runs)
        offsets = np.cumsum([0.0] + [r["duration"] for r in runs[:-1]])
        times = np.concatenate([r["times"] + off for r, off in zip(runs, offsets)])
        ids = [i for r in runs for i in r["ids"]]
        _check_unique(ids, [str(e) for e in inputs["events"]])
        electrodes = runs[0]["electrodes"]
        xyz = channel_xyz(channels, {n: electrodes.loc[n, ["x", "y", "z"]].to_numpy(float)
                                     for n in electrodes.index})
        regions = channel_regions(channels, electrodes, self.dataset.get("region_column"),
                                  inputs.get("atlas"), str(inputs["electrodes"][0]))
        window = [float(v) for v in settings["window"]]
        arrays, meta = epochs_arrays(responses, channels, xyz, regions, list(self.dataset["rois"]),
                                     time_bins(window, float(settings["bin"])), runs[0]["space"])
        arrays["group"] = cv_blocks(len(ids), int(settings["n_blocks"]))
        dropped = int(len(set(stimuli["id"]) - set(ids)))
        if dropped:
            logger.info("sub-%s task %s: %d %s events are in no recording (their movie segment "
                        "was not played)", subject, task, dropped, alignment)
        qc = {"runs": [{**r["qc"], "offset": float(off)} for r, off in zip(runs, offsets)],
              "n_events": {r["qc"]["run"]: r["qc"]["n_events"] for r in runs},
              "events_dropped": dropped, "flagged_units": _flag_units(arrays, runs, channels),
              "settings": {k: settings[k] for k in sorted(settings)}}
        meta.update(subject=subject, task=task, events=ids, event_times=times.tolist(),
                    alignment=alignment, qc=qc, source=[r["where"] for r in runs])
        logger.info("sub-%s task %s: %d %s events x %d channels x %d bins", subject, task,
                    len(ids), alignment, len(channels), len(meta["bins"]))
        check_units(arrays, meta, f"sub-{subject} task {task}")
        return arrays, meta


def _check_unique(ids: list[str], events_files: list[str]) -> None:
    seen: set[str] = set()
    repeated = [i for i in ids if i in seen or seen.add(i)]
    if repeated:
        raise DatasetError(
            f"events {events_files} play a movie segment twice ({len(repeated)} repeated "
            f"events, e.g. {repeated[0]}); expected each stimulus run once per subject x task "
            "(column 'value' of the movie rows). Keep one recording of it (dataset.sessions)."
        )


def _flag_units(arrays: dict, runs: list[dict], channels: list[str]) -> list[int]:
    """Units of channels constant in a run, or with non-finite responses (set to 0)."""
    n_bins = int(arrays["bin"].max()) + 1
    constant = {c for r in runs for c in r["qc"].get("constant_channels", [])}
    flagged = {channels.index(c) * n_bins + b for c in constant if c in channels
               for b in range(n_bins)}
    bad = ~np.isfinite(arrays["responses"]).all(axis=0)
    arrays["responses"][:, bad] = 0.0
    flagged |= set(np.flatnonzero(bad).tolist())
    if flagged:
        logger.warning("%d units flagged (constant or non-finite signal)", len(flagged))
    return sorted(int(u) for u in flagged)
