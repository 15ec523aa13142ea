"""Rule finish_bundle: the manifest (MANIFEST.tsv, SHA256SUMS) and the RO-Crate metadata, last."""
from glob import glob
from pathlib import Path

from brainalign.bundle.steps import finish_bundle
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    finish_bundle(Path(snakemake.output.manifest).parent, snakefile=snakemake.params.snakefile,
                  provenance=snakemake.input.provenance, models=snakemake.params.models,
                  extraction_logs=sorted(glob("results/logs/extract_features/*.log")))
