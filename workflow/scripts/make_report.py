"""Rule make_report: Snakemake's HTML report into the bundle, with relative paths only."""
import os
from pathlib import Path

from brainalign.bundle.steps import write_report
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    checkout = str(Path(snakemake.params.snakefile).resolve().parent)
    folders = {checkout: "<workflow>/", os.getcwd(): "", str(Path.home()): "~/"}
    write_report(snakemake.params.snakefile, snakemake.params.config, snakemake.output.report, folders,
                 scratch="results/logs/make_report")
