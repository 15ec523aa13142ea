"""Benchmark of input discovery: 100 subjects x 4 sessions x 10 runs of an fMRIPrep tree.

Writes a fake fMRIPrep derivatives tree (empty BOLD and mask files, real one-line JSON
sidecars and confounds headers, per-subject anatomical masks, a shared atlas) and times

* ``index_dataset`` + every ``runs()`` / ``mask()`` / ``atlas()`` / ``tr()`` call, as the
  workflow does while Snakemake builds the DAG (with and without the confounds header
  check of the default strategy);
* for comparison, pybids' ``BIDSLayout`` (validate=False, index_metadata=False,
  derivatives config) and one ``get()`` per subject, skipped with ``--no-layout``.

and, with ``--dag``, the whole DAG build: ``snakemake --dry-run`` of the workflow on that
tree (one task, two models x two conditions, every subject), against the same dry run on a
one-subject tree, so Snakemake's own fixed cost is visible.

Usage: ``python benchmarks/discovery.py [--subjects 100] [--no-layout] [--dag]``. Target:
DAG building under 10 s for 100 subjects x 4 sessions x 10 runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from brainalign.datasets.bids import index_dataset, parse_entities  # noqa: E402
from brainalign.datasets.confounds import DEFAULT_CONFOUNDS  # noqa: E402

SPACE = "MNI152NLin2009cAsym"
HEADER = "\t".join(
    [
        f"{m}{s}"
        for m in (
            "trans_x",
            "trans_y",
            "trans_z",
            "rot_x",
            "rot_y",
            "rot_z",
            "csf",
            "white_matter",
            "global_signal",
        )
        for s in ("", "_derivative1", "_power2", "_derivative1_power2")
    ]
    + [
        "framewise_displacement",
        "dvars",
        "std_dvars",
        "rmsd",
        "cosine00",
        "cosine01",
        "non_steady_state_outlier00",
    ]
    + [f"a_comp_cor_{k:02d}" for k in range(60)]
)


def write_tree(root: Path, n_subjects: int, n_sessions: int, n_runs: int) -> int:
    """The fake tree; returns the number of files written."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps(
            {
                "Name": "bench",
                "BIDSVersion": "1.8.0",
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "fMRIPrep"}],
            }
        )
    )
    for name in (f"space-{SPACE}_atlas-demo_dseg.nii.gz", f"space-{SPACE}_atlas-demo_dseg.tsv"):
        (root / name).touch()
    n_files = 3
    for s in range(1, n_subjects + 1):
        sub = f"{s:03d}"
        anat = root / f"sub-{sub}" / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        (anat / f"sub-{sub}_space-{SPACE}_desc-brain_mask.nii.gz").touch()
        n_files += 1
        for ses in range(1, n_sessions + 1):
            func = root / f"sub-{sub}" / f"ses-{ses}" / "func"
            func.mkdir(parents=True, exist_ok=True)
            for run in range(1, n_runs + 1):
                stem = func / f"sub-{sub}_ses-{ses}_task-movie_run-{run}"
                Path(f"{stem}_space-{SPACE}_desc-preproc_bold.nii.gz").touch()
                Path(f"{stem}_space-{SPACE}_desc-brain_mask.nii.gz").touch()
                Path(f"{stem}_space-{SPACE}_desc-preproc_bold.json").write_text(
                    '{"RepetitionTime": 2.0}'
                )
                Path(f"{stem}_desc-confounds_timeseries.tsv").write_text(HEADER + "\n")
                Path(f"{stem}_desc-confounds_timeseries.json").write_text("{}")
                n_files += 5
    return n_files


def time_index(root: Path, subjects: list[str], confounds) -> tuple[float, int]:
    start = time.perf_counter()
    index = index_dataset(
        root,
        subjects=subjects,
        tasks={"movie": {"kind": "naturalistic"}},
        space=SPACE,
        desc="preproc",
        atlas="demo",
        confounds=confounds,
    )
    n_runs = 0
    for subject in subjects:
        n_runs += len(index.runs(subject, "movie"))
        index.mask(subject)
        index.atlas(subject)
        index.tr(subject, "movie")
    return time.perf_counter() - start, n_runs


