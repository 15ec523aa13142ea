"""Rule average_concept_patterns: one z-scored pattern per concept from single-trial volumes."""
from brainalign import io
from brainalign.logs import log_to_file
from brainalign.preprocess import preprocess_concepts

with log_to_file(snakemake.log[0]):
    arrays, meta = preprocess_concepts(
        snakemake.input.trials,
        snakemake.input.events,
        snakemake.input.mask,
        snakemake.input.atlas,
        snakemake.input.labels,
        concepts=list(io.read_table(snakemake.input.concepts)["concept"]),
        subject=snakemake.wildcards.subject,
    )
    io.save_arrays(snakemake.output.patterns, arrays, meta)
