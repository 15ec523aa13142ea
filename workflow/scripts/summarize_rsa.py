"""Rule summarize_rsa: per-subject RSA scores and one-sample t-tests across subjects."""
from brainalign import io
from brainalign.group import collect_tables, group_ttest
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    subjects = collect_tables(snakemake.input.tables)
    io.write_table(subjects, snakemake.output.subjects)
    by = ["roi", "model", "condition", "layer"]
    io.write_table(group_ttest(subjects, "score", by), snakemake.output.group)
