# Per-subject preprocessing with nilearn: masking, cleaning, per-run z-scoring.


rule clean_bold:
    input:
        unpack(get_naturalistic_inputs),
    output:
        bold="results/preprocess/sub-{subject}/sub-{subject}_task-naturalistic_desc-preproc_bold.safetensors",
    params:
        preprocess=config["preprocess"],
        runs=RUNS["naturalistic"],
    log:
        "results/logs/clean_bold/sub-{subject}.log",
    conda:
        "../../envs/preprocess.yaml"
    script:
        "../scripts/clean_bold.py"


rule average_concept_patterns:
    input:
        unpack(get_concept_inputs),
    output:
        patterns="results/preprocess/sub-{subject}/sub-{subject}_task-concepts_desc-preproc_bold.safetensors",
    params:
        runs=RUNS["concepts"],
    log:
        "results/logs/average_concept_patterns/sub-{subject}.log",
    conda:
        "../../envs/preprocess.yaml"
    script:
        "../scripts/average_concept_patterns.py"
