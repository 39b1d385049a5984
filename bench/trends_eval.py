"""Spike-injection evaluation of the trend detector on the real SPb series.

For every daily series (topic group, fine topic, department, district and the total) whose mean is
at least ``--min-mean`` messages a day, the detector first runs on the real counts ("clean run").
Then synthetic spikes are injected at random, seeded places: on each of ``d`` consecutive days
(d = 1..5) the day's real count ``y`` gets ``Poisson(s * y)`` extra messages (s = +50 %, +100 %,
+200 %). A spike counts as detected when the detector alarms on one of its days. Spike places are
drawn among days where the clean run had no alarm, so a real event does not pass for a detection;
the detector re-runs over the spike days with the CUSUM state the clean run had the day before.

False alarms are the clean run's alarms on the real (un-injected) series, per series per quarter
(91 days), both as alarm days and as alerts (alarm days merged when at most 2 days apart). Real
surges count here too, so this overstates the false-alarm rate of a perfect model.

With ``--real-alerts FIRST:LAST`` it instead lists the alerts the detector raises on the real
data in that period (all cuts), with their explanations.

Run: ``.venv/bin/python bench/trends_eval.py`` (about 5 CPU-minutes);
``.venv/bin/python bench/trends_eval.py --real-alerts 2021-03-01:2021-04-22``.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from mcu_nlp.settings import get_settings
from mcu_nlp.trends.counts import count_series
from mcu_nlp.trends.detector import NegativeBinomialDetector
from mcu_nlp.trends.scan import scan_alerts

SIZES = (0.5, 1.0, 2.0)
DURATIONS = (1, 2, 3, 4, 5)
QUARTER_DAYS = 91


def spb_frame(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    renamed = frame.rename(columns={"category": "label_category", "reason": "label_reason",
                                    "department": "label_department", "district": "territory"})
    renamed["channel"] = "portal"
    return renamed


def real_alerts(frame: pd.DataFrame, first: date, last: date, top: int) -> None:
    started = time.time()
    found = scan_alerts(frame, as_of=last, lookback_days=(last - first).days + 1,
                        quiet_days=0)
    print(f"{len(found)} alerts from {first} to {last} "
          f"({sum(len(a.days) for a in found)} alarm days); by cut: "
          + ", ".join(f"{k}: {v}" for k, v in
                      pd.Series([a.dimension for a in found]).value_counts().items()))
    ranked = sorted(found, key=lambda a: -a.excess)
    print("\nAll alerts (cut | series | days | observed/expected | rules):")
    for alert in sorted(found, key=lambda a: (a.first_day, a.dimension)):
        print(f"  {alert.first_day}..{alert.last_day} ({len(alert.days)}) | {alert.dimension} | "
              f"{alert.value[:70]} | {alert.observed}/{alert.expected:.0f} | "
              f"{','.join(alert.rules)}")
    print(f"\nTop {top} by excess, explained:")
    for alert in ranked[:top]:
        print(f"\n== {alert.dimension}: {alert.value} | {alert.first_day}..{alert.last_day} "
              f"({len(alert.days)} alarm days, {','.join(alert.rules)})")
        print(alert.explanation.summary(drivers_per_cut=3, words=8))
        for text in alert.explanation.examples[:2]:
            print("   «" + " ".join(text.split())[:200] + "»")
    print(f"\nElapsed {time.time() - started:.0f} s")


def alert_count(alarm: np.ndarray, gap: int = 2) -> int:
    days = np.flatnonzero(alarm)
    if len(days) == 0:
        return 0
    return int(1 + np.sum(np.diff(days) > gap + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=20210401)
    parser.add_argument("--min-mean", type=float, default=5.0)
    parser.add_argument("--injections", type=int, default=4, help="spikes per series and cell")
    parser.add_argument("--max-series", type=int, default=None)
    parser.add_argument("--real-alerts", default=None, metavar="FIRST:LAST",
                        help="list the real alerts of this period instead")
    parser.add_argument("--top", type=int, default=25, help="real alerts to explain")
    args = parser.parse_args()
    if args.real_alerts:
        first, last = (date.fromisoformat(x) for x in args.real_alerts.split(":"))
        real_alerts(spb_frame(args.data or get_settings().spb_appeals_path()), first, last,
                    args.top)
        return

    started = time.time()
    frame = spb_frame(args.data or get_settings().spb_appeals_path())
    counts = count_series(frame).drop(columns="channel", level=0)
    counts = counts.loc[:, counts.mean() >= args.min_mean]
    if args.max_series:
        counts = counts.iloc[:, : args.max_series]
    detector = NegativeBinomialDetector()
    burn_in = detector.max_window  # evaluate only days with a full baseline window
    eval_days = counts.index[burn_in:]
    rng = np.random.default_rng(args.seed)
    n_series = counts.shape[1]
    print(f"{n_series} series with mean >= {args.min_mean}/day; evaluated days "
          f"{eval_days[0].date()}..{eval_days[-1].date()} ({len(eval_days)} days)")

    false_days = false_alerts = 0
    hits: dict[tuple[float, int], list[bool]] = {(s, d): [] for s in SIZES for d in DURATIONS}
    delays: dict[tuple[float, int], list[int]] = {(s, d): [] for s in SIZES for d in DURATIONS}
    by_volume: dict[str, list[bool]] = {}
    for column in counts.columns:
        series = counts[column]
        clean = detector.assess(series, start=counts.index[detector.min_window])
        in_eval = clean.loc[eval_days]
        false_days += int(in_eval["alarm"].sum())
        false_alerts += alert_count(in_eval["alarm"].to_numpy())
        alarm = clean["alarm"].reindex(counts.index, fill_value=False).to_numpy()
        mean = float(series.mean())
        band = "5-10" if mean < 10 else "10-30" if mean < 30 else ">=30"
        for size in SIZES:
            for duration in DURATIONS:
                starts = [p for p in range(burn_in, len(series) - duration + 1)
                          if not alarm[p:p + duration].any()]
                for p in rng.choice(starts, size=min(args.injections, len(starts)), replace=False):
                    injected = series.copy()
                    real = injected.iloc[p:p + duration].to_numpy()
                    injected.iloc[p:p + duration] = real + rng.poisson(size * real)
                    before = clean["cusum"].get(counts.index[p - 1], 0.0)
                    result = detector.assess(injected, start=counts.index[p],
                                             end=counts.index[p + duration - 1],
                                             cusum_start=float(before))
                    found = result["alarm"].to_numpy()
                    hits[(size, duration)].append(bool(found.any()))
                    if found.any():
                        delays[(size, duration)].append(int(np.argmax(found)))
                    if size == 1.0 and duration == 3:
                        by_volume.setdefault(band, []).append(bool(found.any()))

    series_quarters = n_series * len(eval_days) / QUARTER_DAYS
    table = pd.DataFrame(
        {f"+{int(s * 100)}%": [np.mean(hits[(s, d)]) for d in DURATIONS] for s in SIZES},
        index=pd.Index([f"{d} day{'s' if d > 1 else ''}" for d in DURATIONS], name="spike"),
    )
    print("\nRecall (share of injected spikes with an alarm on a spike day):")
    print((table * 100).round(1).to_string())
    print("\nMean delay to first alarm (days after spike start, detected spikes):")
    print(pd.DataFrame({f"+{int(s * 100)}%": [np.mean(delays[(s, d)]) if delays[(s, d)]
                                               else np.nan for d in DURATIONS] for s in SIZES},
                       index=table.index).round(2).to_string())
    print("\nRecall of +100% x 3 days by series volume (messages/day): "
          + ", ".join(f"{band}: {100 * np.mean(v):.1f}% (n={len(v)})"
                      for band, v in sorted(by_volume.items())))
    print(f"\nSpikes per cell: {len(hits[(1.0, 3)])}")
    print(f"False alarms on real (un-injected) days: {false_days / series_quarters:.2f} alarm days"
          f" and {false_alerts / series_quarters:.2f} alerts per series per quarter "
          f"({false_days} alarm days, {false_alerts} alerts, "
          f"{series_quarters:.1f} series-quarters)")
    print(f"Elapsed {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
