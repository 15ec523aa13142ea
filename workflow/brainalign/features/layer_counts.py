"""Hidden-state counts known without torch: the tiny architectures, and ``config.json``.

:func:`brainalign.config.validate_config` checks every model's ``layers`` while Snakemake
parses the workflow, before any job, so this module imports neither torch nor transformers
(json and, for the Hugging Face cache, ``huggingface_hub.try_to_load_from_cache``).

- Source ``tiny``: :data:`TINY_HIDDEN_STATES`, a static table of each family's tiny
  architectures (tests/test_config.py checks it against the real tiny configs and the
  extractors' own ``_count_layers``, so it cannot drift).
- Sources ``pretrained``, ``random`` and ``package``: the model's ``config.json`` (a local
  folder, the local Hugging Face cache, or an installed model package's folder), read as
  each extractor's ``_count_layers`` reads the loaded config. When the file or its key is
  not there, the count is unknown and the job checks the layers (nothing is refused on a
  guess).

The number of hidden states includes the embeddings (index 0); a contrastive model
(CLIP, SigLIP, ALIGN) has one more index past them, the projected ``embeds``
(:data:`PSEUDO_LAYERS`, see :mod:`brainalign.features.contrastive`).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "TINY_HIDDEN_STATES",
    "DEFAULT_TINY",
    "PSEUDO_LAYERS",
    "tiny_hidden_states",
    "hidden_states_from_config",
    "model_hidden_states",
    "check_model_layers",
]

#: Extractor -> tiny architecture (``id``) -> hidden states (embeddings + blocks). The key
#: None is the family's only tiny model, chosen by leaving ``id`` out.
TINY_HIDDEN_STATES: dict[str, dict[str | None, int]] = {
    "text_encoder": {"bert": 3, "roberta": 3},
    "causal_lm": {"gpt2": 3, "llama": 3},
    "vision_encoder": {"vit": 3, "dinov2": 4},
    "clip": {None: 3},
    "siglip": {None: 3},
    "align": {None: 3},
    "static": {None: 1},
    "visualbert": {None: 3},
    "lxmert": {None: 5},
    "vilt": {None: 3},
    "bridgetower": {"bridgetower": 3},
    "flava": {None: 5},
    "blip2": {"blip2": 3},
    "llava": {"llava": 3},
    "idefics2": {"idefics2": 3},
    "qwen2_vl": {"qwen2_vl": 3},
    "llava_next": {"llava_next": 3},
    "audio_encoder": {"wav2vec2": 3, "hubert": 3, "whisper": 3},
}
#: Extractor -> the tiny architecture a null ``id`` selects (families with named ones).
DEFAULT_TINY: dict[str, str] = {
    "text_encoder": "bert", "causal_lm": "gpt2", "vision_encoder": "vit",
    "bridgetower": "bridgetower", "blip2": "blip2", "llava": "llava", "idefics2": "idefics2",
    "qwen2_vl": "qwen2_vl", "llava_next": "llava_next", "audio_encoder": "wav2vec2",
}
#: Extractor -> names of the indices past the hidden states (contrastive models' embeds).
PSEUDO_LAYERS: dict[str, tuple[str, ...]] = {
    "clip": ("embeds",), "siglip": ("embeds",), "align": ("embeds",),
}
# Where each family's blocks are counted in its config (as its ``_count_layers``): summed
# paths, plus one for the embeddings. Families not listed read the top-level count.
_BLOCK_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    **{name: (("text_config", "num_hidden_layers"),) for name in
       ("clip", "siglip", "align", "blip2", "llava", "idefics2", "qwen2_vl", "llava_next")},
    "lxmert": (("l_layers",), ("x_layers",)),
    "flava": (("text_config", "num_hidden_layers"), ("multimodal_config", "num_hidden_layers")),
}
# transformers' aliases of num_hidden_layers in config.json (GPT-2: n_layer, ...).
_COUNT_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


def tiny_hidden_states(extractor: str, tiny_id: str | None) -> int | None:
    """Hidden states of the tiny architecture ``tiny_id`` of ``extractor`` (None: default).

    Returns None for an extractor outside the table (a plugin: the job checks it).

    Raises
    ------
    ValueError
        For an id that names no tiny architecture of the family, listing the known ones.
    """
    table = TINY_HIDDEN_STATES.get(extractor)
    if table is None:
        return None
    if extractor == "static":  # tiny vectors: no architecture, the id is not read
        return table[None]
    key = DEFAULT_TINY.get(extractor) if tiny_id is None else tiny_id
    if key not in table:
        known = ", ".join(k for k in table if k is not None) or "none (leave 'id' out)"
        raise ValueError(
            f"'id' must name a tiny architecture of extractor '{extractor}' (source 'tiny'); "
            f"got {tiny_id!r}; known: {known}"
        )
    return table[key]


def _count(config: Mapping[str, Any], path: tuple[str, ...]) -> int | None:
    node: Any = config
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        return None
    keys = _COUNT_KEYS if path[-1] == "num_hidden_layers" else path[-1:]
    value = next((node[k] for k in keys if isinstance(node.get(k), int)), None)
    return None if value is None or isinstance(value, bool) else int(value)


def hidden_states_from_config(extractor: str, config: Mapping[str, Any]) -> int | None:
    """Hidden states of a model of ``extractor`` described by ``config`` (``config.json``).

    Parameters
    ----------
    extractor : str
        A built-in extractor name.
    config : mapping
        The parsed ``config.json`` (``PretrainedConfig.to_dict()`` has the same keys).

    Returns
    -------
    int or None
        Embeddings plus blocks, as the extractor's ``_count_layers`` counts them; None when
        the file does not say (a key left out, an extractor not in the table).
    """
    if extractor == "static":
        return 1
    if extractor not in TINY_HIDDEN_STATES:
        return None
    paths = _BLOCK_PATHS.get(extractor, (("num_hidden_layers",),))
    if extractor == "audio_encoder" and config.get("model_type") == "whisper":
        paths = (("encoder_layers",),)
    counts = [_count(config, path) for path in paths]
    return None if None in counts else 1 + sum(counts)


def _config_file(spec: Mapping[str, Any], workdir: Path) -> Path | None:
    """The model's config.json when it can be found without importing anything heavy."""
    model_id = spec.get("id")
    if not model_id:
        return None
    folder = workdir / model_id
    if spec["source"] in ("pretrained", "random") and folder.is_dir():
        return folder / "config.json" if (folder / "config.json").is_file() else None
    if spec["source"] == "package" or (spec["source"] == "random" and "/" not in model_id):
        found = importlib.util.find_spec(model_id) if "/" not in model_id else None
        places = list(found.submodule_search_locations or []) if found else []
        files = [p for place in places for p in (Path(place) / "config.json",
                                                  *Path(place).glob("*/config.json"))
                 if p.is_file()]
        if files or spec["source"] == "package":
            return files[0] if len(files) == 1 else None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json", revision=spec.get("revision"))
    return Path(cached) if isinstance(cached, str) else None


