"""Prometheus metrics shared by every service, and the ``/metrics`` endpoint.

Works with several worker processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set *before* this module
is first imported (``common.serve`` does that), values live in per-process files and ``/metrics``
aggregates them with ``MultiProcessCollector``.
"""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to serve an HTTP request, by route template.",
    ["service", "method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests served, by route template.",
    ["service", "method", "route", "status"],
)
ACTIVE_CONNECTIONS = Gauge(
    "active_connections",
    "HTTP requests being served right now.",
    ["service"],
    multiprocess_mode="livesum",
)
HTTP_REQUESTS_REJECTED = Counter(
    "http_requests_rejected_total",
    "Requests answered 503 at once because the worker already had its bound of requests in flight.",
    ["service"],
)
APPLICATION_ERRORS = Counter(
    "application_errors_total",
    "Unexpected exceptions turned into 500 responses or failed background work.",
    ["service", "kind"],
)
CACHE_HITS = Counter("cache_hits_total", "Read-cache hits.", ["service", "cache"])
CACHE_MISSES = Counter("cache_misses_total", "Read-cache misses.", ["service", "cache"])
EVENTS_PUBLISHED = Counter(
    "events_published_total", "Events confirmed by the broker.", ["service", "type"]
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events handled by consumers, by outcome (processed, duplicate, retried, dead_lettered).",
    ["service", "consumer", "outcome"],
)
OUTBOX_LAG = Gauge(
    "outbox_lag_seconds",
    "Age of the oldest event waiting in the outbox.",
    ["service"],
    multiprocess_mode="livemax",
)
OUTBOX_PENDING = Gauge(
    "outbox_pending_events",
    "Events waiting in the outbox.",
    ["service"],
    multiprocess_mode="livemax",
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render_metrics() -> bytes:
    """Exposition text of this process, or of all worker processes in multiprocess mode."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def metrics_handler(request: web.Request) -> web.Response:
    body = render_metrics()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
