"""The brainalign command (click): init, models, check, run, verify; stale lock handling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from brainalign import cli
from brainalign.config import validate_config
from brainalign.starter import DEMO_CONFIG

COMMANDS = ("init", "models", "check", "run", "verify")


def test_subcommands_are_a_table():
    assert set(COMMANDS) == set(cli.COMMANDS)
    assert all(isinstance(c, click.Command) for c in cli.COMMANDS.values())


def test_help_lists_subcommands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name, capsys):
    assert cli.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: brainalign {name}") and len(out.splitlines()) >= 4


def test_init_writes_a_commented_config_that_validates(tmp_path, capsys):
    assert cli.main(["init", str(tmp_path / "study")]) == 0
    path = tmp_path / "study" / "config" / "config.yaml"
    assert f"wrote {path}" in capsys.readouterr().out
    text = path.read_text()
    config = yaml.safe_load(text)
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    assert validate_config(config) == validate_config(demo)
    lines = text.splitlines()
    keys = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    uncommented = [lines[i] for i in keys if not lines[i - 1].lstrip().startswith("#")]
    assert not uncommented, uncommented[:5]
    assert "# The one seed every stochastic step derives its random state from." in text
    assert cli.main(["init", str(tmp_path / "study")]) == 1  # never overwrites
    assert "exists" in capsys.readouterr().err


def test_models_lists_families_conditions_and_ids(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "clip  [image, text]" in out and "openai/clip-vit-base-patch32" in out
    assert cli.main(["models", "--family", "lxmert"]) == 0
    out = capsys.readouterr().out
    assert "seeded noise image" in out and "conditions: sentence, picture, noise" in out
    assert cli.main(["models", "--family", "nope"]) == 1
    assert "unknown family 'nope'; registered: text_encoder" in capsys.readouterr().err


def test_check_passes_the_demo_and_names_the_problem_of_a_broken_config(tmp_path, capsys):
    assert cli.main(["check", str(DEMO_CONFIG)]) == 0
    assert "configuration valid (3 models" in capsys.readouterr().out
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["encoding"]["alphas"] = []
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    assert cli.main(["check", str(tmp_path / "bad.yaml")]) == 1
    assert "'encoding.alphas'" in capsys.readouterr().err


def test_check_runs_the_readers_check_on_real_formats(tmp_path, capsys):
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["dataset"].update(format="bids", root="data", mask=None)
    config["stimuli"]["root"] = "stimuli"
    for folder in ("data", "stimuli"):
        (tmp_path / folder).mkdir()
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert cli.main(["check", str(tmp_path / "c.yaml"), "--directory", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "subject '01' not found: no folder sub-01 under data" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "results").exists() and not (tmp_path / ".snakemake").exists()


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


def test_run_in_a_study_folder_uses_the_workflows_snakefile(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(cli.subprocess, "run", lambda cmd, env: seen.update(cmd=cmd) or subprocess.CompletedProcess(cmd, 0))
    assert cli.main(["run", "--directory", str(tmp_path), "-n"]) == 0
    assert seen["cmd"][3:] == ["--snakefile", str(cli.SNAKEFILE), "--directory", str(tmp_path), "-n"]
    assert cli.SNAKEFILE.is_file()
    (tmp_path / "workflow").mkdir()
    (tmp_path / "workflow" / "Snakefile").write_text("")  # a snakedeploy folder: its own
    assert cli.main(["run", "--directory", str(tmp_path), "-n"]) == 0
    assert seen["cmd"][3:] == ["--directory", str(tmp_path), "-n"]
