"""Check a result bundle: checksums, missing/extra/changed files, private paths, RO-Crate.

:func:`verify_bundle` returns one line per problem; an empty list means the bundle is
exactly what its manifest says, carries no absolute path, host or user name, and its
RO-Crate metadata is valid and agrees with the files.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import socket
from pathlib import Path

from .. import io
from .crate import validate_crate
from .manifest import MANIFEST, RUN_RECORD, SHA256SUMS, bundle_files, read_manifest

__all__ = ["verify_bundle", "private_strings", "check_text"]

logger = logging.getLogger(__name__)

_BINARY = (".parquet", ".png", ".gz", ".npz", ".safetensors", ".nii", ".pdf", ".jpg", ".jpeg", ".gii")
# An absolute path: a POSIX path under a usual top folder, a home folder, or a Windows drive.
_ABSOLUTE = re.compile(
    r"(?<![\w.~-])(?:/(?:home|Users|root|tmp|work|mnt|scratch|data|var|opt|srv|media|gpfs|lustre|net|private|"
    r"storage|projects?|run|usr|nfs)/[\w.~+-]|[A-Za-z]:\\\\?[\w.-])"
)


def private_strings(bundle: str | os.PathLike) -> dict[str, str]:
    """Strings that must not appear in a bundle: folders of this machine, host and user name."""
    found = {
        "absolute path of the bundle's folder": str(Path(bundle).resolve().parent),
        "absolute path of the working directory": os.getcwd(),
        "home folder": str(Path.home()),
    }
    # Names shorter than 4 characters or common words (root, user) would match ordinary text.
    for what, name in (("host name", socket.gethostname()), ("user name", getpass.getuser())):
        if len(name) >= 4 and name not in ("root", "user", "runner", "localhost"):
            found[what] = name
    return {what: text for what, text in found.items() if text and text not in ("/", ".")}


def check_text(path: Path, rel: str, private: dict[str, str]) -> list[str]:
    """Problems of one text file: an absolute path, host name or user name in it."""
    text = path.read_text(errors="replace")
    problems = []
    for what, value in private.items():
        pattern = re.escape(value) if os.path.isabs(value) else rf"(?<![\w.-]){re.escape(value)}(?![\w-])"
        if re.search(pattern, text):
            problems.append(f"private: {rel} contains the {what} ('{value}'); write paths relative to the "
                            "dataset/stimuli roots and rebuild the bundle")
    match = _ABSOLUTE.search(text)
    if match:
        line = text.count("\n", 0, match.start()) + 1
        problems.append(f"private: {rel} line {line} contains an absolute path "
                        f"('{text[match.start():match.start() + 40].split()[0]}'); paths must be relative")
    return problems


def _is_text(path: Path) -> bool:
    if path.name.endswith(_BINARY):
        return False
    with path.open("rb") as f:
        return b"\0" not in f.read(8192)


def _check_files(root: Path) -> list[str]:
    try:
        manifest = read_manifest(root)
    except (OSError, ValueError) as err:
        return [f"manifest: {root / MANIFEST} cannot be read ({err}); rebuild the bundle"]
    problems, listed = [], set(manifest["path"])
    for row in manifest.itertuples():
        path = root / row.path
        if not path.is_file():
            problems.append(f"missing: {row.path} is in {MANIFEST} but not in the bundle")
        elif (found := io.sha256_file(path)) != row.sha256:
            problems.append(f"changed: {row.path} sha256 expected {row.sha256[:12]}…, found {found[:12]}…")
    problems += [f"extra: {f} is in the bundle but not in {MANIFEST}" for f in bundle_files(root) if f not in listed]
    sums = root / SHA256SUMS
    expected = "".join(f"{row.sha256}  {row.path}\n" for row in manifest.itertuples())
    if not sums.is_file() or sums.read_text() != expected:
        problems.append(f"manifest: {SHA256SUMS} does not match {MANIFEST}; rebuild the bundle")
    return problems


def _check_crate(root: Path) -> list[str]:
    path = root / RUN_RECORD
    if not path.is_file():
        return [f"crate: {RUN_RECORD} is missing; rebuild the bundle"]
    try:
        graph = {e["@id"]: e for e in json.loads(path.read_text())["@graph"]}
    except (ValueError, KeyError, TypeError) as err:
        return [f"crate: {RUN_RECORD} is not RO-Crate JSON-LD ({err}); rebuild the bundle"]
    parts = {p["@id"] for p in graph["./"].get("hasPart", [])} if "./" in graph else set()
    problems = [f"crate: {f} is not described in {RUN_RECORD}" for f in bundle_files(root) if f not in parts]
    for rel in sorted(parts):
        sha = graph.get(rel, {}).get("sha256")
        if sha and (root / rel).is_file() and io.sha256_file(root / rel) != sha:
            problems.append(f"crate: {rel} sha256 in {RUN_RECORD} expected {sha[:12]}…, found another file")
    return problems + [f"crate: {issue}" for issue in validate_crate(root)]


def verify_bundle(bundle: str | os.PathLike, *, validate: bool = True) -> list[str]:
    """Check the bundle at ``bundle``; one line per problem (empty: the bundle is sound).

    Parameters
    ----------
    bundle : path-like
        The bundle folder (``results/bundle``).
    validate : bool
        Also check the RO-Crate metadata (with ``roc-validator``: some seconds).

    Returns
    -------
    list of str
        Problems, each ``"<kind>: <file> ..."`` with kind missing, extra, changed,
        manifest, private or crate.
    """
    root = Path(bundle)
    if not root.is_dir():
        return [f"bundle: {bundle} is not a folder; give the bundle's folder (results/bundle)"]
    problems = _check_files(root)
    private = private_strings(root)
    for rel in [*bundle_files(root), RUN_RECORD, MANIFEST, SHA256SUMS]:
        if (root / rel).is_file() and _is_text(root / rel):
            problems += check_text(root / rel, rel, private)
    if validate:
        problems += _check_crate(root)
    logger.info("verified %s: %d problems", root, len(problems))
    return problems
