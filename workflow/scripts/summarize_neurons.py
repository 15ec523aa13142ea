"""Rule summarize_neurons: the mapping jobs' tables pooled, and the neuron-level figures."""
from brainalign.figures_neurons import plot_neurons
from brainalign.logs import log_to_file
from brainalign.neurons.steps import TABLES, summarize_neurons

with log_to_file(snakemake.log[0]):
    names = [*TABLES, "contrast"] if snakemake.input.contrast else list(TABLES)
    tables = summarize_neurons(
        {name: snakemake.input[name] for name in names}, snakemake.output.tables
    )
    plot_neurons(
        tables,
        snakemake.input.maps,
        {name: snakemake.output[name] for name in ("networks", "redundancy", "polarity", "brain")},
        dpi=snakemake.params.figures["dpi"],
    )
