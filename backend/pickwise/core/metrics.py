"""Prometheus metrics: what the app counts, and the `/metrics` page that shows it.

Other modules only touch the counters (`JUDGMENTS_STORED.inc()`, `IMPORT_ROWS.inc(n)`).

Under gunicorn each worker is its own process with its own counters. When
`PROMETHEUS_MULTIPROC_DIR` is set (before the process starts), prometheus-client keeps the
values in files in that folder and a scrape of any worker sums them all; the folder must be
empty when the server starts. Counters and histograms only: multiprocess gauges need per-pid
bookkeeping, so per-project gauges are computed from the database on each scrape instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from pickwise.core.middleware import HttpMiddleware

if TYPE_CHECKING:
    # Annotations only: importing starlette at run time costs every CLI command its start-up.
    from starlette.types import Message, Receive, Scope, Send

CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUEST_LATENCY = Histogram(
    "pickwise_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template (not raw path).",
    ["method", "route"],
)
REQUESTS = Counter(
    "pickwise_http_requests",
    "HTTP requests answered, by route template and status code.",
    ["method", "route", "status"],
)
JUDGMENTS_STORED = Counter("pickwise_judgments_stored", "Judgments stored.")
LEASES_GRANTED = Counter("pickwise_leases_granted", "Pairs leased to raters (gold included).")
LEASES_EXPIRED = Counter(
    "pickwise_leases_expired", "Leases that ran out and whose slot went to another rater."
)
# Counted by the app's import endpoints (API and page), not by the import itself: a
# `pickwise import` process has no /metrics to show it, and loading prometheus_client would
# cost every one of them its start-up.
IMPORT_ROWS = Counter("pickwise_import_rows", "Rows read from imported files.")
EXPORT_ROWS = Counter("pickwise_export_rows", "Rows written to exports.")

# Requests that matched no route share one label, so scanners cannot create new series.
UNMATCHED_ROUTE = "<unmatched>"


def route_template(scope: Scope) -> str:
    """`/api/v1/projects/{project_id}/next`, not `/api/v1/projects/7/next`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class MetricsMiddleware(HttpMiddleware):
    """Times every HTTP request and labels it with the route that answered it."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500
        started = time.perf_counter()

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route, method = route_template(scope), scope["method"]
            latency, count = _request_series(method, route, status)
            latency.observe(time.perf_counter() - started)
            count.inc()


# (method, route, status) -> its two series. `labels()` checks, converts and locks on every
# call (~4 µs a request for both); the route is a template and the method one of a few, so
# this stays small. Label sets a client can vary without end (an odd method on an unmatched
# path) are looked up each time instead of kept.
_SERIES: dict[tuple[str, str, int], tuple[Histogram, Counter]] = {}
_MAX_SERIES = 1_000


def _request_series(method: str, route: str, status: int) -> tuple[Histogram, Counter]:
    key = (method, route, status)
    series = _SERIES.get(key)
    if series is None:
        series = (
            REQUEST_LATENCY.labels(method, route),
            REQUESTS.labels(method, route, str(status)),
        )
        if len(_SERIES) < _MAX_SERIES:
            _SERIES[key] = series
    return series


@dataclass(frozen=True)
class ProjectSlots:
    project: str
    open: int
    leased: int


class DatabaseCollector(Collector):
    """Gauges read from Postgres at scrape time; `slots` is None when it could not be read."""

    def __init__(self, slots: Sequence[ProjectSlots] | None) -> None:
        self.slots = slots

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "pickwise_database_up", "1 if the scrape could read the database, else 0."
        )
        up.add_metric([], 0 if self.slots is None else 1)
        yield up
        if self.slots is None:
            return
        available = GaugeMetricFamily(
            "pickwise_open_slots",
            "Judgments a project still needs that a rater could take now "
            "(open slots and slots whose lease ran out).",
            labels=["project"],
        )
        leased = GaugeMetricFamily(
            "pickwise_leased_slots",
            "Judgments a project still needs that a rater is working on (live lease).",
            labels=["project"],
        )
        for row in self.slots:
            available.add_metric([row.project], row.open)
            leased.add_metric([row.project], row.leased)
        yield available
        yield leased


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(slots: Sequence[ProjectSlots] | None) -> bytes:
    """The text exposition of this process (or of all workers) plus the database gauges."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        process_metrics = generate_latest(registry)
    else:
        process_metrics = generate_latest(REGISTRY)
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(DatabaseCollector(slots))
    return process_metrics + generate_latest(scrape)
