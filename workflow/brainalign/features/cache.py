"""A content-addressed cache of feature files.

The key of a feature file is the sha256 of a JSON record of everything that
determines its content, never the model's config name:

- the model: extractor, source, id, revision, layers, pooling, dtype,
  attention_heads, mlp_neurons, trust_remote_code, and the seed for the seeded sources
  ("tiny", "random");
- the model's files: the snapshot commit of a hub id in the local Hugging Face
  cache (so "main" moving to a new commit changes the key), a content hash of a
  local folder (a fine-tuned checkpoint saved again changes the key; for "random",
  only its configuration files count), the version of a model package;
- the extractor code version: the sha256 of the source files of the extractor and
  of the extraction pipeline (:func:`~brainalign.features.registry.extractor_code_hash`);
- the versions of torch, transformers and tokenizers;
- the task and the condition (and, for the naturalistic task, the resampling);
- the stimulus checksum: the task's stimulus tables, the image files when the
  condition shows images (concepts.tsv's ``image`` and ``images`` columns), and the noise images with their table when it shows noise.

Where the cache lives is a runtime setting, not science: the environment variable
:data:`CACHE_ENV` (``BRAINALIGN_FEATURE_CACHE``) names its folder, and an unset or
empty variable turns the cache off. Entries are ``<root>/<key[:2]>/<key>.safetensors``
with the key's record beside them (``<key>.json``), written atomically.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from brainalign.features.audio_windows import audio_files
from brainalign.features.conditions import uses_images, uses_noise
from brainalign.features.registry import ModelSpec, extractor_code_hash, extractor_requires_image
from brainalign.io import atomic_write, read_table, sha256_file, write_json

__all__ = [
    "CACHE_ENV",
    "CACHE_FORMAT",
    "FeatureCache",
    "feature_cache_key",
    "model_files_version",
    "stimulus_checksum",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "BRAINALIGN_FEATURE_CACHE"
CACHE_FORMAT = 1
_LIBRARIES = ("torch", "transformers", "tokenizers")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".gguf")
_TASK_TABLES = {
    "concepts": ("concepts.tsv", "sentences.tsv"),
    "naturalistic": ("naturalistic/runs.tsv", "naturalistic/words.tsv", "naturalistic/frames.tsv"),
    "word_events": ("naturalistic/runs.tsv", "naturalistic/words.tsv", "naturalistic/frames.tsv"),
    "scene_events": ("naturalistic/runs.tsv", "naturalistic/words.tsv", "naturalistic/frames.tsv"),
}
_NOISE_TABLE = "noise_images.tsv"


def _hash_files(root: Path, paths: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for rel in sorted(set(paths)):
        path = root / rel
        if not path.is_file():
            raise FileNotFoundError(f"stimulus file '{path}' does not exist; check the tables")
        digest.update(f"{rel}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def _folder_hash(folder: Path, weights: bool) -> str:
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and ".cache" not in p.parts]
    if not weights:
        files = [p for p in files if not p.name.endswith(_WEIGHT_SUFFIXES)]
    return _hash_files(folder, [p.relative_to(folder).as_posix() for p in files])


def _hub_commit(model_id: str, revision: str | None) -> str:
    if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json", revision=revision)
    if not isinstance(cached, str):
        raise ValueError(
            f"model id '{model_id}' (revision {revision or 'main'}) is not in the local "
            f"Hugging Face cache; download it where there is internet (hf download "
            f"{model_id}) or give a local folder"
        )
    return Path(cached).parent.name


def _is_model_package(model_id: str) -> bool:
    """An installed model package named as ``id`` (source "random" reads its config)."""
    import importlib.util

    return not Path(model_id).exists() and "/" not in model_id and bool(
        importlib.util.find_spec(model_id))


def model_files_version(spec: ModelSpec) -> str | None:
    """What pins the model's files: a commit, a content hash or a package version.

    Returns
    -------
    str or None
        ``"commit:<sha>"`` for a hub id, ``"sha256:<hex>"`` for a local folder (its
        configuration files only for source "random"), ``"package:<version>"`` for
        source "package", None for "tiny".
    """
    if spec.source == "tiny":
        return None
    if spec.source == "package" or (spec.source == "random" and _is_model_package(spec.id)):
        try:
            return f"package:{importlib.metadata.version(spec.id)}"
        except importlib.metadata.PackageNotFoundError:
            dist = spec.id.replace("_", "-")
            return f"package:{importlib.metadata.version(dist)}"
    folder = Path(spec.id)
    if folder.is_file():  # a single-file model (static word vectors)
        return f"sha256:{sha256_file(folder)}"
    if folder.is_dir():
        return f"sha256:{_folder_hash(folder, weights=spec.source != 'random')}"
    return f"commit:{_hub_commit(spec.id, spec.revision)}"


def _image_column(stimuli_dir: Path, task: str) -> list[str]:
    if task == "concepts":
        concepts = read_table(stimuli_dir / "concepts.tsv")
        listed = concepts["images"].dropna() if "images" in concepts.columns else []
        extra = [p.strip() for cell in listed for p in str(cell).split(";") if p.strip()]
        return [*concepts["image"], *extra]
    frames = stimuli_dir / "naturalistic" / "frames.tsv"
    return list(read_table(frames)["image"]) if frames.exists() else []


def stimulus_checksum(
    stimuli_dir: str | os.PathLike,
    task: str,
    images: bool,
    noise_dir: str | os.PathLike | None = None,
    audio: bool = False,
) -> dict[str, str | None]:
    """Checksums of the stimuli one extraction reads.

    Parameters
    ----------
    stimuli_dir : path
    task : {"concepts", "naturalistic"}
    images : bool
        Include the image files of the task (concept pictures or frames).
    noise_dir : path, optional
        Include the noise folder's table and images (conditions showing noise).
    audio : bool
        Include the runs' soundtracks (naturalistic/runs.tsv column ``audio``).

    Returns
    -------
    dict
        ``stimuli``: sha256 over the tables (and images); ``noise``: sha256 over the
        noise table and images, or None.
    """
    root = Path(stimuli_dir)
    if task not in _TASK_TABLES:
        raise ValueError(f"'task' must be one of {', '.join(_TASK_TABLES)}; got {task!r}")
    files = [t for t in _TASK_TABLES[task] if (root / t).exists()]
    if images:
        files += _image_column(root, task)
    if audio:
        runs = read_table(root / "naturalistic" / "runs.tsv")
        files += audio_files(root, runs)
    result: dict[str, str | None] = {"stimuli": _hash_files(root, files), "noise": None}
    if noise_dir is not None:
        noise = Path(noise_dir)
        table = read_table(noise / _NOISE_TABLE)
        result["noise"] = _hash_files(noise, [_NOISE_TABLE, *table["noise_image"]])
    return result


def _libraries() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def feature_cache_key(
    spec: ModelSpec,
    stimuli_dir: str | os.PathLike,
    task: str,
    condition: str,
    noise_dir: str | os.PathLike | None = None,
    resampling: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The cache key of one extraction and the record it hashes (no model is loaded).

    Parameters
    ----------
    spec : ModelSpec
    stimuli_dir : path
    task, condition : str
    noise_dir : path, optional
        Needed when the condition shows the noise images to this model.
    resampling : mapping, optional
        Naturalistic task: the TR resampling parameters.

    Returns
    -------
    key : str
        64 hex digits.
    record : dict
        The JSON-serialisable record hashed into ``key``.
    """
    requires_image = extractor_requires_image(spec.extractor)
    noise = uses_noise(condition, requires_image)
    if noise and noise_dir is None:
        raise ValueError(
            f"condition '{condition}' shows model '{spec.name}' the noise images; "
            "'noise_dir' (the folder written by make_noise_images) is required"
        )
    model = spec.to_dict()
    for key in ("name", "batch_size", "device", "seed"):
        model.pop(key)
    if spec.source in ("tiny", "random"):
        model["seed"] = spec.seed
    record = {
        "format": CACHE_FORMAT,
        "model": model,
        "model_files": model_files_version(spec),
        "code": extractor_code_hash(spec.extractor),
        "libraries": _libraries(),
        "task": task,
        "condition": condition,
        "resampling": dict(resampling) if task == "naturalistic" and resampling else None,
        **stimulus_checksum(
            stimuli_dir, task, uses_images(condition, requires_image), noise_dir if noise else None,
            audio=condition == "audio",
        ),
    }
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
    return key, record


