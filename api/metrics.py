"""Prometheus text exposition without extra dependencies: request counts and latency histograms.

Counters live in one process; with several uvicorn workers each exposes its own (scrape them
per worker, or run one worker per container as usual).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Request counters and latency histograms keyed by route template and status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], list[int]] = {}
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)
        self.events: dict[str, int] = defaultdict(int)
        self.gauges: dict[str, Callable[[], float]] = {}
        self.started = time.time()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request."""
        with self._lock:
            self.requests[(method, route, status)] += 1
            buckets = self.latency.setdefault((method, route), [0] * (len(BUCKETS) + 1))
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    buckets[index] += 1
            buckets[-1] += 1
            self.latency_sum[(method, route)] += seconds

    def count(self, event: str, amount: int = 1) -> None:
        """Count a domain event (routed auto, sent to review, imported...)."""
        with self._lock:
            self.events[event] += amount

    def render(self) -> str:
        """The metrics in Prometheus text format 0.0.4."""
        lines = ["# HELP mcu_http_requests_total HTTP requests by route and status.",
                 "# TYPE mcu_http_requests_total counter"]
        with self._lock:
            for (method, route, status), value in sorted(self.requests.items()):
                lines.append(f'mcu_http_requests_total{{method="{method}",route="{route}",'
                             f'status="{status}"}} {value}')
            lines += ["# HELP mcu_http_request_seconds HTTP request latency.",
                      "# TYPE mcu_http_request_seconds histogram"]
            for (method, route), buckets in sorted(self.latency.items()):
                labels = f'method="{method}",route="{route}"'
                for bound, value in zip(BUCKETS, buckets, strict=False):
                    lines.append(
                        f'mcu_http_request_seconds_bucket{{{labels},le="{bound}"}} {value}')
                lines.append(f'mcu_http_request_seconds_bucket{{{labels},le="+Inf"}} {buckets[-1]}')
                lines.append(f"mcu_http_request_seconds_sum{{{labels}}} "
                             f"{self.latency_sum[(method, route)]:.6f}")
                lines.append(f"mcu_http_request_seconds_count{{{labels}}} {buckets[-1]}")
            lines += ["# HELP mcu_events_total Domain events (routing decisions, imports).",
                      "# TYPE mcu_events_total counter"]
            for event, value in sorted(self.events.items()):
                lines.append(f'mcu_events_total{{event="{event}"}} {value}')
        for name, gauge in sorted(self.gauges.items()):
            lines += [f"# TYPE {name} gauge", f"{name} {gauge()}"]
        lines.append(f"mcu_uptime_seconds {time.time() - self.started:.1f}")
        return "\n".join(lines) + "\n"
