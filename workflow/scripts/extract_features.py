"""Rule extract_features: layer-wise features of one model under one condition for one task."""
from pathlib import Path

from brainalign import io
from brainalign.features import ModelSpec, extract_task_features, load_extractor
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    spec = ModelSpec.from_config(snakemake.wildcards.model, snakemake.params.spec, seed=snakemake.params.seed)
    arrays, meta = extract_task_features(
        load_extractor(spec),
        snakemake.params.stimuli,
        task=snakemake.wildcards.task,
        condition=snakemake.wildcards.condition,
        layers=spec.layers,
        noise_dir=Path(snakemake.input.noise[0]).parent if snakemake.input.noise else None,
    )
    io.save_arrays(snakemake.output.features, arrays, meta)
