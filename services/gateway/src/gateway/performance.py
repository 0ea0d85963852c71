"""Per-route latency statistics and the performance endpoints (stats, deep health, bounded load
test against this deployment's own services, garbage collection, memory leak detection, and
scaling advice from the platform's request-rate history)."""

from __future__ import annotations

import asyncio
import functools
import gc
import math
import resource
import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.costtracker import RATE_KEY
from common.errors import ProblemError
from common.memory import MEMORY_DETECTOR, MEMORY_PATH
from common.redis import REDIS
from common.web import (
    READINESS,
    Handler,
    json_response,
    parse_query,
    read_json,
    route_template,
)
from gateway.principal import PRINCIPAL, Permission
from gateway.proxy import UPSTREAMS, Upstream
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


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RouteLatency(_Answer):
    """One (method, route template) of this process: calls, error rates, latency percentiles."""

    method: str
    route: str
    count: int
    error_rate: float
    client_error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class RouteStatsReport(_Answer):
    routes: list[RouteLatency]


class UpstreamHealth(_Answer):
    #: ``ok`` or ``down: <why>``.
    status: str
    breaker: Literal["closed", "open", "half_open"]


class HealthChecks(_Answer):
    #: This gateway's own dependencies, each ``ok`` or ``down: <why>``.
    dependencies: dict[str, str]
    upstreams: dict[str, UpstreamHealth]


class DeepHealth(_Answer):
    """Answered with 200 when every check is ``ok``, with 503 (and Retry-After) when degraded."""

    status: Literal["ok", "degraded"]
    checks: HealthChecks


class LoadTestResult(_Answer):
    target: str
    requests: int
    concurrency: int
    failures: int
    seconds: float
    requests_per_second: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class GcResult(_Answer):
    collected: int
    counts: list[int]
    max_rss_kb: int


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
    return json_response(RouteStatsReport.model_validate({"routes": report}))


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
    checks = HealthChecks(
        dependencies=own,
        upstreams={
            u.name: UpstreamHealth.model_validate(
                {"status": status, "breaker": u.breaker.state.name.lower()}
            )
            for u, status in zip(upstreams.values(), remote, strict=True)
        },
    )
    healthy = all(v == "ok" for v in own.values()) and all(s == "ok" for s in remote)
    return json_response(
        DeepHealth(status="ok" if healthy else "degraded", checks=checks),
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
        LoadTestResult(
            target=body.target.value,
            requests=len(durations),
            concurrency=concurrency,
            failures=failures,
            seconds=round(elapsed, 3),
            requests_per_second=round(len(durations) / elapsed, 1) if elapsed else None,
            **percentiles_ms(durations),
        )
    )


async def gc_handler(request: web.Request) -> web.Response:
    collected = gc.collect()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return json_response(
        GcResult(collected=collected, counts=list(gc.get_count()), max_rss_kb=usage.ru_maxrss)
    )


# --- memory ---------------------------------------------------------------------------------------


class MemorySample(BaseModel):
    age_seconds: float
    rss_bytes: int


class Allocation(BaseModel):
    site: str = Field(description="file:line of the allocation")
    size_bytes: int
    growth_bytes: int = Field(description="Growth since tracing began")
    count: int


class ProcessMemory(BaseModel):
    """One worker's :class:`common.memory.MemoryLeakDetector` report."""

    service: str
    pid: int
    rss_bytes: int | None
    samples: list[MemorySample]
    window: int
    interval_seconds: float
    slope_threshold_bytes_per_hour: float
    growth_bytes_per_hour: int | None
    leak_suspected: bool
    warnings: int
    tracemalloc: bool
    top_allocations: list[Allocation]


class ServiceMemory(BaseModel):
    status: str = Field(description="ok, or why the service's report could not be had")
    report: ProcessMemory | None = None


class MemoryReport(BaseModel):
    gateway: ProcessMemory
    services: dict[str, ServiceMemory] = Field(
        description="One worker of each service behind the gateway (whichever answered)"
    )


