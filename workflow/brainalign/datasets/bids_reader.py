"""The ``bids`` reader (and the ``synthetic`` demo, written in the same layout).

Inputs are found with pybids (:mod:`brainalign.datasets.bids`) while Snakemake builds the
DAG; at run time one subject x task becomes the labelled representation of
:mod:`brainalign.datasets.units`, whatever the task's kind and the geometry:

* ``concepts``: single-trial volumes (one per trial, with ``events.tsv`` naming the
  stimulus of each), z-scored per run and averaged per stimulus;
* ``events``: event-related BOLD runs; single-trial betas estimated with nilearn's GLM
  (LSS or LSA, :mod:`brainalign.datasets.betas`), then as for ``concepts``;
* ``naturalistic``: BOLD time series cleaned per run (confounds chosen through nilearn's
  fMRIPrep interface, non-steady-state volumes dropped, high-pass, z-score) and
  concatenated over sessions and runs.

Volumes are masked with each subject's brain mask (or one shared mask) and labelled with
an atlas in template space (shared) or per subject; surfaces (``space-fsaverage*``) are
read per hemisphere and labelled with a surface atlas.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .naming import demo_files, demo_shared_files
from .registry import DatasetError, register_reader

__all__ = ["BidsReader", "is_surface_space"]

logger = logging.getLogger(__name__)


def is_surface_space(space: str | None) -> bool:
    """Whether files in ``space`` are surfaces (fsaverage, fsaverage5, fsLR...)."""
    return bool(space) and str(space).lower().startswith("fs")


@register_reader("bids")
@register_reader("synthetic")
class BidsReader:
    """BIDS / fMRIPrep derivatives, volumes or surfaces (see the module docstring).

    Parameters
    ----------
    dataset : mapping
        The validated ``dataset`` section of the configuration.
    stimuli_root : str
        The stimuli folder (``concepts.tsv`` names the stimuli of concept and events tasks).
    source : str
        The configuration file, quoted in messages.
    """

    def __init__(
        self,
        dataset: Mapping[str, Any],
        stimuli_root: str,
        source: str = "config/config.yaml",
        preprocess: Mapping[str, Any] | None = None,
    ):
        self.dataset = dataset
        self.confounds = (preprocess or {}).get("confounds", ())
        self.betas = (preprocess or {}).get("betas", {})
        self.stimuli = stimuli_root
        self.source = source
        self.synthetic = dataset["format"] == "synthetic"
        self.surface = is_surface_space(dataset.get("space"))
        self._index = None
        self._stimuli_names: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ discovery
    @property
    def index(self):
        """The pybids index of the dataset, built on first use."""
        if self._index is None:
            from .bids import index_dataset

            ds = self.dataset
            self._index = index_dataset(
                ds["root"],
                subjects=ds["subjects"],
                tasks=ds["tasks"],
                space=ds["space"],
                desc=ds["desc"],
                sessions=ds["sessions"],
                mask=ds["mask"],
                atlas=ds["atlas"],
                surface=self.surface,
                confounds=self.confounds,
                source=self.source,
            )
        return self._index

    def check(self) -> None:
        """Find every input now; raise a one-line DatasetError on the first problem."""
        if self.synthetic:
            return
        for subject in self.dataset["subjects"]:
            for task, spec in self.dataset["tasks"].items():
                files = self.inputs(subject, task)
                if spec["kind"] in ("events", "concepts"):
                    self._check_events(files["events"], files["concepts"], spec["kind"])

    def _check_events(self, paths: list[str], concepts_file: str, kind: str) -> None:
        """Every events file of a concepts or events task: onsets and durations (events), and
        stimuli that the stimuli's ``concepts.tsv`` lists."""
        from ..io import read_table
        from .events import read_events

        column = self.betas.get("stimulus_column", "concept") if kind == "events" else "concept"
        if concepts_file not in self._stimuli_names:  # read once for every subject and task
            self._stimuli_names[concepts_file] = set(read_table(concepts_file)["concept"].astype(str))
        known = self._stimuli_names[concepts_file]
        for path in paths:
            if kind == "events":
                table = read_events(path, stimulus_column=column,
                                    trial_types=self.betas.get("trial_types"))
            else:
                table = read_table(path)
                if column not in table.columns:
                    raise DatasetError(
                        f"events '{path}' must have a '{column}' column naming the stimulus of "
                        f"each trial volume; got columns {list(table.columns)}. Add it."
                    )
            types = self.betas.get("trial_types") if kind == "events" else None
            trials = table if types is None else table[table["trial_type"].isin(types)]
            named = set(trials[column].dropna().astype(str))
            unknown = sorted(named - known)
            if unknown:
                raise DatasetError(
                    f"events '{path}' names stimuli that '{concepts_file}' lacks: "
                    f"{unknown[:5]} ({len(unknown)} in all); expected rows of concepts.tsv. "
                    "Add them to the stimuli or fix the events."
                )

    def _stimulus_inputs(self, task: str) -> dict[str, str]:
        spec = self.dataset["tasks"][task]
        root = spec.get("stimuli") or self.stimuli
        if spec["kind"] == "naturalistic":
            return {"runs": f"{root}/naturalistic/runs.tsv"}
        return {"concepts": f"{root}/concepts.tsv"}

    def inputs(self, subject: str, task: str) -> dict[str, str | list[str]]:
        """Files of one subject x task, by name: ``bold`` (or ``bold_L`` / ``bold_R``),
        ``sidecar``, ``confounds``, ``events`` (lists over runs), ``mask``, ``atlas``,
        ``labels`` (or ``atlas_L`` / ``atlas_R``), and the stimulus table."""
        spec = self.dataset["tasks"][task]
        if self.synthetic:
            runs = self.dataset["concept_runs" if spec["kind"] == "concepts" else "naturalistic_runs"]
            files: dict[str, Any] = demo_files(self.dataset["root"], subject, task, spec["kind"], runs)
            files.update(demo_shared_files(self.dataset["root"], self.dataset["atlas"]))
            return {**files, **self._stimulus_inputs(task)}
        runs = self.index.runs(subject, task)
        if spec.get("session"):
            runs = [run for run in runs if run.session == spec["session"]]
            if not runs:
                raise DatasetError(
                    f"sub-{subject} has no run of task '{spec.get('bids_task', task)}' in "
                    f"session '{spec['session']}' under {self.dataset['root']}; expected at "
                    f"least one for task '{task}'. Fix 'dataset.sessions' in {self.source}."
                )
        files = {}
        for key in ("sidecar", "confounds", "events"):
            found = [getattr(run, key) for run in runs]
            if all(found):
                files[key] = found
        if self.surface:
            files["bold_L"] = [run.bold["L"] for run in runs]
            files["bold_R"] = [run.bold["R"] for run in runs]
            atlas = self.index.atlas(subject)
            files.update(atlas_L=atlas["L"], atlas_R=atlas["R"])
        else:
            files["bold"] = [run.bold for run in runs]
            files["mask"] = self.index.mask(subject)
            files.update(self.index.atlas(subject))
        return {**files, **self._stimulus_inputs(task)}

    # ------------------------------------------------------------------ run time
    def preprocess(
        self, inputs: Mapping[str, Any], subject: str, task: str, params: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One subject x task as the labelled representation (see the module docstring)."""
        from .bids_preprocess import preprocess_task

        spec = self.dataset["tasks"][task]
        zscore = True if params.get("zscore") is None else bool(params["zscore"])
        arrays, meta = preprocess_task(
            inputs,
            subject=subject,
            task=task,
            kind=spec["kind"],
            surface=self.surface,
            rois=self.dataset["rois"],
            params={**params, "zscore": zscore},
        )
        meta.update(space=self.dataset.get("space") or "unknown", task=task, subject=subject)
        return arrays, meta

