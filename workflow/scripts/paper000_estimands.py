"""Rule paper000_estimands: one task x ROI - both estimands of every model layer, the best
layer against the others, and the model x model RDM similarity of each model's best layer."""
from brainalign.logs import log_to_file
from brainalign.rsa.steps_paper000 import run_best_layer_tests, run_rdm_similarity, run_rsa_estimands

with log_to_file(snakemake.log[0]):
    brains, models, roi = list(snakemake.input.brain), list(snakemake.input.models), snakemake.wildcards.roi
    params, seed = snakemake.params.rsa, snakemake.params.seed
    run_rsa_estimands(brains, models, roi, params=params, seed=seed, out=snakemake.output.estimands)
    run_best_layer_tests(brains, models, roi, params=params, seed=seed, out=snakemake.output.best_layers)
    run_rdm_similarity(
        models,
        params=params,
        out={"tidy": snakemake.output.similarity, "matrix": snakemake.output.matrix},
        best_from=snakemake.output.estimands,
    )
