"""Deadlines, overdue/at-risk, quality figures and the department rating.

Figures on a real SPb week are checked against an independent computation written here with
plain pandas and the ``holidays`` library (a day-by-day loop, not the module's binary search).
"""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from mcu_nlp.sla.config import Outcome, load_sla_config
from mcu_nlp.sla.quality import quality_summary, quality_table
from mcu_nlp.sla.rating import COMPONENTS, department_rating, rating_records
from mcu_nlp.sla.timeliness import annotate_sla, compute_deadlines

WEEK = (date(2021, 3, 15), date(2021, 3, 21))
AS_OF = pd.Timestamp("2021-03-22")
QUARTER = (date(2021, 1, 1), date(2021, 3, 31))


def spb_to_appeal_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """The raw SPb CSV in the layout of ``mcu_nlp.ingest.appeals_to_frame`` (columns only)."""
    frame = raw.rename(columns={"district": "territory", "category": "label_category",
                                "reason": "label_reason", "department": "label_department"})
    frame["channel"] = "portal"
    for col in ("created_at", "first_answer_dt", "last_answer_dt", "last_status_dt"):
        frame[col] = pd.to_datetime(frame[col], format="ISO8601")
    return frame


@pytest.fixture(scope="module")
def spb(spb_frame):
    return spb_to_appeal_frame(spb_frame)


@pytest.fixture(scope="module")
def week_annotated(spb):
    return annotate_sla(spb, AS_OF)


def test_adapter_matches_the_ingest_reader(spb_slice, tmp_path):
    from mcu_nlp.ingest import appeals_to_frame, read_spb_portal

    sample = spb_slice.iloc[:300]
    path = tmp_path / "appeals.csv.gz"
    sample.to_csv(path, index=False, compression="gzip")
    result = read_spb_portal(path)
    assert not result.errors
    ingested = appeals_to_frame(result.appeals)
    mine = spb_to_appeal_frame(sample).reset_index(drop=True)
    for col in ("created_at", "first_answer_dt", "last_status_dt", "territory",
                "label_department", "label_category", "last_status", "n_routes",
                "n_user_messages"):
        left, right = ingested[col], mine[col]
        assert (left.isna() == right.isna()).all(), col
        known = left.notna()
        assert (left[known].astype(str) == right[known].astype(str)).all(), col


def _frame(rows):
    frame = pd.DataFrame(rows)
    for col in ("created_at", "first_answer_dt", "last_answer_dt", "last_status_dt"):
        frame[col] = pd.to_datetime(frame.get(col), format="ISO8601")
    return frame


def test_deadlines_per_channel_on_the_production_calendar():
    frame = _frame([
        {"channel": "portal", "created_at": "2021-04-28T10:00"},  # 8 working days over May
        {"channel": "59-fz", "created_at": "2021-04-09T10:00"},   # day 30 = Sunday 9 May
        {"channel": "pos", "created_at": "2020-12-25T18:00"},     # 10 working days over NY
        {"channel": "im", "created_at": "2021-02-19T12:00"},      # next: working Saturday
        {"channel": "unknown", "created_at": "2021-03-01T09:00"},  # falls back to 'other'
        {"channel": "pos", "created_at": None},
    ])
    due = compute_deadlines(frame)
    assert list(due[:5]) == [pd.Timestamp("2021-05-13"), pd.Timestamp("2021-05-12"),
                             pd.Timestamp("2021-01-19"), pd.Timestamp("2021-02-21"),
                             pd.Timestamp("2021-04-01")]
    assert pd.isna(due[5])


def test_working_hour_deadline_from_configuration(tmp_path):
    raw = yaml.safe_load(open(load_sla_config.__globals__["DEFAULTS_PATH"], encoding="utf-8"))
    raw["deadlines"]["im"] = {"amount": 8, "unit": "working_hours"}
    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    config = load_sla_config(path)
    frame = _frame([{"channel": "im", "created_at": "2021-04-30T16:00"}])
    assert compute_deadlines(frame, config)[0] == pd.Timestamp("2021-05-04T16:00")


