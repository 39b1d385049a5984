"""Does an analytics flood starve the API? p50/p99 of /v1/classify and POST /v1/appeals, with and
without 20 concurrent analytics requests (root causes of 20 different periods).

Self-contained: builds a SQLite store in a temp folder with ``--appeals`` real SPb appeals of 2021
(from ``../shared/data``), a small TF-IDF + logistic model (``tests/api/fake_bundle.py``) as the
active version, and starts uvicorn on 127.0.0.1 with this module's :func:`create_bench_app`.
Root-cause clustering is replaced by a CPU-bound stand-in of the same shape (TF-IDF of the
period's texts + k-means, pure numpy/scikit-learn: it holds the GIL for part of its time, as
BERTopic does), so the run takes a minute instead of UMAP's compilation::

    .venv/bin/python bench/analytics_flood.py --appeals 6000 --seconds 20 --worker process

Figures (6,000 appeals, 4 clients, ``--seconds 40``, 2 cores shared with another full pytest
run — load average 4, so they are noisy; p50/p99 in ms, classify | POST /v1/appeals)::

    run                  baseline               20 analysts             analytics answers
    before jobs (dacd2ad) 44/210 | 77/277       76/401 | 131/564        3x200, 8x500, 21 timeouts
    jobs, thread worker  83/503 | 134/543      52/333 | 90/386         9x202, 88x429, 0 done
    jobs, process worker 46/211 | 79/264       51/273 | 86/356         9x202, 88x429, 0 done

Before jobs the analyses ran inline at normal priority (the flood doubled the p99; 8 answered
500: frame_from_store's KeyError on an appeal stored between its reads). With jobs the flood
costs the requests little, but with both cores busy the nice-19 worker got almost no CPU: no
job finished in 40 s in either mode (the k-means stand-in alone takes 7 s on an idle core for a
month's 1,900 appeals; the frame is no longer re-read, see ``api/analytics.py``). Thread and
process did not differ beyond the noise, so ``thread`` stays the default.

``--worker`` picks where the clustering runs (``MCU_ANALYTICS_WORKER``: the job's thread, or a
low-priority process). ``--app-root`` serves another checkout's ``api``/``mcu_nlp`` (e.g. a
``git worktree`` of the code before background jobs) with the same store, bundle and client.

Phases, each ``--seconds`` long, with ``--clients`` concurrent clients alternating classify and
stored appeals: ``baseline`` (no analytics), then ``flood`` (the same traffic while 20 analysts
each ask for a different period's root causes and poll their job until it is done, then ask for
the next period). Analytics statuses and finished jobs are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
APP_ROOT = Path(os.environ.get("MCU_BENCH_APP_ROOT", ROOT))  # whose api/ and mcu_nlp/ serve
sys.path[:0] = [str(APP_ROOT), str(APP_ROOT / "tests" / "api"), str(ROOT / "bench")]

from api_load import DISTRICTS, TEXTS, spawn  # noqa: E402

SPB = Path(os.environ.get("MCU_SHARED_DATA_DIR", ROOT.parent / "shared" / "data")) \
    / "spb_our_city_appeals" / "appeals.csv.gz"
ANALYSTS = 20


def kmeans_analysis(frame):  # noqa: ANN001, ANN201 - a stand-in for analyze_root_causes
    """CPU-bound stand-in for root-cause clustering: TF-IDF + k-means, cards per cluster."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    from mcu_nlp.root_causes.cards import build_cards
    from mcu_nlp.services.root_causes import RootCauseAnalysis

    vectors = TfidfVectorizer(max_features=20_000, ngram_range=(1, 2)).fit_transform(
        frame["text"].fillna(""))
    dense = TruncatedSVD(n_components=min(100, vectors.shape[1] - 1),
                         random_state=0).fit_transform(vectors)
    dense /= np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-12)
    k = max(2, min(40, len(frame) // 50))
    topics = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(dense)
    words = {i: [("кластер", 1.0)] for i in range(k)}
    cards = build_cards(frame, topics, words, dense, topic_column=None,
                        department_column=None)
    return RootCauseAnalysis(cards=cards, n_appeals=len(frame), outlier_share=0.0,
                             topics=topics, frame=frame)


def create_bench_app():  # noqa: ANN201 - uvicorn factory
    """The API over the bench's store (``MCU_BENCH_DIR``), fake bundle active, k-means analysis."""
    from fake_bundle import FakeBundle

    from api.analytics import AnalyticsData
    from api.main import build_services, create_app
    from mcu_nlp.settings import Settings
    from mcu_nlp.storage import Store

    root = Path(os.environ["MCU_BENCH_DIR"])
    store = Store.from_url(f"sqlite:///{root / 'store.sqlite3'}")
    settings = Settings(data_dir=root)
    services = build_services(settings, store=store, loader=FakeBundle.load)
    app = create_app(settings, services=services, model_sync_seconds=None)
    app.state.analytics = AnalyticsData(store, analyze=kmeans_analysis)
    import api

    print(f"bench app: {Path(api.__file__).parent}", flush=True)
    return app


def prepare(root: Path, appeals: int) -> dict[str, str]:
    """Store, bundle and keys in ``root``; returns the keys."""
    import pandas as pd
    from fake_bundle import FakeBundle, build_fake_bundle

    from api.main import build_services
    from mcu_nlp.services.imports import import_file
    from mcu_nlp.services.keys import create_key
    from mcu_nlp.services.models import ModelRegistry
    from mcu_nlp.settings import Settings
    from mcu_nlp.storage import Store

    frame = pd.read_csv(SPB, dtype={"id": "int64"}).sort_values(["created_at", "id"])
    train = frame[frame["created_at"] < "2021-01-01"].iloc[::10]
    bundle = build_fake_bundle(train, root / "bundle", "bench-v1")
    store = Store.from_url(f"sqlite:///{root / 'store.sqlite3'}")
    ModelRegistry(store, loader=FakeBundle.load).register(bundle, activate=True)
    rows = frame[frame["created_at"] >= "2021-01-01"]
    rows = rows.iloc[:: max(1, len(rows) // appeals)].head(appeals)
    export = root / "export.csv"
    rows.to_csv(export, index=False)
    services = build_services(Settings(data_dir=root), store=store, loader=FakeBundle.load)
    summary = import_file(store, services.classifier, export, kind="spb_portal")
    keys = {role: create_key(store, role=role) for role in ("operator", "analyst")}
    store.dispose()
    print(f"prepared {summary.stored} appeals of {rows['created_at'].min()[:10]} – "
          f"{rows['created_at'].max()[:10]}", flush=True)
    return keys


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1) \
        if ordered else float("nan")


async def traffic(url: str, key: str, clients: int, seconds: float, tag: str) -> dict:
    """``clients`` loops alternating classify and a stored appeal for ``seconds``."""
    latencies: dict[str, list[float]] = {"classify": [], "appeal": []}
    errors: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=60) as client:
        async def loop(worker: int) -> None:
            n = 0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                text, district = random.choice(TEXTS), random.choice(DISTRICTS)
                started = time.perf_counter()
                response = await client.post("/v1/classify",
                                             json={"text": text, "district": district})
                latencies["classify"].append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors[f"classify {response.status_code}"] = \
                        errors.get(f"classify {response.status_code}", 0) + 1
                body = {"source": "bench", "source_id": f"{tag}-{worker}-{n}", "channel": "pos",
                        "created_at": "2021-03-15T10:00:00", "territory": district,
                        "text": f"{text} (дом {n})"}
                started = time.perf_counter()
                response = await client.post("/v1/appeals", json=body)
                latencies["appeal"].append(time.perf_counter() - started)
                if response.status_code != 201:
                    errors[f"appeal {response.status_code}"] = \
                        errors.get(f"appeal {response.status_code}", 0) + 1
                n += 1

        await asyncio.gather(*(loop(i) for i in range(clients)))
    return {name: {"n": len(v), "p50_ms": _pct(v, 0.5), "p99_ms": _pct(v, 0.99)}
            for name, v in latencies.items()} | {"errors": errors}


async def analysts(url: str, key: str, seconds: float, first: date, last: date) -> dict:
    """20 analysts, each asking root causes of a new period, polling its job to the end."""
    statuses: dict[int | str, int] = {}
    finished = {"done": 0, "failed": 0}  # jobs polled to their end, and inline 200 answers
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=60) as client:
        async def analyst(index: int) -> None:
            deadline = time.monotonic() + seconds
            round_ = 0
            while time.monotonic() < deadline:
                since = first + timedelta(days=(index * 3 + round_ * 61) % 60)
                until = min(last, since + timedelta(days=30 + index))
                path = f"/v1/root-causes?since={since}&until={until}"
                try:
                    response = await client.get(path)
                except httpx.TransportError:  # before jobs: answers when done (or times out)
                    statuses["timeout"] = statuses.get("timeout", 0) + 1
                    round_ += 1
                    continue
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    finished["done"] += 1
                if response.status_code == 202:
                    job = response.json()
                    while job["status"] in ("queued", "running") \
                            and time.monotonic() < deadline:
                        await asyncio.sleep(1.0)
                        try:
                            job = (await client.get(job["status_url"])).json()
                        except httpx.TransportError:
                            continue
                    if job["status"] in finished:
                        finished[job["status"]] += 1
                elif response.status_code == 429:
                    await asyncio.sleep(min(5, int(response.headers.get("retry-after", "1"))))
                round_ += 1

        await asyncio.gather(*(analyst(i) for i in range(ANALYSTS)))
    return {"analytics_statuses": statuses, "jobs_finished": finished}


async def flood(url: str, keys: dict[str, str], clients: int, seconds: float, first: date,
                last: date) -> dict:
    """Traffic and 20 analysts at once."""
    analytics_task = asyncio.create_task(analysts(url, keys["analyst"], seconds, first, last))
    await asyncio.sleep(1.0)  # the analytics requests land first
    measured = await traffic(url, keys["operator"], clients, seconds - 1.0, "flood")
    return measured | await analytics_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appeals", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here.")
    parser.add_argument("--worker", choices=("thread", "process"),
                        help="Where the clustering runs (default: MCU_ANALYTICS_WORKER or "
                             "api.jobs.DEFAULT_WORKER).")
    parser.add_argument("--app-root", type=Path,
                        help="Serve this checkout's api/ and mcu_nlp/ (default: this one); its "
                             "own code prepares the store (schemas and migrations differ).")
    parser.add_argument("--prepare-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare_only:  # run by main() under MCU_BENCH_APP_ROOT: that checkout's store
        keys = prepare(args.prepare_only, args.appeals)
        (args.prepare_only / "keys.json").write_text(json.dumps(keys))
        return
    if args.worker:
        os.environ["MCU_ANALYTICS_WORKER"] = args.worker
    if args.app_root:
        os.environ["MCU_BENCH_APP_ROOT"] = str(args.app_root.resolve())
    with tempfile.TemporaryDirectory(prefix="mcu-flood-") as folder:
        root = Path(folder)
        if args.app_root:
            subprocess.run([sys.executable, __file__, "--prepare-only", str(root), "--appeals",
                            str(args.appeals)], check=True, cwd=ROOT)
            keys = json.loads((root / "keys.json").read_text())
        else:
            keys = prepare(root, args.appeals)
        os.environ["MCU_BENCH_DIR"] = str(root)
        # the server imports this module first: its sys.path puts MCU_BENCH_APP_ROOT ahead
        process, url = spawn("analytics_flood:create_bench_app", 1,
                             [str(ROOT / "bench"), str(ROOT / "tests" / "api")])
        try:
            asyncio.run(traffic(url, keys["operator"], args.clients, 3.0, "warmup"))
            figures = {"baseline": asyncio.run(traffic(url, keys["operator"], args.clients,
                                                       args.seconds, "base")),
                       "flood": asyncio.run(flood(url, keys, args.clients, args.seconds,
                                                  date(2021, 1, 1), date(2021, 4, 30))),
                       "clients": args.clients, "seconds": args.seconds,
                       "cores": os.cpu_count(), "appeals": args.appeals,
                       "worker": os.environ.get("MCU_ANALYTICS_WORKER", "default"),
                       "app_root": str(args.app_root or ROOT)}
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:  # requests still computing inline (before jobs)
                process.kill()
                process.wait(timeout=15)
    print(json.dumps(figures, indent=1, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
