"""The full-text index of appeal texts, on PostgreSQL and on SQLite.

* PostgreSQL: an expression GIN index on ``to_tsvector('russian', text)`` (:data:`PG_INDEX`);
  queries use the same expression (:func:`pg_document`) so the planner uses the index, and
  ``websearch_to_tsquery('russian', …)``. The index covers old and new rows by itself.
* SQLite: FTS5 has no Russian stemmer, so the terms are computed in Python
  (:func:`mcu_nlp.text.search_terms.index_terms`, the lexemes PostgreSQL's ``russian``
  configuration makes) and kept in ``appeal_search`` (one row per appeal); ``appeal_fts`` is an
  external-content FTS5 table over it, kept in sync by triggers, and a trigger on ``appeals``
  removes a deleted appeal's terms. New appeals get their terms from a mapper hook at insert
  (:func:`index_appeal`, registered in :mod:`mcu_nlp.storage.models`); rows written around the
  ORM are picked up by :func:`index_missing` before a search. Migration 0005 creates all of it
  and fills it for the appeals already stored.
"""

from __future__ import annotations

import weakref
from typing import Any

import sqlalchemy as sa

from mcu_nlp.text.search_terms import index_terms

__all__ = [
    "FTS_TABLE",
    "PG_INDEX",
    "TERMS_TABLE",
    "create_pg_index",
    "create_sqlite_index",
    "drop_pg_index",
    "drop_sqlite_index",
    "fts_match",
    "has_sqlite_index",
    "index_appeal",
    "index_missing",
    "pg_document",
    "pg_query",
    "reindex_appeal",
]

TERMS_TABLE = "appeal_search"
FTS_TABLE = "appeal_fts"
PG_INDEX = "ix_appeals_text_fts"
PG_CONFIG = "russian"
_REGCONFIG = f"'{PG_CONFIG}'::regconfig"  # a constant: the index expression must match it

