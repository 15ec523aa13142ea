"""Rule write_provenance: software versions, git commit, resolved config, seeds, models, checksums."""
from brainalign import io
from brainalign.logs import log_to_file
from brainalign.provenance import collect_provenance

with log_to_file(snakemake.log[0]):
    inputs = [*snakemake.input.stimuli, *snakemake.input.dataset, *snakemake.input.features]
    record = collect_provenance(snakemake.params.config, inputs, root=snakemake.params.checkout)
    io.write_json(record, snakemake.output.provenance)
