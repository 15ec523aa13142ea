"""Rule plot_rsa_rdms: group-average brain RDMs per ROI and model RDMs at each model's deepest
layer; concepts ordered by the optional ``category`` column of the stimuli's concepts.tsv."""
from pathlib import Path

from brainalign import io
from brainalign.figures_rsa import plot_rsa_rdms
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    concepts = Path(snakemake.config["stimuli"]["root"]) / "concepts.tsv"
    table = io.read_table(concepts) if concepts.exists() else None
    categories = None
    if table is not None and "category" in table:
        categories = dict(zip(table["concept"].astype(str), table["category"].astype(str)))
    plot_rsa_rdms(
        io.read_table(snakemake.input.brain),
        snakemake.input.models,
        paths=snakemake.output.figures,
        dpi=snakemake.params.figures["dpi"],
        categories=categories,
    )
