"""Rule compute_rsa: per-subject scores of every layer of one model x condition in every
ROI, and the group-level permutation test over concept labels."""
from brainalign.logs import log_to_file
from brainalign.rsa.steps import run_rsa

with log_to_file(snakemake.log[0]):
    run_rsa(
        snakemake.input.brain,
        snakemake.input.model,
        params=snakemake.params.rsa,
        seed=snakemake.params.seed,
        out_scores=snakemake.output.scores,
        out_permutation=snakemake.output.permutation,
        n_jobs=snakemake.threads,
    )
