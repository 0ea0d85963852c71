"""The platform's own running cost, measured in every service: who used which route, how much.

The request frame (``common.web.RequestFrame``, in every service) records each request's
principal, route template, wall time and response bytes in this worker's :class:`UsageMeter`.

CPU is not timed per request: ``process_time()`` across an ``await`` would also count every other
task the event loop ran meanwhile. Instead, once a second the meter reads the process's CPU time
used since the last reading and shares it among that second's requests in proportion to their
wall time within the interval (a stream open for an hour weighs one interval's worth, not an
hour's). CPU of a second without requests (timers, consumers) is charged to nobody.

Each request costs ``per_request`` (the base price) + its CPU share x ``compute_per_cpu_second`` +
its bytes x ``network_per_gb``. Every ``flush_seconds`` the meter pushes its totals per (day,
principal, route) to a Redis list that the costs service drains into PostgreSQL (its
``platform_usage`` table, the ledger of ``GET /api/costs/platform``), and adds its per-minute
request counts to the platform's request-rate history (``{prefix}platform:rate:<service>:<hour>``
hashes of minute -> requests, kept ``rate_retention_days``) that scaling advice reads. If Redis is
unreachable the totals stay in memory and go with the next flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web
from loguru import logger
from prometheus_client import Counter
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis
from redis.exceptions import RedisError

PLATFORM_COST = Counter(
    "platform_cost_usd_total",
    "Estimated cost of serving requests, from configured unit prices (USD).",
    ["service", "component"],
)
GB = Decimal(1024**3)
#: Batches of usage rows waiting for the costs service, bounded (oldest dropped beyond it).
USAGE_LIST = "platform:usage"
USAGE_LIST_MAX = 100_000
RATE_KEY = "platform:rate"
#: Minutes of request counts kept in memory while Redis is unreachable (one day).
MAX_PENDING_MINUTES = 1440


def _price(name: str) -> AliasChoices:
    # CLOUDOPS_COSTS_PLATFORM_* were the costs service's own names for the unit prices.
    return AliasChoices(
        f"CLOUDOPS_PLATFORM_{name.upper()}", f"CLOUDOPS_COSTS_PLATFORM_{name.upper()}"
    )


class PlatformPrices(BaseSettings):
    """``CLOUDOPS_PLATFORM_*``: unit prices and flushing, the same in every service."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    #: A vCPU-second of general-purpose compute (AWS Fargate's $0.04048 per vCPU-hour / 3600).
    compute_per_cpu_second: Decimal = Field(
        default=Decimal("0.0000133"), validation_alias=_price("compute_per_cpu_second")
    )
    #: Data out to the internet, first tier.
    network_per_gb: Decimal = Field(
        default=Decimal("0.09"), validation_alias=_price("network_per_gb")
    )
    storage_per_gb_month: Decimal = Field(
        default=Decimal("0.115"), validation_alias=_price("storage_per_gb_month")
    )
    #: The base price of one request ($0.20 per million, as a serverless request is billed).
    per_request: Decimal = Field(
        default=Decimal("0.0000002"), validation_alias=_price("per_request")
    )
    flush_seconds: float = Field(
        default=5.0, gt=0, validation_alias=AliasChoices("CLOUDOPS_PLATFORM_FLUSH_SECONDS")
    )
    rate_retention_days: int = Field(
        default=8, ge=1, validation_alias=AliasChoices("CLOUDOPS_PLATFORM_RATE_RETENTION_DAYS")
    )


def request_cost(prices: PlatformPrices, requests: int, cpu: Decimal, nbytes: int) -> Decimal:
    return (
        requests * prices.per_request
        + cpu * prices.compute_per_cpu_second
        + Decimal(nbytes) / GB * prices.network_per_gb
    )


