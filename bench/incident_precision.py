"""Precision of incident merging on a hand-checked sample of merged pairs.

Two modes:

``--draw N`` runs the merger on the whole SPb file with the default settings, takes N random
incidents (of 2+ appeals) and one random pair of appeals inside each (linked directly or through
others), and writes them with masked texts and an empty ``label`` column for hand-checking.

Without ``--draw`` it reads the labelled sample (``tests/data/incident_pairs.csv``: ``label`` is
``same`` or ``different``), re-runs the merger, and reports precision = share of ``same`` among the
sample pairs that the current settings still merge (and how many of them it still merges).

Labelling rule used for the committed sample (100 pairs drawn with ``--seed 7`` after the settings
were tuned on two earlier draws): ``same`` when one work order fixes both messages — the same defect
type at the same object or spot (one building's facade, one yard, one stretch of road, one sign or
pole, the same floor of one staircase); ``different`` when the defect or the element differs
(air conditioner vs antenna, steps vs sign) or the spot does (another floor, another structure).

    .venv/bin/python bench/incident_precision.py
    .venv/bin/python bench/incident_precision.py --draw 100 --out /tmp/pairs.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mcu_nlp.embeddings import Usem3Embedder
from mcu_nlp.incidents import IncidentMerger
from mcu_nlp.root_causes.cards import _masker
from mcu_nlp.settings import get_settings

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "incident_pairs.csv"


def merge_spb(window_hours: float, min_similarity: float, max_distance_m: float,
              spot_distance_m: float) -> tuple[pd.DataFrame, np.ndarray, IncidentMerger]:
    frame = pd.read_csv(get_settings().spb_appeals_path())
    vectors = Usem3Embedder().encode(frame["text"].tolist())
    merger = IncidentMerger(window_hours=window_hours, min_similarity=min_similarity,
                            max_distance_m=max_distance_m, spot_distance_m=spot_distance_m,
                            topic_column="reason")
    start = time.perf_counter()
    labels = merger.fit_predict(frame, embeddings=vectors)
    sizes = np.bincount(labels)
    print(f"{len(frame)} appeals → {merger.n_incidents_} incidents; "
          f"{int((sizes >= 2).sum())} incidents of 2+ appeals hold {int(sizes[sizes >= 2].sum())} "
          f"appeals; {len(merger.pairs_)} links; merging took {time.perf_counter() - start:.1f} s "
          "(embeddings from the cache)")
    return frame, labels, merger


def draw(frame: pd.DataFrame, labels: np.ndarray, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = np.bincount(labels)
    chosen = rng.choice(np.flatnonzero(sizes >= 2), size=n, replace=False)
    mask = _masker()
    times = pd.to_datetime(frame["created_at"])
    rows = []
    for incident in np.sort(chosen):
        members = np.flatnonzero(labels == incident)
        a, b = np.sort(rng.choice(members, size=2, replace=False))
        rows.append({
            "first_id": int(frame["id"].iloc[a]), "second_id": int(frame["id"].iloc[b]),
            "incident_size": len(members),
            "hours_apart": round(abs((times.iloc[b] - times.iloc[a]).total_seconds()) / 3600, 2),
            "metres_apart": round(float(np.hypot(
                (frame["latitude"].iloc[a] - frame["latitude"].iloc[b]) * 110_574,
                (frame["longitude"].iloc[a] - frame["longitude"].iloc[b]) * 55_800)), 1),
            "reason": frame["reason"].iloc[a],
            "first_address": frame["address"].iloc[a], "second_address": frame["address"].iloc[b],
            "first_text": mask(str(frame["text"].iloc[a])),
            "second_text": mask(str(frame["text"].iloc[b])), "label": ""})
    return pd.DataFrame(rows)


def measure(frame: pd.DataFrame, labels: np.ndarray, sample: pd.DataFrame) -> None:
    if not sample["label"].isin(["same", "different"]).all():
        raise SystemExit("every label must be 'same' or 'different'")
    incident_of = dict(zip(frame["id"].astype(int), labels, strict=True))
    merged = np.array([incident_of.get(a, -1) == incident_of.get(b, -2)
                       for a, b in zip(sample["first_id"], sample["second_id"], strict=True)])
    kept = sample[merged]
    same = int((kept["label"] == "same").sum())
    precision = same / len(kept) if len(kept) else float("nan")
    print(f"labelled pairs: {len(sample)}; still merged with these settings: {len(kept)}")
    print(f"precision of merged pairs: {same}/{len(kept)} = {precision:.3f} (goal >= 0.9)")
    for _, row in kept[kept["label"] == "different"].iterrows():
        print(f"  different: {row['first_id']} / {row['second_id']}: "
              f"{row['first_text'][:70]!r} | {row['second_text'][:70]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window-hours", type=float, default=72.0)
    parser.add_argument("--min-similarity", type=float, default=0.8)
    parser.add_argument("--max-distance-m", type=float, default=100.0)
    parser.add_argument("--spot-distance-m", type=float, default=15.0)
    parser.add_argument("--draw", type=int, default=0, help="draw a new sample of N pairs")
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    args = parser.parse_args()
    frame, labels, _ = merge_spb(args.window_hours, args.min_similarity, args.max_distance_m,
                                 args.spot_distance_m)
    if args.draw:
        out = args.out or args.sample
        draw(frame, labels, args.draw, args.seed).to_csv(out, index=False)
        print(f"wrote {args.draw} pairs to label: {out}")
    else:
        measure(frame, labels, pd.read_csv(args.sample, dtype={"label": str}))


if __name__ == "__main__":
    main()
