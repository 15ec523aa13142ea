"""Hashes of source code: the "extractor code version" of the feature cache.

The code version of an extractor is the sha256 of the source files that compute its
features: the module that registers it, the extraction pipeline
(:mod:`brainalign.features.extract`), and every ``brainalign`` module they import,
transitively. Imports are read statically (:mod:`ast`) and modules are located
without importing them, so torch is never loaded. Editing any of these files changes
the version; editing an unrelated module (another family's extractor, the encoding
stage) does not.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import importlib.util
import logging
from collections.abc import Iterable
from pathlib import Path

__all__ = ["module_file", "imported_modules", "source_closure", "source_hash", "PIPELINE_MODULES"]

logger = logging.getLogger(__name__)

# Modules every extraction runs through, whatever the extractor.
PIPELINE_MODULES = ("brainalign.features.extract",)


def module_file(name: str) -> Path | None:
    """Source file of module ``name`` without importing it or its packages.

    Returns None when there is no such module (or it is not a ``.py`` file).
    """
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name imports nothing
        for i in range(1, len(parts)):
            if spec is None or not spec.submodule_search_locations:
                return None
            spec = importlib.machinery.PathFinder.find_spec(
                ".".join(parts[: i + 1]), list(spec.submodule_search_locations)
            )
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _resolve(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(name: str, root: str) -> list[str]:
    """Modules under package ``root`` that module ``name`` imports (statically).

    ``from pkg import sub`` counts ``pkg.sub`` when it is a module, else ``pkg``.
    """
    path = module_file(name)
    if path is None:
        return []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(sub if module_file(sub) is not None else base)
    return [m for m in dict.fromkeys(found) if m == root or m.startswith(root + ".")]


def source_closure(modules: Iterable[str], root: str = "brainalign") -> list[str]:
    """``modules`` and every module under ``root`` they import, transitively; sorted.

    Package ``__init__`` modules are followed only when imported by name.
    """
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen.add(name)
        todo += imported_modules(name, root)
    return sorted(seen)


def source_hash(modules: Iterable[str], root: str = "brainalign") -> str:
    """sha256 over the closure's (module name, file bytes), in sorted order.

    Parameters
    ----------
    modules : iterable of str
        Starting modules (e.g. an extractor's module and :data:`PIPELINE_MODULES`).
    root : str
        Only modules of this package are followed.

    Returns
    -------
    str
        64 hex digits.
    """
    key = (tuple(sorted(set(modules))), root)
    cached = _HASHES.get(key)
    if cached is not None and _signature(cached[0]) == cached[1]:
        return cached[2]
    closure = source_closure(key[0], root)
    files = [module_file(name) for name in closure]
    signature = _signature(files)
    digest = hashlib.sha256()
    for name, path in zip(closure, files, strict=True):
        data = path.read_bytes()  # type: ignore[union-attr]
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    _HASHES[key] = (files, signature, digest.hexdigest())
    return digest.hexdigest()


# (modules, root) -> (files, their (mtime, size) signature, hash): reused while no file
# of the closure changes on disk.
_HASHES: dict[tuple, tuple[list, tuple, str]] = {}


def _signature(files: list) -> tuple:
    stats = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            return ()
        stats.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(stats)
