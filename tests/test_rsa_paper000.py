"""Paper 000's RSA: group-mean estimand, partial-correlation ablation, layer comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import rankdata, spearmanr

from brainalign import io
from brainalign.rsa.bootstrap import bootstrap_samples_from_indices
from brainalign.rsa.group_target import compare_estimands, group_mean_scores
from brainalign.rsa.layers import best_layer_test, best_layer_units, rdm_similarity_table
from brainalign.rsa.partial import partial_ablation, partial_bootstrap, partial_spearman
from brainalign.rsa.steps import run_brain_rdms, run_model_rdms
from brainalign.rsa.steps_paper000 import (
    run_best_layer_tests,
    run_partial_ablation,
    run_rdm_similarity,
    run_rsa_estimands,
)


def _residual(target, control):
    """Least-squares residual of target on [1, control] (numpy lstsq, the reference)."""
    design = np.column_stack([np.ones_like(control), control])
    return target - design @ np.linalg.lstsq(design, target, rcond=None)[0]


def _correlated(rng, n_pairs=45):
    z, x, y = rng.normal(size=(3, n_pairs))
    return x + z, y + 0.6 * z + 0.4 * x, z


def _reference(x, y, z, kind):
    """Partial Spearman by regressing ranks with lstsq (or the paper's raw-value regression)."""
    rx, ry, rz = rankdata(x), rankdata(y), rankdata(z)
    if kind == "paper":
        return spearmanr(_residual(x, z), y).statistic
    other = _residual(ry, rz) if kind == "partial" else ry
    return np.corrcoef(_residual(rx, rz), other)[0, 1]


@pytest.mark.parametrize("kind", ["partial", "semipartial", "paper"])
def test_partial_spearman_matches_lstsq_reference(kind):
    x, y, z = _correlated(np.random.default_rng(0), n_pairs=66)
    assert partial_spearman(x, z, y, kind=kind)[0] == pytest.approx(_reference(x, y, z, kind), abs=1e-10)
    assert abs(_reference(x, y, z, kind) - spearmanr(x, y).statistic) > 0.05  # the control matters


def _orthonormal(rng, n_pairs, k):
    """k centred, mutually orthogonal unit vectors of length n_pairs."""
    basis = np.linalg.qr(np.column_stack([np.ones(n_pairs), rng.normal(size=(n_pairs, k))]))[0]
    return basis[:, 1:].T * np.sqrt(n_pairs)


def test_partial_removes_planted_shared_component():
    rng = np.random.default_rng(1)
    n = 80
    shared, specific, other, noise = _orthonormal(rng, n * (n - 1) // 2, 4)
    brain = shared + specific + noise
    language = shared
    vlm_specific = shared + specific
    vlm_shared_only = shared + other
    scores = partial_spearman(np.stack([vlm_specific, vlm_shared_only]), language, brain)
    initial = [spearmanr(v, brain).statistic for v in (vlm_specific, vlm_shared_only)]
    # Underlying Pearson partials: corr(specific, specific + noise) = 1/sqrt(2); corr(other, .) = 0.
    assert scores[0] == pytest.approx(1 / np.sqrt(2), abs=0.04)
    assert scores[1] == pytest.approx(0.0, abs=0.04)
    assert initial[1] > 0.3  # alignment that came only from the shared component is removed


def _rebuilt(vector, drawn):
    """Condensed vector of the drawn stimuli, pairs of two copies of one stimulus dropped."""
    n = int(round((1 + np.sqrt(1 + 8 * vector.size)) / 2))
    square = np.zeros((n, n))
    square[np.triu_indices(n, 1)] = vector
    square = square + square.T
    i, j = np.triu_indices(drawn.size, 1)
    keep = drawn[i] != drawn[j]
    return square[drawn[i][keep], drawn[j][keep]]


def test_partial_bootstrap_matches_rebuilt_vectors_and_is_seeded():
    rng = np.random.default_rng(2)
    x, y, z = _correlated(rng, n_pairs=45)  # 10 stimuli
    drawn = rng.integers(0, 10, size=(3, 10))
    samples = bootstrap_samples_from_indices(np.zeros((3, 1), int), drawn, 1, 10)
    for kind in ("partial", "semipartial", "paper"):
        initial, ablated = partial_bootstrap(x, z, y, samples, kind=kind)
        for b in range(3):
            assert np.unique(drawn[b]).size < 10  # duplicated stimuli: self-pairs dropped
            xb, yb, zb = (_rebuilt(v, drawn[b]) for v in (x, y, z))
            assert initial[b, 0] == pytest.approx(spearmanr(xb, yb).statistic, abs=1e-10)
            assert ablated[b, 0] == pytest.approx(_reference(xb, yb, zb, kind), abs=1e-10)
    first = partial_ablation(x, z, y, n_bootstrap=50, random_state=3)
    again = partial_ablation(x, z, y, n_bootstrap=50, random_state=3)
    other = partial_ablation(x, z, y, n_bootstrap=50, random_state=4)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert first["ci_low"][0] != other["ci_low"][0]


def test_partial_ablation_detects_planted_drop():
    rng = np.random.default_rng(5)
    shared, specific, other, noise = _orthonormal(rng, 30 * 29 // 2, 4)
    result = partial_ablation(np.stack([shared + specific, shared + other]), shared,
                              shared + 0.5 * specific + noise, n_bootstrap=300, random_state=0)
    assert result["difference"][1] > 0.3 and result["p"][1] < 0.01
    assert result["ci_low"][1] > 0


def test_group_mean_estimand_matches_hand_computation():
    rng = np.random.default_rng(6)
    patterns = rng.normal(size=(3, 6, 11))  # 3 subjects, 6 concepts, 11 voxels
    subjects = np.stack([pdist(p, "cosine") for p in patterns])
    models = np.stack([pdist(rng.normal(size=(6, 5)), "cosine") for _ in range(2)])
    table = compare_estimands(models, subjects, n_permutations=20, n_bootstrap=20, random_state=0)
    group = table[table["estimand"] == "group_mean_rdm"]["score"].to_numpy()
    mean = table[table["estimand"] == "subject_mean"]["score"].to_numpy()
    target = subjects.mean(axis=0)
    assert group == pytest.approx([spearmanr(m, target).statistic for m in models], abs=1e-12)
    assert group_mean_scores(models, subjects) == pytest.approx(group, abs=1e-12)
    hand = [np.mean([spearmanr(m, s).statistic for s in subjects]) for m in models]
    assert mean == pytest.approx(hand, abs=1e-12)
    assert set(table["estimand"]) == {"group_mean_rdm", "subject_mean"}
    assert table.loc[table["estimand"] == "group_mean_rdm", "ceiling_upper"].isna().all()
    assert table.loc[table["estimand"] == "subject_mean", "ceiling_upper"].notna().all()


def _layers_and_brains(rng, noise_levels, n_subjects=4, n_concepts=30):
    latent = rng.normal(size=(n_concepts, 8))
    layers = np.stack([pdist(latent + s * rng.normal(size=latent.shape), "cosine") for s in noise_levels])
    brains = np.stack([pdist(latent @ rng.normal(size=(8, 20)) + 2 * rng.normal(size=(n_concepts, 20)),
                             "cosine") for _ in range(n_subjects)])
    return layers, brains


def test_best_layer_test_finds_planted_best_layer():
    layers, brains = _layers_and_brains(np.random.default_rng(7), [3.0, 0.3, 3.0, 6.0])
    table = best_layer_test(layers, brains, n_bootstrap=300, random_state=0)
    assert (table["best"] == 1).all() and list(table["other"]) == [0, 2, 3]
    assert (table["q"] < 0.05).all() and (table["ci_low"] > 0).all()


def test_best_layer_test_null_layers_give_uniformish_p():
    p = []
    for seed in range(30):
        layers, brains = _layers_and_brains(np.random.default_rng(100 + seed), [1.0, 1.0])
        p.append(best_layer_test(layers, brains, best=0, n_bootstrap=100, random_state=seed)["p"][0])
    p = np.array(p)
    assert np.mean(p < 0.05) <= 0.15
    assert 0.25 < np.median(p) < 0.85


def test_rdm_similarity_table_and_best_units():
    rng = np.random.default_rng(8)
    rdms = list(rng.normal(size=(3, 15)))
    units = pd.DataFrame({"model": ["a", "a", "b"], "condition": "sentence", "layer": [0, 1, 0],
                          "rdm": rdms, "score": [0.1, 0.3, 0.2]})
    tidy, matrix = rdm_similarity_table(units)
    assert matrix.shape == (3, 3) and np.allclose(np.diag(matrix), 1)
    assert matrix.iloc[0, 2] == pytest.approx(spearmanr(rdms[0], rdms[2]).statistic)
    row = tidy[(tidy["layer_a"] == 1) & (tidy["model_b"] == "b")]
    assert row["similarity"].item() == pytest.approx(spearmanr(rdms[1], rdms[2]).statistic)
    assert list(best_layer_units(units)["layer"]) == [1, 0]
    with pytest.raises(ValueError, match="lacks columns"):
        rdm_similarity_table(units.drop(columns="rdm"))


# --- File-level steps, on files written by the real writers ---

CONCEPTS = [f"concept{i:02d}" for i in range(20)]
PARAMS = {"comparison": "spearman", "n_permutations": 200, "n_bootstrap": 200, "bootstrap": "both",
          "ci_level": 0.9}


@pytest.fixture(scope="module")
def paper000_files(tmp_path_factory):
    """Brain RDM files (cosine on betas, 3 subjects) and model RDM files of a VLM and its LM."""
    root = tmp_path_factory.mktemp("paper000")
    rng = np.random.default_rng(9)
    shared, specific = rng.normal(size=(2, 20, 6))
    both = np.hstack([shared, specific])
    layers = {"vlm": {0: rng.normal(size=(20, 12)), 1: both + 0.3 * rng.normal(size=(20, 12)),
                      2: both + 2.0 * rng.normal(size=(20, 12))},
              "lm": {0: shared + 0.3 * rng.normal(size=(20, 6)), 1: rng.normal(size=(20, 6))}}
    models = []
    for model, feats in layers.items():
        order = rng.permutation(20) if model == "vlm" else np.arange(20)  # labels travel with rows
        io.save_arrays(root / f"{model}_features.safetensors",
                       {f"layer-{k:02d}": v[order].astype(np.float32) for k, v in feats.items()},
                       {"model": model, "condition": "sentence", "stimuli": [CONCEPTS[i] for i in order],
                        "task": "concepts", "layers": sorted(feats)})
        models.append(root / f"{model}_rdms.safetensors")
        run_model_rdms(root / f"{model}_features.safetensors", metric="cosine", out=models[-1])
    brains = []
    for subject in ("01", "02", "03"):
        order = rng.permutation(20)
        betas = both @ rng.normal(size=(12, 40)) + 3.0 * rng.normal(size=(20, 40))
        io.save_arrays(root / f"sub-{subject}_patterns.safetensors",
                       {"patterns": betas[order].astype(np.float32), "roi": np.ones(40, np.int32),
                        "ijk": np.zeros((40, 3), np.int32)},
                       {"subject": subject, "task": "concepts", "stimuli": [CONCEPTS[i] for i in order],
                        "rois": {"lang": 1}})
        brains.append(root / f"sub-{subject}_rdms.safetensors")
        run_brain_rdms(root / f"sub-{subject}_patterns.safetensors", ["lang"], metric="cosine",
                       noise="none", out=brains[-1])
    return root, brains, models


def _group_rdm_by_name(brains):
    """Group-mean brain RDM in CONCEPTS order, computed by hand from the pattern files."""
    rdms = []
    for path in brains:
        arrays, meta = io.load_arrays(str(path).replace("_rdms", "_patterns"))
        order = [meta["stimuli"].index(c) for c in CONCEPTS]
        rdms.append(pdist(arrays["patterns"][order].astype(np.float64), "cosine"))
    return np.mean(rdms, axis=0)


def test_run_rsa_estimands_labels_both_estimands_and_pairs_by_name(paper000_files):
    root, brains, models = paper000_files
    table = run_rsa_estimands(brains, models, "lang", params=PARAMS, seed=0, out=root / "est.parquet")
    assert len(pd.read_parquet(root / "est.parquet")) == 2 * 5
    row = table[(table.model == "vlm") & (table.layer == 1) & (table.estimand == "group_mean_rdm")]
    features, meta = io.load_arrays(root / "vlm_features.safetensors")
    vlm = features["layer-01"][[meta["stimuli"].index(c) for c in CONCEPTS]].astype(np.float64)
    expected = spearmanr(pdist(vlm, "cosine"), _group_rdm_by_name(brains)).statistic
    assert row["score"].item() == pytest.approx(expected, abs=1e-5)
    assert row["p_perm"].item() < 0.02 and row["brain_metric"].item() == "cosine"


def test_run_partial_ablation_and_layer_steps(paper000_files):
    root, brains, (vlm, lm) = paper000_files
    ablation = run_partial_ablation(brains, vlm, lm, "lang", params=PARAMS, seed=0,
                                    out=root / "partial.parquet")
    best = ablation[ablation.best_layer]
    assert list(best["layer"]) == [1] and (ablation["control_layer"] == 0).all()
    assert (best["ablated"] > 0).all() and (best["ablated"] < best["initial"]).all()
    tests = run_best_layer_tests(brains, [vlm, lm], "lang", params=PARAMS, seed=0,
                                 out=root / "best.parquet")
    vlm_tests = tests[tests.model == "vlm"]
    assert (vlm_tests["best_layer"] == 1).all() and set(vlm_tests["layer"]) == {0, 2}
    assert set(tests["estimand"]) == {"group_mean_rdm", "subject_mean"}
    sim = run_rdm_similarity([vlm, lm], params=PARAMS, best_from=root / "est.parquet",
                             out={"tidy": root / "sim.parquet", "matrix": root / "simmat.parquet"})
    assert len(sim["tidy"]) == 4 and list(sim["matrix"]["layer"]) == [0, 1]  # lm 0, vlm 1
