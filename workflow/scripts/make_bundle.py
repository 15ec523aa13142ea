"""Rule make_bundle: copy tables, figures, maps and the BIDS description into the bundle."""
from brainalign.bundle.steps import copy_files
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    copy_files(snakemake.input.files, snakemake.output.files)