async def _service_memory(upstream: Upstream) -> dict[str, Any]:
    try:
        async with (
            asyncio.timeout(2.0),
            upstream.session.get(f"{upstream.base_url}{MEMORY_PATH}") as response,
        ):
            if response.status != 200:
                return {"status": f"down: HTTP {response.status}", "report": None}
            report = ProcessMemory.model_validate((await response.json())["data"])
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
        # ValidationError is a ValueError: whatever answered is not a memory report.
        return {"status": f"down: {type(exc).__name__}", "report": None}
    return {"status": "ok", "report": report.model_dump()}


async def memory_handler(request: web.Request) -> web.Response:
    """This gateway worker's leak detector and, asked at once, one worker of each service's."""
    upstreams = request.app[UPSTREAMS]
    reports = await asyncio.gather(*(_service_memory(u) for u in upstreams.values()))
    return json_response(
        {
            "gateway": request.app[MEMORY_DETECTOR].report(),
            "services": dict(zip(upstreams, reports, strict=True)),
        }
    )


# --- scaling advice -------------------------------------------------------------------------------

SERVICES = ("gateway", "resources", "costs", "alerts")


class ScalingSettings(BaseSettings):
    """``CLOUDOPS_SCALING_*``: what one replica can take and what it costs.

    Capacities are requests per second one replica (one pod, 1 CPU limit) takes: the gateway's
    from ``bench.gateway_bench`` (1,071 to 1,137 req/s through the full middleware chain, on a
    2-core machine shared with the load generator). The others are conservative estimates for a
    mix of reads and writes: one resources process serves about 15,000 cached
    ``GET /api/resources?limit=20`` a second in ``bench.resources_bench``, far fewer uncached
    lists and writes; costs' reports and alerts' ingest do more per request.
    """

    model_config = SettingsConfigDict(env_prefix="CLOUDOPS_SCALING_", extra="ignore")

    capacity_rps: dict[str, float] = {
        "gateway": 1100.0, "resources": 1600.0, "costs": 400.0, "alerts": 700.0,
    }  # fmt: skip
    #: Spare capacity kept above the forecast peak (0.3: plan for 130 %).
    headroom: float = Field(default=0.3, ge=0)
    #: The HPAs' bounds (k8s/*.yaml): 2 to 10 replicas.
    min_replicas: int = Field(default=2, ge=1)
    max_replicas: int = Field(default=10, ge=1)
    #: Replicas running now per service; unset, ``min_replicas``.
    current_replicas: dict[str, int] = {}
    #: One replica-hour: the pod's request (0.25 vCPU, 256 MiB) at AWS Fargate's prices
    #: ($0.04048 per vCPU-hour, $0.004445 per GB-hour).
    replica_hourly_price: Decimal = Decimal("0.0112")
    history_days: int = Field(default=7, ge=1, le=30)


class ScalingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hours: int = Field(default=6, ge=1, le=24, description="Hours ahead to forecast")


class HourAdvice(BaseModel):
    hour: datetime
    expected_rps: float = Field(description="Forecast mean request rate")
    expected_peak_rps: float = Field(description="Forecast busiest minute, per second")
    replicas: int


class ServiceScaling(BaseModel):
    service: str
    capacity_rps: float
    history_hours: int = Field(description="Hours of request-rate history the forecast used")
    current_replicas: int
    recommended_replicas: int = Field(description="For the busiest forecast hour")
    hours: list[HourAdvice]
    hourly_cost_now: Decimal
    hourly_cost_recommended: Decimal
    cost_change_over_horizon: Decimal = Field(
        description="Following the hourly advice instead of the current replicas (USD)"
    )


class ScalingAdvice(BaseModel):
    generated_at: datetime
    horizon_hours: int
    method: str
    currency: str
    replica_hourly_price: Decimal
    headroom: float
    services: list[ServiceScaling]


#: Per service, minute (Unix time // 60) -> requests: the history kept by common.costtracker.
RateHistory = dict[str, dict[int, int]]


def _hour_rates(minutes: dict[int, int], hour: int) -> tuple[float, float]:
    """(mean rps, busiest-minute rps) of ``hour`` (Unix time // 3600); a missing minute is 0."""
    counts = [minutes.get(hour * 60 + m, 0) for m in range(60)]
    return sum(counts) / 3600, max(counts) / 60


