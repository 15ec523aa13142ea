"""Rule summarize_joint_encoding: joint-model variance partitions per subject and group t-tests."""

from brainalign import io
from brainalign.encoding.steps import summarize_joint_tables
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    subjects, group = summarize_joint_tables(snakemake.input.tables)
    io.write_table(subjects, snakemake.output.subjects)
    io.write_table(group, snakemake.output.group)
