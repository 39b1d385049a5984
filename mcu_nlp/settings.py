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
    ``MCU_MODELS_DIR``; the store by ``DATABASE_URL`` (or ``MCU_DATABASE_URL``).
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
