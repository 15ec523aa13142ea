"""Crash and rerun (issue 16): ``kill -9`` of the whole Snakemake process group while a heavy
rule runs, then a rerun that completes with the same bytes as an uninterrupted run; the
hidden temp files of killed writers removed at the next run (``onstart:``,
:mod:`brainalign.recovery`); a second run in the same folder stopped by Snakemake's lock while
the first finishes unharmed.

The uninterrupted reference is one run of the smallest demo (:func:`crash_config`: one
subject, one naturalistic task, one tiny model, up to one subject's fit); a copy of it
loses one feature file (not one the synthetic dataset is generated from) and the fit on it,
and is rebuilt, killed at two points: during extraction and during encoding.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from brainalign.recovery import TEMP_PATTERN, find_orphan_temps, remove_orphan_temps

from .conftest import REPO, SNAKEMAKE, snakemake, tiny_config, write_config



def rebuilt_files(model: str, condition: str, task: str, subject: str = "01") -> dict:
    """The feature file of one model x condition x task and one subject's fit on it."""
    stem = (f"results/encoding/sub-{subject}/task-{task}/"
            f"sub-{subject}_task-{task}_model-{model}_cond-{condition}")
    return {"features": f"results/features/model-{model}/cond-{condition}/"
                        f"model-{model}_cond-{condition}_task-{task}_features.safetensors",
            "fit": [f"{stem}_stat-r_statmap.nii.gz", f"{stem}_stat-r_statmap.json",
                    f"{stem}_voxels.parquet", f"{stem}_rois.parquet",
                    f"{stem}_desc-bestlayer_folds.parquet"]}


