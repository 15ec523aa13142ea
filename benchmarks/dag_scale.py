"""Benchmark: the DAG of a study-sized `bids` configuration, built and rerun with nothing to do.

A study: N subjects x 20 models x 5 conditions x 24 layers on one naturalistic task
(fMRIPrep derivatives, 10 runs). The inputs are placeholders, made cheaply: BOLD, masks,
atlas images and the models' local folders are empty (the workflow checks only that they exist when it
builds the DAG), the sidecars carry their RepetitionTime, the confounds files their
header, the stimuli are the demo's. For 10, 30 and 100 subjects the script times

* ``snakemake -n`` (dry run: parse, validate, find every input, build the whole DAG);
* a no-op rerun: every output of the dry run's jobs is touched into existence (oldest
  first, so that nothing is out of date), then ``snakemake -n`` again, which must find
  nothing to do;

and prints the number of jobs per rule and the seconds per job, so that superlinear growth
shows. Target (issue 15): under 30 s for both at 100 subjects.

    python benchmarks/dag_scale.py                      # 10, 30, 100 subjects
    python benchmarks/dag_scale.py --subjects 10 --keep /tmp/dag10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPACE = "MNI152NLin2009cAsym"
N_RUNS, N_TRS = 10, 300
CONDITIONS = ["sentence", "picture", "noise", "language", "joint"]
CONFOUNDS = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--subjects", default="10,30,100", help="subject counts (default 10,30,100)"
    )
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--keep", help="keep the study folder here (one subject count)")
    return parser.parse_args(argv)


def write_placeholders(root: Path, subjects: list[str]) -> None:
    """fMRIPrep-named files: empty images, real sidecars and confounds headers."""
    header = "\t".join(CONFOUNDS) + "\n" + "\t".join(["0"] * len(CONFOUNDS)) + "\n"
    (root / "dataset_description.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "placeholders", "BIDSVersion": "1.8.0", "DatasetType": "derivative"})
    )
    for subject in subjects:
        func, anat = root / f"sub-{subject}" / "func", root / f"sub-{subject}" / "anat"
        func.mkdir(parents=True)
        anat.mkdir(parents=True)
        stem = f"sub-{subject}_space-{SPACE}"
        (anat / f"{stem}_desc-brain_mask.nii.gz").touch()
        (anat / f"{stem}_atlas-demo_dseg.nii.gz").touch()
        (anat / f"{stem}_atlas-demo_dseg.tsv").write_text(
            "index\tname\n1\tlanguage\n2\tvisual\n3\tcontrol\n"
        )
        for run in range(1, N_RUNS + 1):
            name = f"sub-{subject}_task-movie_run-{run}"
            (func / f"{name}_space-{SPACE}_desc-preproc_bold.nii.gz").touch()
            (func / f"{name}_space-{SPACE}_desc-preproc_bold.json").write_text(
                '{"RepetitionTime": 2.0}'
            )
            (func / f"{name}_desc-confounds_timeseries.tsv").write_text(header)


def write_study(folder: Path, n_subjects: int, args: argparse.Namespace) -> Path:
    """Stimuli, placeholder derivatives and the study's config; returns the config path."""
    from brainalign.demo import make_demo_stimuli

    subjects = [f"{i:03d}" for i in range(1, n_subjects + 1)]
    stimuli = folder / "stimuli"
    make_demo_stimuli(stimuli, n_concepts=12, n_contexts=2, n_runs=N_RUNS, n_trs=N_TRS,
                      tr=2.0, image_size=16, seed=0)  # fmt: skip
    write_placeholders(folder / "fmriprep", subjects)
    layers = list(range(args.layers))
    models = [f"m{i:02d}" for i in range(1, args.models + 1)]
    for name in models:  # local model folders (read by the extraction jobs only)
        (folder / "models" / name).mkdir(parents=True)
    config = {
        "seed": 0,
        "dataset": {"format": "bids", "root": str(folder / "fmriprep"), "subjects": subjects,
                    "tasks": {"movie": {"kind": "naturalistic"}}, "space": SPACE,
                    "desc": "preproc", "atlas": "demo", "rois": ["language", "visual", "control"]},
        "stimuli": {"root": str(stimuli)},
        "models": {name: {"extractor": "clip", "source": "pretrained", "id": f"models/{name}",
                          "layers": layers} for name in models},
        "conditions": CONDITIONS,
        "preprocess": {"confounds": CONFOUNDS},
        "encoding": {"alphas": [1.0, 100.0], "delays": [1, 2, 3, 4], "n_permutations": 20},
        "figures": {"formats": ["png"]},
    }  # fmt: skip
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(folder: Path, config: Path, *extra: str) -> tuple[float, str]:
    argv = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
            "--directory", str(folder), "--configfile", str(config), "--cores", "1", "-n",
            "--quiet", "rules", *extra]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "workflow")})  # fmt: skip
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def job_counts(output: str) -> Counter:
    """Jobs per rule from snakemake's 'Job stats' table."""
    counts = Counter()
    for match in re.finditer(r"^(\w+)\s+(\d+)$", output, flags=re.M):
        if match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def touch_outputs(folder: Path, config: Path) -> int:
    """Create every output of the planned jobs, each newer than the jobs printed before it.

    A dry run prints the jobs in an order where each comes after its inputs' jobs; the
    outputs are created in that order with increasing modification times.
    """
    argv = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(folder),
        "--configfile",
        str(config),
        "--cores",
        "1",
        "-n",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "workflow")})  # fmt: skip
    stamp, count = time.time(), 0  # after every input was written
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.strip().startswith(("output:", "log:", "benchmark:")):
            stamp += 0.01
            for name in line.split(":", 1)[1].split(","):
                path = folder / name.strip()
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                os.utime(path, (stamp, stamp))
                count += 1
    return count


def measure(n_subjects: int, args: argparse.Namespace, folder: Path) -> None:
    config = write_study(folder, n_subjects, args)
    dry, output = snakemake(folder, config)
    counts = job_counts(output)
    total = sum(counts.values())
    top = ", ".join(f"{rule} {n}" for rule, n in counts.most_common(4))
    print(f"{n_subjects:>4} subjects: snakemake -n {dry:6.1f} s, {total} jobs "
          f"({1e3 * dry / max(total, 1):.2f} ms/job; {top})", flush=True)  # fmt: skip
    start = time.perf_counter()
    n_files = touch_outputs(folder, config)
    touched = time.perf_counter() - start
    rerun, output = snakemake(folder, config)
    left = sum(job_counts(output).values())
    print(f"{n_subjects:>4} subjects: no-op rerun {rerun:6.1f} s ({left} jobs left to run; "
          f"{n_files} outputs touched in {touched:.0f} s)", flush=True)  # fmt: skip


def main(argv=None) -> None:
    args = parse_args(argv)
    print(
        f"{args.models} models x {len(CONDITIONS)} conditions x {args.layers} layers, "
        f"1 naturalistic task of {N_RUNS} runs; load average {os.getloadavg()[0]:.2f}"
    )
    for n_subjects in (int(n) for n in args.subjects.split(",")):
        if args.keep:
            folder = Path(args.keep)
            folder.mkdir(parents=True, exist_ok=False)
            measure(n_subjects, args, folder)
        else:
            with tempfile.TemporaryDirectory(prefix="brainalign-dag-") as tmp:
                measure(n_subjects, args, Path(tmp))


if __name__ == "__main__":
    main()
