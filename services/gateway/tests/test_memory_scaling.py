"""/api/performance/memory (leak detection across the platform) and /api/performance/scaling
(replicas per service forecast from the request-rate history), admin only."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from redis.asyncio import Redis

from common.costtracker import RATE_KEY
from gateway.performance import ScalingSettings, advise
from gateway.settings import GATEWAY_SETTINGS

from .conftest import ADMIN, Client, create_key

HOUR = 3600


async def test_memory_reports_the_gateway_and_each_service(client: Client) -> None:
    resp = await client.get("/api/performance/memory", headers=ADMIN)
    assert resp.status == 200, await resp.text()
    data = (await resp.json())["data"]
    assert data["gateway"]["service"] == "gateway"
    assert data["gateway"]["rss_bytes"] > 0
    assert data["gateway"]["leak_suspected"] is False
    # The real resources service answers with its worker's report; the stand-ins have none.
    resources = data["services"]["resources"]
    assert resources["status"] == "ok"
    assert resources["report"]["service"] == "resources"
    # The stand-ins echo every request: not a memory report.
    assert data["services"]["costs"] == {"status": "down: ValidationError", "report": None}


async def test_memory_and_scaling_are_for_admins(client: Client) -> None:
    reader = {"X-API-Key": await create_key(client, ["read"])}
    for path in ("/api/performance/memory", "/api/performance/scaling"):
        assert (await client.get(path, headers=reader)).status == 403


def daily_peak_history(now: datetime, days: int, per_minute: int, peak: int) -> dict[int, int]:
    """``days`` past days in which the hour after ``now``'s runs at ``per_minute`` requests a
    minute with one minute at ``peak``; every other hour of those days is idle."""
    target = int(now.timestamp()) // HOUR + 1
    minutes = {}
    for back in range(1, days + 1):
        hour = target - 24 * back
        for m in range(60):
            minutes[hour * 60 + m] = per_minute
        minutes[hour * 60 + 30] = peak
    return minutes


def test_advice_on_a_synthetic_history() -> None:
    now = datetime(2026, 11, 30, 10, 15, tzinfo=UTC)
    settings = ScalingSettings(capacity_rps={"gateway": 1100.0, "resources": 1600.0,
                                             "costs": 400.0, "alerts": 700.0})  # fmt: skip
    history = {
        # 1,000 req/s with a busiest minute of 5,000 req/s: 5,000 x 1.3 / 1,600 = 4.06 -> 5
        "resources": daily_peak_history(now, 3, 60_000, 300_000),
        # the gateway carries 12,000 req/s at peak: 12,000 x 1.3 / 1,100 = 14.2 -> the max, 10
        "gateway": daily_peak_history(now, 2, 60_000, 720_000),
        # less than a day of history: the last hour seen goes on (120 req/s -> 1 -> min 2)
        "costs": {int(now.timestamp()) // 60 - 30: 7_200},
    }
    advice = advise(history, now, 3, settings)
    by = {s["service"]: s for s in advice["services"]}
    resources = by["resources"]
    assert [h["replicas"] for h in resources["hours"]] == [5, 2, 2]
    first = resources["hours"][0]
    assert first["hour"] == datetime(2026, 11, 30, 11, tzinfo=UTC)
    assert first["expected_peak_rps"] == 5000.0
    assert first["expected_rps"] == round((59 * 60_000 + 300_000) / 3600, 3)
    assert resources["recommended_replicas"] == 5
    assert resources["history_hours"] == 3
    price = settings.replica_hourly_price
    assert resources["hourly_cost_recommended"] == 5 * price
    assert resources["cost_change_over_horizon"] == 3 * price  # one hour at 5 instead of 2
    assert [h["replicas"] for h in by["gateway"]["hours"]] == [10, 2, 2]
    assert [h["replicas"] for h in by["costs"]["hours"]] == [2, 2, 2]
    assert by["costs"]["hours"][0]["expected_peak_rps"] == 120.0
    assert by["alerts"]["recommended_replicas"] == 2, "no history: the minimum"
    assert by["alerts"]["cost_change_over_horizon"] == Decimal(0)


async def test_scaling_reads_the_history_the_services_keep(
    client: Client, redis_client: Redis
) -> None:
    settings = client.app[GATEWAY_SETTINGS]
    now = datetime.now(UTC)
    history = daily_peak_history(now, 2, 60_000, 300_000)
    async with redis_client.pipeline(transaction=False) as pipe:
        for minute, count in history.items():
            pipe.hset(f"{settings.redis_prefix}{RATE_KEY}:resources:{minute // 60}",
                      str(minute), count)  # fmt: skip
        await pipe.execute()
    resp = await client.get("/api/performance/scaling", params={"hours": "2"}, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    data = (await resp.json())["data"]
    resources = next(s for s in data["services"] if s["service"] == "resources")
    assert [h["replicas"] for h in resources["hours"]] == [5, 2]
    assert resources["recommended_replicas"] == 5
    assert Decimal(resources["cost_change_over_horizon"]) == 3 * Decimal(
        data["replica_hourly_price"]
    )
    bad = await client.get("/api/performance/scaling", params={"hours": "99"}, headers=ADMIN)
    assert bad.status == 400