def time_layout(root: Path, subjects: list[str]) -> tuple[float, float]:
    from bids import BIDSLayout
    from bids.layout import BIDSLayoutIndexer

    start = time.perf_counter()
    layout = BIDSLayout(
        root,
        validate=False,
        is_derivative=True,
        config=["bids", "derivatives"],
        indexer=BIDSLayoutIndexer(validate=False, index_metadata=False),
    )
    indexed = time.perf_counter()
    for subject in subjects:
        layout.get(
            subject=subject,
            task="movie",
            space=SPACE,
            desc="preproc",
            suffix="bold",
            extension=".nii.gz",
        )
    return indexed - start, time.perf_counter() - indexed


def write_study(folder: Path, root: Path, subjects: list[str], n_runs: int) -> Path:
    """Stimuli tables (40 runs of 300 TRs) and a configuration for a dry run; returns it."""
    nat = folder / "stimuli" / "naturalistic"
    nat.mkdir(parents=True, exist_ok=True)
    (folder / "stimuli" / "concepts.tsv").write_text("concept\timage\n")
    runs = "".join(f"{r}\t2.0\t300\n" for r in range(1, n_runs + 1))
    (nat / "runs.tsv").write_text("run\ttr\tn_trs\n" + runs)
    (nat / "words.tsv").write_text("run\tonset\tduration\tword\tsentence\tchar_start\tchar_end\n")
    (nat / "frames.tsv").write_text("run\tonset\tduration\timage\n")
    model = {"extractor": "clip", "source": "tiny", "layers": [1, 2]}
    config = {
        "seed": 0,
        "dataset": {"format": "bids", "root": str(root), "subjects": subjects,
                    "tasks": {"movie": {"kind": "naturalistic"}}, "space": SPACE,
                    "desc": "preproc", "atlas": "demo", "rois": ["language"]},
        "stimuli": {"root": str(folder / "stimuli")},
        "models": {"clip": model, "clip2": model},
        "conditions": ["sentence", "picture"],
    }
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def time_dag(folder: Path, root: Path, subjects: list[str], n_runs: int) -> tuple[float, int]:
    """Wall time of ``snakemake --dry-run`` on the study, and its number of jobs."""
    config = write_study(folder, root, subjects, n_runs)
    repo = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"),
           "--directory", str(folder), "--configfile", str(config), "--dry-run", "--cores", "1",
           "--quiet", "rules"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"dry run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    total = [line for line in proc.stdout.splitlines() if line.startswith("total")]
    return seconds, int(total[0].split()[-1]) if total else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-layout", action="store_true", help="skip pybids' BIDSLayout")
    parser.add_argument("--dag", action="store_true", help="also time snakemake --dry-run")
    args = parser.parse_args()
    subjects = [f"{s:03d}" for s in range(1, args.subjects + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "derivatives"
        start = time.perf_counter()
        n_files = write_tree(root, args.subjects, args.sessions, args.runs)
        print(
            f"tree: {args.subjects} subjects x {args.sessions} sessions x {args.runs} runs, "
            f"{n_files} files written in {time.perf_counter() - start:.2f} s"
        )
        start = time.perf_counter()
        parse_entities("sub-01_bold.nii.gz")  # imports pybids' entity configuration once
        print(f"import of pybids' entity patterns: {time.perf_counter() - start:.2f} s")
        for label, spec in (("confounds []", []), ("default confounds", DEFAULT_CONFOUNDS)):
            seconds, n_runs = time_index(root, subjects, spec)
            print(
                f"index_dataset + runs/mask/atlas/tr ({label}): {seconds:.2f} s for {n_runs} runs"
            )
        if args.dag:
            n_runs = args.sessions * args.runs
            small = Path(tmp) / "small"
            write_tree(small, 1, args.sessions, args.runs)
            one, jobs_one = time_dag(Path(tmp) / "dag1", small, subjects[:1], n_runs)
            full, jobs = time_dag(Path(tmp) / "dag", root, subjects, n_runs)
            print(f"snakemake --dry-run, 1 subject: {one:.2f} s ({jobs_one} jobs); "
                  f"{len(subjects)} subjects: {full:.2f} s ({jobs} jobs); "
                  f"difference {full - one:.2f} s")
        if not args.no_layout:
            indexed, queried = time_layout(root, subjects)
            print(
                f"pybids BIDSLayout: index {indexed:.2f} s, {len(subjects)} get() calls "
                f"{queried:.2f} s"
            )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
