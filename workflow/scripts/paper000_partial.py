"""Rule paper000_partial: one VLM x condition x task x ROI - its RDMs against the group-mean
brain RDM with its language-only counterpart's RDM partialled out, bootstrap over stimuli."""
from brainalign.logs import log_to_file
from brainalign.rsa.steps_paper000 import run_partial_ablation

with log_to_file(snakemake.log[0]):
    run_partial_ablation(
        list(snakemake.input.brain),
        snakemake.input.model,
        snakemake.input.control,
        snakemake.wildcards.roi,
        params=snakemake.params.rsa,
        seed=snakemake.params.seed,
        out=snakemake.output.partial,
    )
