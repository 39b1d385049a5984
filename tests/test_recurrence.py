"""Recurrence per place and topic: repeats, and repeats after an answer that said «fixed»."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from mcu_nlp.root_causes.recurrence import (
    TABLE_COLUMNS,
    hot_spots,
    normalize_address,
    place_keys,
    recurrence_table,
)

ADDRESS = "г.Санкт-Петербург, Мебельная улица, дом 47, корпус 1, литера А"
TOPIC = "Мусор на внутридворовой территории"
DONE = "Уважаемый пользователь! Замечание устранено, мусор убран."
PLANNED = "Работы будут выполнены в срок до 30.05.2021."
# The centre of the 100 m grid cell around a point near the Neva (the grid of place_keys).
_STEP_LAT = 100 / 111_320
LAT = (math.floor(59.94 / _STEP_LAT) + 0.5) * _STEP_LAT
_STEP_LON = 100 / (111_320 * math.cos(math.radians(LAT)))
LON = (math.floor(30.315 / _STEP_LON) + 0.5) * _STEP_LON


def _appeal(appeal_id: int, created: str, answered: str | None, answer: str | None, *,
            address: object = ADDRESS, topic: object = TOPIC, lat: float = 59.9,
            lon: float = 30.3, district: str = "Центральный",
            department: str = "ЖА Центрального района") -> dict[str, object]:
    return {"id": appeal_id, "created_at": created, "last_answer_dt": answered,
            "last_answer_text": answer, "address": address, "reason": topic,
            "latitude": lat, "longitude": lon, "district": district, "department": department}


def _frame(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_a_repeat_20_days_after_done_counts_once() -> None:
    frame = _frame(
        _appeal(1, "2021-01-01 10:00", "2021-01-05 12:00", DONE),
        _appeal(2, "2021-01-25 09:00", "2021-01-28 12:00", DONE),  # 20 days after the answer
        _appeal(3, "2021-06-30 09:00", None, None),  # 153 days after the last answer
    )
    table = recurrence_table(frame)
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["appeals"], row["repeats"], row["repeats_after_done"]) == (3, 2, 1)
    assert row["reopened_share"] == pytest.approx(1 / 3)
    assert row["appeal_ids"] == [1, 2, 3]
    assert row["topic"] == TOPIC and row["place"] == ADDRESS and row["place_kind"] == "address"
    assert row["territory"] == "Центральный" and row["departments"] == "ЖА Центрального района"
    assert row["first_at"] == pd.Timestamp("2021-01-01 10:00")
    assert row["last_at"] == pd.Timestamp("2021-06-30 09:00")
    assert row["outcome_mix"] == {"done": 2, "other": 1}
    assert [entry["after_fix"] for entry in row["history"]] == [False, True, False]


def test_outside_the_window_does_not_count() -> None:
    frame = _frame(
        _appeal(1, "2021-01-01", "2021-01-05", DONE),
        _appeal(2, "2021-03-10", None, None),  # 64 days after the answer
    )
    assert recurrence_table(frame)["repeats_after_done"].tolist() == [0]
    assert recurrence_table(frame, window_days=70)["repeats_after_done"].tolist() == [1]


def test_only_fixed_answers_count_and_only_answers_given_before() -> None:
    frame = _frame(
        _appeal(1, "2021-01-01", "2021-01-05", PLANNED),  # not a fix
        _appeal(2, "2021-01-10", "2021-03-01", DONE),  # answered after appeal 3 was made
        _appeal(3, "2021-01-20", None, None),
    )
    assert recurrence_table(frame)["repeats_after_done"].tolist() == [0]
    partly = _frame(
        _appeal(1, "2021-01-01", "2021-01-05", "x"), _appeal(2, "2021-01-20", None, "y"))
    table = recurrence_table(partly, outcomes=pd.Series(["partly_done", "other"]))
    assert table["repeats_after_done"].tolist() == [1]


def test_outcomes_can_be_given() -> None:
    frame = _frame(_appeal(1, "2021-01-01", "2021-01-05", PLANNED),
                   _appeal(2, "2021-01-20", None, None))
    assert recurrence_table(frame)["repeats_after_done"].tolist() == [0]
    given = recurrence_table(frame, outcomes=["done", "not a type"])
    assert given["repeats_after_done"].tolist() == [1]
    assert given["outcome_mix"].tolist() == [{"done": 1, "other": 1}]
    with pytest.raises(ValueError):
        recurrence_table(frame, outcomes=["done"])


def test_coordinates_within_100_m_group_and_farther_do_not() -> None:
    metre_lat = 1 / 111_320
    metre_lon = 1 / (111_320 * math.cos(math.radians(LAT)))
    frame = _frame(
        _appeal(1, "2021-01-01", "2021-01-03", DONE, address=np.nan, lat=LAT, lon=LON),
        _appeal(2, "2021-01-10", None, None, address=None,
                lat=LAT + 30 * metre_lat, lon=LON - 35 * metre_lon),  # ~46 m away
        _appeal(3, "2021-01-12", None, None, address="",
                lat=LAT - 25 * metre_lat, lon=LON + 20 * metre_lon),
        _appeal(4, "2021-01-15", None, None, address=np.nan,
                lat=LAT + 300 * metre_lat, lon=LON),  # 300 m north: another cell
    )
    keys = place_keys(frame)
    assert keys[0] == keys[1] == keys[2] != keys[3]
    assert keys[0].startswith("grid:")
    table = recurrence_table(frame)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["appeal_ids"] == [1, 2, 3] and row["place_kind"] == "grid"
    assert row["repeats_after_done"] == 2
    assert row["latitude"] == pytest.approx(LAT, abs=1e-3)


def test_a_bigger_grid_groups_farther_points() -> None:
    frame = _frame(
        _appeal(1, "2021-01-01", None, None, address=None, lat=LAT, lon=LON),
        _appeal(2, "2021-01-02", None, None, address=None, lat=LAT + 0.0027, lon=LON))
    assert recurrence_table(frame).empty
    assert len(recurrence_table(frame, grid_m=1000)) == 1
    with pytest.raises(ValueError):
        place_keys(frame, grid_m=0)


def test_different_topics_do_not_group() -> None:
    frame = _frame(
        _appeal(1, "2021-01-01", "2021-01-05", DONE),
        _appeal(2, "2021-01-10", None, None, topic="Неисправное освещение в подъезде"),
    )
    assert recurrence_table(frame).empty


def test_spellings_of_one_address_group_and_litera_tell_buildings_apart() -> None:
    frame = _frame(
        _appeal(1, "2021-01-01", "2021-01-05", DONE),
        _appeal(2, "2021-01-10", None, None,
                address="Санкт-Петербург,  мебельная улица, дом 47, корпус 1, литера а"),
        _appeal(3, "2021-01-11", None, None,
                address="г.Санкт-Петербург, Мебельная улица, дом 47, корпус 1, литера Б"),
    )
    table = recurrence_table(frame)
    assert table["appeal_ids"].tolist() == [[1, 2]]
    assert normalize_address("город Колпино, улица Машиностроителей, дом 12") == (
        "колпино, улица машиностроителей, дом 12")
    assert normalize_address(None) is None and normalize_address(" , ") is None


def test_rows_without_place_topic_or_date_are_left_out() -> None:
    frame = _frame(
        _appeal(1, "2021-01-01", "2021-01-05", DONE),
        _appeal(2, "2021-01-10", None, None),
        _appeal(3, "2021-01-11", None, None, address=np.nan, lat=np.nan, lon=np.nan),
        _appeal(4, "2021-01-12", None, None, address=None, lat=np.inf, lon=None),
        _appeal(5, "2021-01-13", None, None, topic=np.nan),
        _appeal(6, "not a date", None, None),
        _appeal(7, None, "2021-01-20", DONE),
    )
    table = recurrence_table(frame)
    assert table["appeal_ids"].tolist() == [[1, 2]]
    assert recurrence_table(frame.iloc[0:0]).empty
    assert list(recurrence_table(frame.iloc[[2, 3]]).columns) == list(TABLE_COLUMNS)


def test_frames_with_other_columns() -> None:
    frame = pd.DataFrame({
        "created_at": pd.to_datetime(["2021-01-01", "2021-01-20", "2021-02-01"], utc=True),
        "answered_at": pd.to_datetime(["2021-01-03", None, None], utc=True),
        "topic": ["Свет", "Свет", "Свет"],
        "address": [ADDRESS, ADDRESS, ADDRESS],
    })
    table = recurrence_table(frame, topic_col="reason", outcomes=["done", "other", "other"])
    row = table.iloc[0]
    assert row["appeal_ids"] == [0, 1, 2]  # the index stands in for a missing id
    assert row["repeats_after_done"] == 2  # 17 and 29 days after the answer
    assert row["territory"] is None and math.isnan(row["latitude"])
    with pytest.raises(KeyError):
        recurrence_table(frame.drop(columns=["topic"]))


def test_hot_spots_rank_by_repeats_after_done() -> None:
    rows = [_appeal(i, f"2021-01-{i:02d}", f"2021-01-{i:02d} 23:00", DONE) for i in range(1, 5)]
    rows += [_appeal(10 + i, f"2021-02-{i:02d}", None, None, address="Другой адрес, дом 1")
             for i in range(1, 7)]
    rows += [_appeal(20 + i, f"2021-03-{i:02d}", None, None, address="Третий адрес, дом 2")
             for i in range(1, 3)]
    spots = hot_spots(recurrence_table(_frame(*rows)))
    assert spots["appeal_ids"].str.len().tolist() == [4, 6]  # the 2-appeal place is left out
    assert spots["repeats_after_done"].tolist() == [3, 0]
    history = spots.iloc[0]["history"]
    assert [entry["outcome"] for entry in history] == ["done"] * 4
    assert history[1]["created_at"] == pd.Timestamp("2021-01-02")
    first = hot_spots(recurrence_table(_frame(*rows)), min_appeals=2, top=1)
    assert first["appeals"].tolist() == [4]


def test_real_slice_finds_repeats(spb_slice: pd.DataFrame) -> None:
    table = recurrence_table(spb_slice)
    assert len(table) > 50
    assert (table["repeats"] == table["appeals"] - 1).all()
    assert table["repeats"].sum() > 0
    assert table["repeats_after_done"].sum() > 0
    assert (table["repeats_after_done"] <= table["repeats"]).all()
    assert {"address", "grid"} <= set(table["place_kind"])
    spots = hot_spots(table)
    assert not spots.empty and (spots["appeals"] >= 3).all()


def test_full_reference_data_takes_seconds(spb_frame: pd.DataFrame) -> None:
    start = time.perf_counter()
    table = recurrence_table(spb_frame)
    elapsed = time.perf_counter() - start
    assert elapsed < 60, elapsed  # about 8 s on 2 shared cores, answers classified included
    assert table["appeals"].sum() > 20_000
