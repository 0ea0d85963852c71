"""The cost-aware cache: a repeated breakdown is a hit, an import makes the next read a miss with
the new totals, other writes leave it cached, and dearer answers are kept longer (bounded)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from prometheus_client import REGISTRY

from common.messaging import new_event
from common.redis import create_redis
from common.testing import TEST_REDIS_URL
from costs.cache import (
    HOLDER,
    INVENTORY,
    LINE_ITEMS,
    UTILIZATION,
    CostAwareCache,
    invalidate_after_events,
    sources_of,
)

from .conftest import Client, focus_bytes, focus_rows, imported

WINDOW = {"start": "2024-01-01", "end": "2024-01-31", "group_by": "provider"}
FIRST, SECOND = "aws_focus_1_0.csv", "gcp_focus_1_0.csv"


def counted(name: str, cache: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "costs", "cache": cache}) or 0.0


def billed_total(*files: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for name in files:
        for row in focus_rows(name):
            currency = row["BillingCurrency"]
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(row["BilledCost"])
    return totals


async def daily(client: Client) -> dict[str, Any]:
    resp = await client.get("/api/costs/daily", params=WINDOW)
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def test_a_repeated_breakdown_is_a_hit_and_an_import_makes_it_a_miss(client: Client) -> None:
    await imported(client, focus_bytes(FIRST), filename=FIRST)
    hits, misses = (
        counted("cache_hits_total", "costs_daily"),
        counted("cache_misses_total", "costs_daily"),
    )
    saved = counted("cache_saved_seconds_total", "costs_daily")

    first = await daily(client)
    assert counted("cache_misses_total", "costs_daily") == misses + 1
    again = await daily(client)
    assert again == first
    assert counted("cache_hits_total", "costs_daily") == hits + 1
    assert counted("cache_saved_seconds_total", "costs_daily") > saved

    # A budget change is not what a breakdown reads: still a hit.
    budget = {"name": "b", "amount": "100", "currency": "USD", "scope": "all"}
    assert (await client.post("/api/costs/budgets", json=budget)).status == 201
    assert await daily(client) == first
    assert counted("cache_hits_total", "costs_daily") == hits + 2

    await imported(client, focus_bytes(SECOND), filename=SECOND)
    after = await daily(client)
    assert counted("cache_misses_total", "costs_daily") == misses + 2
    totals = {k: Decimal(v) for k, v in after["meta"]["totals"].items()}
    assert totals == billed_total(FIRST, SECOND)
    assert totals != {k: Decimal(v) for k, v in first["meta"]["totals"].items()}


def moved_to_march(name: str) -> bytes:
    """The file's charges and billing period a month later (February is too short for every
    day): another month of the same accounts, which replaces nothing of January's."""
    body = focus_bytes(name).replace(b"2024-02-01", b"2024-04-01")
    return body.replace(b"2024-01-", b"2024-03-")


async def test_another_months_bill_leaves_the_breakdown_cached(client: Client) -> None:
    await imported(client, focus_bytes(FIRST), filename=FIRST)
    january = await daily(client)
    hits = counted("cache_hits_total", "costs_daily")
    march = await imported(client, moved_to_march(FIRST), filename="march.csv")
    assert march["rows_replaced"] == 0
    assert await daily(client) == january
    assert counted("cache_hits_total", "costs_daily") == hits + 1
    # A bill that replaces January's rows (the same file again) changes January: a miss.
    misses = counted("cache_misses_total", "costs_daily")
    again = await imported(client, focus_bytes(FIRST), filename="again.csv")
    assert again["rows_replaced"] > 0
    assert await daily(client) == january  # the same totals, recomputed
    assert counted("cache_misses_total", "costs_daily") == misses + 1


async def test_forecast_and_recommendations_are_cached_too(client: Client) -> None:
    await imported(client, focus_bytes(FIRST), filename=FIRST)
    for path, cache in (("/api/costs/forecast", "costs_forecast"),
                        ("/api/costs/optimization", "costs_optimization")):  # fmt: skip
        hits = counted("cache_hits_total", cache)
        one = await (await client.get(path)).json()
        two = await (await client.get(path)).json()
        assert one == two
        assert counted("cache_hits_total", cache) == hits + 1


async def test_dearer_entries_live_longer_within_bounds(redis_prefix: str) -> None:
    redis = create_redis(TEST_REDIS_URL)
    cache = CostAwareCache(redis, prefix=redis_prefix, service="costs", ttl_per_miss_second=600,
                           min_ttl=30, max_ttl=900)  # fmt: skip
    try:
        assert [cache.ttl_for(s) for s in (0.001, 0.05, 0.2, 1.0, 60.0)] == [30, 30, 120, 600, 900]

        async def cheap() -> dict[str, int]:
            return {"n": 1}

        async def dear() -> dict[str, int]:
            await asyncio.sleep(0.2)
            return {"n": 2}

        assert await cache.get_or_compute("costs_daily", ("cheap",), (LINE_ITEMS,), cheap) == {
            "n": 1
        }
        assert await cache.get_or_compute("costs_daily", ("dear",), (LINE_ITEMS,), dear) == {"n": 2}
        ttls = sorted(
            [
                await redis.ttl(k)
                async for k in redis.scan_iter(f"{redis_prefix}cache:costs:costs_daily:*")
            ]
        )
        assert ttls[0] <= 30
        assert 110 <= ttls[1] <= 160
    finally:
        await redis.aclose()


async def test_events_invalidate_exactly_their_source(redis_prefix: str) -> None:
    redis = create_redis(TEST_REDIS_URL)
    cache = CostAwareCache(redis, prefix=redis_prefix, service="costs", ttl_per_miss_second=600,
                           min_ttl=30, max_ttl=900)  # fmt: skip
    calls: list[str] = []

    def counting(name: str) -> Any:
        async def compute() -> str:
            calls.append(name)
            return name

        return compute

    async def read_all() -> None:
        await cache.get_or_compute("costs_daily", (), (LINE_ITEMS,), counting("daily"))
        await cache.get_or_compute("costs_optimization", (), (LINE_ITEMS, INVENTORY, UTILIZATION),
                                   counting("optimization"))  # fmt: skip

    utilization = new_event("resource.utilization_recorded", source="t", data={})
    created = new_event("resource.created", source="t", data={})
    assert sources_of([utilization]) == [UTILIZATION]
    assert sources_of([created, utilization]) == [INVENTORY, UTILIZATION]
    HOLDER.cache = cache
    try:
        await read_all()
        await read_all()
        assert calls == ["daily", "optimization"]
        await invalidate_after_events([utilization], None)
        await read_all()
        assert calls == ["daily", "optimization", "optimization"]
        await cache.changed(LINE_ITEMS)
        await read_all()
        assert calls[3:] == ["daily", "optimization"]
    finally:
        HOLDER.cache = None
        await redis.aclose()