def _forecast(minutes: dict[int, int], hour: int, days: int) -> tuple[float, float]:
    """(mean rps, busiest-minute rps) expected in ``hour``: the same hour of each of the past
    ``days`` days the history covers, averaged (an hour without requests counts as 0); with
    less than a day of history, the last hour seen."""
    if not minutes:
        return 0.0, 0.0
    earliest = min(minutes) // 60
    past = [_hour_rates(minutes, hour - 24 * back) for back in range(1, days + 1)
            if hour - 24 * back >= earliest]  # fmt: skip
    if not past:
        return _hour_rates(minutes, max(minutes) // 60)
    return statistics.fmean(m for m, _ in past), statistics.fmean(p for _, p in past)


def advise(
    history: RateHistory, now: datetime, hours: int, settings: ScalingSettings
) -> dict[str, Any]:
    """Replicas per service for each of the next ``hours`` hours, with the cost of following it."""
    first = int(now.timestamp()) // 3600 + 1
    price = settings.replica_hourly_price
    out = []
    for service in SERVICES:
        minutes = history.get(service, {})
        capacity = settings.capacity_rps.get(service, 0.0) or 1.0
        current = settings.current_replicas.get(service, settings.min_replicas)
        advice: list[dict[str, Any]] = []
        replicas_by_hour: list[int] = []
        for hour in range(first, first + hours):
            mean, peak = _forecast(minutes, hour, settings.history_days)
            wanted = math.ceil(round(peak * (1 + settings.headroom) / capacity, 6))
            replicas = min(max(wanted, settings.min_replicas), settings.max_replicas)
            replicas_by_hour.append(replicas)
            advice.append({
                "hour": datetime.fromtimestamp(hour * 3600, UTC),
                "expected_rps": round(mean, 3),
                "expected_peak_rps": round(peak, 3),
                "replicas": replicas,
            })  # fmt: skip
        recommended = max(replicas_by_hour)
        out.append({
            "service": service,
            "capacity_rps": capacity,
            "history_hours": len({minute // 60 for minute in minutes}),
            "current_replicas": current,
            "recommended_replicas": recommended,
            "hours": advice,
            "hourly_cost_now": current * price,
            "hourly_cost_recommended": recommended * price,
            "cost_change_over_horizon": sum((n - current) * price for n in replicas_by_hour),
        })  # fmt: skip
    return {
        "generated_at": now,
        "horizon_hours": hours,
        "method": "seasonal: the same hour of each past day, busiest minute, plus headroom",
        "currency": "USD",
        "replica_hourly_price": price,
        "headroom": settings.headroom,
        "services": out,
    }


async def rate_history(redis: Redis, prefix: str, now: datetime, days: int) -> RateHistory:
    """The per-minute request counts of every service for the past ``days`` days."""
    last = int(now.timestamp()) // 3600
    hours = range(last - 24 * days, last + 1)
    async with redis.pipeline(transaction=False) as pipe:
        for service in SERVICES:
            for hour in hours:
                pipe.hgetall(f"{prefix}{RATE_KEY}:{service}:{hour}")
        replies = await pipe.execute()
    history: RateHistory = {}
    for i, service in enumerate(SERVICES):
        minutes = history.setdefault(service, {})
        for reply in replies[i * len(hours) : (i + 1) * len(hours)]:
            minutes.update({int(k): int(v) for k, v in reply.items()})
    return history


@functools.cache
def scaling_settings() -> ScalingSettings:
    """Read from the environment once per process."""
    return ScalingSettings()


async def scaling_handler(request: web.Request) -> web.Response:
    """Forecast request rates and the replicas that serve them, from the platform's history."""
    query = parse_query(request, ScalingQuery)
    settings = scaling_settings()
    now = datetime.now(UTC)
    gateway = request.app[GATEWAY_SETTINGS]
    try:
        history = await rate_history(
            request.app[REDIS], gateway.redis_prefix, now, settings.history_days
        )
    except (RedisError, OSError) as exc:
        raise ProblemError(
            "The request-rate history is unavailable (Redis). Try again shortly.",
            status=503,
            slug="service-unavailable",
            headers={"Retry-After": "5"},
        ) from exc
    return json_response(advise(history, now, query.hours, settings))
