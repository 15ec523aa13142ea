"""Rule summarize_contrasts: the subjects' per-unit contrast tables, concatenated, and the
shares of significant units / sites per task x contrast x ROI, pooled over subjects."""
from brainalign import io
from brainalign.contrasts.steps import summarize_contrasts
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    group, units = summarize_contrasts(
        list(snakemake.input.units), list(snakemake.input.shares), level=snakemake.params.ci_level
    )
    io.write_table(units, snakemake.output.units)
    io.write_table(group, snakemake.output.group)
