"""Model specifications and the registry of feature extractors.

A :class:`ModelSpec` is one validated entry of the config's model table. An
extractor is a class registered with :func:`register_extractor` that follows
the :class:`FeatureExtractor` protocol; :func:`load_extractor` builds one from a
spec. This module imports neither torch nor transformers, so that specs and
cache keys can be computed cheaply (e.g. while Snakemake parses its rules); the
built-in extractors are imported on the first lookup.

Adding a built-in family: write a module that registers a class with
``@register_extractor("name")`` (usually a subclass of
:class:`brainalign.features.extractors.TransformersExtractor`), and add one line to
:data:`BUILTIN_EXTRACTORS`::

    "name": ExtractorInfo("brainalign.features.module", frozenset({"text", "image"}),
                          requires_image=True),

(a plain ``(module, modalities)`` tuple is accepted too). A test checks the table
against the registered classes.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "ModelSpec",
    "FeatureExtractor",
    "ExtractorInfo",
    "BUILTIN_EXTRACTORS",
    "extractor_info",
    "extractor_modalities",
    "extractor_requires_image",
    "extractor_code_hash",
    "register_extractor",
    "get_extractor",
    "load_extractor",
    "registered_extractors",
    "resolve_layers",
    "SPEC_KEYS",
    "SOURCES",
    "POOLINGS",
    "DEVICES",
    "DTYPES",
]

logger = logging.getLogger(__name__)

SOURCES = ("tiny", "pretrained", "package", "random")
POOLINGS = ("word", "mean", "mean_all", "first", "last")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float16", "bfloat16")
SPEC_KEYS = frozenset(
    {
        "extractor",
        "source",
        "id",
        "revision",
        "layers",
        "pooling",
        "batch_size",
        "device",
        "dtype",
        "trust_remote_code",
        "attention_heads",
        "mlp_neurons",
    }
)
_DEFAULTS: dict[str, Any] = {
    "source": "pretrained",
    "id": None,
    "revision": None,
    "layers": "all",
    "pooling": "word",
    "batch_size": 16,
    "device": "auto",
    "dtype": "float32",
    "trust_remote_code": False,
    "attention_heads": False,
    "mlp_neurons": False,
}


class ExtractorInfo(NamedTuple):
    """What the workflow knows about a built-in extractor without importing it.

    Attributes
    ----------
    module : str
        The module that registers the extractor.
    modalities : frozenset of str
        Subset of {"text", "image", "audio"}: the inputs the model reads.
    requires_image : bool
        The model cannot read text without an image; text-only conditions feed it the
        seeded noise image (so they need the noise images, like condition "noise").
    """

    module: str
    modalities: frozenset[str]
    requires_image: bool = False


_TEXT, _IMAGE, _BOTH = frozenset({"text"}), frozenset({"image"}), frozenset({"text", "image"})
# Extractors shipped with brainalign: name -> ExtractorInfo (module, modalities[,
# requires_image]); a plain (module, modalities) tuple is accepted. The modules are
# imported on the first registry lookup; the rest is known without importing torch, so
# that building the workflow's DAG stays fast (brainalign.config reads it). A test
# checks each registered class against this table.
BUILTIN_EXTRACTORS: dict[str, tuple[str, frozenset[str]] | ExtractorInfo] = {
    "text_encoder": ExtractorInfo("brainalign.features.text", _TEXT),
    "causal_lm": ExtractorInfo("brainalign.features.decoders", _TEXT),
    "vision_encoder": ExtractorInfo("brainalign.features.vision", _IMAGE),
    "clip": ExtractorInfo("brainalign.features.clip", _BOTH),
    "siglip": ExtractorInfo("brainalign.features.siglip", _BOTH),
    "align": ExtractorInfo("brainalign.features.align_model", _BOTH),
    "static": ExtractorInfo("brainalign.features.static", _TEXT),
    "visualbert": ExtractorInfo("brainalign.features.vl_encoders", _BOTH, requires_image=True),
    "lxmert": ExtractorInfo("brainalign.features.vl_encoders", _BOTH, requires_image=True),
    "vilt": ExtractorInfo("brainalign.features.vl_encoders", _BOTH, requires_image=True),
    "bridgetower": ExtractorInfo("brainalign.features.vl_encoders", _BOTH, requires_image=True),
    "flava": ExtractorInfo("brainalign.features.vl_encoders", _BOTH, requires_image=True),
    "blip2": ExtractorInfo("brainalign.features.generative", _BOTH),
    "llava": ExtractorInfo("brainalign.features.generative", _BOTH),
    "idefics2": ExtractorInfo("brainalign.features.generative", _BOTH),
    "qwen2_vl": ExtractorInfo("brainalign.features.generative", _BOTH),
    "llava_next": ExtractorInfo("brainalign.features.llava_next", _BOTH),
    "audio_encoder": ExtractorInfo("brainalign.features.audio", frozenset({"audio"})),
}
_REGISTRY: dict[str, Callable[[ModelSpec], FeatureExtractor]] = {}


def extractor_info(name: str) -> ExtractorInfo:
    """The :data:`BUILTIN_EXTRACTORS` entry of ``name``, or of a registered extractor.

    Raises
    ------
    ValueError
        For a name neither built in nor registered, listing the known ones.
    """
    if name in BUILTIN_EXTRACTORS:
        return ExtractorInfo(*BUILTIN_EXTRACTORS[name])
    if name in _REGISTRY:
        cls = _REGISTRY[name]
        return ExtractorInfo(
            cls.__module__, frozenset(cls.modalities), bool(getattr(cls, "requires_image", False))
        )
    known = sorted({*BUILTIN_EXTRACTORS, *_REGISTRY})
    raise ValueError(
        f"unknown extractor '{name}'; registered: {', '.join(known)}. "
        "Set the model's 'extractor' to one of them."
    )


def extractor_modalities(name: str) -> frozenset[str]:
    """Inputs extractor ``name`` reads, without importing it."""
    return extractor_info(name).modalities


def extractor_requires_image(name: str) -> bool:
    """Whether extractor ``name`` needs an image with its text, without importing it."""
    return extractor_info(name).requires_image


def extractor_code_hash(name: str) -> str:
    """sha256 of the source files of extractor ``name`` and of the extraction pipeline.

    See :mod:`brainalign.features.codehash`; nothing is imported.
    """
    from brainalign.features.codehash import PIPELINE_MODULES, source_hash

    return source_hash([extractor_info(name).module, *PIPELINE_MODULES])


def _check_choice(name: str, key: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(
            f"model '{name}': '{key}' must be one of {', '.join(choices)}; got {value!r}. "
            "Edit the model's entry in config/config.yaml."
        )


def _check_layers(name: str, layers: Any) -> Literal["all"] | tuple[int, ...]:
    if layers == "all":
        return "all"
    ok = isinstance(layers, Sequence) and not isinstance(layers, str) and len(layers) > 0
    if ok and all(isinstance(x, int | np.integer) and not isinstance(x, bool) for x in layers):
        values = tuple(int(x) for x in layers)
        if min(values) >= 0 and len(set(values)) == len(values):
            return tuple(sorted(values))
    raise ValueError(
        f"model '{name}': 'layers' must be \"all\" or a non-empty list of distinct hidden-state "
        f"indices >= 0 (0 = embeddings); got {layers!r}. Edit config/config.yaml."
    )


def _check_sources(name: str, source: str, model_id: Any, revision: Any) -> None:
    if source != "tiny" and not (isinstance(model_id, str) and model_id):
        raise ValueError(
            f"model '{name}': source '{source}' needs 'id' (a hub id, a local folder or, for "
            f"'package', a python package name); got {model_id!r}. Add 'id' to the entry."
        )
    if source == "package" and revision is not None:
        raise ValueError(
            f"model '{name}': 'revision' does not apply to source 'package'; got {revision!r}. "
            "Remove it and pin the package version in the environment instead."
        )
    if revision is not None and not isinstance(revision, str):
        raise ValueError(f"model '{name}': 'revision' must be a string or null; got {revision!r}")


@dataclass(frozen=True)
class ModelSpec:
    """One model of the config, validated.

    Attributes
    ----------
    name : str
        The config's name for the model (used in file names and metadata).
    extractor : str
        Registry key of the extractor (see :func:`registered_extractors`).
    source : {"tiny", "pretrained", "package", "random"}
        "tiny": a tiny randomly initialised model built from ``seed`` (tests, demo);
        "pretrained": ``from_pretrained(id, revision)`` from local files only (a hub id
        in the local cache, or a folder such as a fine-tuned checkpoint);
        "package": the folder given by ``importlib.import_module(id).get_model_path()``;
        "random": the architecture of ``id`` with weights initialised from ``seed``.
    id : str or None
        Hub id, local folder or python package name. For "tiny", the tiny architecture
        (e.g. ``gpt2``, ``llama``; null: the family's default).
    revision : str or None
        Hub revision (commit, tag or branch) for "pretrained" and "random".
    layers : "all" or tuple of int
        Hidden-state indices to extract, 0 = embedding output.
    pooling : {"word", "mean", "mean_all", "first", "last"}
        Text pooling. "word": mean over the target word's own sub-word tokens (located
        with the tokenizer's offset mapping); "mean": mean over the non-special tokens;
        "mean_all": mean over every attended token, special tokens included (the
        sentence-transformers convention); "first"/"last": the first/last attended token.
        Images are pooled per family: the first (CLS) token (the mean over tokens
        at hidden state 0, where CLS is constant), or the mean over patches for
        models without one (SigLIP). Pseudo-layers (a contrastive model's
        projected embedding) use the model's own pooling.
    batch_size : int
        Sentences or images per forward pass.
    device : {"auto", "cpu", "cuda"}
        "auto" is cuda when available, else cpu.
    dtype : {"float32", "float16", "bfloat16"}
        Half precisions apply on cuda only; on cpu they fall back to float32 (logged).
    trust_remote_code : bool
        Passed to ``from_pretrained``; off unless the config turns it on.
    attention_heads : bool
        Also write the outputs of the attention heads of the chosen layers (arrays
        ``heads-<stream>-XX`` of shape (n_stimuli, n_heads, head_dim)).
    mlp_neurons : bool
        Also write the MLP neurons of the chosen layers (the hidden units of each block's
        MLP after its activation, pooled like the hidden states; arrays
        ``mlp-<stream>-XX`` of shape (n_stimuli, n_mlp)).
    seed : int
        Initialisation seed for the "tiny" and "random" sources.
    """

    name: str
    extractor: str
    source: str = "pretrained"
    id: str | None = None
    revision: str | None = None
    layers: Literal["all"] | tuple[int, ...] = "all"
    pooling: str = "word"
    batch_size: int = 16
    device: str = "auto"
    dtype: str = "float32"
    trust_remote_code: bool = False
    attention_heads: bool = False
    mlp_neurons: bool = False
    seed: int = 0

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any], seed: int) -> ModelSpec:
        """Validate one config entry (``cfg``) and fill in defaults.

        Raises
        ------
        ValueError
            On a missing ``extractor``, an unknown key or an invalid value; the message
            names the model and the key.
        """
        unknown = sorted(set(cfg) - SPEC_KEYS)
        if unknown:
            raise ValueError(
                f"model '{name}': unknown key(s) {', '.join(unknown)}; allowed keys are "
                f"{', '.join(sorted(SPEC_KEYS))}. Fix the spelling in config/config.yaml."
            )
        if not isinstance(cfg.get("extractor"), str):
            raise ValueError(
                f"model '{name}': 'extractor' (a registered extractor name) is required; "
                f"got {cfg.get('extractor')!r}. Add it to the model's entry."
            )
        values = {**_DEFAULTS, **cfg}
        _check_choice(name, "source", values["source"], SOURCES)
        _check_choice(name, "pooling", values["pooling"], POOLINGS)
        _check_choice(name, "device", values["device"], DEVICES)
        _check_choice(name, "dtype", values["dtype"], DTYPES)
        _check_sources(name, values["source"], values["id"], values["revision"])
        batch = values["batch_size"]
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValueError(f"model '{name}': 'batch_size' must be an integer >= 1; got {batch!r}")
        for key in ("trust_remote_code", "attention_heads", "mlp_neurons"):
            if not isinstance(values[key], bool):
                raise ValueError(
                    f"model '{name}': '{key}' must be true or false; got {values[key]!r}"
                )
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"'seed' must be a non-negative integer; got {seed!r}")
        values["layers"] = _check_layers(name, values["layers"])
        return cls(name=name, seed=int(seed), **values)

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-serialisable values (layers as a list or "all")."""
        out = asdict(self)
        out["layers"] = self.layers if self.layers == "all" else list(self.layers)
        return out

    @property
    def code_version(self) -> str:
        """Stable version of the features: ``"<extractor>-<brainalign version>-<12 hex>"``.

        The hash covers what determines the features: extractor, source, id, revision,
        layers, pooling, dtype, attention_heads, mlp_neurons, the extractor's source code
        (:func:`extractor_code_hash`) and, for the seeded sources ("tiny", "random"),
        the seed. It leaves out the config name and the runtime settings (device, batch
        size), which change results only at floating-point precision.
        """
        from brainalign import __version__

        keys = ("extractor", "source", "id", "revision", "layers", "pooling", "dtype")
        record = {key: self.to_dict()[key] for key in keys}
        record["attention_heads"] = self.attention_heads
        if self.mlp_neurons:  # absent when off: versions of files without MLP neurons stay
            record["mlp_neurons"] = True
        record["code"] = extractor_code_hash(self.extractor)
        if self.source in ("tiny", "random"):
            record["seed"] = self.seed
        digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
        return f"{self.extractor}-{__version__}-{digest[:12]}"


@runtime_checkable
class FeatureExtractor(Protocol):
    """What every registered extractor provides.

    Attributes
    ----------
    spec : ModelSpec
    modalities : frozenset of str
        Subset of {"text", "image"}: the inputs the model encodes.
    n_layers : int
        Number of hidden states, the embedding output included.

    Optional attributes, read with defaults by :mod:`brainalign.features.extract`:

    requires_image : bool, default False
        The model cannot read text without an image: text-only conditions feed it the
        seeded noise image (declare it in :data:`BUILTIN_EXTRACTORS` too).
    joint : bool, default False
        Text and image are read in one pass, through ``encode_text_image(sentences,
        spans, images, layers)`` (one image per sentence; rows per span, as
        ``encode_text_spans``); otherwise each is encoded separately and the features
        are concatenated per layer.
    pseudo_layers : dict of int to str, default {}
        Extra layer indices past the hidden states (``{n_layers: "embeds"}``), summed
        across streams instead of concatenated.

    encode_audio(windows, layers) : audio models (modality "audio") only
        Mean hidden states of each mono window at the extractor's ``sampling_rate``
        attribute (one window per TR, :mod:`brainalign.features.audio_windows`).

    Every encoder returns one float32 array per requested layer (int keys) and, when
    ``spec.attention_heads`` is set, ``"heads-XX"`` arrays of shape (n_rows, n_heads,
    head_dim) for the blocks whose heads it exposes; when ``spec.mlp_neurons`` is set,
    ``"mlp-XX"`` arrays of shape (n_rows, n_mlp).
    """

    spec: ModelSpec
    modalities: frozenset[str]
    n_layers: int

    def encode_text(
        self,
        sentences: Sequence[str],
        spans: Sequence[tuple[int, int]] | None,
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Pool each sentence's hidden states (around ``spans[i]`` for pooling "word").

        Returns one float32 array of shape (n_sentences, n_features) per layer.
        """
        ...

    def encode_text_spans(
        self,
        sentences: Sequence[str],
        spans: Sequence[Sequence[tuple[int, int]]],
        layers: Sequence[int],
    ) -> dict[int, np.ndarray]:
        """Encode each sentence once and pool every span of ``spans[i]`` from it.

        Returns one float32 array of shape (n_spans_total, n_features) per layer,
        rows ordered sentence by sentence, then span by span.
        """
        ...

    def encode_images(self, images: Sequence[Any], layers: Sequence[int]) -> dict[int, np.ndarray]:
        """Encode PIL images; one float32 array of shape (n_images, n_features) per layer."""
        ...


def register_extractor(name: str) -> Callable[[type], type]:
    """Class decorator registering an extractor under ``name``.

    The class is called as ``cls(spec)`` by :func:`load_extractor`.
    """

    def decorator(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"extractor '{name}' is already registered by {_REGISTRY[name]!r}")
        _REGISTRY[name] = cls
        return cls

    return decorator


def _import_builtins() -> None:
    for module in dict.fromkeys(info[0] for info in BUILTIN_EXTRACTORS.values()):
        importlib.import_module(module)


def registered_extractors() -> list[str]:
    """Sorted names of the registered extractors."""
    _import_builtins()
    return sorted(_REGISTRY)


def get_extractor(name: str) -> Callable[[ModelSpec], FeatureExtractor]:
    """The extractor class registered under ``name``.

    Raises
    ------
    ValueError
        For an unknown name, listing the registered ones.
    """
    names = registered_extractors()
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown extractor '{name}'; registered: {', '.join(names)}. "
            "Set the model's 'extractor' to one of them."
        )
    return _REGISTRY[name]


def load_extractor(spec: ModelSpec) -> FeatureExtractor:
    """Build the extractor described by ``spec`` (loads or initialises the model)."""
    extractor = get_extractor(spec.extractor)(spec)
    logger.info(
        "loaded model '%s' (extractor %s, source %s, id %s, revision %s): %d hidden states, "
        "modalities %s",
        spec.name,
        spec.extractor,
        spec.source,
        spec.id,
        spec.revision,
        extractor.n_layers,
        ", ".join(sorted(extractor.modalities)),
    )
    return extractor


def resolve_layers(
    layers: Literal["all"] | Sequence[int] | None,
    n_layers: int,
    pseudo_layers: Mapping[int, str] | None = None,
) -> list[int]:
    """Turn ``"all"`` or a list of indices into a checked, sorted list of layer indices.

    Parameters
    ----------
    layers : "all", sequence of int, or None
        None means "all".
    n_layers : int
        Number of hidden states of the model (embeddings included).
    pseudo_layers : mapping of int to str, optional
        Extra indices past the hidden states (e.g. ``{13: "embeds"}``); "all"
        includes them.
    """
    pseudo = dict(pseudo_layers or {})
    total = n_layers + len(pseudo)
    if layers is None or layers == "all":
        return list(range(total))
    values = sorted({int(x) for x in layers})
    if not values or values[0] < 0 or values[-1] >= total:
        extra = "".join(f", {k} = {v}" for k, v in sorted(pseudo.items()))
        raise ValueError(
            f"'layers' must be indices in 0..{total - 1} (the model has {n_layers} hidden "
            f"states, 0 = embeddings{extra}); got {list(layers)}. Edit the model's 'layers'."
        )
    return values
