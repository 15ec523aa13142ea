"""The workflow on a real single-node SLURM cluster (tests/slurm/start_cluster.sh).

The cluster runs here from Debian's slurm-wlm and munge, with the daemons started directly.
The tests skip, with the reason, where that is impossible (not root, no apt-get, the
daemons do not start). Snakemake runs with profiles/slurm, fitted to this one node: the
same keys and resource expressions, with CPUs and memory scaled down so that jobs fit.
"""

from __future__ import annotations

import copy
import filecmp
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from .conftest import REPO, SNAKEMAKE, snakemake, tiny_config, write_config

pytestmark = pytest.mark.workflow

CLUSTER = Path(__file__).parent / "slurm"
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
MEM_BASE_MB = 1000  # first-attempt memory of every rule on the test node
TIMEOUT_S = 1200  # a run still going after this is interrupted (SIGINT) and fails
# Settings of this cluster, not of the workflow: no accounting (so no sacct, and no
# account), and a status check every few seconds instead of the plugin's 40 s.
CLUSTER_SETTINGS = {
    "slurm-no-account": True,
    "slurm-status-command": "squeue",
    "slurm-init-seconds-before-status-checks": 2,
    "latency-wait": 5,
}


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node SLURM cluster; stopped after the module's tests."""
    if os.geteuid() != 0:
        pytest.skip("a SLURM test cluster needs root (to install slurm-wlm/munge and start their daemons)")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("slurm-wlm is not installed and apt-get is unavailable to install it")
    start = subprocess.run(["bash", str(CLUSTER / "start_cluster.sh")], capture_output=True, text=True,
                           timeout=900)
    if start.returncode != 0:
        reason = start.stderr.strip().splitlines() or [f"exit status {start.returncode}"]
        pytest.skip(f"the single-node SLURM cluster did not start: {reason[0]}")
    yield start.stdout.strip()
    subprocess.run(["bash", str(CLUSTER / "stop_cluster.sh")], capture_output=True, text=True, timeout=120)


def node_cpus() -> int:
    out = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


def fit_resource(name: str, value, cpus: int):
    """A profile resource scaled to the test node, keeping its form (expression or number)."""
    if name == "mem_mb":
        scaled = re.sub(r"^\d+", str(MEM_BASE_MB), str(value))
        return scaled if isinstance(value, str) else MEM_BASE_MB
    if name == "cpus_per_task" and isinstance(value, int):
        return min(value, cpus)
    return value


def fitted_profile(dest: Path, cpus: int) -> Path:
    """profiles/slurm with CPUs and memory fitted to the test node, plus this cluster's settings."""
    profile = yaml.safe_load(PROFILE.read_text())
    fitted = copy.deepcopy(profile)
    fitted["default-resources"] = {k: fit_resource(k, v, cpus) for k, v in profile["default-resources"].items()}
    fitted["set-resources"] = {
        rule: {k: fit_resource(k, v, cpus) for k, v in resources.items()}
        for rule, resources in profile["set-resources"].items()
    }
    if "set-threads" in profile:
        fitted["set-threads"] = {rule: min(int(n), cpus) for rule, n in profile["set-threads"].items()}
    fitted.update(CLUSTER_SETTINGS)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(fitted, sort_keys=False))
    return dest


def run_on_cluster(cmd: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Run Snakemake; past TIMEOUT_S it is stopped with SIGINT, which cancels its SLURM jobs."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # SIGTERM would leave its jobs queued
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"snakemake on SLURM ran past {TIMEOUT_S} s and was interrupted:\n{out[-6000:]}")
    wall = time.monotonic() - start
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, "")
    if proc.returncode != 0:
        logs = "\n".join(p.read_text()[-2000:] for p in sorted(cwd.glob(".snakemake/slurm_logs/**/*.log"))[-3:])
        pytest.fail(f"snakemake on SLURM failed ({proc.returncode}):\n{out[-8000:]}\n{logs}")
    return result, wall


def slurm_jobs(path: Path) -> list[dict[str, str]]:
    """What the toy rules recorded, one dict per attempt: threads, and the job's
    `scontrol show job` fields (JobId, MinMemoryNode, CPUs/Task, TresPerJob...)."""
    return [dict(kv.split("=", 1) for kv in line.split() if "=" in kv) for line in path.read_text().splitlines()]


def mem_mb(job: dict[str, str]) -> int:
    return int(job["MinMemoryNode"].rstrip("M"))


# The jobstep plugin strips the allocation's SLURM_* variables, so ask the controller.
RECORD = 'echo "threads={threads} $(scontrol show job -o $SLURM_JOB_ID)" >> {params.log}'
ALLOCATED_MB = '$(scontrol show job -o $SLURM_JOB_ID | grep -o "MinMemoryNode=[0-9]*" | cut -d= -f2)'

