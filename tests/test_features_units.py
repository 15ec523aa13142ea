"""Single units of the extraction: MLP neurons (``mlp_neurons``) of every family and the
attention heads of the cross-modal families, each checked against a forward hook placed by
hand on the reference module (BERT's ``intermediate``, CLIP's ``mlp.activation_fn``,
LLaMA's ``act_fn(gate_proj) * up_proj``, BridgeTower's, LXMERT's and FLAVA's self-attention
and intermediate modules), pooled by hand over the sentence's tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from brainalign.features import ModelSpec, load_extractor
from brainalign.features.cache import feature_cache_key

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SENTENCES = ["The dog chased the other dog.", "It was unbelievably good, I said."]
SPANS = [[(0, len(s))] for s in SENTENCES]


def tiny(extractor: str, **options) -> object:
    cfg = {"extractor": extractor, "source": "tiny", "pooling": "mean", "batch_size": 2, **options}
    return load_extractor(ModelSpec.from_config(extractor, cfg, seed=0))


def images() -> list[Image.Image]:
    rng = np.random.default_rng(5)
    return [Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in SENTENCES]


class Hooks:
    """Forward hooks by hand: ``outputs[name]`` is the (first) output of module ``name``."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        self.outputs: dict[str, torch.Tensor] = {}
        modules = dict(model.named_modules())
        self.handles = [modules[name].register_forward_hook(self._hook(name)) for name in names]

    def _hook(self, name: str):
        def record(module, args, output):
            self.outputs[name] = (output[0] if isinstance(output, tuple) else output).detach()

        return record

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()


def mean_over_words(states: torch.Tensor, attention, special) -> np.ndarray:
    """Pooling "mean" by hand: (1, tokens, n) -> (n,) over the real, non-special tokens."""
    mask = (torch.as_tensor(attention).bool() & ~torch.as_tensor(special).bool())[0]
    return states[0][mask].double().mean(dim=0).numpy()


def one_sentence(extractor, sentence: str) -> dict[str, torch.Tensor]:
    return extractor.tokenizer(sentence, return_tensors="pt", return_special_tokens_mask=True)


# --- towers: text encoder, decoder, CLIP ---------------------------------------------------


def test_bert_mlp_neurons_are_the_intermediate_output_after_gelu():
    bert = tiny("text_encoder", mlp_neurons=True)
    out = bert.encode_text_spans(SENTENCES, SPANS, [0, 1, 2])  # one padded batch
    assert sorted(k for k in out if isinstance(k, str)) == ["mlp-01", "mlp-02"]
    names = [f"encoder.layer.{i}.intermediate" for i in range(2)]
    for row, sentence in enumerate(SENTENCES):
        encoded = one_sentence(bert, sentence)
        with Hooks(bert.model, names) as hooks, torch.no_grad():
            bert.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
        for layer in (1, 2):
            reference = mean_over_words(hooks.outputs[names[layer - 1]],
                                        encoded["attention_mask"], encoded["special_tokens_mask"])
            assert out[f"mlp-{layer:02d}"].shape == (2, 64)
            np.testing.assert_allclose(out[f"mlp-{layer:02d}"][row], reference, atol=2e-6)
    assert (out["mlp-01"] < 0).any() and out["mlp-01"].min() > -0.2  # GELU's floor, not a projection


def test_llama_mlp_neurons_are_the_gate_times_up_product():
    llama = tiny("causal_lm", id="llama", mlp_neurons=True)
    out = llama.encode_text_spans(SENTENCES, SPANS, [2])
    assert sorted(k for k in out if isinstance(k, str)) == ["mlp-02"]
    mlp = "layers.1.mlp"
    for row, sentence in enumerate(SENTENCES):
        encoded = one_sentence(llama, sentence)
        names = [f"{mlp}.gate_proj", f"{mlp}.up_proj"]
        with Hooks(llama.model, names) as hooks, torch.no_grad():
            llama.model(input_ids=encoded["input_ids"], use_cache=False)
        act = dict(llama.model.named_modules())[f"{mlp}.act_fn"]
        product = act(hooks.outputs[names[0]]) * hooks.outputs[names[1]]
        reference = mean_over_words(product, encoded["attention_mask"], encoded["special_tokens_mask"])
        np.testing.assert_allclose(out["mlp-02"][row], reference, atol=2e-6)


def test_clip_mlp_neurons_of_both_towers_are_the_activated_fc1():
    clip = tiny("clip", mlp_neurons=True)
    text = clip.encode_text_spans(SENTENCES, SPANS, [1, 2, 3])  # 3: the embeds pseudo-layer
    assert sorted(k for k in text if isinstance(k, str)) == ["mlp-01", "mlp-02"]
    pictures = images()
    image = clip.encode_images(pictures, [1, 2])
    names = [f"encoder.layers.{i}.mlp.activation_fn" for i in range(2)]
    pixels = torch.from_numpy(clip.preprocessing(pictures))
    with Hooks(clip.model.vision_model, names) as hooks, torch.no_grad():
        clip.model.vision_model(pixel_values=pixels)
    for layer in (1, 2):
        cls = hooks.outputs[names[clip.vision_index(layer) - 1]][:, 0].double().numpy()
        assert image[f"mlp-{layer:02d}"].shape == (2, 48)  # vision intermediate_size
        np.testing.assert_allclose(image[f"mlp-{layer:02d}"], cls, atol=2e-6)
    for row, sentence in enumerate(SENTENCES):
        encoded = one_sentence(clip, sentence)
        with Hooks(clip.model.text_model, names) as hooks, torch.no_grad():
            clip.model.text_model(input_ids=encoded["input_ids"])
        for layer in (1, 2):
            reference = mean_over_words(hooks.outputs[names[layer - 1]],
                                        encoded["attention_mask"], encoded["special_tokens_mask"])
            np.testing.assert_allclose(text[f"mlp-{layer:02d}"][row], reference, atol=2e-6)
    assert clip.unit_blocks("image") == {1: "vision_model.encoder.layers.0",
                                         2: "vision_model.encoder.layers.1"}


