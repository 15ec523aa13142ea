"""Rule infer_rsa: noise ceiling, bootstrap CIs, held-out layer selection and pairwise
model comparisons in one ROI."""
from brainalign.logs import log_to_file
from brainalign.rsa.steps import run_rsa_inference

with log_to_file(snakemake.log[0]):
    run_rsa_inference(
        snakemake.input.brain,
        snakemake.input.models,
        snakemake.wildcards.roi,
        params=snakemake.params.rsa,
        seed=snakemake.params.seed,
        out=dict(snakemake.output.items()),
    )