TOY_SNAKEFILE = textwrap.dedent(
    f"""
    # Rules named like the workflow's, so that profiles/slurm's per-rule resources apply.
    rule all:
        input:
            "extract_features.done",
            "fit_encoding.done",
            "compute_rsa.done",
            "retry_in_allocation.done",


    rule extract_features:
        output:
            "extract_features.done",
        params:
            log="extract_features.attempts",
        threads: 2
        shell:
            '{RECORD} && touch {{output}}'


    rule compute_rsa:
        output:
            "compute_rsa.done",
        params:
            log="compute_rsa.attempts",
        shell:
            '{RECORD} && touch {{output}}'


    # Fails unless its allocation holds the second attempt's memory: succeeds only when the
    # resubmission's sbatch received the memory scaled with the attempt.
    rule fit_encoding:
        output:
            "fit_encoding.done",
        params:
            log="fit_encoding.attempts",
            need=2 * {MEM_BASE_MB},
        shell:
            '{RECORD} && test "{ALLOCATED_MB}" -ge {{params.need}} && touch {{output}}'


    # A rule-level retries: re-runs the job inside its first allocation.
    rule retry_in_allocation:
        output:
            "retry_in_allocation.done",
        params:
            log="retry_in_allocation.attempts",
        retries: 1
        shell:
            '{RECORD} && test "$(wc -l < {{params.log}})" -ge 2 && touch {{output}}'
    """
)


def test_profile_resources_and_retries_reach_sbatch(slurm_cluster, tmp_path):
    cpus = node_cpus()
    profile = fitted_profile(tmp_path / "profile", cpus)
    workdir = tmp_path / "toy"
    workdir.mkdir()
    (workdir / "Snakefile").write_text(TOY_SNAKEFILE)
    run_on_cluster([*SNAKEMAKE, "--workflow-profile", str(profile)], workdir)

    resources = yaml.safe_load(PROFILE.read_text())["set-resources"]
    (extract,) = slurm_jobs(workdir / "extract_features.attempts")
    assert resources["extract_features"]["gpu"] == 1 and extract.get("TresPerJob") == "gres:gpu:1"
    assert extract["CPUs/Task"] == extract["threads"] == "2"  # cpus_per_task: threads
    assert mem_mb(extract) == MEM_BASE_MB
    (default,) = slurm_jobs(workdir / "compute_rsa.attempts")
    assert "TresPerJob" not in default and default["CPUs/Task"] == "1" and mem_mb(default) == MEM_BASE_MB

    # profile retries: the failed job is resubmitted, and its sbatch gets 2 x the memory
    first, second = slurm_jobs(workdir / "fit_encoding.attempts")
    assert first["JobId"] != second["JobId"]
    assert (mem_mb(first), mem_mb(second)) == (MEM_BASE_MB, 2 * MEM_BASE_MB)
    assert second.get("TresPerJob") == "gres:gpu:1"

    # rule-level retries: the second attempt runs in the same allocation, with the same memory
    first, second = slurm_jobs(workdir / "retry_in_allocation.attempts")
    assert first["JobId"] == second["JobId"] and mem_mb(first) == mem_mb(second)


def slurm_demo_config() -> dict:
    """tiny_config() cut to one model (CLIP, which then drives both planted ROIs), one layer,
    one condition: 37 jobs instead of 180. Every rule but make_noise_images runs, each as its
    own SLURM job (two Snakemake start-ups each), so the job count sets the test's duration."""
    config = tiny_config()
    config["dataset"]["subjects"] = ["01", "02"]
    config["models"] = {"clip": {**config["models"]["clip"], "layers": [2]}}
    config["demo"]["generators"]["language"] = {"model": "clip", "condition": "sentence", "layer": 2}
    config["conditions"] = ["sentence"]
    config["encoding"]["joint"] = []  # the demo's joint model needs minilm, which is cut here
    config["contrasts"] = {}  # the demo's contrast needs the picture condition, cut here
    return config


def result_files(workdir: Path) -> dict[str, Path]:
    """Every file the run wrote under results/, except its logs and benchmarks."""
    root = workdir / "results"
    skip = ("logs", "benchmarks")
    return {
        str(p.relative_to(root)): p
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


def test_demo_on_slurm_equals_local_run(slurm_cluster, tmp_path, record_property):
    config = slurm_demo_config()
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    for workdir in (local, cluster):
        write_config(workdir, config)

    start = time.monotonic()
    snakemake(local, "--cores", "2")
    local_wall = time.monotonic() - start
    profile = fitted_profile(tmp_path / "profile", node_cpus())
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(cluster),
           "--workflow-profile", str(profile)]
    proc, cluster_wall = run_on_cluster(cmd, cluster)
    record_property("local_wall_s", round(local_wall, 1))
    record_property("slurm_wall_s", round(cluster_wall, 1))
    print(f"tiny demo: local {local_wall:.0f} s, SLURM {cluster_wall:.0f} s", file=sys.stderr)

    # every job went through sbatch except the report, which is a local rule (it runs
    # snakemake --report itself), and all of them finished
    ran_locally = set(re.findall(r"localrule (\w+):", proc.stdout)) - {"all"}
    assert ran_locally <= {"make_report"}, ran_locally
    assert re.search(r"(\d+) of \1 steps \(100%\) done", proc.stdout)

    expected, produced = result_files(local), result_files(cluster)
    assert "bundle/MANIFEST.tsv" in expected
    assert sorted(produced) == sorted(expected)
    # the bundle's run record (times, command, executor) is the one file allowed to differ
    run_record = "bundle/ro-crate-metadata.json"
    different = [name for name in expected if name != run_record
                 and not filecmp.cmp(expected[name], produced[name], shallow=False)]
    assert different == [], f"{len(different)} of {len(expected)} result files differ: {different[:10]}"
