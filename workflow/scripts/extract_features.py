"""Rule extract_features: layer-wise features of one model under one condition for one task.

Streamed to disk layer by layer; read from / stored in the feature cache named by
$BRAINALIGN_FEATURE_CACHE when it is set (a runtime setting, like threads).
"""
from pathlib import Path

from brainalign.features import FeatureCache, ModelSpec, extract_features_file
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    spec = ModelSpec.from_config(snakemake.wildcards.model, snakemake.params.spec, seed=snakemake.params.seed)
    extract_features_file(
        spec,
        snakemake.params.stimset["stimuli"],
        task=snakemake.params.stimset["kind"],
        condition=snakemake.wildcards.condition,
        out=snakemake.output.features,
        noise_dir=Path(snakemake.input.noise[0]).parent if snakemake.input.noise else None,
        cache=FeatureCache.from_env(),
    )
