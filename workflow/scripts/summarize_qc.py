"""Rule summarize_qc: every subject x task's count of flagged units per ROI, in one table;
per subject, the units left out (NaN, infinite or constant signal) are logged."""
import logging

import pandas as pd

from brainalign import io
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    table = pd.concat([io.read_table(p) for p in snakemake.input.tables], ignore_index=True)
    totals = table.groupby(["subject", "task"])[["n_flagged", "n_units"]].sum()
    for (subject, task), row in totals.iterrows():
        logging.getLogger("summarize_qc").info(
            "sub-%s task %s: %d of %d ROI units flagged and left out", subject, task,
            row["n_flagged"], row["n_units"])
    table = table.fillna({"runs": ""})
    io.write_table(table, snakemake.output.qc)
    io.write_table(table, snakemake.output.report)  # the same table, shown in the report