def _start_cmd(workdir: Path, *args: str) -> list[str]:
    return [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--cores", "1", *args]


def _start(workdir: Path, *args: str) -> subprocess.Popen:
    """Snakemake in its own process group (so kill -9 reaches its jobs too)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(_start_cmd(workdir, *args), cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env=env)


def _job_running(group: int, script: str) -> bool:
    """Whether a process of the group runs the rule script (``tmp*.<script>.py``)."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            argv = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ProcessLookupError):
            continue
        if f".{script}.py" in argv:
            return True
    return False


def _kill_during(workdir: Path, script: str, *args: str) -> str:
    """Start a run, wait for the rule's script, kill -9 the whole process group."""
    proc = _start(workdir, *args)
    deadline = time.monotonic() + 120
    while not _job_running(proc.pid, script):
        assert proc.poll() is None, f"the run ended before {script} ran:\n{proc.stdout.read()}"
        assert time.monotonic() < deadline, f"{script} never started"
        time.sleep(0.1)
    time.sleep(1.0)  # well inside the job: imports done or under way
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return out


def _temps(workdir: Path) -> list[str]:
    return sorted(str(p.relative_to(workdir)) for p in (workdir / "results").rglob("*")
                  if TEMP_PATTERN.match(p.name))


def _unlock(workdir: Path) -> None:
    """Remove the killed run's stale lock, as ``snakemake --unlock`` does (and ``brainalign
    run`` when no run holds the folder), without parsing the workflow once more."""
    shutil.rmtree(workdir / ".snakemake" / "locks")


def _same_bytes(reference: Path, work: Path, files: dict) -> None:
    for path in [files["features"], *files["fit"]]:
        assert (work / path).read_bytes() == (reference / path).read_bytes(), path
    assert _temps(work) == []


def _two_runs(work: Path, target: str) -> dict:
    """A run holds the folder's lock; a second one started there stops on it."""
    first = _start(work, target, "--rerun-incomplete")
    while not list((work / ".snakemake" / "locks").glob("*.output.lock")):
        assert first.poll() is None, first.stdout.read()
        time.sleep(0.1)
    second = _start(work, target)  # the same folder, while the first one works
    log = {"second": second.communicate(timeout=300)[0]}
    assert first.poll() is None  # the first one is still working
    log["first"] = first.communicate(timeout=300)[0]
    assert second.returncode != 0
    assert "Directory cannot be locked" in log["second"], log["second"][-2000:]
    assert first.returncode == 0, log["first"][-3000:]
    assert "Directory cannot be locked" not in log["first"]
    return log


def crash_and_rerun(reference: Path, work: Path, files: dict) -> dict:
    """``work``, a copy of the finished ``reference``, loses ``files``; the run that rebuilds
    them is killed during extraction; its rerun completes while a second run started in the
    same folder stops on the lock. The fit is deleted again, its run killed during encoding,
    and the rerun completes. Both recoveries give the reference's bytes. Returns what each
    run printed (for the report)."""
    for path in [files["features"], *files["fit"]]:
        (work / path).unlink()
    target = files["fit"][2]
    log = {"kill_extraction": _kill_during(work, "extract_features", target)}
    assert not (work / files["features"]).exists()  # killed before the file was finished
    log["temps_after_kill_extraction"] = _temps(work)
    _unlock(work)  # the killed run's lock is stale (brainalign run clears it when no run holds it)
    log.update(_two_runs(work, target))
    _same_bytes(reference, work, files)

    for path in files["fit"]:
        (work / path).unlink()
    orphan = work / "results" / "encoding" / ".old_voxels.parquet.ab12cd34.tmp.parquet"
    orphan.write_bytes(b"")  # what a writer killed in an earlier crash leaves
    os.utime(orphan, (time.time() - 3600,) * 2)
    log["kill_encoding"] = _kill_during(work, "fit_encoding", target)
    assert not (work / target).exists()
    log["temps_after_kill_encoding"] = _temps(work)
    _unlock(work)
    log["rerun"] = subprocess.run(_start_cmd(work, target, "--rerun-incomplete"), text=True,
                                  capture_output=True, check=True).stderr
    assert not orphan.exists()  # removed at the start of the rerun
    _same_bytes(reference, work, files)
    return log


def crash_config() -> dict:
    """tiny_config shrunk: one subject, the naturalistic task, tiny CLIP, two conditions;
    the synthetic dataset generated from the picture features only."""
    config = tiny_config()
    config["dataset"].update(subjects=["01"], tasks={"naturalistic": {"kind": "naturalistic"}})
    config["models"] = {"clip": {"extractor": "clip", "source": "tiny", "layers": [2]}}
    config["conditions"] = ["sentence", "picture"]
    generator = {"model": "clip", "condition": "picture", "layer": 2}
    config["demo"].update(n_concepts=8, n_trs=40, image_size=16, voxel_size=16.0,
                          generators={"language": generator, "visual": generator})
    config["encoding"].update(joint=[], delays=[1, 2], block_size=5, n_permutations=20,
                              alphas=[1.0, 100.0])
    config["contrasts"]["pairs"] = {}
    return config


FILES = rebuilt_files("clip", "sentence", "naturalistic")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run, up to the fit the crash test rebuilds."""
    workdir = tmp_path_factory.mktemp("reference")
    write_config(workdir, crash_config())
    snakemake(workdir, "--cores", "2", FILES["fit"][2])
    return workdir


@pytest.mark.slow
def test_kill_9_during_extraction_and_encoding_then_rerun_gives_the_same_bytes(reference,
                                                                                tmp_path):
    work = Path(shutil.copytree(reference, tmp_path / "work", symlinks=True))
    crash_and_rerun(reference, work, FILES)


# ----------------------------------------------------------------------------- recovery
def _write(path: Path, age_s: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_orphan_temps_are_removed_when_no_other_run_holds_the_folder(tmp_path):
    from brainalign.io import atomic_write

    # the name atomic_write gives its temp file, made by atomic_write itself
    with atomic_write(tmp_path / "results" / "x" / "a_map.nii.gz") as tmp:
        name = tmp.name
    orphan = _write(tmp_path / "results" / "x" / name)
    kept = [_write(tmp_path / "results" / "x" / "a_map.nii.gz"),
            _write(tmp_path / "results" / ".snakemake_timestamp"),
            _write(tmp_path / "results" / "y" / ".hidden.tmp")]
    assert find_orphan_temps(tmp_path) == [orphan]
    assert remove_orphan_temps(tmp_path) == [orphan]
    assert not orphan.exists() and all(p.exists() for p in kept)


def test_a_live_run_keeps_its_temp_files(tmp_path):
    """Another snakemake in the folder: only temps older than its lock and its start go."""
    old = _write(tmp_path / "results" / ".f.safetensors.abcd1234.tmp.safetensors", age_s=600)
    _write(tmp_path / ".snakemake" / "locks" / "0.output.lock", age_s=300)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "snakemake"],
                             cwd=tmp_path)
    try:
        time.sleep(0.2)
        young = _write(tmp_path / "results" / ".g.parquet.efgh5678.tmp.parquet")
        assert other.pid in __import__("brainalign.recovery").recovery.snakemake_processes(tmp_path)
        assert remove_orphan_temps(tmp_path) == [old]
        assert young.exists()
    finally:
        other.kill()
        other.wait()
    assert remove_orphan_temps(tmp_path) == [young]  # no other run now
