"""Load test for /v1/classify on loopback: p50/p99 latency and throughput at N concurrent requests.

Either point it at a running server (``--url`` and ``--key``), or let it start uvicorn itself
(``--spawn``) on a store that already has an active model and give it a key (``--key``), e.g.::

    mcu-nlp models register models/bundle-v1 --activate
    KEY=$(mcu-nlp keys create --role operator | tail -1)
    python bench/api_load.py --spawn --key "$KEY" --concurrency 100 --requests 3000

The client is a small asyncio + httpx loop. On a 2-core machine the client competes with the
server for CPU, and httpx itself saturates near 100 concurrent connections (about 240 requests/s
even on ``/health``), so for high concurrency use ``wrk`` (Debian package ``wrk``) with
``bench/wrk_classify.lua``::

    KEY=... wrk -t1 -c100 -d20s --latency -s bench/wrk_classify.lua http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "Во дворе не вывозят мусор уже неделю", "Не горит свет в парадной на третьем этаже",
    "Сосульки висят над входом в подъезд", "Яма на дороге у остановки",
    "Надписи на стене дома, закрасьте пожалуйста", "Нет горячей воды с утра",
    "Снег не убран с тротуара, скользко", "Сломаны качели на детской площадке",
    "Протекает крыша, заливает квартиру", "Незаконная реклама на фасаде дома",
]
DISTRICTS = ["Невский", "Центральный", "Выборгский", "Калининский", "Приморский"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(factory: str, workers: int, extra_path: list[str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *extra_path,
                                                        os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1", "--port",
         str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("server did not start")


async def run(url: str, key: str, concurrency: int, total: int, warmup: int) -> dict:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, limits=limits,
                                 timeout=30) as client:
        async def one(record: bool) -> None:
            nonlocal errors
            body = {"text": random.choice(TEXTS), "district": random.choice(DISTRICTS)}
            started = time.perf_counter()
            try:
                response = await client.post("/v1/classify", json=body)
                status = response.status_code
            except httpx.HTTPError:
                status = -1
            elapsed = time.perf_counter() - started
            if record:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if status != 200:
                    errors += 1

        async def worker(count: int, record: bool) -> None:
            for _ in range(count):
                await one(record)

        await asyncio.gather(*(worker(max(1, warmup // concurrency), False)
                               for _ in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(total // concurrency, True) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"requests": len(latencies), "errors": errors, "statuses": statuses,
            "concurrency": concurrency, "wall_s": round(wall, 2),
            "throughput_rps": round(len(latencies) / wall, 1),
            "p50_ms": round(pct(0.50), 1), "p90_ms": round(pct(0.90), 1),
            "p99_ms": round(pct(0.99), 1), "mean_ms": round(statistics.mean(latencies) * 1000, 1)}


async def single(url: str, key: str, count: int) -> dict:
    """One request at a time: the service time without queueing."""
    latencies = []
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as client:
        for index in range(count):
            started = time.perf_counter()
            await client.post("/v1/classify", json={"text": TEXTS[index % len(TEXTS)]})
            latencies.append(time.perf_counter() - started)
    latencies.sort()
    return {"single_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
            "single_p99_ms": round(latencies[int(0.99 * len(latencies))] * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="A running server.")
    parser.add_argument("--spawn", action="store_true", help="Start uvicorn on a free port.")
    parser.add_argument("--factory", default="api.main:create_app")
    parser.add_argument("--pythonpath", action="append", default=[])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--key", required=True)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()
    process = None
    if args.spawn:
        process, url = spawn(args.factory, args.workers, args.pythonpath)
    elif args.url:
        url = args.url
    else:
        parser.error("give --url or --spawn")
    try:
        print(asyncio.run(single(url, args.key, 200)))
        print(asyncio.run(run(url, args.key, args.concurrency, args.requests, args.warmup)))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
