"""Rule compare_encoding_conditions: paired t-tests between input conditions across subjects."""

from brainalign import io
from brainalign.group import group_paired_ttest
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    subjects = io.read_table(snakemake.input.subjects)
    by = ["task", "roi", "model", "layer"]
    io.write_table(group_paired_ttest(subjects, "mean_r", "condition", by), snakemake.output.paired)
