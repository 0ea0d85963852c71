"""The performance endpoints: per-route statistics, deep health, bounded load test, gc."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.settings import GatewaySettings

from .conftest import ADMIN, Client, Recorder, create_key

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]


async def test_stats_report_counts_percentiles_and_error_rates(client: Client) -> None:
    for _ in range(3):
        assert (await client.get("/api/resources", headers=ADMIN)).status == 200
    await client.get("/api/resources/not-a-uuid", headers=ADMIN)  # 400 from upstream
    resp = await client.get("/api/performance/stats", headers=ADMIN)
    routes = {(r["method"], r["route"]): r for r in (await resp.json())["data"]["routes"]}
    listing = routes[("GET", "/api/resources")]
    assert listing["count"] == 3
    assert listing["error_rate"] == 0
    assert 0 < listing["p50_ms"] <= listing["p95_ms"] <= listing["p99_ms"]
    one = routes[("GET", "/api/resources/{id}")]
    assert one["count"] == 1
    assert one["client_error_rate"] == 1
    assert one["p50_ms"] == one["p99_ms"]


async def test_deep_health_reports_every_upstream(client: Client) -> None:
    resp = await client.get("/api/performance/health", headers=ADMIN)
    assert resp.status == 200
    data = (await resp.json())["data"]
    assert data["checks"]["dependencies"] == {"postgres": "ok", "redis": "ok"}
    assert set(data["checks"]["upstreams"]) == {"resources", "costs", "alerts"}
    assert all(
        u["status"] == "ok" and u["breaker"] == "closed"
        for u in data["checks"]["upstreams"].values()
    )


async def test_deep_health_is_503_when_an_upstream_is_down(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    from common.testing import free_port

    client = await make_client(
        settings.model_copy(update={"alerts_url": f"http://127.0.0.1:{free_port()}"})
    )
    resp = await client.get("/api/performance/health", headers=ADMIN)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "5"
    data = (await resp.json())["data"]
    assert data["checks"]["upstreams"]["alerts"]["status"].startswith("down")


async def test_loadtest_hits_only_internal_targets_within_bounds(
    make_client: MakeClient, settings: GatewaySettings, costs_recorder: Recorder
) -> None:
    client = await make_client(
        settings.model_copy(update={"loadtest_max_requests": 30, "loadtest_max_concurrency": 4})
    )
    resp = await client.post(
        "/api/performance/loadtest",
        json={"target": "costs", "requests": 10_000, "concurrency": 500},
        headers=ADMIN,
    )
    assert resp.status == 200
    data = (await resp.json())["data"]
    assert data["requests"] == 30
    assert data["concurrency"] == 4
    assert data["failures"] == 0
    assert data["p50_ms"] is not None


@pytest.mark.parametrize(
    "body",
    [
        {"target": "http://169.254.169.254/latest/meta-data"},
        {"target": "costs", "url": "http://example.com"},
        {"target": "costs", "requests": 0},
    ],
)
async def test_loadtest_refuses_arbitrary_targets(client: Client, body: dict[str, Any]) -> None:
    resp = await client.post("/api/performance/loadtest", json=body, headers=ADMIN)
    assert resp.status == 422


@pytest.mark.parametrize("path", ["/api/performance/loadtest", "/api/performance/gc"])
async def test_loadtest_and_gc_need_admin(client: Client, path: str) -> None:
    key = await create_key(client, ["read", "write"])
    resp = await client.post(path, json={"target": "costs"}, headers={"X-API-Key": key})
    assert resp.status == 403


async def test_gc_collects(client: Client) -> None:
    resp = await client.post("/api/performance/gc", headers=ADMIN)
    assert resp.status == 200
    data = (await resp.json())["data"]
    assert data["collected"] >= 0
    assert data["max_rss_kb"] > 0


async def test_stats_show_a_reader_only_the_routes_it_may_call(client: Client) -> None:
    assert (await client.get("/api/admin/keys", headers=ADMIN)).status == 200
    assert (await client.get("/api/resources", headers=ADMIN)).status == 200
    reader = {"X-API-Key": await create_key(client, ["read"])}
    seen = await (await client.get("/api/performance/stats", headers=reader)).json()
    routes = {r["route"] for r in seen["data"]["routes"]}
    assert "/api/resources" in routes
    assert not any(r.startswith("/api/admin") for r in routes), routes
    everything = await (await client.get("/api/performance/stats", headers=ADMIN)).json()
    assert "/api/admin/keys" in {r["route"] for r in everything["data"]["routes"]}
