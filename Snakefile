# brainalign: alignment of vision-language models with brain recordings.
# Thin entry point: configuration, validation, the rules of each stage, the final targets.
from snakemake.utils import min_version

min_version("9.0")


# The embedded demo is the default configuration. A user's --configfile replaces it rather
# than merging with it (Snakemake would otherwise run the demo's models too); --config
# key=value alone still edits the demo.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


if config["dataset"]["format"] in SYNTHETIC_FORMATS:

    include: "workflow/rules/demo.smk"


include: "workflow/rules/preprocess.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/encoding.smk"
include: "workflow/rules/rsa.smk"
include: "workflow/rules/contrasts.smk"
include: "workflow/rules/paper000.smk"
include: "workflow/rules/paper002.smk"
include: "workflow/rules/neurons.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/bundle.smk"


# After a crash (kill -9, out of memory), the hidden temp files of killed writers
# (brainalign.io.atomic_write) are removed before any job: those no live run can own.
onstart:
    from brainalign.recovery import remove_orphan_temps

    for orphan in remove_orphan_temps("."):
        logger.info(f"removed {orphan}, a temp file left by an interrupted writer")


# At the end of a successful run: where the report and the bundle are, and the headline
# numbers (for the demo, the planted-truth check: driven ROIs against the control).
onsuccess:
    from brainalign.summary import run_summary

    for line in run_summary(config):
        logger.info(line)


rule all:
    default_target: True
    input:
        "results/bundle/MANIFEST.tsv",


# The papers as named analyses: `snakemake paper000` builds exactly that paper's tables
# and figures (with its preset, config/presets/<paper>.yaml).
rule paper000:
    input:
        rules.paper000_summary.output,


rule paper001:
    input:
        rules.summarize_neurons.output,


rule paper002:
    input:
        rules.paper002_summary.output,
        PAPER002_CONTRASTS,
