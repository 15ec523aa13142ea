"""The run record: what differs between two runs of the same workflow on the same data.

Times, the command line (paths made relative, no host or user name), the Snakemake
profile, the compute backend (``BRAINALIGN_BACKEND``), the device and dtype each model
ran on (as the extraction logs say; the configured request beside it), and whether each feature file came from the feature cache. It is
stored in the bundle's RO-Crate metadata (:data:`~brainalign.bundle.manifest.RUN_RECORD`).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["START_VAR", "COMMAND_VAR", "now", "mark_run_start", "relative_command", "profile_of",
           "feature_cache_status", "devices_used", "collect_run_record"]

START_VAR = "BRAINALIGN_RUN_START"
COMMAND_VAR = "BRAINALIGN_COMMAND"
_CACHE = re.compile(r"feature cache (hit|miss|off)")
# The line features.loading.load_model logs once the model is on its device.
_DEVICE = re.compile(r"model (\S+) loaded: device (\S+) dtype (\S+)")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def mark_run_start(argv: Sequence[str], environ: dict[str, str] = os.environ) -> None:  # type: ignore[assignment]
    """Record the start time and command line in ``environ`` unless a caller already did.

    Called while Snakemake reads the workflow; jobs inherit the variables.
    """
    environ.setdefault(START_VAR, now())
    environ.setdefault(COMMAND_VAR, shlex.join(argv))


def _relative_token(token: str, cwd: Path) -> str:
    key, sep, value = token.partition("=") if token.startswith("--") else ("", "", token)
    if not os.path.isabs(value):
        return token
    path = Path(value)
    try:
        rel = path.relative_to(cwd).as_posix() or "."
    except ValueError:
        rel = "…/" + path.name if path.name else "…"
    return f"{key}{sep}{rel}"


def relative_command(command: str, cwd: str | os.PathLike = ".") -> str:
    """``command`` with absolute paths relative to ``cwd`` (others cut to ``…/name``)."""
    cwd = Path(cwd).resolve()
    tokens = shlex.split(command)
    if tokens and os.path.isabs(tokens[0]):
        tokens[0] = Path(tokens[0]).name
    return shlex.join(_relative_token(t, cwd) for t in tokens)


def profile_of(command: str, environ: Mapping[str, str] = os.environ, cwd: str | os.PathLike = ".") -> str | None:
    """The ``--profile`` of a Snakemake command line (or ``$SNAKEMAKE_PROFILE``, made relative), else None."""
    tokens = shlex.split(command)
    for i, token in enumerate(tokens):
        if token == "--profile" and i + 1 < len(tokens):
            return tokens[i + 1]
        if token.startswith("--profile="):
            return token.split("=", 1)[1]
    profile = environ.get("SNAKEMAKE_PROFILE")
    return _relative_token(profile, Path(cwd).resolve()) if profile else None


def feature_cache_status(logs: Sequence[str | os.PathLike]) -> dict[str, str]:
    """``hit``/``miss``/``off`` of each feature extraction, read from its log (log name -> status)."""
    status = {}
    for log in map(Path, logs):
        found = _CACHE.findall(log.read_text(errors="replace")) if log.is_file() else []
        status[log.name.removesuffix(".log")] = found[-1] if found else "unknown"
    return status


def devices_used(logs: Sequence[str | os.PathLike]) -> dict[str, dict[str, str]]:
    """The device and dtype each model was loaded on, read from the extraction logs.

    Returns
    -------
    dict
        Model name -> ``{"device": ..., "dtype": ...}``; several values (jobs on
        different machines) are joined with ``,``. A model whose features all came
        from the feature cache was never loaded and is absent.
    """
    seen: dict[str, dict[str, set[str]]] = {}
    for log in map(Path, logs):
        text = log.read_text(errors="replace") if log.is_file() else ""
        for model, device, dtype in _DEVICE.findall(text):
            entry = seen.setdefault(model, {"device": set(), "dtype": set()})
            entry["device"].add(device)
            entry["dtype"].add(dtype)
    return {model: {k: ",".join(sorted(v)) for k, v in entry.items()} for model, entry in sorted(seen.items())}


def _devices(models: Mapping[str, Mapping[str, Any]], logs: Sequence[str | os.PathLike]) -> dict[str, dict[str, str]]:
    used = devices_used(logs)
    out = {}
    for name, spec in sorted(models.items()):
        found = used.get(name, {"device": "not loaded", "dtype": "not loaded"})
        out[name] = {**found, "requested": f"{spec.get('device', 'auto')} {spec.get('dtype', 'float32')}"}
    return out


def collect_run_record(
    models: Mapping[str, Mapping[str, Any]],
    extraction_logs: Sequence[str | os.PathLike],
    environ: Mapping[str, str] = os.environ,
    cwd: str | os.PathLike = ".",
) -> dict[str, Any]:
    """The run record of the current run.

    Parameters
    ----------
    models : mapping
        The resolved ``models`` section of the configuration (name -> spec).
    extraction_logs : sequence of path-like
        The logs of the feature extraction jobs.
    environ : mapping
        The environment (``BRAINALIGN_RUN_START``, ``BRAINALIGN_COMMAND``, ``BRAINALIGN_BACKEND``).
    cwd : path-like
        The working directory, to make the command's paths relative.

    Returns
    -------
    dict
        Keys ``start``, ``end``, ``command``, ``profile``, ``backend``, ``devices``
        (model -> ``device``, ``dtype`` used, ``not loaded`` when every feature came
        from the cache, and the configured ``requested`` pair) and ``feature_cache``
        (extraction -> status).
    """
    command = relative_command(environ.get(COMMAND_VAR, "snakemake"), cwd)
    return {
        "start": environ.get(START_VAR),
        "end": now(),
        "command": command,
        "profile": profile_of(command, environ, cwd),
        "backend": environ.get("BRAINALIGN_BACKEND", "numpy"),
        "devices": _devices(models, extraction_logs),
        "feature_cache": feature_cache_status(extraction_logs),
    }
