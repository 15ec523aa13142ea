"""The publishable result bundle: copies, maps, report, manifest, RO-Crate, verification.

- :mod:`.manifest`: ``MANIFEST.tsv`` and ``SHA256SUMS`` over every file of the bundle.
- :mod:`.record`: the run record (times, command, profile, backend, devices, feature cache).
- :mod:`.crate`: the RO-Crate metadata (Workflow Run Crate 0.5) and its validation.
- :mod:`.verify`: :func:`verify_bundle`, behind ``brainalign verify``.
- :mod:`.steps`: what the bundle rules do (copies, group maps, BIDS description, report).
"""

from .crate import validate_crate, write_crate
from .manifest import MANIFEST, RUN_RECORD, SHA256SUMS, bundle_files, read_manifest, write_manifest
from .record import collect_run_record, mark_run_start
from .verify import verify_bundle

__all__ = [
    "MANIFEST", "RUN_RECORD", "SHA256SUMS", "bundle_files", "read_manifest", "write_manifest",
    "collect_run_record", "mark_run_start", "validate_crate", "write_crate", "verify_bundle",
]
