"""Figures on recurrence for the closing note of issue #15 (reference SPb data).

For Q1 2021 (appeals created 2021-01-01..2021-03-31; their answers are in the same rows) and
for the whole file: place × topic pairs with at least 3 appeals and the appeals they hold (by
the raw address as the issue counted, by the normalized building address, and with
address-less appeals placed on the 100 m grid), repeats after a «done» answer, the top 10 hot
spots, the outcome mix of all answers, the classifier's precision and recall on the
hand-checked set, and the time each step takes.

    .venv/bin/python bench/recurrence.py | tee /tmp/recurrence_figures.txt
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import pandas as pd

from mcu_nlp.root_causes.outcomes import (
    OUTCOME_LABELS_RU,
    OUTCOME_TYPES,
    outcome_mix,
    outcome_scores,
    outcome_types,
)
from mcu_nlp.root_causes.recurrence import hot_spots, place_keys, recurrence_table
from mcu_nlp.settings import get_settings
from mcu_nlp.text.masking import mask_personal_data

HAND_CHECKED = Path(__file__).resolve().parents[1] / "tests" / "data" / "answer_outcomes.csv"
Q1 = ("2021-01-01", "2021-04-01")


def _pairs(frame: pd.DataFrame, keys: pd.Series, minimum: int = 3) -> tuple[int, int]:
    counts = (pd.DataFrame({"place": keys, "topic": frame["reason"]})
              .dropna().groupby(["place", "topic"]).size())
    big = counts[counts >= minimum]
    return len(big), int(big.sum())


def _section(title: str, frame: pd.DataFrame, outcomes: pd.Series) -> pd.DataFrame:
    total = len(frame)
    print(f"\n=== {title}: {total:,} appeals ===")
    raw = frame["address"].where(frame["address"].notna())
    for name, keys in (("raw address (as the issue counted)", raw),
                       ("normalized building address", place_keys(frame, lat_col="-")),
                       ("address, else 100 m grid cell", place_keys(frame))):
        pairs, held = _pairs(frame, keys)
        print(f"place × topic pairs with >= 3 appeals, {name}: {pairs:,} pairs, "
              f"{held:,} appeals ({held / total:.1%} of all)")
    start = time.perf_counter()
    table = recurrence_table(frame, outcomes=outcomes)
    elapsed = time.perf_counter() - start
    repeats = int(table["repeats"].sum())
    after = int(table["repeats_after_done"].sum())
    fixed = int(outcomes.isin(["done", "partly_done"]).sum())
    print(f"recurrence_table: {len(table):,} place × topic pairs with >= 2 appeals, "
          f"{int(table['appeals'].sum()):,} appeals, {repeats:,} repeats ({elapsed:.1f} s)")
    print(f"repeats within 60 days after a done/partly_done answer: {after:,} "
          f"= {after / max(repeats, 1):.1%} of repeats, {after / total:.1%} of all appeals "
          f"({fixed:,} appeals were answered «fixed»)")
    chronic = table[table["appeals"] >= 3]
    print(f"pairs with >= 3 appeals (address or grid): {len(chronic):,}, of which "
          f"{int((chronic['repeats_after_done'] > 0).sum()):,} had a fix that did not hold")
    return table


def _place_label(row: pd.Series) -> str:
    if row["place_kind"] == "grid":
        return f"≈{row['latitude']:.4f}, {row['longitude']:.4f} (без адреса, сетка 100 м)"
    return mask_personal_data(str(row["place"]))


def _print_hot_spots(table: pd.DataFrame, top: int = 10) -> None:
    print(f"\n--- top {top} hot spots, Q1 2021 (ranked by repeats after a fix, then repeats) ---")
    for rank, row in enumerate(hot_spots(table, top=top).itertuples(index=False), 1):
        series = pd.Series(row._asdict())
        print(f"{rank:2d}. {_place_label(series)} | {row.topic} | {row.territory}")
        print(f"    {row.appeals} appeals, {row.repeats} repeats, {row.repeats_after_done} after "
              f"a fix ({row.reopened_share:.0%}); {row.first_at:%d.%m}–{row.last_at:%d.%m}; "
              f"{row.departments}")
        steps = [f"{entry['created_at']:%d.%m}:{entry['outcome']}"
                 + ("*" if entry["after_fix"] else "") for entry in row.history]
        shown = steps if len(steps) <= 12 else [*steps[:6], "…", *steps[-5:]]
        print("    history (created: outcome, * = after a fix): " + " ".join(shown))


def _print_mix(title: str, kinds: list[str]) -> None:
    mix = outcome_mix(kinds)
    total = sum(mix.values())
    print(f"\n--- outcome mix, {title}: {total:,} answers ---")
    for kind in OUTCOME_TYPES:
        if kind in mix:
            print(f"  {kind:20s} {OUTCOME_LABELS_RU[kind]:30s} {mix[kind]:7,} "
                  f"{mix[kind] / total:6.1%}")


def _print_scores(title: str, truth: list[str], predicted: list[str]) -> None:
    scores = outcome_scores(truth, predicted)
    right = sum(t == p for t, p in zip(truth, predicted, strict=True))
    print(f"\n{title}: {len(truth)} answers, accuracy {right / len(truth):.3f}")
    print(f"  {'type':20s} {'n true':>6s} {'n pred':>6s} {'precision':>9s} {'recall':>7s}")
    for kind in OUTCOME_TYPES:
        if kind in scores:
            score = scores[kind]
            precision = ("—" if math.isnan(score["precision"])
                         else f"{score['precision']:.2f}")
            recall = "—" if math.isnan(score["recall"]) else f"{score['recall']:.2f}"
            print(f"  {kind:20s} {int(score['support']):6d} {int(score['predicted']):6d} "
                  f"{precision:>9s} {recall:>7s}")


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    frame = pd.read_csv(get_settings().spb_appeals_path(), dtype={"id": "int64"})
    start = time.perf_counter()
    kinds = pd.Series(outcome_types(frame["last_answer_text"].tolist()), index=frame.index)
    print(f"outcome classification of {frame['last_answer_text'].notna().sum():,} answers "
          f"({len(frame):,} rows): {time.perf_counter() - start:.1f} s")
    created = frame["created_at"].astype(str)
    in_q1 = (created >= Q1[0]) & (created < Q1[1])
    q1_table = _section("Q1 2021 (created 2021-01-01..2021-03-31)", frame[in_q1], kinds[in_q1])
    _print_hot_spots(q1_table)
    _section("whole file (2020-10-18..2021-04-23)", frame, kinds)
    start = time.perf_counter()
    recurrence_table(frame)
    print(f"recurrence_table on the whole file with the answers classified inside: "
          f"{time.perf_counter() - start:.1f} s")
    answered = frame["last_answer_text"].notna()
    _print_mix("all answers, whole file", kinds[answered].tolist())
    _print_mix("answers to Q1 2021 appeals", kinds[answered & in_q1].tolist())

    hand = pd.read_csv(HAND_CHECKED)
    full = frame.set_index("id")["last_answer_text"]
    print("\n--- classifier vs the hand-checked set (tests/data/answer_outcomes.csv) ---")
    print("stratified: 301 answers the rules were tuned on; fresh: 60 random answers read "
          "after the tuning")
    _print_scores("all 361, on the committed excerpts (what the test checks)",
                  hand["outcome"].tolist(), outcome_types(hand["answer"].tolist()))
    _print_scores("all 361, on the full answers", hand["outcome"].tolist(),
                  outcome_types([full[i] for i in hand["id"]]))
    fresh = hand[hand["drawn"] == "fresh"]
    _print_scores("fresh 60, on the full answers", fresh["outcome"].tolist(),
                  outcome_types([full[i] for i in fresh["id"]]))


if __name__ == "__main__":
    main()
