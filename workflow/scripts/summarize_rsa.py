"""Rule summarize_rsa: tidy group tables of the RSA stage, with FDR control."""
from brainalign.logs import log_to_file
from brainalign.rsa.steps import summarize_rsa

KINDS = ("layers", "ceiling", "selected", "models", "pairwise")

with log_to_file(snakemake.log[0]):
    summarize_rsa(
        snakemake.input.scores,
        snakemake.input.permutation,
        {kind: getattr(snakemake.input, kind) for kind in KINDS},
        snakemake.input.brain,
        fdr_alpha=snakemake.params.rsa["fdr_alpha"],
        out=dict(snakemake.output.items()),
    )
