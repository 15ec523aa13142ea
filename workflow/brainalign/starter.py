"""A starter configuration with every key commented, written from the config schema.

``brainalign init DIR`` writes it: the values are the embedded demo's (so the file runs as
it is), or the schema's defaults; each key is preceded by its schema description (or, where
the schema has none, by its type, allowed values and default), so that a user edits the
``dataset`` and ``models`` sections for their data without opening the docs.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEMO_CONFIG", "starter_config", "write_starter"]

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "config.yaml"
_WIDTH = 96
_HEADER = """\
# brainalign configuration: a starter written by `brainalign init` from
# workflow/schemas/config.schema.yaml (every key below is commented with its schema text).
# As written, it runs the embedded synthetic demo. For your data, edit at least
#   dataset.format / root / subjects / tasks / rois,  stimuli.root,  models,  conditions
# then check it without running anything:  brainalign check {path}
# and run it:                               brainalign run --configfile {path}
"""


def _resolve(node: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """A subschema with its ``$ref`` (``#/$defs/...``) merged in."""
    if "$ref" not in node:
        return node
    target: Any = schema
    for part in node["$ref"].lstrip("#/").split("/"):
        target = target[part]
    return {**_resolve(target, schema), **{k: v for k, v in node.items() if k != "$ref"}}


def _describe(node: Mapping[str, Any]) -> str:
    """The schema description, or a line made of its type, choices, bounds and default."""
    if node.get("description"):
        return str(node["description"])
    parts = []
    if node.get("type") == "object":
        return "Section (config/README.md explains each key)."
    if node.get("type") == "array" and isinstance(node.get("items"), Mapping):
        items = node["items"]
        parts.append("list of " + (", ".join(map(str, items["enum"])) if "enum" in items else str(items.get("type", "values"))))
    elif "enum" in node:
        parts.append("one of " + ", ".join(map(str, node["enum"])))
    elif "type" in node:
        kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
        parts.append(" or ".join(map(str, kinds)))
    for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in node:
            parts.append(f"{sign} {node[key]}")
    if "default" in node:
        parts.append(f"default {_scalar(node['default'])}")
    return "; ".join(parts) or "see config/README.md"


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(text, _WIDTH - len(indent) - 2)]


def _scalar(value: Any) -> str:
    """``value`` as one line of flow-style YAML (without the end-of-document marker)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()


def _children(node: Mapping[str, Any], value: Any, schema: Mapping[str, Any]) -> list[tuple[str, Mapping, Any]]:
    """(key, subschema, value) of an object node: schema properties first, then map entries."""
    props = node.get("properties", {})
    value = value if isinstance(value, Mapping) else {}
    extra = node.get("additionalProperties")
    out = []
    for key, sub in props.items():
        sub = _resolve(sub, schema)
        out.append((key, sub, value.get(key, sub.get("default", _MISSING))))
    for key, val in value.items():
        if key not in props:
            out.append((key, _resolve(extra, schema) if isinstance(extra, Mapping) else {}, val))
    return out


_MISSING = object()


def _render(node: Mapping[str, Any], value: Any, schema: Mapping[str, Any], depth: int) -> list[str]:
    indent, lines = "  " * depth, []
    props = node.get("properties", {})
    for key, sub, val in _children(node, value, schema):
        entry = key not in props and not sub.get("description")
        lines += _comment(f"'{key}': one entry; its keys follow." if entry else _describe(sub), indent)
        nested = isinstance(val, Mapping) and val and ("properties" in sub or "additionalProperties" in sub)
        if val is _MISSING:
            lines.append(f"{indent}# {key}:")
        elif nested:
            lines.append(f"{indent}{key}:")
            lines += _render(sub, val, schema, depth + 1)
        else:
            lines.append(f"{indent}{key}: {_scalar(val)}")
        if depth == 0:
            lines.append("")
    return lines


def starter_config(schema_path: str | Path | None = None, example: str | Path | None = None, path: str = "config/config.yaml") -> str:
    """The text of a starter configuration.

    Parameters
    ----------
    schema_path : path-like or None
        The config JSON Schema (default: the workflow's).
    example : path-like or None
        Values to start from (default: the embedded demo, config/config.yaml).
    path : str
        Where the file will be written (quoted in the header).

    Returns
    -------
    str
        YAML text: every key of the schema, each after its description.
    """
    from brainalign.config import SCHEMA_PATH

    schema = yaml.safe_load(Path(schema_path or SCHEMA_PATH).read_text())
    values = yaml.safe_load(Path(example or DEMO_CONFIG).read_text())
    return _HEADER.format(path=path) + "\n" + "\n".join(_render(schema, values, schema, 0)).rstrip() + "\n"


def write_starter(directory: str | Path, force: bool = False) -> Path:
    """Write ``DIR/config/config.yaml`` (the layout of a deployed workflow); returns its path.

    Raises
    ------
    FileExistsError
        When the file exists and ``force`` is false.
    """
    target = Path(directory) / "config" / "config.yaml"
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; choose another folder or pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(starter_config(path=str(target)))
    return target
