"""Validation of the config section ``contrasts`` (one-line errors naming the key).

::

    contrasts:
      settings: {n_resamples: 1000, ci_level: 0.95, fdr_q: 0.05, select: either,
                 alternative: greater}
      pairs:
        vl_vs_language: {a: {model: vl, condition: joint, layer: 2},
                         b: {model: minilm, condition: language, layer: 6}}
        vl_vs_linear:   {a: {model: vl, condition: joint, layer: 2},
                         b: {joint: [{model: clip, condition: vision, layer: 2},
                                     {model: minilm, condition: language, layer: 6}]}}

A side is one feature space ``{model, condition, layer}`` (plain ridge) or ``{joint: [two
or more spaces]}`` (banded ridge over them: the linear-integration baseline).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .selection import ALTERNATIVES, SELECTIONS

__all__ = ["DEFAULT_SETTINGS", "check_contrasts", "contrast_settings", "contrast_spaces"]

DEFAULT_SETTINGS: dict[str, Any] = {
    "n_resamples": 1000,
    "ci_level": 0.95,
    "fdr_q": 0.05,
    "select": "mean",
    "alternative": "greater",
    "fold_correction": True,
}

Space = tuple[str, str, int]

_NAME = re.compile(r"[A-Za-z0-9]+")


def check_contrasts(config: Mapping[str, Any], source: str = "config/config.yaml") -> None:
    """Validate ``config['contrasts']`` (absent or empty: nothing to check).

    Raises
    ------
    brainalign.config.ConfigError
        One line naming ``contrasts.<name>.<key>`` (or ``contrasts.settings.<key>``), what
        was expected, what was found and where to fix it.
    """
    section = config.get("contrasts") or {}
    if not isinstance(section, Mapping):
        _fail("contrasts", "must be a mapping with 'settings' and 'pairs'", section, source)
    unknown = sorted(set(section) - {"settings", "pairs"})
    if unknown:
        _fail(
            f"contrasts.{unknown[0]}",
            "is not a known key (expected settings, pairs)",
            unknown[0],
            source,
        )
    contrast_settings(config, source)
    pairs = section.get("pairs") or {}
    if not isinstance(pairs, Mapping):
        _fail("contrasts.pairs", "must be a mapping of contrast names to {a, b}", pairs, source)
    for name, pair in pairs.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            _fail(
                f"contrasts.pairs.{name}",
                "must be named with letters and digits only (it is a "
                "file-name entity: e.g. vlVsLanguage)",
                name,
                source,
            )
        if not isinstance(pair, Mapping) or set(pair) != {"a", "b"}:
            found = sorted(pair) if isinstance(pair, Mapping) else pair
            _fail(f"contrasts.{name}", "must have exactly the keys a and b", found, source)
        sides = {
            side: _side_spaces(config, f"contrasts.{name}.{side}", pair[side], source)
            for side in ("a", "b")
        }
        if sides["a"] == sides["b"]:
            _fail(f"contrasts.{name}.b", "must differ from side a", pair["b"], source)


def contrast_settings(
    config: Mapping[str, Any], source: str = "config/config.yaml"
) -> dict[str, Any]:
    """``contrasts.settings`` with its defaults, validated."""
    given = (config.get("contrasts") or {}).get("settings") or {}
    unknown = sorted(set(given) - set(DEFAULT_SETTINGS))
    if unknown:
        _fail(
            f"contrasts.settings.{unknown[0]}",
            f"is not a known setting ({', '.join(DEFAULT_SETTINGS)})",
            unknown[0],
            source,
        )
    settings = {**DEFAULT_SETTINGS, **given}
    n = settings["n_resamples"]
    if isinstance(n, bool) or not isinstance(n, int) or not 100 <= n <= 1_000_000:
        _fail("contrasts.settings.n_resamples", "must be an integer in [100, 1000000]", n, source)
    for key in ("ci_level", "fdr_q"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            _fail(f"contrasts.settings.{key}", "must be a number in (0, 1)", value, source)
    if not isinstance(settings["fold_correction"], bool):
        _fail("contrasts.settings.fold_correction", "must be true or false",
              settings["fold_correction"], source)
    for key, allowed in (("select", SELECTIONS), ("alternative", ALTERNATIVES)):
        if settings[key] not in allowed:
            _fail(
                f"contrasts.settings.{key}",
                f"must be one of {', '.join(allowed)}",
                settings[key],
                source,
            )
    return settings


def contrast_spaces(config: Mapping[str, Any]) -> dict[str, dict[str, list[Space]]]:
    """The feature spaces of every contrast, to build rule inputs.

    Returns
    -------
    spaces : dict
        ``{name: {"a": [(model, condition, layer), ...], "b": [...]}}``: one space for a
        plain side, two or more for a joint side, in config order.
    """
    pairs = (config.get("contrasts") or {}).get("pairs") or {}
    return {
        name: {
            side: _side_spaces(config, f"contrasts.{name}.{side}", pair[side], "the config")
            for side in ("a", "b")
        }
        for name, pair in pairs.items()
    }


def _side_spaces(config, key: str, side: Any, source: str) -> list[Space]:
    """The spaces of one side, each checked against models, conditions and layers."""
    if isinstance(side, Mapping) and "joint" in side:
        spaces = side["joint"]
        if set(side) != {"joint"} or not isinstance(spaces, list) or len(spaces) < 2:
            _fail(
                f"{key}.joint",
                "must be a list of two or more {model, condition, layer} spaces",
                spaces,
                source,
            )
        checked = [_space(config, f"{key}.joint[{i}]", s, source) for i, s in enumerate(spaces)]
        if len(set(checked)) != len(checked):
            _fail(f"{key}.joint", "must list distinct spaces", spaces, source)
        return checked
    return [_space(config, key, side, source)]


def _space(config, key: str, space: Any, source: str) -> Space:
    if not isinstance(space, Mapping) or set(space) != {"model", "condition", "layer"}:
        found = sorted(space) if isinstance(space, Mapping) else space
        _fail(key, "must be {model, condition, layer} or {joint: [...]}", found, source)
    models = config.get("models", {})
    model, condition, layer = space["model"], space["condition"], space["layer"]
    if model not in models:
        _fail(
            f"{key}.model",
            f"must be one of the configured models ({', '.join(models)})",
            model,
            source,
        )
    if condition not in config.get("conditions", []):
        _fail(
            f"{key}.condition",
            f"must be one of 'conditions' ({', '.join(config.get('conditions', []))})",
            condition,
            source,
        )
    if isinstance(layer, bool) or layer not in models[model]["layers"]:
        _fail(
            f"{key}.layer",
            f"must be one of models.{model}.layers {list(models[model]['layers'])}",
            layer,
            source,
        )
    return (str(model), str(condition), int(layer))


def _fail(key: str, expected: str, found: Any, source: str) -> None:
    from ..config import ConfigError  # not at import: brainalign.config reaches the model zoo

    raise ConfigError(f"config '{key}' {expected}; got {found!r}. Edit {source}.")
