# brainalign: alignment of vision-language models with brain recordings.
# Thin entry point: configuration, validation, the rules of each stage, the final targets.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


if config["dataset"]["kind"] == "synthetic":

    include: "workflow/rules/demo.smk"


include: "workflow/rules/preprocess.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/encoding.smk"
include: "workflow/rules/rsa.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/bundle.smk"


rule all:
    default_target: True
    input:
        "results/bundle/MANIFEST.tsv",
