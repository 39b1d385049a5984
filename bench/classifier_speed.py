"""Speed and memory of each classifier on the EVAL.md split (2 cores): training time, batch
throughput, single-text latency (p50/p99), peak memory. Each model runs in its own process so the
peak RSS is its own.

    .venv/bin/python bench/classifier_speed.py [--label category] [--models sparse embedding]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time

import numpy as np


def measure(model_name: str, label: str, queue: mp.Queue) -> None:
    from mcu_nlp.classifiers.factory import make_classifier
    from mcu_nlp.evaluation.datasets import load_spb
    from mcu_nlp.evaluation.protocol import split_by_time

    split = split_by_time(load_spb())
    model = make_classifier(model_name, context_columns=("district",))
    started = time.perf_counter()
    model.fit(
        split.fit,
        split.fit[label].to_numpy(),
        X_calibration=split.validation,
        y_calibration=split.validation[label].to_numpy(),
    )
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model.predict_proba(split.test)
    batch = len(split.test) / (time.perf_counter() - started)
    latencies = []
    for row in range(300):
        one = split.test.iloc[row : row + 1]
        started = time.perf_counter()
        model.predict_proba(one)
        latencies.append((time.perf_counter() - started) * 1000)
    queue.put(
        {
            "model": model_name,
            "label": label,
            "train_s": round(train_seconds, 1),
            "batch_texts_per_s": round(batch),
            "single_ms_p50": round(float(np.percentile(latencies, 50)), 2),
            "single_ms_p99": round(float(np.percentile(latencies, 99)), 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--label", default="category")
    parser.add_argument("--models", nargs="+", default=["sparse", "embedding", "ensemble"])
    args = parser.parse_args()
    context = mp.get_context("spawn")
    for name in args.models:
        queue = context.Queue()
        process = context.Process(target=measure, args=(name, args.label, queue))
        process.start()
        print(json.dumps(queue.get(), ensure_ascii=False), flush=True)
        process.join()


if __name__ == "__main__":
    main()
