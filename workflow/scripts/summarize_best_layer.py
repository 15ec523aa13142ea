"""Rule summarize_best_layer: nested best-layer scores, group t-tests, paired model comparisons."""

from brainalign import io
from brainalign.encoding.steps import summarize_best_layer_tables
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    subjects, group, paired = summarize_best_layer_tables(snakemake.input.tables)
    io.write_table(subjects, snakemake.output.subjects)
    io.write_table(group, snakemake.output.group)
    io.write_table(paired, snakemake.output.paired)
