"""The appeal store: SQLAlchemy rows, repositories and Alembic migrations.

Only :mod:`mcu_nlp.services` uses this package; analytic modules never open the database.
"""

from mcu_nlp.storage.db import Store, StoreConfigError, make_engine, normalize_url

__all__ = ["Store", "StoreConfigError", "make_engine", "normalize_url"]
