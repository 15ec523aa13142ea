"""Find the inputs of a BIDS / fMRIPrep derivatives dataset while Snakemake builds the DAG.

File names are parsed with pybids' own entity patterns (the ``bids`` and ``derivatives``
configurations of :mod:`bids.layout`) over one ``os.scandir`` walk of the configured
subjects' ``anat`` and ``func`` folders (and their sessions'). On the 100 subjects x 4
sessions x 10 runs tree of ``benchmarks/discovery.py`` a full ``BIDSLayout`` (SQL-backed,
no metadata) took 6.5 s to index and 3.8 s more for one query per subject; this walk
answers every query, sidecar TRs and confound headers included, in under 1 s.

What is found, per subject and task (``bids_task`` entity, ``space``, ``desc``):

* runs, sorted by (session, run): the BOLD file (``*_bold.nii[.gz]``, or surfaces
  ``*_hemi-{L,R}_space-<fsaverage*>_bold.func.gii`` as ``{"L": path, "R": path}``), its
  sidecar (same name, else the run's less specific ``*_bold.json``, else the root's
  ``task-<t>_bold.json``), ``*_desc-confounds_timeseries.tsv`` and ``*_events.tsv`` from
  the same folder;
* the brain mask: ``dataset.mask`` under the root (shared), else the subject's
  ``sub-<s>[_ses-<x>]_space-<S>_desc-brain_mask.nii.gz`` (fMRIPrep's anat mask), else the
  first run's ``..._space-<S>_desc-brain_mask.nii.gz`` (with a warning);
* the atlas ``dataset.atlas``: per subject ``sub-<s>_space-<S>_atlas-<A>_dseg.nii.gz`` if
  present, else one shared ``[tpl-<S>_][space-<S>_]atlas-<A>_dseg.nii.gz`` at the root, each
  with its ``.tsv`` (else the root's ``[space-<S>_]atlas-<A>_dseg.tsv``); surfaces:
  ``[sub-<s>_]hemi-{L,R}_space-<S>_atlas-<A>_dseg.label.gii`` or ``{lh,rh}.<A>.annot``;
* the repetition time, equal over the runs of a subject x task.

Every problem is a one-line :class:`~brainalign.datasets.registry.DatasetError` naming the
subject, task, entities searched, what was found instead, and the fix. File names are parsed
in :mod:`brainalign.datasets.bids_files`; masks and atlases are chosen in
:mod:`brainalign.datasets.bids_anat`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bids_anat import _shared_file, _subject_mask, _surface_atlas, _volume_atlas
from .bids_files import _VOLUME, _describe, _File, _pick, _scan, parse_entities
from .confounds import check_aroma_image, check_confounds, needs_confounds
from .registry import DatasetError

__all__ = ["RunFiles", "BidsIndex", "index_dataset", "parse_entities"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
_TIMESERIES = ("naturalistic", "events")


@dataclass(frozen=True)
class RunFiles:
    """Files of one run of one subject x task.

    ``bold`` is a path, or ``{"L": path, "R": path}`` for surfaces; ``sidecar``,
    ``confounds`` and ``events`` are paths or None when absent.
    """

    session: str | None
    run: int | None
    bold: str | dict[str, str]
    sidecar: str | None
    confounds: str | None
    events: str | None


class BidsIndex:
    """What :func:`index_dataset` found: runs, masks, atlases and TRs, by subject x task."""

    def __init__(self, root: str, runs: dict, masks: dict, atlases: dict, trs: dict):
        self.root = root
        self._runs, self._masks, self._atlases, self._trs = runs, masks, atlases, trs

    @property
    def subjects(self) -> list[str]:
        return sorted({subject for subject, _ in self._runs})

    def runs(self, subject: str, task: str) -> list[RunFiles]:
        """Runs of a subject x task in (session, run) order, every session concatenated."""
        return list(self._lookup(self._runs, (subject, task), "subject x task"))

    def mask(self, subject: str) -> str | None:
        """The subject's brain mask (volumes); None for surfaces."""
        return self._lookup(self._masks, subject, "subject")

    def atlas(self, subject: str) -> dict[str, str]:
        """Volumes: ``{"atlas": path, "labels": tsv}``; surfaces: ``{"L": path, "R": path}``."""
        return dict(self._lookup(self._atlases, subject, "subject"))

    def tr(self, subject: str, task: str) -> float:
        """Repetition time (s) of the subject x task, from the run sidecars."""
        tr = self._lookup(self._trs, (subject, task), "subject x task")
        if tr is None:
            raise DatasetError(
                f"sub-{subject} task '{task}' has no RepetitionTime: none of its runs has a "
                f"_bold.json sidecar under {self.root}. Add the sidecars."
            )
        return tr

    def _lookup(self, table: dict, key: Any, what: str) -> Any:
        if key not in table:
            raise KeyError(f"{what} {key} was not indexed; indexed: {sorted(table)[:6]}")
        return table[key]


