"""Rule preprocess_brain: one subject x task, read and preprocessed by the dataset's reader."""
from brainalign import io
from brainalign.datasets.registry import get_reader
from brainalign.datasets.units import check_units
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    reader = get_reader(
        snakemake.params.dataset,
        snakemake.params.stimuli,
        preprocess=snakemake.params.preprocess,
    )
    arrays, meta = reader.preprocess(
        dict(snakemake.input.items()),
        snakemake.wildcards.subject,
        snakemake.wildcards.task,
        snakemake.params.preprocess,
    )
    check_units(arrays, meta, snakemake.output.brain)
    io.save_arrays(snakemake.output.brain, arrays, meta)