def test_bad_configuration_fails_loudly(tmp_path):
    raw = yaml.safe_load(open(load_sla_config.__globals__["DEFAULTS_PATH"], encoding="utf-8"))
    raw["rating"]["weights"]["timeliness"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValidationError):
        load_sla_config(path)
    raw["rating"]["weights"]["timeliness"] = 0.4
    raw["deadlines"]["pos"] = {"amount": 2.5, "unit": "working_days"}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValidationError):
        load_sla_config(path)
    with pytest.raises(FileNotFoundError):
        load_sla_config(tmp_path / "missing.yaml")


def test_overdue_and_at_risk_as_of_a_moment():
    # Portal, 8 working days: filed Monday 2021-03-01 -> due by the end of 2021-03-11.
    frame = _frame([
        {"channel": "portal", "created_at": "2021-03-01T10:00", "first_answer_dt": "2021-03-05"},
        {"channel": "portal", "created_at": "2021-03-01T10:00", "first_answer_dt": "2021-03-15"},
        {"channel": "portal", "created_at": "2021-03-01T10:00", "first_answer_dt": None},
        {"channel": "portal", "created_at": "2021-03-09T10:00", "first_answer_dt": None},
        {"channel": "portal", "created_at": "2021-03-12T10:00", "first_answer_dt": None},
        {"channel": "portal", "created_at": "2021-03-20T10:00", "first_answer_dt": None},
    ])
    frame["label_department"] = "ЖА"
    a = annotate_sla(frame, pd.Timestamp("2021-03-13"))
    assert a["sla_in_time"].tolist() == [True, False, False, False, False, False]
    assert a["sla_answered"].tolist() == [True, False, False, False, False, False]  # 2nd later
    assert a["sla_open_overdue"].tolist() == [False, True, True, False, False, False]
    assert a["sla_open"].tolist() == [False, True, True, True, True, False]  # last not filed
    # 2021-03-09 is due 2021-03-19: elapsed 4 of 10 days -> not at risk by share; no history.
    assert a["sla_at_risk"].tolist() == [False] * 6
    later = annotate_sla(frame, pd.Timestamp("2021-03-18"))
    assert later["sla_at_risk"].tolist() == [False, False, False, True, False, False]
    assert later["sla_open_overdue"].tolist() == [False, False, True, False, False, False]


def test_at_risk_from_the_departments_median_time_to_answer():
    history = [{"channel": "portal", "created_at": f"2021-02-{d:02d}T10:00",
                "first_answer_dt": f"2021-02-{d + 12:02d}T10:00"} for d in range(1, 16)]
    fresh = {"channel": "portal", "created_at": "2021-03-01T10:00", "first_answer_dt": None}
    frame = _frame(history + [fresh])
    frame["label_department"] = "Медленный отдел"
    config = load_sla_config().model_copy(update={"at_risk_min_history": 10})
    a = annotate_sla(frame, pd.Timestamp("2021-03-02"), config)
    # Elapsed share is small, but 12-day median answers breach the 8-working-day deadline.
    assert a["sla_elapsed_share"].iloc[-1] < 0.2
    assert bool(a["sla_at_risk"].iloc[-1])
    strict = config.model_copy(update={"at_risk_min_history": 50})
    assert not bool(annotate_sla(frame, pd.Timestamp("2021-03-02"), strict)
                    ["sla_at_risk"].iloc[-1])


def test_every_spb_status_has_a_deliberate_outcome(spb):
    outcomes = load_sla_config().status_outcomes
    seen = {s: outcomes.outcome_of(s) for s in spb["last_status"].dropna().unique()}
    assert seen["Завершено: Пользователь удовлетворен решением проблемы"] == Outcome.SATISFIED
    assert seen["Завершено: Автоматически"] == Outcome.AUTO_CLOSED
    assert seen["Получен ответ"] == Outcome.ANSWERED
    assert set(seen) <= set(outcomes.exact)  # nothing reaches the prefix/unknown fallbacks
    assert outcomes.outcome_of(None) == Outcome.OPEN


