"""Micro-batching for ``/v1/classify``: concurrent single requests share one model call.

A model's ``predict`` has a fixed per-call cost (building a frame, sparse transforms, one
``predict_proba`` per label) that dwarfs the per-row cost. Under load, requests that arrive within
``max_wait`` seconds of each other are classified together, up to ``max_batch`` at a time; an idle
server answers a lone request after at most ``max_wait``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from starlette.concurrency import run_in_threadpool

from mcu_nlp.services.classify import (
    AppealInput,
    Classification,
    ClassificationFailure,
    ClassifyService,
)

Result = Classification | ClassificationFailure


class MicroBatcher:
    """Collects single classification requests into batches."""

    def __init__(self, classifier: ClassifyService, *, max_batch: int = 64,
                 max_wait: float = 0.002) -> None:
        self.classifier, self.max_batch, self.max_wait = classifier, max_batch, max_wait
        self._pending: dict[int, list[tuple[AppealInput, asyncio.Future[Result]]]] = (
            defaultdict(list))
        self._timers: dict[int, asyncio.TimerHandle] = {}

    async def classify(self, appeal: AppealInput, *, top_k: int) -> Result:
        """Classify one appeal, batched with whatever arrives at the same time."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        pending = self._pending[top_k]
        pending.append((appeal, future))
        if len(pending) >= self.max_batch:
            self._flush(top_k)
        elif top_k not in self._timers:
            self._timers[top_k] = loop.call_later(self.max_wait, self._flush, top_k)
        return await future

    def _flush(self, top_k: int) -> None:
        timer = self._timers.pop(top_k, None)
        if timer is not None:
            timer.cancel()
        batch = self._pending.pop(top_k, [])
        if batch:
            asyncio.get_running_loop().create_task(self._run(batch, top_k))

    async def _run(self, batch: list[tuple[AppealInput, asyncio.Future[Result]]],
                   top_k: int) -> None:
        try:
            results = await run_in_threadpool(self.classifier.classify,
                                              [appeal for appeal, _ in batch], top_k=top_k)
        except Exception as exc:  # hand the error to every waiting request
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
