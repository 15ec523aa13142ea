"""Single artificial units read from a feature file, each labelled with where it comes from.

A layer's features already are its units: ``layer-XX`` holds the hidden-state dimensions of
layer ``XX`` (streams concatenated: for a two-tower model such as CLIP under a text + image
condition, the text tower's columns then the vision tower's); models extracted with
``attention_heads: true`` also write ``heads-<stream>-XX`` arrays of shape (n_rows,
n_heads, head_dim), the per-head outputs of block ``XX`` (the input of its attention output
projection), and models extracted with ``mlp_neurons: true`` write ``mlp-<stream>-XX``
arrays of shape (n_rows, n_mlp), the MLP neurons of block ``XX`` after the activation (the
input of its MLP output projection). The cross-modal families write them under their joint
stream (``heads-text+image-XX``). This module reads the units of chosen layers and kinds
into one matrix and a table that labels each column.

Unit labels (one row per column of the matrix, :func:`unit_labels`):

``unit``      int, column of the unit matrix (0..n_units-1)
``layer``     int, the hidden state / block
``kind``      ``hidden`` (a hidden-state dimension), ``head`` (one dimension of one
              attention head's output) or ``mlp`` (one MLP neuron)
``index``     int, the dimension within the layer's array (hidden: column of ``layer-XX``;
              head: ``head * head_dim + dim``; mlp: column of ``mlp-<stream>-XX``)
``head``      int, the attention head (-1 for hidden units)
``stream``    the input stream the unit belongs to (``text``, ``image``, ``text+image``...)
``modality``  ``text``, ``vision``, ``cross`` (a stream that reads text and image jointly:
              the cross-modal families) or ``summed`` (pseudo-layers summed over streams)

The split of a concatenated layer between its streams is read from the file's metadata
``stream_widths`` (``{"layer-XX": [w_text, w_image]}``, written by the extraction for every
layer that concatenates several streams), else, for files written before it, from the widths
of the streams' attention-head arrays of that layer (n_heads x head_dim each); a two-stream
layer with neither cannot be split and is refused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import io

__all__ = ["UNIT_KINDS", "LABEL_COLUMNS", "stream_modality", "unit_labels", "read_units"]

logger = logging.getLogger(__name__)

#: The kinds of unit a model can expose.
UNIT_KINDS = ("hidden", "head", "mlp")
LABEL_COLUMNS = ["unit", "layer", "kind", "index", "head", "stream", "modality"]
_TEXT_STREAMS = ("text", "word")


def stream_modality(stream: str) -> str:
    """``cross`` for a joint stream (``text+image``), ``text`` or ``vision`` otherwise."""
    if "+" in stream:
        return "cross"
    return "text" if stream in _TEXT_STREAMS else "vision"


def _layer_key(layer: int) -> str:
    return f"layer-{int(layer):02d}"


def _head_keys(meta: Mapping[str, Any], layer: int, section: str = "heads") -> list[str]:
    """The ``heads-<stream>-XX`` (or, with section ``mlp``, ``mlp-<stream>-XX``) arrays of
    ``layer``, in stream order."""
    arrays = meta.get(section) or {}
    order = {stream: k for k, stream in enumerate(meta.get("streams", []))}
    keys = [key for key, info in arrays.items() if int(info["layer"]) == int(layer)]
    return sorted(keys, key=lambda key: order.get(arrays[key]["stream"], len(order)))


def _stream_widths(meta: Mapping[str, Any], layer: int, width: int, path: Any) -> list[int]:
    """Columns of each stream in the concatenated ``layer-XX`` array."""
    streams = list(meta.get("streams") or ["unknown"])
    if len(streams) == 1:
        return [width]
    recorded = (meta.get("stream_widths") or {}).get(_layer_key(layer))
    if recorded is None:
        heads = meta.get("heads") or {}
        recorded = [heads[k]["n_heads"] * heads[k]["head_dim"] for k in _head_keys(meta, layer)]
    if len(recorded) != len(streams) or sum(recorded) != width:
        raise ValueError(
            f"features file '{path}': {_layer_key(layer)} concatenates the streams {streams} "
            f"(width {width}) but their widths are not recorded (got {list(recorded)}); "
            "rerun the extraction (it records 'stream_widths'), or set 'attention_heads: true'"
        )
    return [int(w) for w in recorded]


def _hidden_labels(meta: Mapping[str, Any], layer: int, width: int, path: Any) -> pd.DataFrame:
    streams = list(meta.get("streams") or ["unknown"])
    if str(layer) in (meta.get("pseudo_layers") or {}):
        stream, modality = "+".join(streams), "summed"
        labels = pd.DataFrame({"stream": [stream] * width, "modality": modality})
    else:
        widths = _stream_widths(meta, layer, width, path)
        stream = np.repeat(streams, widths)
        labels = pd.DataFrame({"stream": stream, "modality": [stream_modality(s) for s in stream]})
    return labels.assign(layer=int(layer), kind="hidden", index=np.arange(width), head=-1)


def _head_labels(meta: Mapping[str, Any], layer: int, path: Any) -> list[pd.DataFrame]:
    keys = _head_keys(meta, layer)
    if not keys:
        raise ValueError(
            f"features file '{path}' has no attention-head arrays for layer {layer} (model "
            f"{meta.get('model')!r}); set 'attention_heads: true' on the model and rerun the "
            "extraction, or use neurons kinds [hidden]"
        )
    tables = []
    for key in keys:
        info = meta["heads"][key]
        n_heads, head_dim = int(info["n_heads"]), int(info["head_dim"])
        tables.append(pd.DataFrame({
            "layer": int(layer), "kind": "head", "index": np.arange(n_heads * head_dim),
            "head": np.repeat(np.arange(n_heads), head_dim), "stream": info["stream"],
            "modality": stream_modality(info["stream"]), "array": key,
        }))
    return tables


def _mlp_labels(meta: Mapping[str, Any], layer: int, path: Any) -> list[pd.DataFrame]:
    keys = _head_keys(meta, layer, "mlp")
    if not keys:
        raise ValueError(
            f"features file '{path}' has no MLP-neuron arrays for layer {layer} (model "
            f"{meta.get('model')!r}); set 'mlp_neurons: true' on the model and rerun the "
            "extraction, or drop 'mlp' from the neurons kinds"
        )
    tables = []
    for key in keys:
        info = meta["mlp"][key]
        tables.append(pd.DataFrame({
            "layer": int(layer), "kind": "mlp", "index": np.arange(int(info["n_mlp"])), "head": -1,
            "stream": info["stream"], "modality": stream_modality(info["stream"]), "array": key,
        }))
    return tables


def unit_labels(
    meta: Mapping[str, Any],
    widths: Mapping[int, int],
    kinds: Sequence[str] = ("hidden",),
    path: str | os.PathLike = "<features>",
) -> pd.DataFrame:
    """Label every unit of the chosen layers and kinds of one feature file.

    Parameters
    ----------
    meta : mapping
        The feature file's metadata (``streams``, ``heads``, ``pseudo_layers``...).
    widths : mapping of int to int
        Layer -> width of its ``layer-XX`` array (columns), for the chosen layers.
    kinds : sequence of str
        Among ``hidden``, ``head`` and ``mlp``.
    path : path-like
        The file, for messages.

    Returns
    -------
    labels : DataFrame of shape (n_units, 8)
        :data:`LABEL_COLUMNS` plus ``array`` (the array each unit is read from).
    """
    unknown = [k for k in kinds if k not in UNIT_KINDS]
    if unknown or not kinds:
        raise ValueError(
            f"neurons kinds must be a non-empty list of {', '.join(UNIT_KINDS)}; got "
            f"{list(kinds)}. Edit the config's neurons section"
        )
    tables = []
    for layer in sorted(widths):
        if "hidden" in kinds:
            tables.append(_hidden_labels(meta, layer, int(widths[layer]), path)
                          .assign(array=_layer_key(layer)))
        if "head" in kinds:
            tables.extend(_head_labels(meta, layer, path))
        if "mlp" in kinds:
            tables.extend(_mlp_labels(meta, layer, path))
    labels = pd.concat(tables, ignore_index=True)
    labels.insert(0, "unit", np.arange(len(labels)))
    return labels[[*LABEL_COLUMNS, "array"]]


def read_units(
    path: str | os.PathLike,
    layers: Sequence[int],
    kinds: Sequence[str] = ("hidden",),
) -> tuple[np.ndarray, pd.DataFrame, dict[str, np.ndarray], dict[str, Any]]:
    """The units of ``layers`` (of ``kinds``) of a feature file, as one labelled matrix.

    Parameters
    ----------
    path : path-like
        A feature file written by the extraction (``.safetensors``).
    layers : sequence of int
        Layers to read; each must be in the file (``layer-XX``).
    kinds : sequence of str
        ``hidden`` (hidden-state dimensions), ``head`` (attention-head outputs) and/or
        ``mlp`` (MLP neurons).

    Returns
    -------
    units : ndarray of shape (n_rows, n_units), float32
        Columns in the order of ``labels``.
    labels : DataFrame of shape (n_units, 8)
        See :func:`unit_labels`.
    extra : dict of str to ndarray
        The file's non-unit arrays (``run`` for time series), for matching rows.
    meta : dict
        The file's metadata.
    """
    arrays, meta = io.load_arrays(path)
    missing = [int(layer) for layer in layers if _layer_key(layer) not in arrays]
    if missing or not layers:
        have = sorted(int(k.split("-")[1]) for k in arrays if k.startswith("layer-"))
        raise ValueError(
            f"features file '{path}' (model {meta.get('model')!r}) has no units of layers "
            f"{missing or list(layers)}; it has layers {have}. Add them to the model's 'layers' "
            "or pick neurons layers among those"
        )
    widths = {int(layer): arrays[_layer_key(layer)].shape[1] for layer in layers}
    labels = unit_labels(meta, widths, kinds, path)
    blocks = [arrays[name].reshape(len(arrays[name]), -1) for name in pd.unique(labels["array"])]
    units = np.concatenate(blocks, axis=1).astype(np.float32, copy=False)
    extra = {k: v for k, v in arrays.items() if not k.startswith(("layer-", "heads-", "mlp-"))}
    logger.info("%s: %d units of layers %s (%s)", path, units.shape[1], list(layers),
                ", ".join(f"{k}: {n}" for k, n in labels["kind"].value_counts().items()))
    return units, labels, extra, meta
