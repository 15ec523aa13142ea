"""Rule make_bundle: copy tables and figures into the bundle and write its checksum manifest."""
from brainalign.logs import log_to_file
from brainalign.provenance import make_bundle

with log_to_file(snakemake.log[0]):
    make_bundle(
        tables=snakemake.input.tables,
        figures=snakemake.input.figures,
        provenance=snakemake.input.provenance,
        manifest=snakemake.output.manifest,
    )
