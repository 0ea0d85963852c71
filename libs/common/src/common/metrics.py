"""Prometheus metrics shared by every service, and the ``/metrics`` endpoint.

Works with several worker processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set *before* this module
is first imported (``common.serve`` does that), values live in per-process files and ``/metrics``
aggregates them with ``MultiProcessCollector``.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# No ``*_created`` series: multiprocess mode has none, and both modes export the same catalogue.
disable_created_metrics()  # type: ignore[no-untyped-call]

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


def _boot_time() -> float:
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0


class WorkerProcessCollector(Collector):
    """``process_*`` memory, CPU, file descriptors and start time of each worker, by ``pid``.

    prometheus_client's own process collector sees only the process that answers the scrape, and
    multiprocess mode leaves it out altogether. This one reads ``/proc/<pid>`` of every live
    worker at scrape time, so each series is current and a dead worker's disappears with it.
    Values are per process (never summed): a leak shows as one pid's growing line.
    """

    def __init__(self, pids: Callable[[], Iterable[int]]) -> None:
        self._pids = pids
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._page = resource.getpagesize()
        self._boot = _boot_time()

    def collect(self) -> Iterable[Metric]:
        rss = GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory of the worker.", labels=["pid"]
        )
        cpu = CounterMetricFamily(
            "process_cpu_seconds_total", "User and system CPU time of the worker.", labels=["pid"]
        )
        fds = GaugeMetricFamily(
            "process_open_fds", "Open file descriptors of the worker.", labels=["pid"]
        )
        started = GaugeMetricFamily(
            "process_start_time_seconds", "Start time of the worker (Unix time).", labels=["pid"]
        )
        for pid in sorted(set(self._pids())):
            try:
                with open(f"/proc/{pid}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[-1].split()
                open_fds = len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:  # the worker has just exited
                continue
            label = [str(pid)]
            # Fields after "(comm)": utime 11, stime 12, starttime 19, rss 21 (0-based).
            rss.add_metric(label, float(fields[21]) * self._page)
            cpu.add_metric(label, (float(fields[11]) + float(fields[12])) / self._ticks)
            fds.add_metric(label, float(open_fds))
            started.add_metric(label, float(fields[19]) / self._ticks + self._boot)
        return [family for family in (rss, cpu, fds, started) if family.samples]


def live_worker_pids() -> list[int]:
    """This process or, in multiprocess mode, every worker with live-gauge files.

    Each worker writes ``active_connections`` (a live gauge) as soon as its app is built, and the
    server deletes a dead worker's live-gauge files (``mark_process_dead``).
    """
    directory = multiprocess_dir()
    if not directory:
        return [os.getpid()]
    stems = (path.stem.rsplit("_", 1)[-1] for path in Path(directory).glob("gauge_live*_*.db"))
    return sorted({int(pid) for pid in stems if pid.isdigit()})


#: A service's own collectors (values computed at scrape time), rendered in both modes.
_SERVICE_COLLECTORS: list[Collector] = []


def register_collector(collector: Collector) -> None:
    """Export ``collector`` from this process's ``/metrics`` (multiprocess mode included)."""
    REGISTRY.register(collector)
    _SERVICE_COLLECTORS.append(collector)


ScrapeHook = Callable[[], Awaitable[None]]
#: Coroutines ``/metrics`` awaits before rendering, e.g. to refresh a stale cached aggregate.
SCRAPE_HOOKS: web.AppKey[list[ScrapeHook]] = web.AppKey("scrape_hooks")


# The same process metrics in single- and multi-process mode: per worker, with a pid label.
# The interpreter's GC and platform collectors go too, so both modes export the same catalogue.
for _default in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.unregister(_default)
WORKER_PROCESSES = WorkerProcessCollector(live_worker_pids)
REGISTRY.register(WORKER_PROCESSES)


def render_metrics() -> bytes:
    """Exposition text of this process, or of all worker processes in multiprocess mode."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(WORKER_PROCESSES)
        for collector in _SERVICE_COLLECTORS:
            registry.register(collector)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def metrics_handler(request: web.Request) -> web.Response:
    for hook in request.config_dict.get(SCRAPE_HOOKS, ()):
        await hook()
    body = render_metrics()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
