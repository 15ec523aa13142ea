"""The ``neurons`` section of the configuration: defaults and one-line checks at config time.

Called once from :func:`brainalign.config.validate_config`, so that a bad request stops the
run before any job: units asked of a model, layer or kind that has none, an atlas without
network labels, an unknown correction, and the synthetic_neurons demo's planted units.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["NEURONS_DEFAULTS", "DEMO_DEFAULTS", "check_neurons", "neurons_jobs", "required_inputs",
           "demo_features"]

#: Every key of the ``neurons`` section with its default (config/README.md, ## neurons).
NEURONS_DEFAULTS: dict[str, Any] = {
    "models": {},
    "tasks": None,
    "atoms": None,
    "n_permutations": 200,
    "correction": "maxstat",
    "alpha": 0.05,
    "block_length": None,
    "unit_batch": 256,
    "voxel_batch": 8192,
    "n_null": 1000,
    "networks": {},
    "contrast": None,
    "demo": {},
}
MODEL_DEFAULTS: dict[str, Any] = {"condition": "joint", "layers": None, "kinds": ["hidden"]}
DEMO_DEFAULTS: dict[str, Any] = {
    "voxel_size": 12.0,
    "snr": 2.0,
    "ar1_phi": 0.3,
    "group_size": 3,
    "plants": [],
}
CORRECTIONS = ("maxstat", "fdr_by")
_KINDS = ("hidden", "head", "mlp")
# Families whose extractors write no single units (heads, MLP neurons): no transformer
# blocks (static embeddings), an EfficientNet vision tower (ALIGN), audio encoders.
_NO_UNITS = ("static", "align", "audio_encoder")
_OPTION = {"head": "attention_heads", "mlp": "mlp_neurons"}


def _fail(message: str, source: str) -> None:
    from ..config import ConfigError  # noqa: PLC0415 (config imports this module lazily)

    raise ConfigError(f"{message}. Edit {source}.")


def _fill(section: Any, defaults: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    section = {} if section is None else section
    if not isinstance(section, Mapping):
        _fail(f"config '{key}' must be a mapping; got {type(section).__name__}", source)
    unknown = sorted(set(section) - set(defaults))
    if unknown:
        _fail(f"config '{key}' has unknown keys {unknown}; known: {sorted(defaults)}", source)
    return {**copy.deepcopy(dict(defaults)), **section}


def _check_model(config: Mapping[str, Any], name: str, spec: dict, source: str) -> None:
    key = f"neurons.models.{name}"
    model = config["models"].get(name)
    if model is None:
        _fail(f"config '{key}' names model '{name}', which is not in 'models' "
              f"({', '.join(config['models'])})", source)
    from ..config import task_conditions  # noqa: PLC0415

    runs = {c for t in config["dataset"]["tasks"] for c in task_conditions(config, t, name)}
    if spec["condition"] not in runs:
        _fail(f"config '{key}.condition' is '{spec['condition']}', which model '{name}' does not "
              f"run on any task (it runs {sorted(runs)}); pick one of those or add it to "
              "'conditions'", source)
    spec["layers"] = list(model["layers"]) if spec["layers"] is None else spec["layers"]
    extracted = model["layers"]
    missing = [layer for layer in spec["layers"] if extracted != "all" and layer not in extracted]
    if missing or not spec["layers"]:
        _fail(f"config '{key}.layers' asks for units of layers {missing or spec['layers']}, which "
              f"model '{name}' does not extract (models.{name}.layers: {extracted})", source)
    _check_kinds(name, model, spec["kinds"], key, source)


def _check_kinds(name: str, model: Mapping[str, Any], kinds: Any, key: str, source: str) -> None:
    if not isinstance(kinds, list) or not kinds or set(kinds) - set(_KINDS):
        _fail(f"config '{key}.kinds' must be a non-empty list of {list(_KINDS)}; got {kinds!r}",
              source)
    for kind in (k for k in kinds if k in _OPTION):
        if model["extractor"] in _NO_UNITS:
            _fail(f"config '{key}.kinds' asks for '{kind}' units of model '{name}' "
                  f"({model['extractor']}), a family with none (static embeddings, ALIGN and "
                  "audio encoders write no heads or MLP neurons); use [hidden]", source)
        if not model.get(_OPTION[kind]):
            _fail(f"config '{key}.kinds' asks for '{kind}' units but 'models.{name}."
                  f"{_OPTION[kind]}' is false; set it to true", source)


def _check_networks(config: Mapping[str, Any], networks: Any, source: str) -> None:
    rois = list(config["dataset"]["rois"])
    if not isinstance(networks, Mapping) or not networks:
        _fail("config 'neurons.networks' must label the atlas ROIs with functional networks "
              "(network -> list of ROI names of 'dataset.rois', e.g. language: [language]); "
              f"got {networks!r}: the atlas has no network labels", source)
    for network, members in networks.items():
        members = [members] if isinstance(members, str) else members
        unknown = [m for m in members or [] if m not in rois]
        if not members or unknown:
            _fail(f"config 'neurons.networks.{network}' must list ROIs of 'dataset.rois' {rois}; "
                  f"got {members!r}", source)
        networks[network] = list(members)


def _check_settings(section: Mapping[str, Any], source: str) -> None:
    if section["correction"] not in CORRECTIONS:
        _fail(f"config 'neurons.correction' must be one of {list(CORRECTIONS)}; got "
              f"{section['correction']!r}", source)
    for key in ("n_permutations", "n_null", "unit_batch", "voxel_batch"):
        value = section[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            _fail(f"config 'neurons.{key}' must be a positive integer; got {value!r}", source)
    atoms = section["atoms"]
    if atoms is not None and (isinstance(atoms, bool) or not isinstance(atoms, int) or atoms < 1):
        _fail(f"config 'neurons.atoms' must be null or a positive integer; got {atoms!r}", source)
    if not (isinstance(section["alpha"], (int, float)) and 0 < section["alpha"] < 1):
        _fail(f"config 'neurons.alpha' must be in (0, 1); got {section['alpha']!r}", source)


def _check_contrast(section: dict[str, Any], source: str) -> None:
    contrast = section["contrast"]
    if contrast is None:
        return
    contrast = _fill(contrast, {"two_tower": None, "cross": None, "n_resamples": 1000},
                     "neurons.contrast", source)
    for side in ("two_tower", "cross"):
        if contrast[side] not in section["models"]:
            _fail(f"config 'neurons.contrast.{side}' must be one of 'neurons.models' "
                  f"{sorted(section['models'])}; got {contrast[side]!r}", source)
    section["contrast"] = contrast


def _check_demo(config: Mapping[str, Any], section: dict[str, Any], source: str) -> None:
    demo = _fill(section["demo"], DEMO_DEFAULTS, "neurons.demo", source)
    section["demo"] = demo
    if config["dataset"]["format"] != "synthetic_neurons":
        return
    kinds = [spec["kind"] for spec in config["dataset"]["tasks"].values()]
    if kinds != ["naturalistic"]:
        _fail(f"config 'dataset.tasks' of a synthetic_neurons dataset must be one task of kind "
              f"naturalistic (the demo film); got kinds {kinds}", source)
    if not demo["plants"]:
        _fail("config 'neurons.demo.plants' must list the planted units of the synthetic_neurons "
              "dataset ({model, layer, modality, network}); got none", source)
    for k, plant in enumerate(demo["plants"]):
        key = f"neurons.demo.plants[{k}]"
        if not isinstance(plant, Mapping) or set(plant) != {"model", "layer", "modality", "network"}:
            _fail(f"config '{key}' must have exactly model, layer, modality, network; got {plant!r}",
                  source)
        spec = section["models"].get(plant["model"])
        if spec is None or plant["layer"] not in spec["layers"]:
            _fail(f"config '{key}' plants units of model {plant['model']!r} layer "
                  f"{plant['layer']!r}, which 'neurons.models' does not map", source)
        rois = [r for r in config["dataset"]["rois"] if r != "control"]
        if plant["network"] not in rois:
            _fail(f"config '{key}.network' must be a ROI of the demo atlas in 'dataset.rois' "
                  f"{rois} ('control' is never driven); got {plant['network']!r}", source)


def check_neurons(config: dict[str, Any], source: str = "config/config.yaml") -> None:
    """Fill the ``neurons`` section's defaults in place and check it (ConfigError).

    The stage is off while ``neurons.models`` is empty; then only the keys are checked.
    """
    section = _fill(config.get("neurons"), NEURONS_DEFAULTS, "neurons", source)
    config["neurons"] = section
    _check_settings(section, source)
    if not section["models"]:
        if config["dataset"]["format"] == "synthetic_neurons":
            _fail("config 'neurons.models' is empty but the dataset is synthetic_neurons; name the "
                  "models whose units are mapped", source)
        return
    tasks = section["tasks"]
    if tasks is not None and (not isinstance(tasks, list) or not tasks
                              or set(tasks) - set(config["dataset"]["tasks"])):
        _fail(f"config 'neurons.tasks' must be null or a list of tasks of 'dataset.tasks' "
              f"{list(config['dataset']['tasks'])}; got {tasks!r}", source)
    for name in list(section["models"]):
        spec = _fill(section["models"][name], MODEL_DEFAULTS, f"neurons.models.{name}", source)
        _check_model(config, name, spec, source)
        section["models"][name] = spec
    _check_networks(config, section["networks"], source)
    _check_contrast(section, source)
    _check_demo(config, section, source)


def neurons_jobs(config: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(task, model, condition) of every unit-to-voxel mapping the section asks for."""
    from ..config import task_conditions  # noqa: PLC0415

    section = config["neurons"]
    tasks = section["tasks"] or list(config["dataset"]["tasks"])
    return [
        (task, model, spec["condition"])
        for task in tasks
        for model, spec in section["models"].items()
        if spec["condition"] in task_conditions(config, task, model)
    ]


def required_inputs(paths: Sequence[str], message: str) -> Callable[..., list[str]]:
    """An input function for Snakemake: ``paths``, or a ValueError(``message``) when there
    are none (a target asked of a stage the configuration leaves off)."""

    def get(wildcards: Any = None) -> list[str]:
        if not paths:
            raise ValueError(message)
        return list(paths)

    return get


def demo_features(config: Mapping[str, Any], features_path: Callable[[str, str, str], str]
                  ) -> Callable[..., dict[str, str]]:
    """An input function for rule make_neurons_demo_dataset: model -> the feature file of
    its ``neurons.models`` condition on the demo's naturalistic task, for every model with
    planted units (``features_path(task, model, condition)`` is the workflow's)."""
    section = config["neurons"]
    models = sorted({plant["model"] for plant in section["demo"]["plants"]})
    task = next(iter(config["dataset"]["tasks"]))

    def get(wildcards: Any = None) -> dict[str, str]:
        return {m: features_path(task, m, section["models"][m]["condition"]) for m in models}

    return get
