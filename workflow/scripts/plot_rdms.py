"""Rule plot_rdms: group-average brain RDMs per ROI and model RDMs at each model's deepest layer."""
from brainalign.figures import plot_rdms
from brainalign.logs import log_to_file
from brainalign.pipeline import average_brain_rdms, deepest_model_rdms

with log_to_file(snakemake.log[0]):
    plot_rdms(
        average_brain_rdms(snakemake.input.brain),
        deepest_model_rdms(snakemake.input.models),
        paths=snakemake.output.figures,
        dpi=snakemake.params.figures["dpi"],
    )