# ----------------------------------------------------------------------------- walking
def _subject_files(root: str, subject: str, sessions: Sequence[str] | None, source) -> list[_File]:
    """Files of a subject's anat/ and func/ folders (and of its configured sessions)."""
    base = os.path.join(root, f"sub-{subject}")
    if not os.path.isdir(base):
        found = sorted(e.name for e in os.scandir(root) if e.is_dir() and e.name.startswith("sub-"))
        raise DatasetError(
            f"subject '{subject}' not found: no folder sub-{subject} under {root}; found "
            f"{len(found)} subjects ({', '.join(found[:8]) or 'none'}). Fix 'dataset.subjects' "
            f"or 'dataset.root' in {source}."
        )
    found_sessions = sorted(e.name[4:] for e in os.scandir(base)
                            if e.is_dir() and e.name.startswith("ses-"))
    missing = [s for s in sessions or () if s not in found_sessions]
    if missing:
        raise DatasetError(
            f"sub-{subject} has no session {missing} under {base}; found sessions "
            f"{found_sessions or 'none'}. Fix 'dataset.sessions' in {source} (null: every session)."
        )
    folders = [base] + [os.path.join(base, f"ses-{s}") for s in sessions or found_sessions]
    files: list[_File] = []
    for folder in folders:
        for datatype in ("anat", "func"):
            files += _scan(os.path.join(folder, datatype))
    return files


# ----------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class _Query:
    subject: str
    task: str
    bids_task: str
    kind: str
    space: str | None
    desc: str | None
    surface: bool

    def matches(self, f: _File) -> bool:
        if f.get("suffix") != "bold" or f.get("task") != self.bids_task:
            return False
        if f.get("space") != self.space or f.get("desc") != self.desc:
            return False
        if self.surface:
            return f.get("extension") == ".func.gii" and f.get("hemi") in ("L", "R")
        return f.get("extension") in _VOLUME and f.get("hemi") is None

    def searched(self) -> str:
        kind = "hemi-{L,R} *.func.gii" if self.surface else "*.nii[.gz]"
        return f"task '{self.bids_task}', space '{self.space}', desc '{self.desc}', {kind}"


def _no_bold(query: _Query, files: list[_File], source: str) -> DatasetError:
    bold = [f for f in files if f.get("suffix") == "bold" and f.get("extension") != ".json"]
    same_task = [f for f in bold if f.get("task") == query.bids_task]
    if same_task:
        found = "found for this task: " + _describe(same_task, ("space", "desc", "extension"))
        fix = "'dataset.space' / 'dataset.desc' (or the task's 'desc')"
    else:
        found = f"found tasks: {', '.join(sorted({str(f.get('task')) for f in bold})) or 'none'}"
        fix = f"'dataset.tasks.{query.task}.bids_task'"
    return DatasetError(
        f"no BOLD file for sub-{query.subject} task '{query.task}' ({query.searched()}); "
        f"{found}. Set {fix} in {source} to match the files."
    )


def _group_runs(query: _Query, bold: list[_File]) -> dict[tuple, dict[str, _File]]:
    """{(session, run): {"": file} or {"L": file, "R": file}}, ambiguities refused."""
    groups: dict[tuple, dict[str, list[_File]]] = defaultdict(lambda: defaultdict(list))
    for f in bold:
        groups[(f.get("session"), f.get("run"))][f.get("hemi") or ""].append(f)
    out = {}
    for key, by_hemi in groups.items():
        what = f"BOLD of sub-{query.subject} task '{query.task}' session {key[0]} run {key[1]}"
        if query.surface and set(by_hemi) != {"L", "R"}:
            raise DatasetError(
                f"{what} has hemispheres {sorted(by_hemi)}; expected both hemi-L and hemi-R "
                "*.func.gii. Add the missing hemisphere."
            )
        out[key] = {hemi: _pick(files, None, what) for hemi, files in by_hemi.items()}
    return out


def _natural(label: str | None) -> tuple:
    """Sort key of a session label: numbers numerically (2 before 10), then text."""
    return (0, 0, "") if label is None else (1, int(label), "") if label.isdigit() else (2, 0, label)


def _same_run(f: _File, bold: _File) -> bool:
    return all(f.get(k) == bold.get(k) for k in ("subject", "session", "task", "run"))


def _companion(folder_files: list[_File], bold: _File, test, what: str) -> str | None:
    candidates = [f for f in folder_files if _same_run(f, bold) and test(f)]
    if not candidates:
        return None
    return _pick(candidates, bold.ents, what).path


