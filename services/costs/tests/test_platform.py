"""The platform's own cost: requests are charged to the principal the gateway named."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from common.costtracker import UsageMeter
from common.redis import create_redis
from costs.settings import CostsSettings

from .conftest import Client

ADMIN = {"X-CloudOps-Principal": "root", "X-CloudOps-Permissions": "admin,read,write"}


async def platform_report(client: Client, headers: dict[str, str]) -> dict[str, Any]:
    resp = await client.get("/api/costs/platform", headers=headers)
    assert resp.status == 200
    report: dict[str, Any] = (await resp.json())["data"]
    return report


async def test_daily_report_charges_requests_per_user(client: Client) -> None:
    for who, n in (("alice", 3), ("key-42", 2)):
        for _ in range(n):
            resp = await client.get("/api/costs/budgets", headers={"X-CloudOps-Principal": who})
            assert resp.status == 200
    report = await platform_report(client, ADMIN)
    per_user = {u["principal"]: u for u in report["per_user"]}
    assert per_user["alice"]["requests"] == 3
    assert per_user["key-42"]["requests"] == 2
    breakdown = {k: Decimal(v) for k, v in report["breakdown"].items()}
    assert breakdown["network"] > 0
    assert breakdown["storage"] > 0
    assert Decimal(report["total"]) == sum(breakdown.values())
    metrics = await (await client.get("/metrics")).text()
    assert 'platform_cost_usd_total{component="network",service="costs"}' in metrics


async def test_report_for_a_day_without_requests_is_empty(client: Client) -> None:
    report = await (await client.get("/api/costs/platform", params={"day": "2020-01-01"})).json()
    assert report["data"]["per_user"] == []
    assert report["data"]["requests"] == 0


async def test_bad_day_is_a_400(client: Client) -> None:
    assert (await client.get("/api/costs/platform", params={"day": "monday"})).status == 400


async def test_a_caller_without_admin_sees_only_its_own_usage(client: Client) -> None:
    for who in ("alice", "key-42", "bob", ""):
        resp = await client.get("/api/costs/budgets", headers={"X-CloudOps-Principal": who})
        assert resp.status == 200
    alice = {"X-CloudOps-Principal": "alice", "X-CloudOps-Permissions": "read,write"}
    own = await platform_report(client, alice)
    assert [u["principal"] for u in own["per_user"]] == ["alice"]
    nobody = await platform_report(client, {})
    assert [u["principal"] for u in nobody["per_user"]] == ["anonymous"]
    everyone = await platform_report(client, ADMIN)
    assert {"alice", "key-42", "bob", "anonymous"} <= {u["principal"] for u in everyone["per_user"]}
    # The platform's totals name nobody: every caller sees all requests counted.
    assert own["requests"] >= 4


async def test_the_report_covers_every_service_per_route(
    client: Client, settings: CostsSettings
) -> None:
    """Another service's meter (as the resources service's would) flushes to Redis; the report
    drains it: per service, per route (admins only) and in the principal's row."""
    resources = UsageMeter("resources")
    for _ in range(4):
        resources.record("alice", "/api/resources", 0.002, 1000)
    redis = create_redis(settings.redis_url)
    try:
        await resources.flush(redis, settings.redis_prefix)
    finally:
        await redis.aclose()
    assert (await client.get("/api/costs/budgets", headers={"X-CloudOps-Principal": "alice"})).ok
    report = await platform_report(client, ADMIN)
    services = {s["service"]: s for s in report["per_service"]}
    assert services["resources"]["requests"] == 4
    assert services["resources"]["bytes_out"] == 4000
    assert services["costs"]["requests"] >= 1
    routes = {(r["service"], r["route"]): r for r in report["per_route"]}
    assert routes[("resources", "/api/resources")]["requests"] == 4
    assert routes[("costs", "/api/costs/budgets")]["requests"] == 1
    alice = next(u for u in report["per_user"] if u["principal"] == "alice")
    assert alice["requests"] == 5
    prices = report["unit_prices"]
    assert Decimal(report["breakdown"]["requests"]) == report["requests"] * Decimal(
        prices["per_request"]
    )
    reader = {"X-CloudOps-Principal": "alice", "X-CloudOps-Permissions": "read"}
    own = await platform_report(client, reader)
    assert own["per_route"] == []
    assert {s["service"] for s in own["per_service"]} >= {"resources", "costs"}