def _independent_figures(raw: pd.DataFrame, period: tuple[date, date]) -> dict[str, float]:
    """A period's figures with pandas and a day-by-day holidays loop (8 working days)."""
    ru = holidays.Russia(years=range(2020, 2022))
    lo, hi = pd.Timestamp(period[0]), pd.Timestamp(period[1]) + pd.Timedelta(days=1)

    def last_day(day: date) -> date:
        k = 0
        while k < 8:
            day += timedelta(days=1)
            k += ru.is_working_day(day)
        return day

    created = pd.to_datetime(raw["created_at"], format="ISO8601")
    answer = pd.to_datetime(raw["first_answer_dt"], format="ISO8601")
    status_at = pd.to_datetime(raw["last_status_dt"], format="ISO8601")
    days = {d: last_day(d) for d in created.dt.date.unique()}
    deadline_day = pd.to_datetime(created.dt.date.map(days))
    in_week = (created >= lo) & (created < hi)
    due = (deadline_day >= lo) & (deadline_day < hi)
    in_time = due & (answer < deadline_day + pd.Timedelta(days=1))
    closed = raw["last_status"].str.startswith("Завершено") & (status_at >= lo) & \
        (status_at < hi)
    satisfied = closed & raw["last_status"].isin([
        "Завершено: Пользователь удовлетворен решением проблемы",
        "Завершено: Народный контролер подтвердил решение проблемы"])
    unanswered = (created < hi) & (answer.isna() | (answer > hi))
    return {
        "received": int(in_week.sum()),
        "rerouted_share": (in_week & (raw["n_routes"] > 0)).sum() / in_week.sum(),
        "reopened_share": (in_week & (raw["n_user_messages"] > 1)).sum() / in_week.sum(),
        "due": int(due.sum()),
        "in_time_share": in_time.sum() / due.sum(),
        "closed": int(closed.sum()),
        "satisfied_share": satisfied.sum() / closed.sum(),
        "open_end": int(unanswered.sum()),
        "overdue_open": int((unanswered & (deadline_day + pd.Timedelta(days=1) <= hi)).sum()),
        "answered": int(((answer >= lo) & (answer < hi)).sum()),
    }


@pytest.mark.parametrize("period, minimum", [(WEEK, 1500), (QUARTER, 20000)],
                         ids=["week", "quarter"])
def test_real_period_figures_match_an_independent_computation(spb_frame, spb, week_annotated,
                                                              period, minimum):
    annotated = week_annotated if period == WEEK else \
        annotate_sla(spb, pd.Timestamp(period[1]) + pd.Timedelta(days=1))
    mine = quality_summary(annotated, *period)
    expected = _independent_figures(spb_frame, period)
    for key, value in expected.items():
        assert mine[key] == pytest.approx(value, abs=1e-12), key
    assert 0 < mine["in_time_share"] < 1 and mine["received"] > minimum


def test_quality_by_department_adds_up(week_annotated):
    total = quality_summary(week_annotated, *WEEK)
    by_dept = quality_table(week_annotated, *WEEK, by="label_department")
    for col in ("received", "due", "answered_in_time", "closed", "satisfied", "overdue_open"):
        assert by_dept[col].sum() == total[col], col
    by_two = quality_table(week_annotated, *WEEK, by=["territory", "label_category"])
    assert by_two["received"].sum() == total["received"]


def test_rating_score_is_the_documented_weighted_mean(week_annotated):
    config = load_sla_config()
    rating = department_rating(week_annotated, *WEEK, config)
    weights = config.rating.weights
    for dept, row in rating.iterrows():
        comps = {c: row[c] for c in COMPONENTS if pd.notna(row[c])}
        if not comps:
            continue
        expected = 100 * sum(weights[c] * v for c, v in comps.items()) / \
            sum(weights[c] for c in comps)
        assert row["score"] == pytest.approx(round(expected, 1), abs=0.05), dept
        assert row["components_used"] == list(comps)
    ranked = rating[rating["ranked"]]
    assert ranked["score"].is_monotonic_decreasing
    assert list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    small = rating[~rating["ranked"]]
    assert (small[["received", "due", "closed"]].max(axis=1) < config.rating.min_appeals).all()
    records = rating_records(rating)
    assert records[0].rank == 1 and records[0].score == ranked["score"].iloc[0]


def test_rating_weights_are_configurable(week_annotated):
    config = load_sla_config()
    only_routing = config.model_copy(update={"rating": config.rating.model_copy(
        update={"weights": {"timeliness": 0, "satisfaction": 0, "routing": 1, "backlog": 0}})})
    rating = department_rating(week_annotated, *WEEK, only_routing)
    ranked = rating[rating["ranked"]]
    assert (ranked["score"] == (100 * ranked["routing"]).round(1)).all()