def _sidecar(folder_files: list[_File], bold: _File, root_files: list[_File]) -> str | None:
    exact = re.sub(r"\.(nii\.gz|nii|func\.gii)$", ".json", bold.path)
    if os.path.isfile(exact):
        return exact
    near = [f for f in folder_files if _same_run(f, bold) and f.get("suffix") == "bold"
            and f.get("extension") == ".json"
            and all(f.get(k) in (None, bold.get(k)) for k in ("space", "desc", "hemi"))]
    near += [f for f in root_files if f.get("suffix") == "bold" and f.get("extension") == ".json"
             and f.get("task") == bold.get("task") and f.get("subject") is None]
    if not near:
        return None
    near.sort(key=lambda f: -len(f.ents))  # the most specific (BIDS inheritance)
    return near[0].path


def _run_files(query: _Query, group: dict[str, _File], folders: dict, root_files) -> RunFiles:
    first = group.get("L", group.get(""))
    folder_files = folders[os.path.dirname(first.path)]
    where = f"sub-{query.subject} task '{query.task}' run {first.get('run')}"
    confounds = _companion(
        folder_files, first,
        lambda f: f.get("desc") == "confounds" and f.get("suffix") in ("timeseries", "regressors")
        and f.get("extension") == ".tsv", f"confounds of {where}")
    events = _companion(folder_files, first,
                        lambda f: f.get("suffix") == "events" and f.get("extension") == ".tsv",
                        f"events of {where}")
    bold = first.path if "" in group else {h: group[h].path for h in ("L", "R")}
    return RunFiles(first.get("session"), first.get("run"), bold,
                    _sidecar(folder_files, first, root_files), confounds, events)


def _task_runs(query: _Query, files: list[_File], folders, root_files, source) -> list[RunFiles]:
    bold = [f for f in files if query.matches(f)]
    if not bold:
        raise _no_bold(query, files, source)
    groups = _group_runs(query, bold)
    order = sorted(groups, key=lambda k: (_natural(k[0]), k[1] or 0))
    return [_run_files(query, groups[key], folders, root_files) for key in order]


def _check_companions(query: _Query, runs: list[RunFiles], confounds: Any, source: str) -> None:
    for run in runs:
        where = f"sub-{query.subject} task '{query.task}' session {run.session} run {run.run}"
        bold = run.bold if isinstance(run.bold, str) else run.bold["L"]
        folder = os.path.dirname(bold)
        if query.kind in ("concepts", "events") and run.events is None:
            raise DatasetError(
                f"{where} has no events file: expected {_stem(bold)}_events.tsv in {folder} "
                f"(the {query.kind} kind needs onsets / stimuli). Copy the raw dataset's "
                "events.tsv next to the BOLD file."
            )
        if query.kind in _TIMESERIES and needs_confounds(confounds):
            if run.confounds is None:
                raise DatasetError(
                    f"{where} has no confounds file: expected {_stem(bold)}_desc-confounds_"
                    f"timeseries.tsv in {folder} for 'preprocess.confounds'; add fMRIPrep's "
                    f"confounds or set 'preprocess.confounds: []' in {source}."
                )
            check_confounds(run.confounds, confounds, source=source)
            check_aroma_image(bold, confounds)


def _stem(bold: str) -> str:
    """The run's entities (sub, ses, task, acq, run) of a BOLD file name."""
    name = os.path.basename(bold).split(".")[0]
    return re.sub(r"_(space|res|den|hemi|desc)-[a-zA-Z0-9+]+", "", name).rsplit("_", 1)[0]


def _read_tr(sidecar: str | None) -> float | None:
    if sidecar is None:
        return None
    try:
        value = json.loads(Path(sidecar).read_text() or "{}").get("RepetitionTime")
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"sidecar '{sidecar}' is not valid JSON ({error}); fix or remove it."
        ) from error
    return None if value is None else float(value)


def _task_tr(query: _Query, runs: list[RunFiles]) -> float | None:
    """The runs' RepetitionTime, checked equal; required for time-series kinds."""
    trs = [(_read_tr(run.sidecar), run) for run in runs]
    known = [(tr, run) for tr, run in trs if tr is not None]
    if query.kind in _TIMESERIES and len(known) < len(trs):
        run = next(run for tr, run in trs if tr is None)
        bold = run.bold if isinstance(run.bold, str) else run.bold["L"]
        raise DatasetError(
            f"sub-{query.subject} task '{query.task}' run {run.run} has no RepetitionTime: "
            f"sidecar {run.sidecar or 'missing'} for '{os.path.basename(bold)}'. Add its "
            "_bold.json with RepetitionTime (fMRIPrep writes one next to each BOLD file)."
        )
    for tr, run in known[1:]:
        if abs(tr - known[0][0]) > 1e-3 * known[0][0]:
            raise DatasetError(
                f"sub-{query.subject} task '{query.task}': runs disagree on RepetitionTime: "
                f"{known[0][0]} s in '{known[0][1].sidecar}' but {tr} s in '{run.sidecar}'; "
                "split the runs into two tasks or fix the sidecars."
            )
    return known[0][0] if known else None


