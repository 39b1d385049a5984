"""The label taxonomy: which values of a label count as people's labels.

A value counts when it is a class the active model version knows for that label, or when a
curator (an admin) approved it in the curated list, ``<MCU_DATA_DIR>/label_taxonomy.yaml``::

    category:
      - Тема 01
    department:
      - Аварийная служба

A correction with any other value is refused, and :func:`mcu_nlp.services.retrain.retrain`
ignores stored labels outside the taxonomy, so a caller cannot teach the next model version a
class nobody approved (or flood a class with noise under a new name).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from mcu_nlp.services.audit import record_audit
from mcu_nlp.storage import Store

__all__ = [
    "TAXONOMY_FILE",
    "Taxonomy",
    "TaxonomyError",
    "add_curated_values",
    "active_taxonomy",
    "bundle_classes",
    "read_curated",
    "taxonomy_path",
]

TAXONOMY_FILE = "label_taxonomy.yaml"
MAX_VALUE_CHARS = 500
_WRITE_LOCK = threading.Lock()


class TaxonomyError(ValueError):
    """The curated list cannot be read, or a value to add is not acceptable."""


def taxonomy_path(data_dir: str | Path) -> Path:
    """Where the curated list lives under the data folder."""
    return Path(data_dir) / TAXONOMY_FILE


def bundle_classes(bundle: Any, label: str) -> frozenset[str]:
    """The classes a model bundle knows for ``label`` (empty when it does not serve the label).

    Works for :class:`mcu_nlp.classifiers.bundle.ModelBundle` (``models[label].classes_``) and
    for any bundle with a ``classes(label)`` method.
    """
    if bundle is None or label not in list(getattr(bundle, "labels", []) or []):
        return frozenset()
    method = getattr(bundle, "classes", None)
    if callable(method):
        return frozenset(str(value) for value in method(label))
    model = (getattr(bundle, "models", None) or {}).get(label)
    classes = getattr(model, "classes_", None)
    return frozenset() if classes is None else frozenset(str(value) for value in classes)


def read_curated(path: str | Path | None) -> dict[str, frozenset[str]]:
    """The curated list (label → approved values); empty when there is no file.

    Raises:
        TaxonomyError: The file is not a mapping of label names to lists of strings.
    """
    if path is None or not Path(path).is_file():
        return {}
    stat = Path(path).stat()
    # Every correction checks the list: parse the file again only when it changed.
    return dict(_parse_curated(str(path), stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=8)
def _parse_curated(path: str, _mtime_ns: int, _size: int) -> dict[str, frozenset[str]]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"cannot read the curated taxonomy {Path(path).name}: {exc}") from exc
    if not isinstance(data, Mapping) or not all(
            isinstance(values, list) and all(isinstance(v, str) for v in values)
            for values in data.values()):
        raise TaxonomyError(f"{Path(path).name} must map label names to lists of values")
    return {str(label): frozenset(v.strip() for v in values if v.strip())
            for label, values in data.items()}


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """Approved values per label: the active model's classes and the curated list."""

    model: Mapping[str, frozenset[str]] = field(default_factory=dict)
    curated: Mapping[str, frozenset[str]] = field(default_factory=dict)
    model_version: str | None = None

    def values(self, label: str) -> frozenset[str]:
        """Every approved value of ``label``."""
        return self.model.get(label, frozenset()) | self.curated.get(label, frozenset())

    def allows(self, label: str, value: object) -> bool:
        """Whether ``value`` is an approved value of ``label``."""
        return isinstance(value, str) and value.strip() in self.values(label)

    def refusal(self, label: str, value: str) -> str:
        """Why a value is refused, for the person who sent it."""
        known = sorted(self.values(label))
        shown = ", ".join(repr(v) for v in known[:20]) + (" ..." if len(known) > 20 else "")
        return (f"{value.strip()[:100]!r} is not an approved value of {label!r}: the taxonomy is "
                f"the active model's classes ({self.model_version or 'no active model'}) and "
                f"the curated list; an admin adds values with POST /v1/taxonomy/{label}. "
                f"Approved: {shown or 'none'}")


def active_taxonomy(bundle: Any, labels: Iterable[str], *, curated_path: str | Path | None,
                    model_version: str | None = None) -> Taxonomy:
    """The taxonomy in force: ``bundle``'s classes for ``labels`` plus the curated list."""
    model = {label: bundle_classes(bundle, label) for label in labels}
    return Taxonomy(model={k: v for k, v in model.items() if v}, curated=read_curated(curated_path),
                    model_version=model_version or getattr(bundle, "version", None))


def add_curated_values(store: Store, path: str | Path, label: str, values: Iterable[str], *,
                       actor: str) -> frozenset[str]:
    """A curator approves ``values`` for ``label``: written to the curated list and audited.

    The file is replaced atomically (a reader sees the old list or the new one). Returns the
    label's curated values after the change.

    Raises:
        TaxonomyError: A value is empty or longer than 500 characters, or the file is broken.
    """
    cleaned = [v.strip() for v in values]
    if not cleaned or any(not v or len(v) > MAX_VALUE_CHARS for v in cleaned):
        raise TaxonomyError(f"give non-empty values of <= {MAX_VALUE_CHARS} characters")
    path = Path(path)
    with _WRITE_LOCK:
        curated = {k: set(v) for k, v in read_curated(path).items()}
        before = set(curated.get(label, set()))
        curated.setdefault(label, set()).update(cleaned)
        added = sorted(curated[label] - before)
        # The audit row commits only when the file was written: no change without its trail.
        with store.session() as session:
            record_audit(session, actor=actor, action="taxonomy.add", entity="label",
                         entity_id=label, details={"added": added})
            if added:
                _write_atomically(path, {k: sorted(v) for k, v in sorted(curated.items())})
    return frozenset(curated[label])


def _write_atomically(path: Path, data: dict[str, list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent,
                                     prefix=".taxonomy-", suffix=".tmp", delete=False) as out:
        out.write(text)
    try:
        os.replace(out.name, path)
    except OSError:
        Path(out.name).unlink(missing_ok=True)
        raise
