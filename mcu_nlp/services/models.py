"""Model registry: register bundles, list them, and switch the active one without downtime.

The serving process holds an immutable :class:`ActiveModel` snapshot behind one reference. A switch
loads the new bundle completely first and only then replaces the reference (one attribute store,
atomic in CPython), so requests already running finish on the old model and none is dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from sqlalchemy import select, update

from mcu_nlp.services.audit import record_audit
from mcu_nlp.services.threshold_overrides import active_overrides
from mcu_nlp.storage import Store
from mcu_nlp.storage.models import ModelVersionRow, utcnow

log = logging.getLogger(__name__)


class ModelBundleLike(Protocol):
    """What serving needs from a model bundle (see ``mcu_nlp.classifiers.bundle.ModelBundle``)."""

    version: str
    labels: list[str]
    thresholds: dict[str, float]

    def predict(self, frame: pd.DataFrame, top_k: int = 3) -> list[dict[str, Any]]:
        """Per appeal, a ``LabelPrediction`` for every label."""
        ...


BundleLoader = Callable[[Path], ModelBundleLike]


class ModelNotFound(LookupError):
    """No registered model has that version."""


class ModelLoadError(RuntimeError):
    """A registered bundle cannot be loaded; the active model stays as it was."""


def default_loader(path: Path) -> ModelBundleLike:
    """Load a bundle written by the training code."""
    from mcu_nlp.classifiers.bundle import ModelBundle  # the lead's bundle; heavy imports

    return ModelBundle.load(path)


@dataclass(frozen=True, slots=True)
class ActiveModel:
    """An immutable snapshot of the model serving requests.

    ``overrides`` are the thresholds the precision audit raised for this version (label →
    floor under the bundle's threshold, see :mod:`mcu_nlp.routing.thresholds`).
    """

    version: str
    bundle: ModelBundleLike
    overrides: Mapping[str, float] = field(default_factory=dict)


class ModelHolder:
    """The one reference to the active model that request handlers read."""

    def __init__(self) -> None:
        self._current: ActiveModel | None = None
        self._switch = threading.Lock()  # serializes switches, never taken by readers

    @property
    def current(self) -> ActiveModel | None:
        """The model to use for one request (take it once per request)."""
        return self._current

    def swap(self, model: ActiveModel | None) -> None:
        """Replace the active model in one step."""
        with self._switch:
            self._current = model

    def set_overrides(self, version: str, overrides: Mapping[str, float]) -> bool:
        """Put new threshold overrides in force if ``version`` is still the active one."""
        with self._switch:
            current = self._current
            if current is None or current.version != version:
                return False
            if dict(current.overrides) != dict(overrides):
                self._current = ActiveModel(current.version, current.bundle, dict(overrides))
            return True


@dataclass(frozen=True, slots=True)
class ModelVersionView:
    """A registered model version, as listed to admins."""

    version: str
    path: str
    labels: list[str]
    metrics: dict[str, Any]
    active: bool
    registered_at: Any
    activated_at: Any


def _view(row: ModelVersionRow) -> ModelVersionView:
    return ModelVersionView(row.version, row.path, list(row.labels or []), dict(row.metrics or {}),
                            row.active, row.registered_at, row.activated_at)


class ModelRegistry:
    """Registered versions in the store plus the serving holder."""

    def __init__(self, store: Store, holder: ModelHolder | None = None, *,
                 loader: BundleLoader = default_loader) -> None:
        self.store = store
        self.holder = holder or ModelHolder()
        self.loader = loader

    def register(self, path: str | Path, *, metrics: dict[str, Any] | None = None,
                 actor: str = "system", activate: bool = False,
                 preloaded: ModelBundleLike | None = None) -> ModelVersionView:
        """Register a bundle directory (inactive unless ``activate``); re-registering updates it."""
        directory = Path(path).resolve()
        bundle = preloaded or self._load(directory)
        with self.store.session() as session:
            row = session.scalar(select(ModelVersionRow).where(
                ModelVersionRow.version == bundle.version))
            if row is None:
                row = ModelVersionRow(version=bundle.version, path=str(directory))
                session.add(row)
            row.path, row.labels = str(directory), list(bundle.labels)
            row.metrics = dict(metrics if metrics is not None else (row.metrics or {}))
            record_audit(session, actor=actor, action="model.register", entity="model",
                         entity_id=bundle.version, details={"path": str(directory)})
        if activate:
            return self.activate(bundle.version, actor=actor, preloaded=bundle)
        return self.get(bundle.version)

    def list(self) -> list[ModelVersionView]:
        """Every registered version, newest first."""
        with self.store.session() as session:
            rows = session.scalars(select(ModelVersionRow).order_by(
                ModelVersionRow.registered_at.desc(), ModelVersionRow.id.desc())).all()
            return [_view(row) for row in rows]

    def get(self, version: str) -> ModelVersionView:
        """One registered version."""
        with self.store.session() as session:
            row = session.scalar(select(ModelVersionRow).where(ModelVersionRow.version == version))
            if row is None:
                raise ModelNotFound(f"no registered model version {version!r}")
            return _view(row)

    def activate(self, version: str, *, actor: str = "system",
                 preloaded: ModelBundleLike | None = None) -> ModelVersionView:
        """Make ``version`` the active model: load it, mark it in the store, swap the holder."""
        target = self.get(version)
        bundle = preloaded or self._load(Path(target.path))
        with self.store.session() as session:
            session.execute(update(ModelVersionRow).values(active=False))
            session.execute(update(ModelVersionRow).where(ModelVersionRow.version == version)
                            .values(active=True, activated_at=utcnow()))
            record_audit(session, actor=actor, action="model.activate", entity="model",
                         entity_id=version)
            overrides = active_overrides(session, version)
        self.holder.swap(ActiveModel(version, bundle, overrides))
        log.info("model %s is now active", version)
        return self.get(version)

    def active_version(self) -> str | None:
        """The version the store marks active."""
        with self.store.session() as session:
            return session.scalar(select(ModelVersionRow.version).where(ModelVersionRow.active))

    def sync(self) -> ActiveModel | None:
        """Load the store's active version into the holder when it differs (other replicas).

        The threshold overrides of the active version are re-read on every call, so a tightening
        made by another replica reaches this one within one sync interval.
        """
        version = self.active_version()
        current = self.holder.current
        if version is None:
            return current
        if current is not None and current.version == version:
            self.refresh_overrides()
            return self.holder.current
        try:
            bundle = self._load(Path(self.get(version).path))
        except ModelLoadError:
            log.exception("cannot load the active model %s; keeping the current one", version)
            return current
        self.holder.swap(ActiveModel(version, bundle, self._overrides(version)))
        return self.holder.current

    def refresh_overrides(self) -> None:
        """Re-read the active version's threshold overrides into the holder."""
        current = self.holder.current
        if current is not None:
            self.holder.set_overrides(current.version, self._overrides(current.version))

    def _overrides(self, version: str) -> dict[str, float]:
        with self.store.session() as session:
            return active_overrides(session, version)

    def _load(self, path: Path) -> ModelBundleLike:
        try:
            return self.loader(path)
        except Exception as exc:  # any loader failure must leave serving untouched
            raise ModelLoadError(f"cannot load model bundle at {path}: {exc}") from exc
