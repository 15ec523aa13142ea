# The embedded demo: stimuli shipped in packages and a synthetic dataset with planted
# ground truth. Only used when dataset.format is synthetic (fMRI) or synthetic_ieeg (SEEG).


rule make_demo_stimuli:
    output:
        concepts=f"{STIMULI}/concepts.tsv",
        sentences=f"{STIMULI}/sentences.tsv",
        runs=f"{STIMULI}/naturalistic/runs.tsv",
        words=f"{STIMULI}/naturalistic/words.tsv",
        frames=f"{STIMULI}/naturalistic/frames.tsv",
        images=directory(f"{STIMULI}/images"),
        audio=directory(f"{STIMULI}/naturalistic/audio"),
    log:
        "results/logs/make_demo_stimuli.log",
    conda:
        "../../envs/preprocess.yaml"
    container:
        f"{workflow.basedir}/containers/preprocess.sif"
    params:
        demo=config["demo"],
        n_runs=len(RUNS["naturalistic"]),
        seed=SEED,
    script:
        "../scripts/make_demo_stimuli.py"


if DATASET["format"] == "synthetic":

    rule make_demo_dataset:
        input:
            unpack(get_generator_features),
        output:
            files=get_dataset_files(),
            truth=f"{DATASET['root']}/ground_truth/ground_truth.json",
        log:
            "results/logs/make_demo_dataset.log",
        conda:
            "../../envs/preprocess.yaml"
        container:
            f"{workflow.basedir}/containers/preprocess.sif"
        params:
            demo=config["demo"],
            subjects=SUBJECTS,
            tasks=TASKS,
            concept_runs=RUNS["concepts"],
            seed=SEED,
        script:
            "../scripts/make_demo_dataset.py"


if DATASET["format"] == "synthetic_ieeg":

    rule make_ieeg_demo_dataset:
        input:
            unpack(get_ieeg_generator_features),
            words=f"{STIMULI}/naturalistic/words.tsv",
            frames=f"{STIMULI}/naturalistic/frames.tsv",
        output:
            subjects=directory(expand(f"{DATASET['root']}/sub-{{s}}", s=SUBJECTS)),
            truth=f"{DATASET['root']}/ground_truth/ground_truth.json",
        log:
            "results/logs/make_ieeg_demo_dataset.log",
        conda:
            "../../envs/preprocess.yaml"
        container:
            f"{workflow.basedir}/containers/preprocess.sif"
        params:
            demo=config["demo"],
            subjects=SUBJECTS,
            bids_task=sorted(
                {spec.get("bids_task") or t for t, spec in DATASET["tasks"].items()}
            ),
            seed=SEED,
        script:
            "../scripts/make_ieeg_demo_dataset.py"


if DATASET["format"] == "synthetic_neurons":
    # The neuron-level demo (config/neurons.yaml): naturalistic fMRI driven by planted units
    # of the models in neurons.demo.plants, from their neurons.models condition's features.
    from brainalign.neurons._checks_config import demo_features

    rule make_neurons_demo_dataset:
        input:
            unpack(demo_features(config, features_path)),
        output:
            files=get_dataset_files(),
            truth=f"{DATASET['root']}/ground_truth/ground_truth.json",
            plants=f"{DATASET['root']}/ground_truth/plants.safetensors",
        log:
            "results/logs/make_neurons_demo_dataset.log",
        conda:
            "../../envs/preprocess.yaml"
        container:
            f"{workflow.basedir}/containers/preprocess.sif"
        params:
            demo=config["neurons"]["demo"],
            subjects=SUBJECTS,
            seed=SEED,
        script:
            "../scripts/make_neurons_demo_dataset.py"
