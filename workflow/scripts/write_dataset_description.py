"""Rule write_dataset_description: results/ as a BIDS derivative (dataset_description.json)."""
from brainalign import io
from brainalign.bundle.steps import dataset_description
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    io.write_json(dataset_description(snakemake.params.config), snakemake.output.description)
