"""Where a transformer block's single units are read: attention heads and MLP neurons.

A *unit site* is one block of a model seen through two of its modules:

- the **attention output projection** (``attention.output.dense``, ``self_attn.o_proj``...):
  its input is the concatenation of the attention heads' outputs, shape (batch, tokens,
  n_heads * head_dim);
- the **MLP output projection** (``output.dense``, ``mlp.fc2``, ``mlp.down_proj``...): its
  input is the MLP's hidden units after the intermediate activation, shape (batch, tokens,
  n_mlp): BERT's ``intermediate`` output (after GELU), CLIP's ``activation_fn(fc1(x))``,
  LLaMA's ``act(gate_proj(x)) * up_proj(x)``, GPT-2's ``act(c_fc(x))``, OPT's
  ``activation_fn(fc1(x))`` (dropout is the identity in eval mode).

Both are recorded with forward hooks (:func:`capture_units`) on the modules found by name
inside each block (:func:`attention_output`, :func:`mlp_output`); the extractors pool the
captured tokens exactly like the hidden state of the same layer. Output keys: ``heads-XX``
(:func:`heads_key`) and ``mlp-XX`` (:func:`mlp_key`), ``XX`` the hidden state the block
outputs (1-based).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "ATTENTION_OUTPUT_NAMES",
    "MLP_OUTPUT_NAMES",
    "UnitSite",
    "attention_output",
    "mlp_output",
    "find_blocks",
    "heads_key",
    "mlp_key",
    "unit_sites",
    "capture_units",
]

logger = logging.getLogger(__name__)

# Suffixes of the attention output projection inside a transformer block, across
# transformers' families: its input is the concatenation of the heads' outputs.
ATTENTION_OUTPUT_NAMES = (
    "attention.output.dense",  # BERT, RoBERTa, ViT, VisualBERT, ViLT, FLAVA, BridgeTower
    "attention.o_proj",  # ViT, DINOv2
    "self_attn.o_proj",  # LLaMA, Mistral, Qwen
    "self_attn.out_proj",  # CLIP, SigLIP, OPT
    "attn.c_proj",  # GPT-2
    "attn.out_proj",
    "lang_self_att.output.dense",  # LXMERT cross-modality layer, language side
)

# Names (relative to the block, matched exactly) of the MLP output projection, whose
# input is the MLP hidden units after the activation.
MLP_OUTPUT_NAMES = (
    "output.dense",  # BERT, RoBERTa, ViT, VisualBERT, ViLT, FLAVA, BridgeTower, LXMERT
    "mlp.fc2",  # CLIP, SigLIP, DINOv2
    "mlp.down_proj",  # LLaMA, Mistral, Qwen2
    "mlp.c_proj",  # GPT-2
    "fc2",  # OPT (BLIP-2's language model)
    "mlp.weights_out",  # DINOv2 with SwiGLU
    "lang_output.dense",  # LXMERT cross-modality layer, language side
)


def heads_key(layer: int) -> str:
    """Output key of the attention heads of block ``layer`` (``"heads-03"``)."""
    return f"heads-{int(layer):02d}"


def mlp_key(layer: int) -> str:
    """Output key of the MLP neurons of block ``layer`` (``"mlp-03"``)."""
    return f"mlp-{int(layer):02d}"


def attention_output(
    block: torch.nn.Module, names: Sequence[str] | None = None
) -> torch.nn.Module | None:
    """The attention output projection of a transformer block, or None.

    ``names``: the suffixes to look for (default :data:`ATTENTION_OUTPUT_NAMES`).
    """
    modules = dict(block.named_modules())
    for suffix in ATTENTION_OUTPUT_NAMES if names is None else names:
        for name, module in modules.items():
            if name == suffix or name.endswith("." + suffix):
                return module
    return None


def mlp_output(block: torch.nn.Module) -> torch.nn.Module | None:
    """The MLP output projection of a transformer block (:data:`MLP_OUTPUT_NAMES`), or None."""
    modules = dict(block.named_modules())
    return next((modules[name] for name in MLP_OUTPUT_NAMES if name in modules), None)


def find_blocks(
    root: torch.nn.Module, n_blocks: int, names: Sequence[str] | None = None
) -> list[torch.nn.Module]:
    """The ``n_blocks`` transformer blocks of ``root`` (the first fitting ModuleList).

    A fitting list has ``n_blocks`` children, each holding an attention output
    projection (:func:`attention_output` with ``names``); an empty list when none fits.
    """
    for _, module in root.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_blocks:
            if all(attention_output(block, names) is not None for block in module):
                return list(module)
    return []


@dataclass(frozen=True)
class UnitSite:
    """The unit modules of one block.

    Attributes
    ----------
    heads : Module or None
        The attention output projection (its input: the heads' outputs).
    n_heads : int
        Attention heads of the block (0: heads are not read).
    mlp : Module or None
        The MLP output projection (its input: the MLP neurons).
    block : str
        The block's module path in the model (``encoder.layer.3``), for the metadata.
    """

    heads: torch.nn.Module | None
    n_heads: int
    mlp: torch.nn.Module | None
    block: str


def unit_sites(
    model: torch.nn.Module, blocks: Mapping[int, tuple[torch.nn.Module, int]]
) -> dict[int, UnitSite]:
    """The unit sites of ``blocks`` (layer -> (block, n_heads)), named by their model path."""
    names = {id(module): name for name, module in model.named_modules()}
    return {
        layer: UnitSite(
            attention_output(block) if n_heads else None,
            int(n_heads),
            mlp_output(block),
            names.get(id(block), type(block).__name__),
        )
        for layer, (block, n_heads) in blocks.items()
    }


@contextlib.contextmanager
def capture_units(
    sites: Mapping[int, UnitSite], keys: Sequence[Any], heads: bool, mlp: bool
) -> Iterator[dict[str, torch.Tensor]]:
    """Record, during a forward pass, the units of the blocks of the int keys in ``keys``.

    Yields
    ------
    dict of str to Tensor
        ``heads-XX``: (batch, tokens, n_heads * head_dim); ``mlp-XX``: (batch, tokens,
        n_mlp); filled by the forward pass run inside the context (the last call of a
        module wins).
    """
    captured: dict[str, torch.Tensor] = {}
    targets = []
    for layer in (k for k in keys if isinstance(k, int) and k in sites):
        site = sites[layer]
        if heads and site.heads is not None:
            targets.append((heads_key(layer), site.heads))
        if mlp and site.mlp is not None:
            targets.append((mlp_key(layer), site.mlp))
    handles = []
    for key, module in targets:

        def hook(module: Any, args: tuple, output: Any, key: str = key) -> None:
            captured[key] = args[0].detach()

        handles.append(module.register_forward_hook(hook))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()
