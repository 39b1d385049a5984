"""Trend alerts: counts, detector, explanations and alert records."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcu_nlp.trends.alerts import (
    AlarmDay,
    AlertStatus,
    TrendAlert,
    acknowledge,
    alerts_from_alarm_days,
    merge_alerts,
    resolve_quiet,
)
from mcu_nlp.trends.counts import SeriesDimension, count_series, effective_label
from mcu_nlp.trends.daytypes import SUNDAY_TYPE, day_types
from mcu_nlp.trends.detector import NegativeBinomialDetector, SeriesDetector
from mcu_nlp.trends.explain import explain_alerts
from mcu_nlp.trends.scan import scan_alerts

SNOW_ROADS = ("Неубранный снег на автомобильных дорогах и прилегающих к ним тротуарах, "
              "спусках к воде, подземных и надземных пешеходных переходах")


def as_appeals_frame(spb: pd.DataFrame) -> pd.DataFrame:
    """The SPb file in the layout of ``mcu_nlp.ingest.appeals_to_frame``."""
    frame = spb.rename(columns={"category": "label_category", "reason": "label_reason",
                                "department": "label_department", "district": "territory"})
    frame["channel"] = "portal"
    return frame


@pytest.fixture(scope="module")
def spb_appeals(spb_frame: pd.DataFrame) -> pd.DataFrame:
    return as_appeals_frame(spb_frame)


@pytest.fixture(scope="module")
def spb_daily(spb_appeals: pd.DataFrame) -> pd.DataFrame:
    return count_series(spb_appeals)


def poisson_series(mean: float, days: int, seed: int, start: str = "2021-01-04") -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=days, freq="D")
    return pd.Series(rng.poisson(mean, size=days), index=index)


# ---------------------------------------------------------------- counts
def test_human_label_wins_over_prediction() -> None:
    frame = pd.DataFrame({"label_topic": ["снег", None, ""],
                          "pred_topic": ["мусор", "мусор", "свет"]})
    assert effective_label(frame, "topic").tolist() == ["снег", "мусор", "свет"]
    with pytest.raises(KeyError):
        effective_label(frame, "department")


def test_counts_add_up_on_real_data(spb_appeals: pd.DataFrame, spb_daily: pd.DataFrame) -> None:
    total = spb_daily[("total", "total")]
    # The SPb file starts mid-day on 2020-10-18 and stops early on 2021-04-23: both are dropped.
    assert total.index[0] == pd.Timestamp("2020-10-19")
    assert total.index[-1] == pd.Timestamp("2021-04-22")
    for cut in ("topic_group", "topic", "territory", "channel"):
        assert (spb_daily[cut].sum(axis=1) == total).all(), cut
    weekly = count_series(spb_appeals, [SeriesDimension("topic_group", label="category")],
                          freq="W")
    assert weekly.index[0] == pd.Timestamp("2020-10-19")  # a Monday
    assert weekly[("total", "total")].sum() == total.sum()


def test_counts_read_the_ingest_layout() -> None:
    from mcu_nlp.ingest import appeals_to_frame
    from mcu_nlp.records import Appeal, Channel

    appeals = [Appeal(id=str(i), channel=Channel.POS, source="test",
                      created_at=pd.Timestamp("2021-03-01 10:00") + pd.Timedelta(hours=6 * i),
                      text="мусор во дворе", territory="Невский",
                      labels={"category": "Благоустройство"}) for i in range(12)]
    counts = count_series(appeals_to_frame(appeals), complete_days_only=False)
    assert counts[("topic_group", "Благоустройство")].tolist() == [3, 4, 4, 1]
    assert counts[("channel", "pos")].sum() == 12


# ---------------------------------------------------------------- calendar
def test_holidays_are_sunday_type_days() -> None:
    codes = day_types(pd.to_datetime(["2021-01-01", "2021-02-22", "2021-02-24", "2021-03-07",
                                      "2021-03-08", "2021-02-20"]))
    # New Year, the transferred day off, a Wednesday, a Sunday, 8 March, a working Saturday
    assert codes.tolist() == [SUNDAY_TYPE, SUNDAY_TYPE, 2, SUNDAY_TYPE, SUNDAY_TYPE, 5]


def weekly_pattern(days: int, seed: int, weekday: float = 40.0, sunday: float = 8.0
                   ) -> pd.Series:
    index = pd.date_range("2021-01-11", periods=days, freq="D")
    codes = day_types(index)
    rng = np.random.default_rng(seed)
    return pd.Series(rng.poisson(np.where(codes == SUNDAY_TYPE, sunday, weekday)), index=index)


def test_weekday_rhythm_and_holidays_are_expected() -> None:
    series = weekly_pattern(84, seed=3)
    detector = NegativeBinomialDetector()
    # 8 March 2021 is a Monday holiday: Sunday-like 8 messages are expected, not an alarm
    result = detector.assess(series, start="2021-03-01")
    assert not result["alarm"].any()
    holiday = result.loc["2021-03-08"]
    assert holiday["expected"] < 15 < result.loc["2021-03-09", "expected"]
    # a Sunday with a working day's volume is a rise
    sunday = series.copy()
    sunday.loc["2021-03-28"] = 40
    assert detector.assess(sunday, start="2021-03-28").loc["2021-03-28", "alarm"]


def test_detector_follows_the_protocol() -> None:
    assert isinstance(NegativeBinomialDetector(), SeriesDetector)
    with pytest.raises(ValueError, match="gaps"):
        NegativeBinomialDetector().assess(poisson_series(5, 60, 0).drop(pd.Timestamp("2021-01-20")))


# ---------------------------------------------------------------- detector properties
@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(mean=st.floats(0.3, 150.0), seed=st.integers(0, 2**31 - 1))
def test_stationary_poisson_series_alarms_at_most_at_the_nominal_rate(mean: float,
                                                                      seed: int) -> None:
    series = poisson_series(mean, 91, seed)
    detector = NegativeBinomialDetector()
    result = detector.assess(series, start=series.index[56])
    # 35 days at a nominal daily rate below 0.1 % (alpha 0.0002 for the day and for each
    # window sum): more than 3 alarm days has a tiny probability under the null.
    assert result["alarm"].sum() <= 3, result[result["alarm"]]


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(level=st.integers(0, 300), others=st.integers(0, 3000))
def test_flat_series_never_alarms(level: int, others: int) -> None:
    index = pd.date_range("2021-01-04", periods=84, freq="D")
    series = pd.Series(level, index=index)
    exposure = pd.Series(others, index=index)
    detector = NegativeBinomialDetector()
    for reference in (None, exposure):
        result = detector.assess(series, start=index[28], exposure=reference)
        assert not result["alarm"].any(), result[result["alarm"]]


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(mean=st.floats(0.3, 150.0), seed=st.integers(0, 2**31 - 1))
def test_large_step_always_alarms(mean: float, seed: int) -> None:
    series = poisson_series(mean, 70, seed)
    step = series.index >= series.index[63]
    series[step] += np.random.default_rng(seed + 1).poisson(2 * mean + 10, size=step.sum())
    result = NegativeBinomialDetector().assess(series, start=series.index[63])
    assert result["alarm"].iloc[:2].any(), result.head(3)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(level=st.integers(10, 200))
def test_window_rule_catches_a_rise_no_single_day_shows(level: int) -> None:
    # A flat series, then three days 2.5 standard deviations up: no day alone passes the
    # daily quantile, their sum does.
    index = pd.date_range("2021-01-04", periods=63, freq="D")
    series = pd.Series(level, index=index)
    series.iloc[-3:] = level + int(np.ceil(2.5 * np.sqrt(level)))
    result = NegativeBinomialDetector().assess(series, start=index[-3])
    assert not (result["rule"] == "glm").any(), result
    assert result["rule"].iloc[2] in ("sum2", "sum3"), result
    assert result.loc[result["alarm"], "rule"].isin(["sum2", "sum3"]).all(), result
    assert (result.loc[result["alarm"], "p_value"] < 2e-4).all()
    daily_only = NegativeBinomialDetector(windows=()).assess(series, start=index[-3])
    assert not daily_only["alarm"].any(), daily_only
    # the optional CUSUM (2.5 - 0.5 a day) crosses a limit of 4 on the third day
    cusum = NegativeBinomialDetector(windows=(), cusum_h=4.0).assess(series, start=index[-3])
    assert cusum["rule"].tolist() == ["", "", "cusum"], cusum


def test_exposure_tells_a_citywide_rise_from_a_topic_rise() -> None:
    # The topic keeps its 5 % share while all messages double: a rise with everything else.
    rng = np.random.default_rng(7)
    index = pd.date_range("2021-01-11", periods=70, freq="D")
    others = pd.Series(rng.poisson(np.where(index.day_of_week == 6, 150, 400)), index=index)
    others.iloc[-4:] *= 2
    topic = pd.Series(rng.poisson(0.05 * others.to_numpy()), index=index)
    detector = NegativeBinomialDetector()
    alone = detector.assess(topic, start=index[-4])
    relative = detector.assess(topic, start=index[-4], exposure=others)
    assert alone["alarm"].any() and not relative["alarm"].any(), (alone, relative)
    # ... and the same topic doubling on its own is still a rise.
    rising = topic.copy()
    rising.iloc[-4:] *= 2
    flat_others = others.copy()
    flat_others.iloc[-4:] //= 2
    assert detector.assess(rising, start=index[-4], exposure=flat_others)["alarm"].any()
    with pytest.raises(ValueError, match="cover"):
        detector.assess(topic, exposure=others.iloc[5:])


def test_snow_season_does_not_alarm_every_day(spb_daily: pd.DataFrame) -> None:
    snow = spb_daily[("topic", SNOW_ROADS)]
    season = snow.loc["2020-12-14":"2021-03-07"]
    assert season.mean() > 15 * snow.loc["2020-10-19":"2020-11-30"].mean()  # it is seasonal
    others = spb_daily[("total", "total")] - snow  # the reference the alert scan gives
    for exposure in (None, others):
        result = NegativeBinomialDetector().assess(snow, start="2020-12-01", end="2021-03-07",
                                                   exposure=exposure)
        in_season = result.loc["2020-12-14":"2021-03-07", "alarm"]
        assert in_season.mean() < 0.15, in_season.sum()
        assert result.loc["2020-12-01":"2020-12-21", "alarm"].any()  # but the onset does


# ---------------------------------------------------------------- alerts
def day(n: int, observed: int = 30, expected: float = 10.0) -> AlarmDay:
    return AlarmDay(day=date(2021, 3, 1) + timedelta(days=n), observed=observed,
                    expected=expected, upper=20.0, p_value=1e-4, rule="glm")


def test_consecutive_alarm_days_are_one_alert() -> None:
    alerts = alerts_from_alarm_days("topic", "мусор", [day(0), day(1), day(3), day(10)])
    assert [(a.first_day.day, a.last_day.day, len(a.days)) for a in alerts] == [(1, 4, 3),
                                                                                 (11, 11, 1)]
    assert alerts[0].observed == 90 and alerts[0].excess == pytest.approx(60.0)


def test_merge_updates_an_open_alert_and_keeps_its_status() -> None:
    first = TrendAlert("topic", "мусор", (day(0), day(1)))
    known = acknowledge([first], first.id)
    update = TrendAlert("topic", "мусор", (day(1, observed=35), day(2)))
    merged = merge_alerts(known, [update])
    assert len(merged) == 1
    assert merged[0].id == first.id and merged[0].status == AlertStatus.ACKNOWLEDGED
    assert [d.observed for d in merged[0].days] == [30, 35, 30]
    assert known[0].days == first.days  # inputs untouched
    assert TrendAlert.from_dict(merged[0].as_dict()) == merged[0]  # storage round trip
    other = TrendAlert("territory", "Невский", (day(2),))
    assert len(merge_alerts(known, [other])) == 2


def test_a_rise_after_a_resolved_alert_is_a_new_alert() -> None:
    first = TrendAlert("topic", "мусор", (day(0),))
    resolved = resolve_quiet([first], date(2021, 3, 5))
    assert resolved[0].status == AlertStatus.RESOLVED
    assert resolve_quiet([first], date(2021, 3, 3))[0].status == AlertStatus.NEW
    merged = merge_alerts(resolved, [TrendAlert("topic", "мусор", (day(5),))])
    assert [a.status for a in merged] == [AlertStatus.RESOLVED, AlertStatus.NEW]
    assert merged[0].id != merged[1].id
    with pytest.raises(KeyError):
        acknowledge(merged, "nope")


# ---------------------------------------------------------------- explanations
@pytest.fixture(scope="module")
def injected(spb_appeals: pd.DataFrame) -> tuple[pd.DataFrame, date]:
    """Every 10th real Благоустройство appeal of two months (about 17 a day) plus 40 injected
    ones on 2021-03-03 that come from Курортный district and speak of «самокат»."""
    frame = spb_appeals[(spb_appeals["created_at"] >= "2021-01-01")
                        & (spb_appeals["created_at"] < "2021-03-04")
                        & (spb_appeals["label_category"] == "Благоустройство")].iloc[::10]
    source = frame[frame["created_at"] >= "2021-02-20"].sample(40, random_state=1)
    extra = source.assign(
        id=-np.arange(1, 41), territory="Курортный",
        created_at="2021-03-03T12:00:00",
        text="Брошенный самокат лежит на тротуаре у дома 5, кв. 12, звоните +7 911 123-45-67")
    return pd.concat([frame, extra], ignore_index=True), date(2021, 3, 3)


def test_explanation_ranks_the_injected_place_and_word_first(injected) -> None:
    frame, spike_day = injected
    dims = [SeriesDimension("topic_group", label="category"),
            SeriesDimension("topic", label="reason"),
            SeriesDimension("territory", column="territory")]
    found = scan_alerts(frame, as_of=spike_day, lookback_days=1, dimensions=dims[:1],
                        warmup_days=0, explain=False)
    # the frame holds one topic group, so its series is the total's and is reported once
    (group,) = found
    assert group.key == "total=total"
    assert group.last_day == spike_day and group.observed > group.expected + 30
    (explained,) = explain_alerts(frame, [group], dims)  # the project's masker by default
    why = explained.explanation
    assert why.drivers["territory"][0].value == "Курортный"
    assert why.drivers["territory"][0].share > 0.5
    # every lemma of the injected text, none of which the real appeals use as often
    injected_words = {"брошенный", "бросить", "самокат", "лежать", "тротуар", "дом", "звонить"}
    top = [w.word for w in why.words[:5]]
    assert "самокат" in top and set(top) <= injected_words, top
    assert not why.examples_withheld and why.examples
    assert "самокат" in why.examples[0]
    assert "[ТЕЛЕФОН]" in why.examples[0] and "123-45-67" not in why.examples[0]
    assert "Курортный" in why.summary()


# ---------------------------------------------------------------- CLI
def test_cli_lists_alerts_as_json(spb_slice: pd.DataFrame, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from mcu_nlp.cli import app

    export = tmp_path / "spb_slice.csv"
    spb_slice[spb_slice["created_at"] >= "2021-01-15"].to_csv(export, index=False)
    runner = CliRunner()
    result = runner.invoke(app, ["alerts", "--date", "2021-03-29", "--data", str(export),
                                 "--lookback", "3", "--cut", "total", "--cut", "topic_group",
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    for row in rows:
        assert row["dimension"] in ("total", "topic_group")
        assert row["status"] in ("new", "acknowledged")
        assert row["observed"] > row["expected"]
    bad = runner.invoke(app, ["alerts", "--date", "29.03.2021", "--data", str(export)])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