class FeatureCache:
    """Feature files stored under their :func:`feature_cache_key`.

    Parameters
    ----------
    root : path
        The cache folder (created on first store).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @classmethod
    def from_env(cls) -> FeatureCache | None:
        """The cache named by ``$BRAINALIGN_FEATURE_CACHE``, or None when unset/empty."""
        root = os.environ.get(CACHE_ENV, "").strip()
        return cls(root) if root else None

    def path(self, key: str) -> Path:
        """Where the entry of ``key`` lives."""
        return self.root / key[:2] / f"{key}.safetensors"

    def fetch(self, key: str, dest: str | os.PathLike, metadata: Mapping[str, Any]) -> bool:
        """Copy the entry of ``key`` to ``dest`` with ``metadata`` updated; False on a miss.

        An unreadable entry, or one whose recorded key differs, counts as a miss.
        """
        from brainalign.features.stream import copy_features, read_layout

        path = self.path(key)
        if not path.is_file():
            return False
        try:
            _, stored = read_layout(path)
        except (OSError, ValueError, KeyError, struct.error) as err:
            logger.warning("feature cache entry %s is unreadable (%s); recomputing", path, err)
            return False
        if stored.get("cache_key") != key:
            logger.warning("feature cache entry %s records another key; recomputing", path)
            return False
        copy_features(path, dest, {**stored, **metadata})
        return True

    def store(self, key: str, source: str | os.PathLike, record: Mapping[str, Any]) -> Path:
        """Copy the feature file ``source`` into the cache under ``key``, atomically."""
        path = self.path(key)
        with atomic_write(path) as tmp:
            shutil.copyfile(source, tmp)
        write_json(dict(record), path.with_suffix(".json"))
        return path
