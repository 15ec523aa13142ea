"""The ``brainalign`` command: ``brainalign verify BUNDLE`` and ``brainalign run [snakemake args]``.

Subcommands live in :data:`COMMANDS` (name -> :class:`Command`); a new one is a
function registered with :func:`command`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Command", "COMMANDS", "command", "main", "snakemake_processes", "clear_stale_lock"]


@dataclass(frozen=True)
class Command:
    """One subcommand: its help, its arguments and what it does (returns the exit code)."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated function as subcommand ``name``."""
    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(help, arguments, run)
        return run
    return register


# ---- verify ------------------------------------------------------------------------


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="the bundle folder (results/bundle)")
    parser.add_argument("--no-crate", action="store_true", help="skip the RO-Crate validation (faster)")


@command("verify", "check a result bundle: checksums, files, private paths, RO-Crate", _verify_arguments)
def verify(args: argparse.Namespace) -> int:
    from brainalign.bundle import read_manifest, verify_bundle

    problems = verify_bundle(args.bundle, validate=not args.no_crate)
    for line in problems:
        print(line)
    if problems:
        print(f"{args.bundle}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.bundle}: OK ({len(read_manifest(args.bundle))} files; checksums, paths"
          f"{'' if args.no_crate else ' and RO-Crate'} verified)")
    return 0


# ---- run ---------------------------------------------------------------------------


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="arguments passed to snakemake")


def _workdir(args: Sequence[str]) -> Path:
    for i, arg in enumerate(args):
        if arg in ("--directory", "-d") and i + 1 < len(args):
            return Path(args[i + 1]).resolve()
        if arg.startswith("--directory="):
            return Path(arg.split("=", 1)[1]).resolve()
    return Path.cwd().resolve()


def snakemake_processes(workdir: str | os.PathLike, proc: str | os.PathLike = "/proc") -> list[int] | None:
    """Ids of live snakemake processes working in ``workdir`` (None where /proc is not readable)."""
    proc, workdir, found = Path(proc), Path(workdir).resolve(), []
    if not proc.is_dir():
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if any("snakemake" in Path(a).name for a in args[:3]) and (_workdir_of(args, cwd) == workdir):
            found.append(int(entry.name))
    return sorted(found)


def _workdir_of(args: list[str], cwd: Path) -> Path:
    for i, arg in enumerate(args):
        if arg in ("--directory", "-d") and i + 1 < len(args):
            return (cwd / args[i + 1]).resolve()
        if arg.startswith("--directory="):
            return (cwd / arg.split("=", 1)[1]).resolve()
    return cwd.resolve()


def clear_stale_lock(workdir: str | os.PathLike) -> str | None:
    """Remove Snakemake's lock in ``workdir`` when no snakemake process uses that folder.

    Returns
    -------
    str or None
        One line saying what was done (None: there was no lock).
    """
    locks = sorted((Path(workdir) / ".snakemake" / "locks").glob("*.lock"))
    if not locks:
        return None
    live = snakemake_processes(workdir)
    if live is None:
        return "brainalign: a lock exists and running processes cannot be listed here; if no run is active, run `snakemake --unlock`"
    if live:
        return f"brainalign: a run is active in this folder (snakemake pid {', '.join(map(str, live))}); its lock is kept"
    for lock in locks:
        lock.unlink(missing_ok=True)
    return "brainalign: removed the stale lock of an interrupted run (no snakemake process uses this folder)"


@command("run", "run the workflow with snakemake, clearing a stale lock left by a crash", _run_arguments)
def run(args: argparse.Namespace) -> int:
    from brainalign.bundle.record import mark_run_start

    snakemake_args = [a for a in args.snakemake_args if a != "--"]
    message = clear_stale_lock(_workdir(snakemake_args))
    if message:
        print(message, file=sys.stderr)
    env = dict(os.environ)
    mark_run_start(["brainalign", "run", *snakemake_args], env)
    return subprocess.run([sys.executable, "-m", "snakemake", *snakemake_args], env=env).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brainalign`` console command; returns the exit code."""
    parser = argparse.ArgumentParser(prog="brainalign", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        cmd.arguments(sub.add_parser(name, help=cmd.help, description=cmd.help))
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"] and not {"-h", "--help"} & set(argv[1:2]):
        # everything after `run` is snakemake's, options included
        return COMMANDS["run"].run(argparse.Namespace(command="run", snakemake_args=argv[1:]))
    args = parser.parse_args(argv)
    return COMMANDS[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
