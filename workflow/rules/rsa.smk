# Representational similarity analysis of the concept task.


rule compute_brain_rdms:
    input:
        patterns="results/preprocess/sub-{subject}/sub-{subject}_task-concepts_desc-preproc_bold.safetensors",
    output:
        rdm="results/rsa/sub-{subject}/sub-{subject}_roi-{roi}_rdm.safetensors",
    log:
        "results/logs/compute_brain_rdms/sub-{subject}_roi-{roi}.log",
    conda:
        "../../envs/rsa.yaml"
    params:
        rsa=config["rsa"],
    script:
        "../scripts/compute_brain_rdms.py"


rule compute_model_rdms:
    input:
        features="results/features/model-{model}/cond-{condition}/model-{model}_cond-{condition}_task-concepts_features.safetensors",
    output:
        rdms="results/rsa/model-{model}/model-{model}_cond-{condition}_rdms.safetensors",
    log:
        "results/logs/compute_model_rdms/model-{model}_cond-{condition}.log",
    conda:
        "../../envs/rsa.yaml"
    params:
        rsa=config["rsa"],
    script:
        "../scripts/compute_model_rdms.py"


rule compute_rsa:
    input:
        brain="results/rsa/sub-{subject}/sub-{subject}_roi-{roi}_rdm.safetensors",
        model="results/rsa/model-{model}/model-{model}_cond-{condition}_rdms.safetensors",
    output:
        table="results/rsa/sub-{subject}/roi-{roi}/sub-{subject}_roi-{roi}_model-{model}_cond-{condition}_layer-{layer}_rsa.parquet",
    log:
        "results/logs/compute_rsa/sub-{subject}_roi-{roi}_model-{model}_cond-{condition}_layer-{layer}.log",
    conda:
        "../../envs/rsa.yaml"
    params:
        rsa=config["rsa"],
    script:
        "../scripts/compute_rsa.py"
