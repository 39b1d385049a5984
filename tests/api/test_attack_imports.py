"""Attack: an export whose row 300 does not fit the store must not stick the import.

Before: the first chunk of 250 rows was committed, then the chunk holding the 680-character
address failed with a 500 on PostgreSQL, and every re-send failed at the same chunk. Now the row
is rejected alone (line and reason), the others are stored, and a re-send stores nothing twice.
When the store still refuses a chunk the checks let through, the chunk is written row by row.
"""

from __future__ import annotations

import io

import sqlalchemy as sa
from conftest import auth

from mcu_nlp.storage.models import AppealRow

ROWS = 320
BAD = 299  # the 300th data row


def _export(spb_slice):
    frame = spb_slice.iloc[:ROWS].copy()
    frame.loc[frame.index[BAD], "address"] = "Санкт-Петербург, " + "проспект Победы, " * 40
    assert len(frame.iloc[BAD]["address"]) > 500
    return frame, frame.to_csv(index=False).encode()


def _send(api, data: bytes):
    files = {"file": ("export.csv", io.BytesIO(data), "text/csv")}
    response = api.post("/v1/appeals/import?kind=spb_portal", files=files, headers=auth(api))
    assert response.status_code == 200, response.text
    return response.json()


def _stored_ids(api) -> list[str]:
    with api.services.store.session() as session:
        return list(session.scalars(sa.select(AppealRow.source_id)))


def _check_once_each(api, frame, first, again, reason: str):
    bad_id = str(frame.iloc[BAD]["id"])
    bad = [r for r in first["rejected_rows"] if r["source_id"] == bad_id]
    assert len(bad) == 1 and bad[0]["line"] is not None and reason in bad[0]["reason"], bad
    assert first["stored"] + first["duplicates"] + first["rejected"] == ROWS
    ids = _stored_ids(api)
    assert len(ids) == len(set(ids)) == first["stored"]
    assert bad_id not in ids
    rejected = {r["source_id"] for r in first["rejected_rows"]}
    assert {str(i) for i in frame["id"]} - rejected == set(ids)  # no good row lost
    # a re-send stores nothing twice and rejects the same row again
    assert again["stored"] == 0 and again["duplicates"] == first["stored"]
    assert again["rejected"] == first["rejected"]
    assert sorted(_stored_ids(api)) == sorted(ids)
    assert api.get("/health").status_code == 200


def test_a_row_over_a_column_is_rejected_alone(api, spb_slice):
    frame, data = _export(spb_slice)
    first = _send(api, data)
    again = _send(api, data)
    _check_once_each(api, frame, first, again, "address is")


def test_a_chunk_the_store_refuses_is_written_row_by_row(api, spb_slice, monkeypatch):
    """The checks are switched off: the store itself refuses the row (PostgreSQL by length,
    SQLite by a trigger standing in for it)."""
    import mcu_nlp.services.imports as imports

    monkeypatch.setattr(imports, "clean_appeal", lambda appeal: appeal)
    store = api.services.store
    if store.engine.dialect.name == "sqlite":
        with store.engine.begin() as connection:
            connection.execute(sa.text(
                "CREATE TRIGGER refuse_long_address BEFORE INSERT ON appeals "
                "WHEN length(NEW.address) > 500 BEGIN SELECT RAISE(ABORT, 'too long'); END"))
    frame, data = _export(spb_slice)
    first = _send(api, data)
    again = _send(api, data)
    _check_once_each(api, frame, first, again, "the store refused the row")


def test_ids_and_label_names_that_cannot_be_stored_reject_their_row(api):
    from datetime import datetime

    from mcu_nlp.records import Appeal, Channel
    from mcu_nlp.services.imports import import_appeals

    text = "Во дворе не вывозят мусор, контейнеры переполнены"

    def one(source_id: str, **fields) -> Appeal:
        return Appeal(id=source_id, channel=Channel.PORTAL, source="spb_portal",
                      created_at=datetime(2021, 3, 1), text=text, **fields)

    appeals = [one("ok-1"), one("x" * 201), one("ok-2", labels={"к" * 65: "мусор"}),
               one("nul\x00id"), one("ok-3", territory="Невский\x00 район")]
    summary = import_appeals(api.services.store, api.services.classifier, appeals,
                             lines=[2, 3, 4, 5, 6], chunk_size=10)
    assert summary.stored == 2
    assert [(r.line, r.reason.split(";")[0]) for r in summary.rejected] == [
        (3, "source_id is 201 characters"), (4, "label name is 65 characters"),
        (5, "source_id holds control characters")]
    with api.services.store.session() as session:
        rows = dict(session.execute(sa.select(AppealRow.source_id, AppealRow.territory)).all())
    assert rows == {"ok-1": None, "ok-3": "Невский район"}
