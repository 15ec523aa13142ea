"""BIDS file names from entities, in BIDS' entity order (no third-party imports).

The synthetic demo writes its dataset with these names, and the bids reader predicts them
for the demo before the files exist (the reader discovers the files of real datasets).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ENTITY_ORDER", "bids_name", "demo_files", "demo_shared_files"]

ENTITY_ORDER = ("sub", "ses", "task", "acq", "run", "hemi", "space", "atlas", "desc")
DEMO_SPACE = "MNI152"


def bids_name(suffix: str, extension: str, **entities: str | int | None) -> str:
    """``sub-01_task-x_run-1_space-S_desc-preproc_bold.nii.gz`` from entities (None skipped).

    Parameters
    ----------
    suffix : str
        ``bold``, ``mask``, ``events``, ``timeseries``, ``dseg``...
    extension : str
        With its dot: ``.nii.gz``, ``.tsv``, ``.json``.
    entities
        Keys of :data:`ENTITY_ORDER`.
    """
    unknown = sorted(set(entities) - set(ENTITY_ORDER))
    if unknown:
        raise ValueError(f"bids_name got unknown entities {unknown}; use {ENTITY_ORDER}")
    parts = [f"{key}-{entities[key]}" for key in ENTITY_ORDER if entities.get(key) is not None]
    return "_".join([*parts, suffix]) + extension


def demo_files(root: str, subject: str, task: str, kind: str, runs: list[int]) -> dict[str, list[str]]:
    """The synthetic demo's files of one subject x task, by input name (lists over runs).

    Concepts: single-trial volumes (``desc-trials``) and events; naturalistic: preprocessed
    BOLD, its sidecar and the confounds. The shared mask and atlas are in
    :func:`demo_shared_files`.
    """
    func = Path(root) / f"sub-{subject}" / "func"
    ents = {"sub": subject, "task": task}
    files: dict[str, list[str]] = {}
    for run in runs:
        if kind == "concepts":
            named = {
                "bold": bids_name("bold", ".nii.gz", **ents, run=run, space=DEMO_SPACE, desc="trials"),
                "events": bids_name("events", ".tsv", **ents, run=run),
            }
        else:
            named = {
                "bold": bids_name("bold", ".nii.gz", **ents, run=run, space=DEMO_SPACE, desc="preproc"),
                "sidecar": bids_name("bold", ".json", **ents, run=run, space=DEMO_SPACE, desc="preproc"),
                "confounds": bids_name("timeseries", ".tsv", **ents, run=run, desc="confounds"),
            }
        for key, name in named.items():
            files.setdefault(key, []).append(str(func / name))
    return files


def demo_shared_files(root: str, atlas: str) -> dict[str, str]:
    """The demo's brain mask, atlas and atlas labels (shared by every subject)."""
    return {
        "mask": str(Path(root) / bids_name("mask", ".nii.gz", space=DEMO_SPACE, desc="brain")),
        "atlas": str(Path(root) / bids_name("dseg", ".nii.gz", space=DEMO_SPACE, atlas=atlas)),
        "labels": str(Path(root) / bids_name("dseg", ".tsv", space=DEMO_SPACE, atlas=atlas)),
    }
