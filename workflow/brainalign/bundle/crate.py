"""RO-Crate metadata of a result bundle (Workflow Run Crate profile 0.5), built with ``rocrate``.

The crate describes the workflow (its Snakefile, copied into the bundle, and version),
the run (a ``CreateAction``: start, end, command line, profile, backend, devices,
feature cache), the inputs (checksums, paths relative to the dataset and stimuli
roots) and every file of the bundle as a result, with its SHA-256. It is the bundle's
run record: the one file that differs between two runs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import io
from .manifest import RUN_RECORD, bundle_files

__all__ = ["PROFILES", "WORKFLOW_FILE", "PROFILE_ID", "write_crate", "validate_crate"]

logger = logging.getLogger(__name__)

PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
}
WORKFLOW_FILE = "workflow/Snakefile"
PROFILE_ID = "workflow-run-crate-0.5"
_CONTEXT_11 = "https://w3id.org/ro/crate/1.1/context"
# The terms whose IRIs changed after RO-Crate 1.1 (rocrate ships the 1.3 context).
_TERMS_11 = {
    "ComputationalWorkflow": "https://bioschemas.org/ComputationalWorkflow",
    "FormalParameter": "https://bioschemas.org/FormalParameter",
    "input": "https://bioschemas.org/ComputationalWorkflow#input",
    "output": "https://bioschemas.org/ComputationalWorkflow#output",
}


def _profiles(crate) -> list:
    from rocrate.model.contextentity import ContextEntity

    return [crate.add(ContextEntity(crate, uri, properties={"@type": "CreativeWork", "name": name,
                                                             "version": uri.rsplit("/", 1)[1]}))
            for uri, name in PROFILES.items()]


def _workflow(crate, version: str):
    from importlib import metadata

    return crate.add_workflow(dest_path=WORKFLOW_FILE, main=True, lang="snakemake",
                              lang_version=metadata.version("snakemake"), properties={
        "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"], "name": "brainalign", "version": version, "description": "The brainalign Snakemake workflow (entry point)."})


def _inputs(crate, inputs: Mapping[str, str]) -> list:
    from rocrate.model.contextentity import ContextEntity

    return [crate.add(ContextEntity(crate, f"#input/{key}", properties={
        "@type": "PropertyValue", "name": key, "value": f"sha256:{sha}"})) for key, sha in sorted(inputs.items())]


def _environment(crate, run: Mapping[str, Any]) -> list:
    from rocrate.model.contextentity import ContextEntity

    values = {"BRAINALIGN_BACKEND": run["backend"], "snakemake profile": run["profile"] or "none"}
    for model, spec in run["devices"].items():
        values[f"model {model} device and dtype"] = f"{spec['device']} {spec['dtype']}"
        values[f"model {model} requested device and dtype"] = spec["requested"]
    for name, status in run["feature_cache"].items():
        values[f"feature cache {name}"] = status
    return [crate.add(ContextEntity(crate, f"#run/{i}", properties={"@type": "PropertyValue", "name": k, "value": v}))
            for i, (k, v) in enumerate(values.items())]


def write_crate(root: str | os.PathLike, *, version: str, inputs: Mapping[str, str], run: Mapping[str, Any]) -> Path:
    """Write ``ro-crate-metadata.json`` for the bundle at ``root``.

    Parameters
    ----------
    root : path-like
        The bundle folder; it must already hold ``workflow/Snakefile`` and every result.
    version : str
        The workflow's version (``git describe`` or the package version).
    inputs : mapping
        Input name (``dataset:<path>``, ``stimuli:<path>``, ``results/...``) -> SHA-256.
    run : mapping
        The run record (:func:`~brainalign.bundle.record.collect_run_record`).

    Returns
    -------
    pathlib.Path
        The metadata file.
    """
    from rocrate.rocrate import ROCrate

    root = Path(root)
    crate = ROCrate(gen_preview=False, version="1.1")
    crate.root_dataset["conformsTo"] = _profiles(crate)
    for key, value in {"name": "brainalign result bundle", "datePublished": run["end"], "license": "CC-BY-4.0",
                       "description": "Tables, figures, maps and report of one brainalign run; "
                       "checksums in MANIFEST.tsv and SHA256SUMS."}.items():
        crate.root_dataset[key] = value
    workflow = _workflow(crate, version)
    results = [crate.add_file(dest_path=f, properties={"sha256": io.sha256_file(root / f),
                                                        "contentSize": str((root / f).stat().st_size)})
               for f in bundle_files(root) if f != WORKFLOW_FILE]
    crate.add_action(workflow, identifier="#run", object=_inputs(crate, inputs), result=results, properties={
        "name": "brainalign run", "description": f"command line: {run['command']}",
        "startTime": run["start"], "endTime": run["end"], "actionStatus": {"@id": "http://schema.org/CompletedActionStatus"},
        "environment": _environment(crate, run)})
    crate.metadata.extra_terms["environment"] = "https://w3id.org/ro/terms/workflow-run#environment"
    crate.metadata.write(root)
    logger.info("RO-Crate metadata of %d results written to %s", len(results), root / RUN_RECORD)
    return root / RUN_RECORD


class _Response:
    """A stand-in for an HTTP response serving the RO-Crate JSON-LD context from ``rocrate``."""

    status_code = 200
    headers = {"Content-Type": "application/ld+json"}

    def __init__(self, data: dict):
        self._data = data
        self.text = json.dumps(data)
        self.content = self.text.encode()

    def json(self) -> dict:
        return self._data


@contextmanager
def _local_context() -> Iterator[None]:
    """Serve the RO-Crate context from the ``rocrate`` package instead of the network.

    ``rocrate`` ships the 1.3 context: a superset of the 1.1 terms, four of which
    (:data:`_TERMS_11`) changed IRI since and are put back, so validation needs no network.
    """
    from importlib import resources

    from rocrate_validator.utils.http import HttpRequester

    terms = json.loads(resources.files("rocrate").joinpath("data/ro-crate.jsonld").read_text())["@context"]
    context = {"@context": {**terms, **_TERMS_11}}

    def get(self, url, *args, **kwargs):  # HttpRequester delegates other methods to its session
        if url.rstrip("/") == _CONTEXT_11:
            return _Response(context)
        return HttpRequester.__getattr__(self, "get")(url, *args, **kwargs)

    HttpRequester.get = get
    try:
        yield
    finally:
        del HttpRequester.get


def validate_crate(root: str | os.PathLike, profile: str = PROFILE_ID) -> list[str]:
    """Validate the RO-Crate at ``root`` with ``roc-validator`` (offline); one line per issue.

    Parameters
    ----------
    root : path-like
        The bundle folder holding ``ro-crate-metadata.json``.
    profile : str
        The ``roc-validator`` profile identifier.

    Returns
    -------
    list of str
        ``"<check id>: <message>"`` for each REQUIRED issue; empty when the crate is valid.
    """
    from rocrate_validator import services

    settings = {"rocrate_uri": str(Path(root).resolve()), "profile_identifier": profile,
                "requirement_severity": "REQUIRED", "offline": True}
    with _local_context():
        result = services.validate(settings)
    return [f"{issue.check.identifier if issue.check else '?'}: {' '.join(str(issue.message).split())}"
            for issue in result.get_issues()]
