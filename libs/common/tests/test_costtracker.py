"""The platform usage meter: CPU shared per interval (never counted twice), requests charged to
principal and route by every app from create_base_app, totals pushed to Redis (kept on failure)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from common.config import ServiceSettings
from common.costtracker import (
    RATE_KEY,
    USAGE_LIST,
    USAGE_METER,
    PlatformPrices,
    UsageMeter,
    request_cost,
)
from common.redis import create_redis
from common.testing import TEST_REDIS_URL, make_settings
from common.web import create_base_app, json_response


class FakeCpu:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def test_interval_cpu_is_shared_by_wall_time_and_adds_up() -> None:
    cpu, now = FakeCpu(), [1_700_000_000.0]
    meter = UsageMeter("svc", cpu=cpu, clock=lambda: now[0])
    now[0] += 1.0
    meter.record("alice", "/a", 0.1, 100)
    meter.record("bob", "/b", 0.3, 50)
    cpu.seconds = 0.8
    assert meter.close_interval() == 0.8
    rows = {who: row for (_, who, _), row in meter.pending.items()}
    assert abs(rows["alice"][1] - Decimal("0.2")) < Decimal("1e-9")
    assert abs(rows["bob"][1] - Decimal("0.6")) < Decimal("1e-9")
    # An interval without requests charges nobody; the next one starts from its reading.
    cpu.seconds = 5.0
    assert meter.close_interval() == 0.0
    now[0] += 1.0
    meter.record("alice", "/a", 0.0, 0)
    cpu.seconds = 5.5
    meter.close_interval()
    alice = next(row for (_, who, _), row in meter.pending.items() if who == "alice")
    assert alice[0] == 2
    assert abs(alice[1] - Decimal("0.7")) < Decimal("1e-9")


def test_a_long_stream_weighs_only_its_time_within_the_interval() -> None:
    cpu, now = FakeCpu(), [1_700_000_000.0]
    meter = UsageMeter("svc", cpu=cpu, clock=lambda: now[0])
    now[0] += 1.0  # one second into the interval
    meter.record("viewer", "/stream", 3600.0, 10)  # open for an hour, ends now
    meter.record("alice", "/a", 0.5, 10)
    cpu.seconds = 0.3
    meter.close_interval()
    rows = {who: row for (_, who, _), row in meter.pending.items()}
    assert abs(rows["viewer"][1] - Decimal("0.2")) < Decimal("1e-9")
    assert abs(rows["alice"][1] - Decimal("0.1")) < Decimal("1e-9")
    assert rows["viewer"][2] == Decimal("3600.0"), "its wall time is reported whole"


def test_request_cost_has_a_base_price() -> None:
    prices = PlatformPrices()
    assert request_cost(prices, 1, Decimal(0), 0) == prices.per_request > 0
    one_gb = request_cost(prices, 0, Decimal(0), 1024**3)
    assert one_gb == prices.network_per_gb


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


async def test_concurrent_requests_are_not_charged_each_others_cpu() -> None:
    """Two requests overlap: one burns 0.2 s of CPU, one only waits. Timing process_time()
    across each request would charge the burn to both (0.4 s and more for what used little over
    0.2 s); the shared interval charges exactly the CPU the process used, once."""
    # The old way, measured alongside: process_time() before and after each request.
    old_way: list[float] = []

    @web.middleware
    async def process_time_across_await(request: web.Request, handler: Any) -> web.StreamResponse:
        started = time.process_time()
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            old_way.append(time.process_time() - started)

    app = create_base_app(
        make_settings(ServiceSettings, service_name="svc"), middlewares=(process_time_across_await,)
    )

    async def busy(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        burn(0.2)
        return json_response({"ok": True})

    async def idle(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return json_response({"ok": True})

    app.router.add_get("/busy", busy)
    app.router.add_get("/idle", idle)
    async with TestClient(TestServer(app)) as client:
        await client.get("/idle")  # warm up: first-request imports and set-up
        meter = client.app[USAGE_METER]
        meter.close_interval()
        meter.pending.clear()
        old_way.clear()
        started = time.process_time()
        await asyncio.gather(
            client.get("/busy", headers={"X-CloudOps-Principal": "alice"}),
            client.get("/idle", headers={"X-CloudOps-Principal": "bob"}),
        )
        meter.close_interval()  # the app's own timer may have closed some intervals already
        process_used = time.process_time() - started
        rows = {(who, route): row for (_, who, route), row in meter.pending.items()}
    assert set(rows) == {("alice", "/busy"), ("bob", "/idle")}
    charged = float(sum(row[1] for row in rows.values()))
    assert charged >= 0.2, "the burn is charged"
    assert abs(charged - process_used) < 0.02, "what the process used, once: never the sum"
    assert sum(old_way) > process_used + 0.15, "timing across an await counts the burn twice"


async def test_flush_pushes_usage_and_request_rate(redis_prefix: str) -> None:
    meter = UsageMeter("resources", cpu=FakeCpu(), clock=lambda: 1_700_000_030.0)
    for _ in range(3):
        meter.record("alice", "/api/resources", 0.01, 10)
    redis = create_redis(TEST_REDIS_URL)
    try:
        await meter.flush(redis, redis_prefix)
        assert meter.pending == {}
        assert meter.minutes == {}
        [batch] = await redis.lrange(f"{redis_prefix}{USAGE_LIST}", 0, -1)
        doc = orjson.loads(batch)
        assert doc["service"] == "resources"
        assert [row[:4] for row in doc["rows"]] == [["2023-11-14", "alice", "/api/resources", 3]]
        minute = 1_700_000_030 // 60
        counts = await redis.hgetall(f"{redis_prefix}{RATE_KEY}:resources:{minute // 60}")
        assert counts == {str(minute).encode(): b"3"}
        assert await redis.ttl(f"{redis_prefix}{RATE_KEY}:resources:{minute // 60}") > 86400
    finally:
        await redis.aclose()


async def test_totals_stay_for_the_next_flush_when_redis_is_down() -> None:
    meter = UsageMeter("svc", cpu=FakeCpu())
    meter.record("alice", "/a", 0.01, 10)
    unreachable = create_redis("redis://127.0.0.1:1/0")
    try:
        await meter.flush(unreachable, "x:")
    finally:
        await unreachable.aclose()
    assert [row[0] for row in meter.pending.values()] == [1]
    assert sum(meter.minutes.values()) == 1