# ----------------------------------------------------------------------------- the index
def _normalise_tasks(tasks: Mapping[str, Mapping] | Sequence[str]) -> dict[str, Mapping]:
    if isinstance(tasks, Mapping):
        return dict(tasks)
    return {name: {"kind": name} for name in tasks}


def _index_subject(root, subject, tasks, opts, root_files) -> tuple[dict, dict, Any, Any]:
    files = _subject_files(root, subject, opts["sessions"], opts["source"])
    folders: dict[str, list[_File]] = defaultdict(list)
    for f in files:
        folders[os.path.dirname(f.path)].append(f)
    runs, trs = {}, {}
    for task, spec in tasks.items():
        query = _Query(subject, task, spec.get("bids_task", task), spec["kind"], opts["space"],
                       spec.get("desc", opts["desc"]), opts["surface"])
        runs[(subject, task)] = _task_runs(query, files, folders, root_files, opts["source"])
        _check_companions(query, runs[(subject, task)], opts["confounds"], opts["source"])
        trs[(subject, task)] = _task_tr(query, runs[(subject, task)])
    first = next(iter(runs.values()))[0].bold
    like = None if opts["surface"] else parse_entities(os.path.basename(first))
    space, source = opts["space"], opts["source"]
    if opts["surface"]:
        return runs, trs, None, _surface_atlas(subject, files, root_files, root, opts["atlas"],
                                               space, source)
    mask = opts["shared_mask"] or _subject_mask(subject, files, space, like, source)
    return runs, trs, mask, _volume_atlas(subject, files, root_files, opts["atlas"], space,
                                          like, source)


def index_dataset(
    root: PathLike, *, subjects: Sequence[str], tasks: Mapping[str, Mapping] | Sequence[str],
    space: str | None = None, desc: str | None = None, sessions: Sequence[str] | None = None,
    mask: str | None = None, atlas: str = "demo", surface: bool = False, confounds: Any = (),
    source: str = "config/config.yaml",
) -> BidsIndex:
    """Find every input of the configured subjects and tasks (see the module docstring).

    Parameters
    ----------
    root : path-like
        The derivatives dataset root (``dataset.root``).
    subjects : sequence of str
        Subject labels, without ``sub-``.
    tasks : mapping of str to mapping, or sequence of str
        ``dataset.tasks``: name -> ``{kind, bids_task (default: the name), desc (default:
        ``desc``)}``; a list of names is short for ``{name: {"kind": name}}``.
    space, desc : str or None
        Entities of the BOLD files; None means the file has no such entity.
    sessions : sequence of str or None
        Sessions to read; None: every session found.
    mask : str or None
        A brain mask shared by every subject (path under ``root``); None: per subject.
    atlas : str
        Atlas label (``atlas-<label>``).
    surface : bool
        BOLD on fsaverage surfaces (``*_hemi-{L,R}_space-<space>_bold.func.gii``).
    confounds : str, mapping or list
        ``preprocess.confounds``; unless ``[]``, every naturalistic / events run needs a
        confounds file whose header has the columns it asks for.
    source : str
        The configuration file, quoted in messages.

    Returns
    -------
    index : BidsIndex

    Raises
    ------
    DatasetError
        One line: a subject or session not found; a task without BOLD files (with what was
        found instead); ambiguous files; no mask; no atlas or labels; runs disagreeing on
        RepetitionTime; no events (concepts / events kinds); no confounds file, or an
        unknown confound strategy or column.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DatasetError(
            f"config 'dataset.root' is '{root}', which is not a folder; fix it in {source}."
        )
    tasks = _normalise_tasks(tasks)
    opts = {"sessions": sessions, "source": source, "space": space, "desc": desc,
            "surface": surface, "confounds": confounds, "atlas": atlas,
            "shared_mask": None if surface or not mask else _shared_file(root, mask, source)}
    root_files = _scan(root)
    runs, trs, masks, atlases = {}, {}, {}, {}
    for subject in subjects:
        sub_runs, sub_trs, masks[subject], atlases[subject] = _index_subject(
            root, subject, tasks, opts, root_files)
        runs.update(sub_runs)
        trs.update(sub_trs)
    n_runs = sum(len(r) for r in runs.values())
    logger.info("indexed %s: %d subjects x %d tasks, %d runs (space %s, sessions %s)", root,
                len(subjects), len(tasks), n_runs, space, sessions or "all found")
    return BidsIndex(root, runs, masks, atlases, trs)