# --- cross-modal families: heads and MLP neurons of the joint forward pass -----------------

# family -> (layer -> (self-attention module whose output is the heads, MLP activation module))
JOINT_REFERENCES = {
    "bridgetower": {
        layer: (f"cross_modal_text_layers.{layer - 1}.attention.self",
                f"cross_modal_text_layers.{layer - 1}.intermediate")
        for layer in (1, 2)
    },
    "lxmert": {
        1: ("encoder.layer.0.attention.self", "encoder.layer.0.intermediate"),
        2: ("encoder.layer.1.attention.self", "encoder.layer.1.intermediate"),
        3: ("encoder.x_layers.0.lang_self_att.self", "encoder.x_layers.0.lang_inter"),
        4: ("encoder.x_layers.1.lang_self_att.self", "encoder.x_layers.1.lang_inter"),
    },
    "flava": {  # text layers, then multimodal layers whose text comes after the image tokens
        layer: (f"{stack}.encoder.layer.{k}.attention.attention", f"{stack}.encoder.layer.{k}.intermediate")
        for layer, stack, k in [(1, "text_model", 0), (2, "text_model", 1),
                                (3, "multimodal_model", 0), (4, "multimodal_model", 1)]
    },
}


@pytest.mark.parametrize("family", sorted(JOINT_REFERENCES))
def test_cross_modal_heads_and_mlp_neurons_match_hooks_on_the_joint_forward(family):
    model = tiny(family, attention_heads=True, mlp_neurons=True)
    references = JOINT_REFERENCES[family]
    layers = sorted(references)
    pictures = images()
    out = model.encode_text_image(SENTENCES, SPANS, pictures, [0, *layers])
    modules = dict(model.model.named_modules())
    for layer, (heads, mlp) in references.items():
        block = modules[model.unit_blocks("text")[layer]]
        assert modules[heads] in list(block.modules()) and modules[mlp] in list(block.modules())
    for row, sentence in enumerate(SENTENCES):
        prepared = model._prepare([sentence], [pictures[row]])
        names = [name for pair in references.values() for name in pair]
        with Hooks(model.model, names) as hooks, torch.no_grad():
            model.model(**prepared.inputs)
        pool = prepared.pool
        n_text = pool["attention_mask"].shape[1]
        for layer, (heads, mlp) in references.items():
            text = slice(hooks.outputs[heads].shape[1] - n_text, None)  # FLAVA: after the image
            expected_heads = mean_over_words(hooks.outputs[heads][:, text], pool["attention_mask"],
                                             pool["special_tokens_mask"])
            found = out[f"heads-{layer:02d}"][row]
            assert found.shape == (2, len(expected_heads) // 2)
            np.testing.assert_allclose(found.reshape(-1), expected_heads, atol=2e-6)
            expected_mlp = mean_over_words(hooks.outputs[mlp][:, text], pool["attention_mask"],
                                           pool["special_tokens_mask"])
            np.testing.assert_allclose(out[f"mlp-{layer:02d}"][row], expected_mlp, atol=2e-6)
        if family == "flava":
            assert text.start > 0 and out["mlp-04"].shape == (2, 80)
    plain = tiny(family).encode_text_image(SENTENCES, SPANS, pictures, [0, *layers])
    assert set(plain) == {0, *layers}
    for layer in [0, *layers]:  # the hooks leave the hidden states untouched
        np.testing.assert_array_equal(plain[layer], out[layer])


def test_generative_families_write_decoder_units():
    blip2 = tiny("blip2", mlp_neurons=True)  # OPT flattens its tokens before fc1/fc2
    out = blip2.encode_text_image(SENTENCES, SPANS, images(), [1])
    assert out["mlp-01"].shape == (2, 64)
    assert blip2.unit_blocks("text")[1] == "language_model.model.decoder.layers.0"
    text_only = blip2.encode_text_spans(SENTENCES, SPANS, [1])
    assert text_only["mlp-01"].shape == (2, 64)
    assert not np.allclose(text_only["mlp-01"], out["mlp-01"])


# --- options: refusals, cache key -----------------------------------------------------------


def test_families_without_mlp_blocks_refuse_mlp_neurons_in_one_line():
    with pytest.raises(ValueError, match=r"model 'align': 'mlp_neurons' is true but no image "
                                         r"block exposes an MLP output projection .*set it to false"):
        tiny("align", mlp_neurons=True)
    with pytest.raises(ValueError, match=r"'mlp_neurons' is not read for audio encoders"):
        tiny("audio_encoder", mlp_neurons=True)
    with pytest.raises(ValueError, match=r"model 'x': 'mlp_neurons' must be true or false; got 'yes'"):
        ModelSpec.from_config("x", {"extractor": "clip", "source": "tiny", "mlp_neurons": "yes"}, seed=0)


def test_mlp_neurons_enter_the_cache_key_and_code_version(stim):
    off = ModelSpec.from_config("m", {"extractor": "clip", "source": "tiny"}, seed=0)
    on = ModelSpec.from_config("m", {"extractor": "clip", "source": "tiny", "mlp_neurons": True},
                               seed=0)
    assert off.code_version != on.code_version
    keys = [feature_cache_key(spec, stim, "concepts", "sentence")[0] for spec in (off, on)]
    assert keys[0] != keys[1]
