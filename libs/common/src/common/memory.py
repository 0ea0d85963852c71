"""Memory leak detection for every worker process: RSS sampled on an interval, growth judged over
a window, and Python's top allocations (``tracemalloc``) to say where it grows.

A leak is *sustained* growth, not a spike. Over the last ``window`` samples both must hold:

- the least-squares slope of RSS over time is above ``slope_bytes_per_hour``;
- the window, cut into four equal runs of samples, has strictly increasing medians: growth in
  every quarter, so one allocation burst that stays (a step) or comes back (a spike) does not
  count, while a steady climb with noise does.

When both hold the detector warns once (a log line, ``memory_leak_warnings_total``) and sets
``memory_leak_suspected`` until growth stops. ``tracemalloc`` slows every allocation, so by default
it starts only once a leak is suspected (``CLOUDOPS_MEMORY_TRACEMALLOC=on_suspicion``); from then
on the report lists the allocation sites that grew most since tracing began. ``always`` traces
from the start, ``off`` never.

Each service's own ``GET /health/memory`` (on its port; nginx never serves ``/health``) returns
:meth:`MemoryLeakDetector.report`; the gateway's ``/api/performance/memory`` gathers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import resource
import statistics
import time
import tracemalloc
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from loguru import logger
from prometheus_client import Counter, Gauge
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MEMORY_LEAK_SUSPECTED = Gauge(
    "memory_leak_suspected",
    "1 while a worker's resident memory grows steadily over the detector's window, else 0.",
    ["service"],
    multiprocess_mode="livemax",
)
MEMORY_GROWTH = Gauge(
    "memory_growth_bytes_per_hour",
    "Least-squares slope of a worker's resident memory over the detector's window.",
    ["service"],
    multiprocess_mode="livemax",
)
MEMORY_LEAK_WARNINGS = Counter(
    "memory_leak_warnings_total",
    "Times a worker's memory started growing steadily (one per episode).",
    ["service"],
)

MIB = 1024 * 1024
_PAGE = resource.getpagesize()
MEMORY_PATH = "/health/memory"


class MemorySettings(BaseSettings):
    """``CLOUDOPS_MEMORY_*``: the same for every service."""

    model_config = SettingsConfigDict(env_prefix="CLOUDOPS_MEMORY_", extra="ignore")

    interval_seconds: float = Field(default=60.0, gt=0)
    #: Samples judged together: 30 one-minute samples are a half-hour window.
    window: int = Field(default=30, ge=8)
    slope_bytes_per_hour: float = Field(default=32 * MIB, gt=0)
    tracemalloc: Literal["off", "on_suspicion", "always"] = "on_suspicion"
    top_allocations: int = Field(default=10, ge=1, le=100)


def read_rss() -> int:
    """This process's resident memory now (not the peak), from ``/proc/self/statm``."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


@dataclass(frozen=True, slots=True)
class Verdict:
    leaking: bool
    slope_bytes_per_hour: float | None
    quarter_medians: list[int]
    samples: int


def judge(points: list[tuple[float, int]], window: int, slope_threshold: float) -> Verdict:
    """Whether the last ``window`` (time, rss) points show sustained growth (see module doc)."""
    recent = points[-window:]
    if len(recent) < window:
        return Verdict(False, None, [], len(recent))
    xs = [t for t, _ in recent]
    ys = [float(v) for _, v in recent]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var_x = sum((x - mean_x) ** 2 for x in xs)
    slope = (
        sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var_x * 3600
        if var_x
        else 0.0
    )
    quarter = len(recent) // 4
    medians = [
        int(statistics.median(v for _, v in recent[i * quarter : (i + 1) * quarter]))
        for i in range(4)
    ]
    rising = all(a < b for a, b in itertools.pairwise(medians))
    return Verdict(slope > slope_threshold and rising, slope, medians, len(recent))


