"""One typed settings object, read from the environment (prefix ``MCU_``), validated at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Where data, models and the store live.

    Every field can be set by an environment variable: ``MCU_DATA_DIR``, ``MCU_SHARED_DATA_DIR``,
    ``MCU_MODELS_DIR``, ``MCU_AUDIT_SHARE``...; the store by ``DATABASE_URL`` (or
    ``MCU_DATABASE_URL``).
    """

    model_config = SettingsConfigDict(env_prefix="MCU_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=_PROJECT_ROOT / "var", description="Working data: store, caches."
    )
    shared_data_dir: Path = Field(
        default=_PROJECT_ROOT.parent / "shared" / "data",
        description="Folder holding the reference data sets (spb_our_city_appeals, ...).",
    )
    models_dir: Path | None = Field(default=None, description="Trained model versions.")
    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL; default: an SQLite file in data_dir.",
    )
    # Precision of auto-routing in production (mcu_nlp.routing.audit_sample, .precision).
    audit_share: float = Field(
        default=0.02, ge=0.0, le=1.0,
        description="Share of auto-routed appeals also put in the review queue as an audit "
                    "sample (MCU_AUDIT_SHARE).")
    audit_seed: str = Field(
        default="mcu-audit", min_length=1, max_length=200,
        description="Key of the audit sample's hash: the same seed draws the same appeals.")
    audit_target_precision: float = Field(
        default=0.95, gt=0.0, lt=1.0,
        description="Precision auto-routing promises per label (MCU_AUDIT_TARGET_PRECISION).")
    audit_confidence: float = Field(
        default=0.95, gt=0.5, lt=1.0,
        description="Confidence of the one-sided Clopper–Pearson lower bound that decides "
                    "tightening (MCU_AUDIT_CONFIDENCE).")
    audit_min_items: int = Field(
        default=30, ge=1,
        description="Audited items a label needs before its bound may tighten a threshold.")
    audit_tighten_step: float = Field(
        default=0.5, gt=0.0, le=1.0,
        description="Fallback tightening: the share of the gap to 1.0 a threshold moves up by "
                    "when the audit cannot name a precise-enough threshold.")
    alert_scan_seconds: float | None = Field(
        default=None, ge=0.0,
        description="Every so many seconds the API scans the stored appeals for rises "
                    "(MCU_ALERT_SCAN_SECONDS; unset or 0: never). With several replicas one "
                    "scans at a time: the others skip their turn.")
    retrain_source_labels: bool = Field(
        default=False,
        description="Let `mcu-nlp retrain` also train on source labels nobody confirmed "
                    "(MCU_RETRAIN_SOURCE_LABELS); the activation holdout stays people-confirmed.")

    @property
    def taxonomy_file(self) -> Path:
        """The curated label taxonomy (values an admin approved beyond the model's classes)."""
        return self.data_dir / "label_taxonomy.yaml"

    @field_validator("data_dir", "shared_data_dir", "models_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @property
    def model_store(self) -> Path:
        """Folder that holds trained model versions."""
        return self.models_dir or (self.data_dir / "models")

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL of the appeal store."""
        return self.database_url or f"sqlite:///{self.data_dir / 'mcu.sqlite3'}"

    def spb_appeals_path(self) -> Path:
        """The reference SPb appeals file, with a clear error when it is missing."""
        path = self.shared_data_dir / "spb_our_city_appeals" / "appeals.csv.gz"
        if not path.exists():
            raise FileNotFoundError(
                f"SPb appeals not found at {path}; set MCU_SHARED_DATA_DIR to the folder "
                "that holds spb_our_city_appeals/"
            )
        return path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return Settings()
