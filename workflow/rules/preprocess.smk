# Per-subject preprocessing with nilearn: masking, cleaning, per-run z-scoring.


rule clean_bold:
    input:
        unpack(get_naturalistic_inputs),
    output:
        bold="results/preprocess/sub-{subject}/sub-{subject}_task-naturalistic_desc-preproc_bold.safetensors",
    log:
        "results/logs/clean_bold/sub-{subject}.log",
    conda:
        "../../envs/preprocess.yaml"
    container:
        f"{workflow.basedir}/containers/preprocess.sif"
    params:
        preprocess=config["preprocess"],
        runs=RUNS["naturalistic"],
    script:
        "../scripts/clean_bold.py"


rule average_concept_patterns:
    input:
        unpack(get_concept_inputs),
    output:
        patterns="results/preprocess/sub-{subject}/sub-{subject}_task-concepts_desc-preproc_bold.safetensors",
    log:
        "results/logs/average_concept_patterns/sub-{subject}.log",
    conda:
        "../../envs/preprocess.yaml"
    container:
        f"{workflow.basedir}/containers/preprocess.sif"
    params:
        runs=RUNS["concepts"],
    script:
        "../scripts/average_concept_patterns.py"
