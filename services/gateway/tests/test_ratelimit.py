"""Rate limiting in Redis: exact across replicas, sliding window, headers, Redis outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from common.testing import ServiceProcess, TcpProxy, free_port
from gateway.settings import GatewaySettings

from .conftest import ADMIN, ADMIN_KEY, JWT_SECRET, Client, create_key

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]


async def test_headers_are_exact(client: Client) -> None:
    key = await create_key(client, ["read"], rate_limit=5, rate_window_seconds=60)
    first = await client.get("/api/performance/stats", headers={"X-API-Key": key})
    assert first.status == 200
    assert first.headers["RateLimit-Policy"] == '"key";q=5;w=60'
    assert first.headers["RateLimit"] == '"key";r=4;t=60'
    assert first.headers["RateLimit-Limit"] == "5"
    assert first.headers["RateLimit-Remaining"] == "4"
    assert first.headers["RateLimit-Reset"] == "60"
    for remaining in (3, 2, 1, 0):
        resp = await client.get("/api/performance/stats", headers={"X-API-Key": key})
        assert resp.headers["RateLimit-Remaining"] == str(remaining)
    rejected = await client.get("/api/performance/stats", headers={"X-API-Key": key})
    assert rejected.status == 429
    assert rejected.content_type == "application/problem+json"
    assert 1 <= int(rejected.headers["Retry-After"]) <= 60
    assert rejected.headers["RateLimit-Remaining"] == "0"
    assert rejected.headers["X-Content-Type-Options"] == "nosniff"


async def test_default_limit_applies_per_key(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(settings.model_copy(update={"rate_limit": 3}))
    for _ in range(3):
        assert (await client.get("/api/performance/stats", headers=ADMIN)).status == 200
    resp = await client.get("/api/performance/stats", headers=ADMIN)
    assert resp.status == 429
    assert resp.headers["RateLimit-Policy"] == f'"default";q=3;w={settings.rate_window_seconds}'


async def test_anonymous_callers_are_limited_per_ip_but_liveness_is_not(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(settings.model_copy(update={"rate_limit": 2}))
    for _ in range(5):
        assert (await client.get("/api/health")).status == 200
    statuses = [
        (await client.post("/api/auth/token", json={"username": "nobody", "password": "x"})).status
        for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


async def test_rejected_requests_do_not_consume_quota(
    client: Client, redis_client: Redis, settings: GatewaySettings
) -> None:
    key = await create_key(client, ["read"], rate_limit=2, rate_window_seconds=60)
    statuses = [
        (await client.get("/api/performance/stats", headers={"X-API-Key": key})).status
        for _ in range(6)
    ]
    assert statuses == [200, 200, 429, 429, 429, 429]
    buckets = [
        k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}gateway:rl:key:*")
    ]
    assert len(buckets) == 1
    assert await redis_client.zcard(buckets[0]) == 2


async def test_window_slides_rather_than_resets(client: Client) -> None:
    key = await create_key(client, ["read"], rate_limit=3, rate_window_seconds=2)
    headers = {"X-API-Key": key}

    async def status() -> int:
        return (await client.get("/api/performance/stats", headers=headers)).status

    started = time.monotonic()
    assert await status() == 200
    await asyncio.sleep(1.0)
    assert [await status(), await status(), await status()] == [200, 200, 429]
    # Just past the first request's expiry one slot is free, not three as a fixed window would give.
    await asyncio.sleep(max(0.0, started + 2.2 - time.monotonic()))
    assert [await status(), await status()] == [200, 429]
    # Once the two later requests expire, two more fit.
    await asyncio.sleep(max(0.0, started + 3.4 - time.monotonic()))
    assert [await status(), await status(), await status()] == [200, 200, 429]


async def test_route_limit_has_its_own_policy_and_bucket(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(
        settings.model_copy(update={"route_rate_limits": {"/api/costs/{tail:.+}": (2, 30)}})
    )
    statuses = [(await client.get("/api/costs/daily", headers=ADMIN)).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    last = await client.get("/api/costs/daily", headers=ADMIN)
    assert last.headers["RateLimit-Policy"] == '"/api/costs/{tail:.+}";q=2;w=30'
    # The rest of the API still counts against the default policy.
    other = await client.get("/api/resources", headers=ADMIN)
    assert other.status == 200
    assert other.headers["RateLimit-Policy"].startswith('"default";')


def test_overrides_for_unknown_routes_stop_start_up(settings: GatewaySettings) -> None:
    from gateway.app import create_app

    with pytest.raises(ValueError, match="unknown routes"):
        create_app(settings.model_copy(update={"route_body_limits": {"/api/nope": 10}}))


@pytest.fixture
async def redis_proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    yield proxy
    await proxy.cut()


def _fallback_count(metrics: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("rate_limit_decisions_total{") and 'source="fallback"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_requests_are_served_when_redis_is_down(
    make_client: MakeClient, settings: GatewaySettings, redis_proxy: TcpProxy
) -> None:
    client = await make_client(
        settings.model_copy(
            update={
                "redis_url": f"redis://127.0.0.1:{redis_proxy.port}/0",
                "fallback_rate_limit": 4,
            }
        )
    )
    assert (await client.get("/api/resources", headers=ADMIN)).status == 200
    before = _fallback_count(await (await client.get("/metrics")).text())
    await redis_proxy.cut()
    statuses = [(await client.get("/api/resources", headers=ADMIN)).status for _ in range(5)]
    # Served under the in-process limit, never a 500.
    assert statuses == [200, 200, 200, 200, 429]
    after = _fallback_count(await (await client.get("/metrics")).text())
    assert after - before == 5
    # Still ready (it serves), but the check says what is missing.
    resp = await client.get("/health/ready")
    body = await resp.json()
    assert resp.status == 200
    assert body["data"]["status"] == "degraded"
    assert body["data"]["checks"]["redis"].startswith("down")


def gateway_env(settings: GatewaySettings, port: int) -> dict[str, str]:
    return {
        "CLOUDOPS_GATEWAY_PORT": str(port),
        "CLOUDOPS_DATABASE_URL": settings.database_url,
        "CLOUDOPS_REDIS_PREFIX": settings.redis_prefix,
        "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CLOUDOPS_GATEWAY_JWT_SECRET": JWT_SECRET,
        "CLOUDOPS_GATEWAY_RESOURCES_URL": settings.resources_url,
        "CLOUDOPS_GATEWAY_COSTS_URL": settings.costs_url,
        "CLOUDOPS_GATEWAY_ALERTS_URL": settings.alerts_url,
        "CLOUDOPS_ENVIRONMENT": "test",
    }


@pytest.fixture
async def two_gateways(
    settings: GatewaySettings, tmp_path: Path, pg_url: str
) -> AsyncIterator[list[ServiceProcess]]:
    processes = []
    for _ in range(2):
        port = free_port()
        process = ServiceProcess("gateway", gateway_env(settings, port), port)
        processes.append(process)
    try:
        for process in processes:
            await asyncio.to_thread(process.start)
        yield processes
    finally:
        for process in processes:
            process.close()


async def test_rate_limit_counts_across_replicas(two_gateways: list[ServiceProcess]) -> None:
    first, second = two_gateways
    async with aiohttp.ClientSession() as http:
        created = await http.post(
            f"{first.url}/api/admin/keys",
            json={"name": "replicas", "owner": "tests", "permissions": ["read"], "rate_limit": 100},
            headers=ADMIN,
        )
        assert created.status == 201
        key = (await created.json())["data"]["key"]

        async def one(i: int) -> int:
            url = (first if i % 2 else second).url
            async with http.get(f"{url}/api/performance/stats", headers={"X-API-Key": key}) as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*(one(i) for i in range(300)))
    assert statuses.count(200) == 100
    assert statuses.count(429) == 200


async def test_process_serves_json_logs_without_secrets(two_gateways: list[ServiceProcess]) -> None:
    first = two_gateways[0]
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{first.url}/api/resources", headers=ADMIN)
        assert resp.status == 200
    output: Any = first.output()
    assert '"request_id"' in output
    assert ADMIN_KEY not in output
    assert JWT_SECRET not in output


async def test_limiter_reloads_its_script_when_redis_forgot_it(client: Client) -> None:
    from gateway.ratelimit import RATE_LIMITER

    limiter = client.app[RATE_LIMITER]
    real_sha = limiter.script.sha
    limiter.script.sha = b"0" * 40  # what a restarted Redis with an empty script cache knows
    try:
        resp = await client.get("/api/performance/stats", headers=ADMIN)
    finally:
        limiter.script.sha = real_sha
    assert resp.status == 200
    assert resp.headers["RateLimit-Remaining"] == str(1000 - 1)


# --- the script nginx's edge runs too (nginx/cloudops_edge.lua) ------------------------------


async def edge_call(redis: Redis, prefix: str, *, limit: int, epoch: str, lease: int) -> list[Any]:
    from gateway.ratelimit import SLIDING_WINDOW

    keys = [f"{prefix}rl", f"{prefix}flagged", f"{prefix}epoch"]
    reply: list[Any] = await redis.eval(SLIDING_WINDOW, 3, *keys, limit, 60_000, "m", epoch, lease)
    return reply


async def test_the_edge_leases_slots_of_the_same_window_and_never_more_than_the_limit(
    redis_client: Redis, redis_prefix: str
) -> None:
    taken, remaining, reset_us, epoch = await edge_call(
        redis_client, redis_prefix, limit=10, epoch="0", lease=4
    )
    assert (taken, remaining, epoch) == (4, 6, b"0")
    assert 59_000_000 <= reset_us <= 60_000_000
    assert (await edge_call(redis_client, redis_prefix, limit=10, epoch="0", lease=4))[:2] == [4, 2]
    # Only what is left of the window, then nothing: the edge sends the client to the gateway.
    assert (await edge_call(redis_client, redis_prefix, limit=10, epoch="0", lease=4))[:2] == [2, 0]
    assert (await edge_call(redis_client, redis_prefix, limit=10, epoch="0", lease=4))[:2] == [0, 0]
    assert await redis_client.zcard(f"{redis_prefix}rl") == 10


async def test_the_edge_is_refused_a_decision_older_than_the_last_revocation(
    redis_client: Redis, redis_prefix: str
) -> None:
    await redis_client.incr(f"{redis_prefix}epoch")
    stale = await edge_call(redis_client, redis_prefix, limit=10, epoch="0", lease=1)
    assert stale == [-2, 0, 0, b"1"]
    assert await redis_client.zcard(f"{redis_prefix}rl") == 0  # nothing counted
    await redis_client.set(f"{redis_prefix}flagged", b"1")
    flagged = await edge_call(redis_client, redis_prefix, limit=10, epoch="1", lease=1)
    assert flagged[0] == -1


async def test_revoking_a_key_moves_the_edge_epoch_and_tells_nginx(client: Client) -> None:
    epochs = []
    for _ in range(2):
        resp = await client.post(
            "/api/admin/keys",
            json={"name": "e", "owner": "t", "permissions": ["read"]},
            headers=ADMIN,
        )
        key_id = (await resp.json())["data"]["id"]
        revoked = await client.delete(f"/api/admin/keys/{key_id}", headers=ADMIN)
        assert revoked.status == 200
        epochs.append(int(revoked.headers["X-CloudOps-Edge-Epoch"]))
    assert epochs[1] == epochs[0] + 1
