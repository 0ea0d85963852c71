"""Per-route latency statistics and the performance endpoints (stats, deep health, bounded load
test against this deployment's own services, garbage collection)."""

from __future__ import annotations

import asyncio
import gc
import resource
import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from common.errors import ProblemError
from common.web import READINESS, Handler, json_response, read_json, route_template
from gateway.principal import PRINCIPAL, Permission
from gateway.proxy import UPSTREAMS
from gateway.routes import ROUTES
from gateway.settings import GATEWAY_SETTINGS

SAMPLES_PER_ROUTE = 2048


@dataclass
class RouteStats:
    count: int = 0
    server_errors: int = 0
    client_errors: int = 0
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES_PER_ROUTE))

    def add(self, status: int, seconds: float) -> None:
        self.count += 1
        self.server_errors += status >= 500
        self.client_errors += 400 <= status < 500
        self.durations.append(seconds)


def percentiles_ms(samples: Sequence[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    if len(samples) == 1:
        only = round(samples[0] * 1000, 3)
        return {"p50_ms": only, "p95_ms": only, "p99_ms": only}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 3),
        "p95_ms": round(cuts[94] * 1000, 3),
        "p99_ms": round(cuts[98] * 1000, 3),
    }


class PerformanceStats(dict[tuple[str, str], RouteStats]):
    """(method, route template) -> its statistics, in this process since start."""

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        stats = self.get(key)
        if stats is None:
            stats = self[key] = RouteStats()
        stats.add(status, seconds)

    def report(self) -> list[dict[str, Any]]:
        return [
            {
                "method": method,
                "route": route,
                "count": s.count,
                "error_rate": round(s.server_errors / s.count, 4),
                "client_error_rate": round(s.client_errors / s.count, 4),
                **percentiles_ms(list(s.durations)),
            }
            for (method, route), s in sorted(self.items())
        ]


STATS = web.AppKey("performance_stats", PerformanceStats)


@web.middleware
async def stats_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except ProblemError as exc:
        status = exc.status
        raise
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        request.app[STATS].record(
            request.method, route_template(request), status, time.perf_counter() - started
        )


def _visible_routes(request: web.Request) -> set[tuple[str, str]] | None:
    """The (method, route) rows the caller may see: None for all (admin), otherwise the routes
    it may call itself. Admin routes, unmatched paths and operator routes are admin-only: which
    admin calls were made, and how often, is not a reader's business."""
    principal = request[PRINCIPAL]
    if principal.may(Permission.ADMIN):
        return None
    return {
        (route.method, route.resource.canonical)
        for route, spec in request.app[ROUTES].items()
        if route.resource is not None
        and (spec.permission is None or principal.may(spec.permission))
        and not spec.admin_network
    }


async def stats_handler(request: web.Request) -> web.Response:
    """Per-route statistics of this process, scoped to the routes the caller may call."""
    report = request.app[STATS].report()
    visible = _visible_routes(request)
    if visible is not None:
        report = [r for r in report if (r["method"], r["route"]) in visible]
    return json_response({"routes": report})


async def _upstream_health(session: aiohttp.ClientSession, url: str) -> str:
    try:
        async with asyncio.timeout(2.0), session.get(f"{url}/health/ready") as response:
            return "ok" if response.status == 200 else f"down: HTTP {response.status}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"down: {type(exc).__name__}"


async def health_handler(request: web.Request) -> web.Response:
    """Deep health: this gateway's own dependencies, then every upstream and its breaker."""
    upstreams = request.app[UPSTREAMS]
    own, remote = await asyncio.gather(
        request.app[READINESS].run(),
        asyncio.gather(*(_upstream_health(u.session, u.base_url) for u in upstreams.values())),
    )
    checks = {
        "dependencies": own,
        "upstreams": {
            u.name: {"status": status, "breaker": u.breaker.state.name.lower()}
            for u, status in zip(upstreams.values(), remote, strict=True)
        },
    }
    healthy = all(v == "ok" for v in own.values()) and all(s == "ok" for s in remote)
    return json_response(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status=200 if healthy else 503,
        headers=None if healthy else {"Retry-After": "5"},
    )


class LoadTarget(StrEnum):
    """Only this deployment's own liveness endpoints: never a caller-supplied URL."""

    RESOURCES = "resources"
    COSTS = "costs"
    ALERTS = "alerts"


class LoadTestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: LoadTarget
    requests: int = Field(default=100, ge=1)
    concurrency: int = Field(default=10, ge=1)


LOADTEST_SECONDS = 30.0


async def loadtest_handler(request: web.Request) -> web.Response:
    settings = request.app[GATEWAY_SETTINGS]
    body = await read_json(request, LoadTestRequest)
    total = min(body.requests, settings.loadtest_max_requests)
    concurrency = min(body.concurrency, settings.loadtest_max_concurrency, total)
    upstream = request.app[UPSTREAMS][body.target.value]
    url = f"{upstream.base_url}/health/live"
    durations: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            queue.get_nowait()
            started = time.perf_counter()
            try:
                async with upstream.session.get(url) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            durations.append(time.perf_counter() - started)
            failures += not ok

    started = time.perf_counter()
    try:
        async with asyncio.timeout(LOADTEST_SECONDS):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    except TimeoutError:
        pass  # bounded in time as well as count: report what was done
    elapsed = time.perf_counter() - started
    return json_response(
        {
            "target": body.target.value,
            "requests": len(durations),
            "concurrency": concurrency,
            "failures": failures,
            "seconds": round(elapsed, 3),
            "requests_per_second": round(len(durations) / elapsed, 1) if elapsed else None,
            **percentiles_ms(durations),
        }
    )


async def gc_handler(request: web.Request) -> web.Response:
    collected = gc.collect()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return json_response(
        {"collected": collected, "counts": list(gc.get_count()), "max_rss_kb": usage.ru_maxrss}
    )
