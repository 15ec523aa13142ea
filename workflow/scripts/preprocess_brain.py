"""Rule preprocess_brain: one subject x task, read and preprocessed by the dataset's reader;
units with NaN or constant signal counted per ROI (and the run stopped above the threshold)."""
from brainalign import io
from brainalign.datasets.registry import get_reader
from brainalign.datasets.units import check_flagged_share, check_units, unit_qc
from brainalign.logs import log_to_file

with log_to_file(snakemake.log[0]):
    settings = snakemake.params.preprocess
    reader = get_reader(snakemake.params.dataset, snakemake.params.stimuli, preprocess=settings)
    inputs = dict(snakemake.input.items())
    if "subject_dir" in inputs:  # a dataset written by a job (the intracranial demo)
        inputs = reader.inputs(snakemake.wildcards.subject, snakemake.wildcards.task)
    arrays, meta = reader.preprocess(
        inputs,
        snakemake.wildcards.subject,
        snakemake.wildcards.task,
        settings,
    )
    check_units(arrays, meta, snakemake.output.brain)
    qc = unit_qc(arrays, meta)
    check_flagged_share(qc, settings["max_flagged_share"])
    io.write_table(qc, snakemake.output.qc)
    io.save_arrays(snakemake.output.brain, arrays, meta)
