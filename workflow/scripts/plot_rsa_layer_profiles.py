"""Rule plot_rsa_layer_profiles: group RSA score per layer with CIs and the noise ceiling."""
from brainalign import io
from brainalign.figures_rsa import plot_rsa_layer_profiles, value_label
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    group = io.read_table(snakemake.input.group)
    plot_rsa_layer_profiles(
        group,
        io.read_table(snakemake.input.ceiling),
        value_label=value_label(group["comparison"].iloc[0], group["brain_metric"].iloc[0]),
        paths=snakemake.output.figures,
        dpi=snakemake.params.figures["dpi"],
    )
