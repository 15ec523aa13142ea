"""Rule summarize_qc: every subject x task's count of flagged units per ROI, in one table."""
import pandas as pd

from brainalign import io
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    table = pd.concat([io.read_table(p) for p in snakemake.input.tables], ignore_index=True)
    io.write_table(table.fillna({"runs": ""}), snakemake.output.qc)
