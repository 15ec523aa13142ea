# The publishable result bundle (results/bundle): tables, figures, per-subject and group
# maps, provenance, the BIDS derivative description and Snakemake's HTML report, then the
# checksum manifest (MANIFEST.tsv, SHA256SUMS) and the RO-Crate metadata, written last.
# `brainalign verify results/bundle` checks it. The RO-Crate metadata is the run record:
# the one file whose bytes differ between two runs (times, command line).
import sys
from os.path import basename

from brainalign.bundle.record import mark_run_start

mark_run_start(sys.argv)


# make_report runs `snakemake --report` on this folder's .snakemake records: on a cluster it
# runs where Snakemake itself runs (the login node), in seconds, without an allocation.
localrules:
    make_report,


BUNDLE = "results/bundle"
DESCRIPTION = "results/dataset_description.json"
# Per-subject encoding maps and sidecars; on a template volume grid also their mean.
SUBJECT_MAPS = analysis_paths(ENCODING_MAP)
SUBJECT_MAPS += [m.replace(MAP_EXT, ".json") for m in SUBJECT_MAPS]
GROUP_MAP = "results/group/maps/task-{task}_model-{model}_cond-{condition}_stat-r_desc-mean_statmap"
GROUP_MAPS = (
    [
        f"{GROUP_MAP.format(task=t, model=m, condition=c)}{ext}"
        for t, m, c in ANALYSES
        for ext in (".nii.gz", ".json")
    ]
    if MAP_EXT == ".nii.gz" and str(DATASET["space"]).startswith("MNI")
    else []
)
# Source -> place in the bundle.
BUNDLE_COPIES = {
    **{f: f"{BUNDLE}/tables/{basename(f)}" for f in BUNDLE_TABLES},
    **{f: f"{BUNDLE}/figures/{basename(f)}" for f in BUNDLE_FIGURES},
    **{f: f"{BUNDLE}/maps/{f.split('results/encoding/', 1)[1]}" for f in SUBJECT_MAPS},
    **{f: f"{BUNDLE}/maps/group/{basename(f)}" for f in GROUP_MAPS},
    DESCRIPTION: f"{BUNDLE}/dataset_description.json",
}


rule write_provenance:
    input:
        stimuli=get_stimulus_files,
        dataset=get_dataset_files,
        features=get_feature_files,
    output:
        provenance=f"{BUNDLE}/provenance.json",
    log:
        "results/logs/write_provenance.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        config=config,
        checkout=workflow.basedir,
    script:
        "../scripts/write_provenance.py"


rule write_dataset_description:
    output:
        description=DESCRIPTION,
    log:
        "results/logs/write_dataset_description.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        config=config,
    script:
        "../scripts/write_dataset_description.py"


rule make_group_map:
    input:
        maps=expand(ENCODING_MAP, subject=SUBJECTS, allow_missing=True),
    output:
        map=f"{GROUP_MAP}.nii.gz",
        sidecar=f"{GROUP_MAP}.json",
    log:
        "results/logs/make_group_map/task-{task}_model-{model}_cond-{condition}.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    script:
        "../scripts/make_group_map.py"


rule make_bundle:
    input:
        files=list(BUNDLE_COPIES),
    output:
        files=list(BUNDLE_COPIES.values()),
    log:
        "results/logs/make_bundle.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    script:
        "../scripts/make_bundle.py"


rule make_report:
    input:
        files=list(BUNDLE_COPIES.values()),
        provenance=rules.write_provenance.output.provenance,
    output:
        report=f"{BUNDLE}/report.html",
    log:
        "results/logs/make_report.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        config=config,
        snakefile=workflow.main_snakefile,
    script:
        "../scripts/make_report.py"


rule finish_bundle:
    input:
        files=list(BUNDLE_COPIES.values()),
        provenance=rules.write_provenance.output.provenance,
        report=rules.make_report.output.report,
    output:
        manifest=f"{BUNDLE}/MANIFEST.tsv",
        sums=f"{BUNDLE}/SHA256SUMS",
        crate=f"{BUNDLE}/ro-crate-metadata.json",
        snakefile=f"{BUNDLE}/workflow/Snakefile",
    log:
        "results/logs/finish_bundle.log",
    conda:
        "../../envs/figures.yaml"
    container:
        f"{workflow.basedir}/containers/figures.sif"
    params:
        models=config["models"],
        snakefile=workflow.main_snakefile,
    script:
        "../scripts/finish_bundle.py"