def model_hidden_states(spec: Mapping[str, Any], workdir: Path = Path(".")) -> tuple[int, str] | None:
    """Hidden states of one configured model and where the count comes from, or None.

    Parameters
    ----------
    spec : mapping
        One validated entry of the config's ``models`` (``extractor``, ``source``, ``id``,
        ``revision``).
    workdir : path
        Folder a relative ``id`` is resolved against.

    Raises
    ------
    ValueError
        Source ``tiny`` with an ``id`` that names no tiny architecture of the family.
    """
    extractor = spec["extractor"]
    if spec["source"] == "tiny":
        count = tiny_hidden_states(extractor, spec.get("id"))
        name = spec.get("id") or DEFAULT_TINY.get(extractor)
        label = f"the tiny {extractor}" + (f" '{name}'" if name else "")
        return None if count is None else (count, label)
    if extractor == "static":
        return 1, "a static embedding"
    path = _config_file(spec, workdir)
    if path is None:
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # the job names the unreadable file
    count = hidden_states_from_config(extractor, config) if isinstance(config, dict) else None
    return None if count is None else (count, f"'{spec['id']}' (config.json)")


def check_model_layers(name: str, spec: Mapping[str, Any], workdir: Path = Path("."),
                       source: str = "config/config.yaml") -> None:
    """Check ``models.<name>.id`` (source tiny) and ``models.<name>.layers`` before any job.

    Raises
    ------
    ValueError
        One line naming the key, the valid range or names, what was found and the fix.
    """
    try:
        known = model_hidden_states(spec, workdir)
    except ValueError as error:
        default = DEFAULT_TINY.get(spec["extractor"])
        fix = f" (or leave it out for '{default}')" if default else " (or leave it out)"
        message = str(error).removeprefix("'id' ")
        raise ValueError(f"config 'models.{name}.id' {message}. Fix the id{fix} in {source}.") \
            from None
    layers = spec.get("layers", "all")
    if known is None or layers == "all" or layers is None:
        return
    count, origin = known
    pseudo = PSEUDO_LAYERS.get(spec["extractor"], ())
    total = count + len(pseudo)
    bad = [layer for layer in layers if not 0 <= int(layer) < total]
    if bad:
        extra = "".join(f", {count + k} = {p}" for k, p in enumerate(pseudo))
        raise ValueError(
            f"config 'models.{name}.layers' must be indices in 0..{total - 1} ({origin} has "
            f"{count} hidden states, 0 = embeddings{extra}); got {list(layers)}. Pick layers "
            f"in that range in {source}."
        )
