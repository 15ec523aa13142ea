"""Rule paper000_summary: paper 000's tables pooled over tasks and ROIs (BH across every model
x condition x layer x ROI of a task and estimand), layer curves per family, ablation bars."""
from brainalign import io
from brainalign.logs import log_to_file
from brainalign.papers.paper000 import plot_ablation, plot_layer_curves, pool_tables

with log_to_file(snakemake.log[0]):
    estimands = pool_tables(snakemake.input.estimands)
    tables = {
        "estimands": estimands,
        "best_layers": pool_tables(snakemake.input.best_layers, p_column=None),
        "similarity": pool_tables(snakemake.input.similarity, p_column=None),
        "partial": pool_tables(snakemake.input.partial, p_column="p_boot", by=("task",)),
    }
    for name, table in tables.items():
        io.write_table(table, snakemake.output[name])
    dpi, q = snakemake.params.figures["dpi"], snakemake.params.q
    plot_layer_curves(estimands, snakemake.params.families, snakemake.output.layers, q_level=q, dpi=dpi)
    plot_ablation(estimands, snakemake.output.ablation, q_level=q, dpi=dpi)