_SQLITE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {TERMS_TABLE} (appeal_id INTEGER PRIMARY KEY, "
    "terms TEXT NOT NULL)",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(terms, content='{TERMS_TABLE}', "
    "content_rowid='appeal_id', tokenize='unicode61 remove_diacritics 0')",
    f"CREATE TRIGGER IF NOT EXISTS {TERMS_TABLE}_ai AFTER INSERT ON {TERMS_TABLE} BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, terms) VALUES (new.appeal_id, new.terms); END",
    f"CREATE TRIGGER IF NOT EXISTS {TERMS_TABLE}_ad AFTER DELETE ON {TERMS_TABLE} BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, terms) "
    "VALUES ('delete', old.appeal_id, old.terms); END",
    f"CREATE TRIGGER IF NOT EXISTS {TERMS_TABLE}_au AFTER UPDATE ON {TERMS_TABLE} BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, terms) "
    "VALUES ('delete', old.appeal_id, old.terms); "
    f"INSERT INTO {FTS_TABLE}(rowid, terms) VALUES (new.appeal_id, new.terms); END",
    f"CREATE TRIGGER IF NOT EXISTS appeals_{TERMS_TABLE}_ad AFTER DELETE ON appeals BEGIN "
    f"DELETE FROM {TERMS_TABLE} WHERE appeal_id = old.id; END",
)
_SQLITE_DROP = (
    f"DROP TRIGGER IF EXISTS appeals_{TERMS_TABLE}_ad",
    f"DROP TRIGGER IF EXISTS {TERMS_TABLE}_au",
    f"DROP TRIGGER IF EXISTS {TERMS_TABLE}_ad",
    f"DROP TRIGGER IF EXISTS {TERMS_TABLE}_ai",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
    f"DROP TABLE IF EXISTS {TERMS_TABLE}",
)
_INSERT = sa.text(f"INSERT INTO {TERMS_TABLE} (appeal_id, terms) VALUES (:appeal_id, :terms)")
_UPDATE = sa.text(f"UPDATE {TERMS_TABLE} SET terms = :terms WHERE appeal_id = :appeal_id")
_BATCH = 500

# Engines whose SQLite store has the index (a store opened at an older revision has not).
_indexed: weakref.WeakKeyDictionary[sa.Engine, bool] = weakref.WeakKeyDictionary()


def create_pg_index(connection: sa.Connection) -> None:
    """The expression GIN index (PostgreSQL builds it over the rows already stored)."""
    connection.execute(sa.text(
        f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON appeals USING gin "
        f"(to_tsvector({_REGCONFIG}, text))"))


def drop_pg_index(connection: sa.Connection) -> None:
    """Remove the PostgreSQL index."""
    connection.execute(sa.text(f"DROP INDEX IF EXISTS {PG_INDEX}"))


def create_sqlite_index(connection: sa.Connection) -> int:
    """Create the SQLite tables and triggers and index every stored appeal; returns how many."""
    for statement in _SQLITE_DDL:
        connection.exec_driver_sql(statement)
    _indexed.pop(connection.engine, None)
    return index_missing(connection, checked=True)


def drop_sqlite_index(connection: sa.Connection) -> None:
    """Remove the SQLite tables and triggers."""
    for statement in _SQLITE_DROP:
        connection.exec_driver_sql(statement)
    _indexed.pop(connection.engine, None)


def has_sqlite_index(connection: sa.Connection) -> bool:
    """Whether this SQLite store has the search tables (cached once they are found)."""
    engine = connection.engine
    if _indexed.get(engine):
        return True
    found = connection.execute(sa.text(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": TERMS_TABLE}).first() is not None
    if found:
        _indexed[engine] = True
    return found


def index_appeal(connection: sa.Connection, appeal_id: int, text: str | None) -> None:
    """Store the search terms of a new appeal (SQLite; nothing on other stores)."""
    if connection.dialect.name == "sqlite" and has_sqlite_index(connection):
        connection.execute(_INSERT, {"appeal_id": appeal_id, "terms": index_terms(text or "")})


def reindex_appeal(connection: sa.Connection, appeal_id: int, text: str | None) -> None:
    """Replace the search terms of an appeal whose text changed (SQLite)."""
    if connection.dialect.name == "sqlite" and has_sqlite_index(connection):
        terms = index_terms(text or "")
        if connection.execute(_UPDATE, {"appeal_id": appeal_id, "terms": terms}).rowcount == 0:
            connection.execute(_INSERT, {"appeal_id": appeal_id, "terms": terms})


def index_missing(connection: sa.Connection, *, checked: bool = False) -> int:
    """Index the appeals that have no search terms yet (SQLite); returns how many.

    Cheap when nothing is missing (two counts). Appeals written around the ORM (a bulk Core
    insert) have no terms until this runs; the search runs it first.
    """
    if connection.dialect.name != "sqlite" or not (checked or has_sqlite_index(connection)):
        return 0
    counts = connection.execute(sa.text(
        f"SELECT (SELECT count(*) FROM appeals), (SELECT count(*) FROM {TERMS_TABLE})")).one()
    if counts[0] == counts[1]:
        return 0
    done, after = 0, 0
    while True:
        rows = connection.execute(sa.text(
            f"SELECT a.id, a.text FROM appeals a WHERE a.id > :after AND NOT EXISTS "
            f"(SELECT 1 FROM {TERMS_TABLE} s WHERE s.appeal_id = a.id) ORDER BY a.id LIMIT :n"),
            {"after": after, "n": _BATCH}).all()
        if not rows:
            return done
        connection.execute(_INSERT, [{"appeal_id": row[0], "terms": index_terms(row[1] or "")}
                                     for row in rows])
        done, after = done + len(rows), rows[-1][0]


def pg_document(text_column: Any) -> sa.ColumnElement[Any]:
    """``to_tsvector('russian', text)``: the indexed expression."""
    return sa.func.to_tsvector(sa.literal_column(_REGCONFIG), text_column)


def pg_query(query: str) -> sa.ColumnElement[Any]:
    """``websearch_to_tsquery('russian', :query)`` with the query as a bound parameter."""
    return sa.func.websearch_to_tsquery(sa.literal_column(_REGCONFIG), sa.bindparam(
        None, query, type_=sa.String()))


def fts_match(expression: str) -> sa.Select[Any]:
    """``SELECT rowid FROM appeal_fts WHERE appeal_fts MATCH :expression`` (bound)."""
    return (sa.select(sa.literal_column("rowid"))
            .select_from(sa.table(FTS_TABLE))
            .where(sa.literal_column(FTS_TABLE).op("MATCH")(
                sa.bindparam(None, expression, type_=sa.String()))))
