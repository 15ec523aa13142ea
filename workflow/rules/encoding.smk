# Voxel-wise ridge encoding with nested cross-validation (himalaya).


rule fit_encoding:
    input:
        brain="results/preprocess/sub-{subject}/sub-{subject}_task-{task}_desc-preproc_bold.safetensors",
        features="results/features/model-{model}/cond-{condition}/model-{model}_cond-{condition}_task-{task}_features.safetensors",
    output:
        map="results/encoding/sub-{subject}/task-{task}/sub-{subject}_task-{task}_model-{model}_cond-{condition}_layer-{layer}_stat-r_statmap.nii.gz",
        voxels="results/encoding/sub-{subject}/task-{task}/sub-{subject}_task-{task}_model-{model}_cond-{condition}_layer-{layer}_voxels.parquet",
        rois="results/encoding/sub-{subject}/task-{task}/sub-{subject}_task-{task}_model-{model}_cond-{condition}_layer-{layer}_rois.parquet",
    log:
        "results/logs/fit_encoding/sub-{subject}_task-{task}_model-{model}_cond-{condition}_layer-{layer}.log",
    benchmark:
        "results/benchmarks/fit_encoding/sub-{subject}_task-{task}_model-{model}_cond-{condition}_layer-{layer}.tsv"
    conda:
        "../../envs/encoding.yaml"
    container:
        f"{workflow.basedir}/containers/encoding.sif"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        encoding=config["encoding"],
        seed=SEED,
    script:
        "../scripts/fit_encoding.py"
