"""Did it work: difference in differences of appeals at a card's places, on real SPb appeals."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mcu_nlp.root_causes.follow_up import (
    _boot_means,
    _repeat_flags,
    card_topics,
    follow_up,
    place_keys,
)

START = pd.Timestamp("2021-02-15")
DAYS = 45
# the two housing topics with the most appeals (stairwell state, cleaning schedule)
TOPICS = ["Неудовлетворительное состояние парадной",
          "Отсутствие или несоблюдение графика уборки подъезда"]


@pytest.fixture(scope="module")
def appeals(spb_frame: pd.DataFrame) -> pd.DataFrame:
    frame = spb_frame[["id", "created_at", "reason", "address", "latitude", "longitude"]].copy()
    frame["created_at"] = pd.to_datetime(frame["created_at"])
    frame["place"] = place_keys(frame)
    return frame


@pytest.fixture(scope="module")
def eligible(appeals: pd.DataFrame) -> np.ndarray:
    """Places with an appeal on the topics in the window before (both groups' rule)."""
    before = appeals[(appeals["created_at"] >= START - pd.Timedelta(days=DAYS))
                     & (appeals["created_at"] < START) & appeals["reason"].isin(TOPICS)]
    return np.sort(before["place"].dropna().unique())


def _after_on_topics(frame: pd.DataFrame) -> pd.Series:
    return (frame["created_at"] >= START) & frame["reason"].isin(TOPICS)


def test_place_keys_are_addresses_else_rounded_coordinates() -> None:
    frame = pd.DataFrame({
        "address": ["г.Санкт-Петербург, Мебельная улица, дом 47", "  г.Санкт-Петербург,  "
                    "Мебельная улица,дом 47", None, ""],
        "latitude": [59.99, 59.99, 59.93412, 59.93449],
        "longitude": [30.2, 30.2, 30.36091, 30.36062],
    })
    keys = place_keys(frame).tolist()
    assert keys[0] == keys[1] == "г.санкт-петербург мебельная улица дом 47"
    # address-less appeals ~30 m apart share a cell of about 100 m
    assert keys[2] == keys[3] == "@59.934,30.361"
    assert place_keys(frame[["address"]].iloc[2:3]).isna().all()


def test_repeats_look_back_at_the_same_place_and_topic() -> None:
    times = pd.to_datetime(["2021-01-01", "2021-01-20", "2021-04-01", "2021-01-05",
                            "2021-01-06"]).to_numpy()
    place = np.array([0, 0, 0, 0, -1])
    topic = np.array([0, 0, 0, 1, 0])
    # second: 19 days after the first (repeat); third: 71 days after the second (not);
    # another topic at the same place, and an unknown place, never repeat
    assert _repeat_flags(place, topic, times, 60).tolist() == [False, True, False, False, False]


def test_difference_in_differences_by_hand() -> None:
    """Two card places lose their appeals after the start, two comparison places keep theirs."""
    rows = []
    for place, before, after in [("a", 2, 0), ("b", 4, 1), ("c", 3, 3), ("d", 1, 2), ("e", 0, 5)]:
        rows += [(place, "2021-01-10", "t")] * before + [(place, "2021-02-10", "t")] * after
    rows += [("a", "2021-02-11", "other")] * 7  # another topic: not counted
    rows += [("z", "2020-12-20", "other")]  # where the data begin
    frame = pd.DataFrame(rows, columns=["place", "created_at", "reason"])
    result = follow_up(frame, {"card": (["a", "b"], ["t"])}, "2021-02-01", days=31,
                       after_days=28, place_col="place", min_places=1, n_boot=500)[0]
    # window before: 2021-01-01 – 01-31 (31 days), after: 02-01 – 02-11 (cut where the data end)
    assert (result.before_days, result.after_days) == (31, 11)
    assert (result.n_treated, result.n_control) == (2, 2)  # «e» had nothing before: not eligible
    assert (result.treated_before, result.treated_after) == (6, 1)
    assert (result.control_before, result.control_after) == (4, 5)
    scale_before, scale_after = 30 / 31, 30 / 11
    treated = np.mean([0 * scale_after - 2 * scale_before, 1 * scale_after - 4 * scale_before])
    control = np.mean([3 * scale_after - 3 * scale_before, 2 * scale_after - 1 * scale_before])
    assert result.estimate == pytest.approx(treated - control, abs=1e-3)
    assert result.ci_low <= result.estimate <= result.ci_high
    data = result.to_dict()
    assert data["estimate"] == result.estimate and data["repeats"]["measure"] == "repeats"
    assert "разность разностей" in data["summary_ru"]


def test_bootstrap_means_resample_places() -> None:
    values = np.array([0.0, 0.0, 1.0, 3.0, -2.0, 0.5, 0.5, 7.0])
    means = _boot_means(values, 20_000, np.random.default_rng(0))
    assert means.mean() == pytest.approx(values.mean(), abs=0.02)
    assert means.std() == pytest.approx(values.std() / math.sqrt(len(values)), rel=0.03)


def test_planted_effect_is_negative_and_excludes_zero(appeals, eligible) -> None:
    chosen = np.random.default_rng(3).choice(eligible, 150, replace=False)
    # the roadmap worked: the appeals on the topics at the chosen places stop after the start
    removed = appeals["place"].isin(chosen) & _after_on_topics(appeals)
    result = follow_up(appeals[~removed.to_numpy()], [(chosen, TOPICS)], START, DAYS,
                       place_col="place", seed=1)[0]
    assert result.n_treated == 150 and result.n_control == len(eligible) - 150
    assert result.treated_after == 0 and result.control_after > 0
    assert result.estimate < 0 and result.ci_high < 0
    assert result.verdict == "снизилось" and result.appeals.relative < 0
    assert result.repeats.estimate < 0 and result.repeats.ci_high < 0
    # untouched, the same places show no such drop
    again = follow_up(appeals, [(chosen, TOPICS)], START, DAYS, place_col="place", seed=1)[0]
    assert again.ci_low <= 0 <= again.ci_high
    assert again.treated_before == result.treated_before


def test_no_effect_intervals_cover_zero_most_of_the_time(appeals, eligible) -> None:
    targets = {seed: (np.random.default_rng(seed).choice(eligible, 60, replace=False), TOPICS)
               for seed in range(20)}
    results = follow_up(appeals, targets, START, DAYS, place_col="place", seed=0)
    covered = [r.ci_low <= 0 <= r.ci_high for r in results]
    assert sum(covered) >= 17  # nominal 95 %: 19 of 20 expected
    assert abs(np.mean([r.estimate for r in results])) < 0.15
    assert all(r.verdict in ("изменение не подтверждено", "снизилось", "выросло")
               for r in results)
    # the same seed gives the same interval
    again = follow_up(appeals, {0: targets[0]}, START, DAYS, place_col="place", seed=0)[0]
    assert (again.ci_low, again.ci_high) == (results[0].ci_low, results[0].ci_high)


def test_busy_places_calming_down_by_themselves_are_no_success(appeals) -> None:
    """Places picked because they were busy fall back (regression to the mean): the strata of
    appeals before keep that from reading as an effect, which a plain DiD would claim."""
    before = appeals[(appeals["created_at"] >= START - pd.Timedelta(days=DAYS))
                     & (appeals["created_at"] < START) & appeals["reason"].isin(TOPICS)]
    counts = before.groupby("place").size()
    busy = np.sort(counts[counts >= 2].index.to_numpy())
    targets = {seed: (np.random.default_rng(seed).choice(busy, 40, replace=False), TOPICS)
               for seed in range(10)}
    plain = follow_up(appeals, targets, START, DAYS, place_col="place", match_before=None)
    matched = follow_up(appeals, targets, START, DAYS, place_col="place")
    assert np.mean([r.estimate for r in plain]) < -0.3
    assert sum(r.verdict == "снизилось" for r in plain) >= 3
    assert abs(np.mean([r.estimate for r in matched])) < 0.2
    assert sum(r.ci_low <= 0 <= r.ci_high for r in matched) >= 9
    # the comparison is reweighted to the card places' appeals before
    first = matched[0].appeals
    assert first.control_rate_before == pytest.approx(first.treated_rate_before, rel=0.25)


def test_cards_are_targets_and_windows_are_checked(appeals, eligible) -> None:
    card = SimpleNamespace(id=7, place_keys=list(eligible[:30]), size=100,
                           topics=[(TOPICS[0], 60), (TOPICS[1], 30), ("Мусор", 5)])
    assert card_topics(card.topics, card.size) == TOPICS
    result = follow_up(appeals, [card], START, DAYS, place_col="place")[0]
    assert result.id == 7 and result.topics == TOPICS and result.n_treated <= 30
    few = follow_up(appeals, [(eligible[:3], TOPICS)], START, DAYS, place_col="place")[0]
    assert math.isnan(few.ci_low) and few.verdict == "мало данных"
    assert few.to_dict()["ci_low"] is None
    # every topic when none is named
    anything = follow_up(appeals, [(eligible[:30], None)], START, DAYS, place_col="place")[0]
    assert anything.treated_before >= result.treated_before
    late = follow_up(appeals, [(eligible[:30], TOPICS)], "2021-04-10", DAYS,
                     place_col="place")[0]
    assert late.after_days < DAYS  # the data end on 23.04.2021
    with pytest.raises(ValueError, match="do not cover"):
        follow_up(appeals, [(eligible[:30], TOPICS)], "2021-06-01", DAYS, place_col="place")
