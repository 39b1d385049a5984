"""Alembic environment: runs on the connection that :func:`upgrade_schema` hands in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mcu_nlp.storage.db import normalize_url
from mcu_nlp.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # noqa: ANN001 - a SQLAlchemy connection
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # the alembic command line: the URL comes from alembic.ini or -x url=...
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url")
    with create_engine(normalize_url(url)).connect() as standalone:
        _run(standalone)
