"""What the bundle rules do: copy results in, average subject maps, describe the
derivative (BIDS), write Snakemake's report without private paths, and finish the bundle."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__, io
from .crate import WORKFLOW_FILE, write_crate
from .manifest import write_manifest
from .record import collect_run_record

__all__ = ["copy_files", "group_mean_map", "dataset_description", "write_report", "scrub_paths", "drop_job_times",
           "stable_rules",
           "finish_bundle"]

logger = logging.getLogger(__name__)


def copy_files(sources: Sequence[str | os.PathLike], dests: Sequence[str | os.PathLike]) -> None:
    """Copy each source to its destination (same order), atomically."""
    if len(sources) != len(dests):
        raise ValueError(f"copy_files needs one destination per source; got {len(sources)} and {len(dests)}")
    for src, dest in zip(sources, dests):
        with io.atomic_write(dest) as tmp:
            shutil.copyfile(src, tmp)


def group_mean_map(maps: Sequence[str | os.PathLike], out: str | os.PathLike, sidecar: str | os.PathLike) -> None:
    """The voxel-wise mean over subjects of NIfTI maps on one grid, with a JSON sidecar.

    Parameters
    ----------
    maps : sequence of path-like
        Per-subject maps, each of shape (x, y, z) or (x, y, z, n_layers), one grid.
    out, sidecar : path-like
        The group map (``.nii.gz``) and its sidecar (``Sources``, ``Description``).
    """
    import nibabel as nib
    import numpy as np

    images = [nib.load(m) for m in maps]
    first = images[0]
    for path, img in zip(maps, images):
        if img.shape != first.shape or not np.allclose(img.affine, first.affine):
            raise ValueError(f"map '{path}' must be on the grid of '{maps[0]}' (shape {first.shape}) to be "
                             f"averaged; found shape {img.shape}. Use a common space (dataset.space) for group maps")
    data = np.nanmean(np.stack([np.asarray(img.dataobj, dtype=np.float32) for img in images]), axis=0)
    io.save_nifti(nib.Nifti1Image(data.astype(np.float32), first.affine, first.header), out)
    io.write_json({"Description": "Mean over subjects of the per-subject maps (NaN units left out).",
                   "Sources": [f"bids::{Path(m).name}" for m in maps], "NumberOfSubjects": len(maps)}, sidecar)


def dataset_description(config: Mapping[str, Any], version: str = __version__) -> dict[str, Any]:
    """BIDS ``dataset_description.json`` of the results (a derivative, ``GeneratedBy`` brainalign)."""
    return {
        "Name": "brainalign results",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainalign", "Version": version,
                         "Description": "Encoding and RSA of vision-language model features against brain data."}],
        "SourceDatasets": [{"URL": "bids::" + Path(str(config["dataset"]["root"])).name}],
    }


def scrub_paths(text: str, folders: Mapping[str, str]) -> str:
    """``text`` with each absolute folder (key) replaced by its relative stand-in (value), longest first."""
    for folder in sorted(folders, key=len, reverse=True):
        text = re.sub(re.escape(folder.rstrip("/")) + r"/?", folders[folder], text)
    return text


# The report's two charts of job times (Snakemake 9 html_reporter: one JSON line each).
_TIME_CHARTS = re.compile(r"^(?P<head>\s*var (?P<name>runtimes|timeline)_spec = )(?P<spec>\{.*\});$", re.MULTILINE)


def drop_job_times(html: str) -> str:
    """Snakemake's HTML report without the jobs' start/end times and runtimes.

    The report's runtime and timeline charts differ between two runs of the same
    workflow; their data are emptied (the charts stay, with a note) so the report's
    bytes depend on the results only. The run's times are in the run record.

    Raises
    ------
    ValueError
        If the report has not exactly the two charts (another Snakemake version).
    """
    def empty(match: re.Match) -> str:
        spec = json.loads(match["spec"])
        spec["data"] = {"values": []}
        spec["description"] = (f"{match['name'].capitalize()} of jobs: left out of the bundle, which must be "
                               "byte-identical between runs; see ro-crate-metadata.json for the run's times.")
        return match["head"] + json.dumps(spec) + ";"

    html, n = _TIME_CHARTS.subn(empty, html)
    if n != 2:
        from importlib import metadata

        raise ValueError(f"Snakemake's report (snakemake {metadata.version('snakemake')}) must hold the runtimes "
                         f"and timeline charts, one JSON line each; found {n}. Adapt brainalign.bundle.steps."
                         "_TIME_CHARTS to this version")
    return html


_RULES = re.compile(r"^(?P<head>\s*var rules = )(?P<rules>\{.*\});$", re.MULTILINE)
# The rules that run after the report: a clean run has no record of them when it is made.
REPORT_AND_LATER = ("make_report", "finish_bundle")


def stable_rules(html: str, later: Sequence[str] = REPORT_AND_LATER) -> str:
    """Snakemake's HTML report with its rule list sorted by name, rules of ``later`` left out.

    Snakemake lists the rules with a job record in ``.snakemake`` in the order of its
    job graph, which varies between runs, and includes the report's own rule once an
    earlier run has recorded it; sorted and without those, the list depends on the
    workflow only.
    """
    match = _RULES.search(html)
    if match is None:
        raise ValueError("Snakemake's report must hold its rule list ('var rules = {...};' on one line); "
                         "found none. Adapt brainalign.bundle.steps._RULES to this Snakemake version")
    rules = json.loads(match["rules"])
    kept = {name: rules[name] for name in sorted(rules) if name not in later}
    return html[:match.start()] + match["head"] + json.dumps(kept) + ";" + html[match.end():]


def write_report(snakefile: str | os.PathLike, config: Mapping[str, Any], out: str | os.PathLike,
                 folders: Mapping[str, str], scratch: str | os.PathLike) -> None:
    """Write Snakemake's HTML report of this working directory to ``out``, without private paths.

    Snakemake is run with ``--report`` on the resolved configuration (written to
    ``scratch``); the report names the rules' container paths absolutely, so each folder
    of ``folders`` (absolute -> relative stand-in) is replaced, the jobs' times are
    dropped (:func:`drop_job_times`) and the rule list is sorted (:func:`stable_rules`)
    before ``out`` is written.
    """
    import yaml

    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=True))
    raw = scratch / "report.html"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", ".",
           "--configfile", str(scratch / "config.yaml"), "--report", str(raw)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"snakemake --report failed (exit {proc.returncode}): {tail}; see {scratch}")
    with io.atomic_write(out) as tmp:
        tmp.write_text(stable_rules(drop_job_times(scrub_paths(raw.read_text(), folders))))
    logger.info("report written to %s (%s replaced by relative paths)", out, ", ".join(folders.values()))


def finish_bundle(root: str | os.PathLike, *, snakefile: str | os.PathLike, provenance: str | os.PathLike,
                  models: Mapping[str, Any], extraction_logs: Sequence[str | os.PathLike]) -> None:
    """Copy the Snakefile in, then write the manifest files and the RO-Crate metadata (run record) last."""
    root = Path(root)
    copy_files([snakefile], [root / WORKFLOW_FILE])
    write_manifest(root)
    record = io.read_json(provenance)
    write_crate(root, version=record.get("version") or record["brainalign"], inputs=record["inputs"],
                run=collect_run_record(models, extraction_logs))
