"""Rule plot_rsa_model_comparison: held-out-layer scores per model, with significance marks."""
from brainalign import io
from brainalign.figures_rsa import plot_rsa_model_comparison, value_label
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    models = io.read_table(snakemake.input.models)
    plot_rsa_model_comparison(
        models,
        io.read_table(snakemake.input.pairwise),
        io.read_table(snakemake.input.ceiling),
        value_label=value_label(models["comparison"].iloc[0], snakemake.params.metric),
        paths=snakemake.output.figures,
        dpi=snakemake.params.figures["dpi"],
    )