class UsageMeter:
    """One worker's usage: the current CPU interval, and totals waiting to be flushed."""

    def __init__(
        self,
        service: str,
        prices: PlatformPrices | None = None,
        *,
        cpu: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.prices = prices or PlatformPrices()
        self._cpu = cpu
        self._clock = clock
        self._cpu_mark = cpu()
        # (principal, route) -> [requests, wall seconds, bytes, weight] since the last CPU
        # reading; the weight is the wall time within the interval
        self._interval: dict[tuple[str, str], list[Any]] = {}
        self._interval_started = clock()
        # (day, principal, route) -> [requests, cpu seconds, wall seconds, bytes]
        self.pending: dict[tuple[str, str, str], list[Any]] = {}
        # minute (Unix time // 60) -> requests
        self.minutes: dict[int, int] = {}
        self._compute = PLATFORM_COST.labels(service, "compute")
        self._network = PLATFORM_COST.labels(service, "network")
        self._base = PLATFORM_COST.labels(service, "requests")

    def record(self, principal: str, route: str, wall: float, nbytes: int) -> None:
        entry = self._interval.get((principal, route))
        if entry is None:
            entry = self._interval[(principal, route)] = [0, 0.0, 0, 0.0]
        now = self._clock()
        entry[0] += 1
        entry[1] += wall
        entry[2] += nbytes
        entry[3] += min(wall, max(now - self._interval_started, 0.0))
        minute = int(now // 60)
        self.minutes[minute] = self.minutes.get(minute, 0) + 1

    def close_interval(self) -> float:
        """Share the process CPU used since the last call among the requests recorded since;
        returns the CPU seconds shared (0 when there were no requests)."""
        now = self._cpu()
        used, self._cpu_mark = max(now - self._cpu_mark, 0.0), now
        interval, self._interval = self._interval, {}
        self._interval_started = self._clock()
        if not interval:
            return 0.0
        total_weight = sum(e[3] for e in interval.values())
        total_requests = sum(e[0] for e in interval.values())
        day = datetime.fromtimestamp(self._interval_started, UTC).date().isoformat()
        for (principal, route), (n, wall, nbytes, weight) in interval.items():
            share = weight / total_weight if total_weight > 0 else n / total_requests
            row = self.pending.get((day, principal, route))
            if row is None:
                row = self.pending[(day, principal, route)] = [0, Decimal(0), Decimal(0), 0]
            row[0] += n
            row[1] += Decimal(repr(used * share))
            row[2] += Decimal(repr(wall))
            row[3] += nbytes
        # The counters move once per interval, not per request: cheaper on the hot path.
        self._compute.inc(used * float(self.prices.compute_per_cpu_second))
        self._base.inc(total_requests * float(self.prices.per_request))
        total_bytes = sum(e[2] for e in interval.values())
        self._network.inc(total_bytes / 1024**3 * float(self.prices.network_per_gb))
        return used

    async def flush(self, redis: Redis, prefix: str) -> None:
        """Push the totals and minute counts to Redis; on failure they stay for the next flush."""
        self.close_interval()
        pending, self.pending = self.pending, {}
        minutes, self.minutes = self.minutes, {}
        if not pending and not minutes:
            return
        retention = self.prices.rate_retention_days * 86400
        try:
            async with redis.pipeline(transaction=False) as pipe:
                if pending:
                    rows = [
                        [day, who, route, n, str(cpu), str(wall), nbytes]
                        for (day, who, route), (n, cpu, wall, nbytes) in pending.items()
                    ]
                    pipe.rpush(f"{prefix}{USAGE_LIST}", orjson.dumps(
                        {"service": self.service, "rows": rows}
                    ))  # fmt: skip
                    pipe.ltrim(f"{prefix}{USAGE_LIST}", -USAGE_LIST_MAX, -1)
                for minute, count in minutes.items():
                    key = f"{prefix}{RATE_KEY}:{self.service}:{minute // 60}"
                    pipe.hincrby(key, str(minute), count)
                    pipe.expire(key, retention)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning("platform usage flush failed", error=type(exc).__name__)
            self._merge_back(pending, minutes)

    def _merge_back(
        self, pending: dict[tuple[str, str, str], list[Any]], minutes: dict[int, int]
    ) -> None:
        for key, row in pending.items():
            mine = self.pending.setdefault(key, [0, Decimal(0), Decimal(0), 0])
            for i, value in enumerate(row):
                mine[i] += value
        for minute, count in minutes.items():
            self.minutes[minute] = self.minutes.get(minute, 0) + count
        for minute in sorted(self.minutes)[:-MAX_PENDING_MINUTES]:
            del self.minutes[minute]


PrincipalOf = Callable[[web.Request], str | None]
USAGE_METER = web.AppKey("usage_meter", UsageMeter)
USAGE_REDIS = web.AppKey("usage_redis", Redis)
#: How a service names the caller; by default the identity header the gateway (or nginx) set.
USAGE_PRINCIPAL: web.AppKey[PrincipalOf] = web.AppKey("usage_principal")


def usage_ctx(redis_url: str, prefix: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """The worker's meter: CPU shared once a second, flushed every ``flush_seconds`` and once more
    when the application stops. It has a Redis client of its own (lazily connected)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from common.redis import create_redis

        meter = app[USAGE_METER]
        redis = create_redis(redis_url)

        async def loop() -> None:
            last_flush = time.monotonic()
            while True:
                await asyncio.sleep(1.0)
                meter.close_interval()
                if time.monotonic() - last_flush >= meter.prices.flush_seconds:
                    last_flush = time.monotonic()
                    await meter.flush(redis, prefix)

        task = asyncio.create_task(loop())
        app[USAGE_REDIS] = redis
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await meter.flush(redis, prefix)
        await redis.aclose()

    return ctx


async def flush_now(app: web.Application) -> None:
    """Flush this worker's meter at once (before a report that must include it)."""
    meter, redis = app.get(USAGE_METER), app.get(USAGE_REDIS)
    if meter is not None and redis is not None:
        from common.web import SETTINGS

        await meter.flush(redis, app[SETTINGS].redis_prefix)
