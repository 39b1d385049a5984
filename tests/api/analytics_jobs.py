"""Test helper: follow an analytics request through its background job to the answer."""

from __future__ import annotations

import time

import httpx


def settled(client, method: str, path: str, timeout: float = 120.0, **kwargs):
    """An analytics request's answer once its job is done: 202 → poll the job → ask again.

    A scan is not cached (it stores alerts), so its answer is the finished job's ``result``.
    """
    call = getattr(client, method)
    response = call(path, **kwargs)
    deadline = time.monotonic() + timeout
    while response.status_code == 202:
        job = response.json()
        assert response.headers["location"] == job["status_url"] == f"/v1/jobs/{job['id']}"
        assert int(response.headers["retry-after"]) >= 1
        while job["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.02)
            polled = client.get(job["status_url"], headers=kwargs.get("headers"))
            assert polled.status_code == 200, polled.text
            job = polled.json()
        if job["kind"] == "scan":
            if job["status"] == "failed":
                return httpx.Response(job["error"]["status"],
                                      json={"detail": job["error"]["detail"]})
            return httpx.Response(200, json=job["result"])
        response = call(path, **kwargs)
    return response