class MemoryLeakDetector:
    """Samples one process. :meth:`sample` is the hook (the timer calls it; tests call it with a
    clock and an RSS reader of their own)."""

    def __init__(
        self,
        service: str,
        settings: MemorySettings | None = None,
        *,
        rss: Callable[[], int] = read_rss,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.settings = settings or MemorySettings()
        self._rss = rss
        self._clock = clock
        self._points: deque[tuple[float, int]] = deque(maxlen=self.settings.window)
        self._started = clock()
        self.suspected = False
        self.suspected_since: float | None = None
        self.warnings = 0
        self._baseline: tracemalloc.Snapshot | None = None
        self._suspected_gauge = MEMORY_LEAK_SUSPECTED.labels(service)
        self._growth_gauge = MEMORY_GROWTH.labels(service)
        self._warnings_counter = MEMORY_LEAK_WARNINGS.labels(service)
        self._suspected_gauge.set(0)
        self._growth_gauge.set(0)
        if self.settings.tracemalloc == "always":
            self._start_tracing()

    def _start_tracing(self) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(1)
        self._baseline = tracemalloc.take_snapshot()

    def sample(self) -> Verdict:
        """Take one sample and judge the window; warns when a growth episode starts."""
        self._points.append((self._clock(), self._rss()))
        verdict = judge(
            list(self._points), self.settings.window, self.settings.slope_bytes_per_hour
        )
        self._growth_gauge.set(verdict.slope_bytes_per_hour or 0.0)
        if verdict.leaking and not self.suspected:
            self.suspected, self.suspected_since = True, self._clock()
            self.warnings += 1
            self._warnings_counter.inc()
            self._suspected_gauge.set(1)
            logger.warning(
                "memory growing steadily",
                rss_bytes=self._points[-1][1],
                growth_bytes_per_hour=round(verdict.slope_bytes_per_hour or 0.0),
                window_seconds=round(self._points[-1][0] - self._points[0][0], 1),
            )
            if self.settings.tracemalloc == "on_suspicion" and self._baseline is None:
                self._start_tracing()
        elif not verdict.leaking and self.suspected:
            self.suspected, self.suspected_since = False, None
            self._suspected_gauge.set(0)
            logger.info("memory growth stopped", rss_bytes=self._points[-1][1])
        return verdict

    def top_allocations(self) -> list[dict[str, Any]]:
        """Allocation sites (file:line) that grew most since tracing began, largest first."""
        if self._baseline is None or not tracemalloc.is_tracing():
            return []
        diff = tracemalloc.take_snapshot().compare_to(self._baseline, "lineno")
        return [
            {
                "site": f"{s.traceback[0].filename}:{s.traceback[0].lineno}",
                "size_bytes": s.size,
                "growth_bytes": s.size_diff,
                "count": s.count,
            }
            for s in diff[: self.settings.top_allocations]
            if s.size_diff > 0
        ]

    def report(self) -> dict[str, Any]:
        verdict = judge(
            list(self._points), self.settings.window, self.settings.slope_bytes_per_hour
        )
        now = self._clock()
        return {
            "service": self.service,
            "pid": os.getpid(),
            "rss_bytes": self._points[-1][1] if self._points else None,
            "samples": [
                {"age_seconds": round(now - t, 1), "rss_bytes": v} for t, v in self._points
            ],
            "window": self.settings.window,
            "interval_seconds": self.settings.interval_seconds,
            "slope_threshold_bytes_per_hour": self.settings.slope_bytes_per_hour,
            "growth_bytes_per_hour": (
                None
                if verdict.slope_bytes_per_hour is None
                else round(verdict.slope_bytes_per_hour)
            ),
            "leak_suspected": self.suspected,
            "warnings": self.warnings,
            "tracemalloc": tracemalloc.is_tracing(),
            "top_allocations": self.top_allocations(),
            # The cycle collector: its thresholds and how often each generation ran so far.
            "gc": {
                "thresholds": list(gc.get_threshold()),
                "collections": [g["collections"] for g in gc.get_stats()],
                "frozen_objects": gc.get_freeze_count(),
            },
        }

    async def run(self) -> None:
        """Sample every ``interval_seconds`` until cancelled; a failed sample is skipped."""
        while True:
            try:
                self.sample()
            except OSError as exc:
                logger.warning("memory sample failed", error=type(exc).__name__)
            await asyncio.sleep(self.settings.interval_seconds)


MEMORY_DETECTOR = web.AppKey("memory_detector", MemoryLeakDetector)


async def memory_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start this worker's detector with the application, stop it with it."""
    from common.web import SETTINGS

    detector = MemoryLeakDetector(app[SETTINGS].service_name)
    app[MEMORY_DETECTOR] = detector
    task = asyncio.create_task(detector.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def memory_handler(request: web.Request) -> web.Response:
    """This worker's detector report (the service's own port; the gateway gathers them)."""
    from common.web import json_response

    detector = request.config_dict.get(MEMORY_DETECTOR)
    if detector is None:
        raise web.HTTPServiceUnavailable(reason="The memory detector is not running.")
    return json_response(detector.report())
