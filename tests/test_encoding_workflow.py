"""The encoding rules inside the tiny end-to-end demo run (shares the session's demo_run)."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = pytest.mark.workflow

CLIP, MINILM = "model-clip_cond-image_layer-2", "model-minilm_cond-sentence_layer-6"


def _group(run, name):
    return pd.read_parquet(run / f"results/group/encoding_{name}.parquet")


@pytest.mark.parametrize("task", ["concepts", "naturalistic"])
def test_joint_model_partitions_visual_to_clip_and_language_to_minilm(demo_run, task):
    subjects = _group(demo_run, "joint_subjects")
    unique = subjects[(subjects.task == task) & (subjects.measure == "unique")]
    mean = unique.groupby(["roi", "space"])["value"].mean()
    assert mean["visual", CLIP] > mean["visual", MINILM] + 0.1, mean
    assert mean["language", MINILM] > mean["language", CLIP] + 0.02, mean
    per_subject = unique.pivot_table(index=["subject", "roi"], columns="space", values="value")
    assert (
        per_subject.loc[(slice(None), "visual"), CLIP]
        > per_subject.loc[(slice(None), "visual"), MINILM]
    ).all()
    group = _group(demo_run, "joint_group")
    assert {"mean", "sem", "t", "p", "n_subjects", "measure", "space"} <= set(group.columns)


def test_significant_voxels_sit_in_the_driven_rois(demo_run):
    rois = pd.read_parquet(demo_run / "results/group/encoding_subjects.parquet")
    driven = rois[
        (rois.roi == "visual")
        & (rois.model == "clip")
        & (rois.condition == "picture")
        & (rois.layer == 2)
    ]
    assert driven.groupby("task")["share_significant"].mean().min() > 0.3, driven
    # FDR over every voxel of the mask: the weaker language signal of the tiny demo may not
    # pass it, but noise never does
    assert rois[rois.roi == "control"]["share_significant"].mean() <= 0.05
    concepts = rois[rois.task == "concepts"]
    assert concepts["mean_ceiling"].notna().all()
    ceiling = concepts.groupby("roi")["mean_ceiling"].mean()
    assert ceiling["visual"] > ceiling["control"] + 0.1
    assert rois[rois.task == "naturalistic"]["mean_ceiling"].isna().all()


def test_nested_best_layer_and_paired_tables(demo_run):
    subjects = _group(demo_run, "bestlayer_subjects")
    minilm = subjects[(subjects.model == "minilm") & (subjects.roi == "language")]
    assert len(minilm) == 2 * 3 and (minilm["mean_r"] > 0.2).all()
    assert set(subjects.columns) >= {"layer", "layers", "mean_r", "n_folds"}
    paired = _group(demo_run, "bestlayer_paired")
    sentence = paired[
        (paired.between == "model") & (paired.condition == "sentence") & (paired.roi == "language")
    ]
    assert {frozenset((a, b)) for a, b in zip(sentence.a, sentence.b)} == {
        frozenset(p) for p in (("bert", "clip"), ("bert", "minilm"), ("clip", "minilm"))
    }
    conditions = _group(demo_run, "conditions_paired")
    visual = conditions[
        (conditions.model == "clip")
        & (conditions.roi == "visual")
        & (conditions.layer == 2)
        & (conditions.a == "noise")
        & (conditions.b == "picture")
    ]
    assert (visual["mean_diff"] < 0).all() and len(visual) == 2


def test_bundle_has_the_encoding_tables(demo_run):
    manifest = pd.read_csv(demo_run / "results/bundle/MANIFEST.tsv", sep="\t")
    expected = {
        f"tables/encoding_{name}.parquet"
        for name in (
            "joint_subjects",
            "joint_group",
            "bestlayer_subjects",
            "bestlayer_group",
            "bestlayer_paired",
            "conditions_paired",
        )
    }
    assert expected <= set(manifest["path"])
