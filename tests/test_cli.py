"""The brainalign command: subcommand table, stale lock handling, verify's exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from brainalign import cli


def test_subcommands_are_a_table():
    assert {"verify", "run"} <= set(cli.COMMANDS)
    assert all(isinstance(c, cli.Command) for c in cli.COMMANDS.values())


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert "verify" in out and "run" in out


def _lock(workdir: Path) -> Path:
    lock = workdir / ".snakemake" / "locks" / "0.input.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(str(workdir / "results"))
    return lock


def test_stale_lock_is_cleared_when_no_run_uses_the_folder(tmp_path):
    lock = _lock(tmp_path)
    message = cli.clear_stale_lock(tmp_path)
    assert "removed the stale lock" in message and "\n" not in message
    assert not lock.exists()
    assert cli.clear_stale_lock(tmp_path) is None


def test_lock_of_a_live_run_is_kept(tmp_path):
    """A process whose command is snakemake and whose folder is ours holds the lock."""
    lock = _lock(tmp_path)
    fake = tmp_path / "bin" / "snakemake"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    proc = subprocess.Popen([str(fake), "--cores", "1"], cwd=tmp_path)
    try:
        assert cli.snakemake_processes(tmp_path) == [proc.pid]
        message = cli.clear_stale_lock(tmp_path)
        assert f"pid {proc.pid}" in message and "kept" in message
        assert lock.exists()
    finally:
        proc.kill()
        proc.wait()


def test_a_run_elsewhere_does_not_hold_our_lock(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "snakemake"], cwd=other)
    try:
        assert proc.pid not in (cli.snakemake_processes(tmp_path) or [])
    finally:
        proc.kill()
        proc.wait()


def test_verify_exits_non_zero_on_a_non_bundle(tmp_path, capsys):
    assert cli.main(["verify", str(tmp_path / "nothing")]) == 1
    assert "is not a folder" in capsys.readouterr().out


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "brainalign"
    assert exe.exists(), "pip install -e . installs the brainalign command ([project.scripts])"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, env={**os.environ})
    assert out.returncode == 0 and "verify" in out.stdout


def test_run_passes_every_argument_to_snakemake(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, env):
        seen.update(cmd=cmd, env=env)
        return subprocess.CompletedProcess(cmd, 3)

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    assert cli.main(["run", "--snakefile", "S", "--directory", str(tmp_path), "--cores", "2"]) == 3
    assert seen["cmd"][1:] == ["-m", "snakemake", "--snakefile", "S", "--directory", str(tmp_path), "--cores", "2"]
    assert seen["env"]["BRAINALIGN_COMMAND"].startswith("brainalign run --snakefile S")
