"""Each savings rule fires on its constructed case and stays silent on the near-miss."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from common.db import DB_POOL
from common.messaging import new_event
from costs.app import create_app
from costs.events import on_resource_event
from costs.settings import CostsSettings

from .conftest import Client, ClientFactory
from .test_inventory import resource

AT = datetime(2024, 3, 1, tzinfo=UTC)


def days_before(days: float) -> str:
    return (AT - timedelta(days=days)).isoformat()


def samples(cpu: list[str], memory: list[str] | None = None, **fields: Any) -> list[dict[str, Any]]:
    """One resource version per sample, a day apart, ending one hour before ``AT``."""
    memory = memory or ["20"] * len(cpu)
    return [
        {
            **fields,
            "cpu_utilization": c,
            "memory_utilization": m,
            "updated_at": days_before(len(cpu) - i - 1 + 1 / 24),
        }
        for i, (c, m) in enumerate(zip(cpu, memory, strict=True))
    ]


CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "idle_compute": (
        samples(["2", "9.5", "10", "3"], hourly_cost="0.1"),
        # memory above the right-size limit, so only the idle rule could speak
        samples(["2", "9.5", "10.01", "3"], ["60"] * 4, hourly_cost="0.1"),
    ),
    "rightsize": (
        samples(["25", "40", "31", "12"], ["30", "40", "20", "22"], hourly_cost="0.2"),
        samples(["25", "40", "31", "12"], ["30", "40.5", "20", "22"], hourly_cost="0.2"),
    ),
    "stopped_instance": (
        [{"status": "stopped", "hourly_cost": "0.01", "updated_at": days_before(7)}],
        [{"status": "stopped", "hourly_cost": "0.01", "updated_at": days_before(6.9)}],
    ),
    "unattached_volume": (
        [
            {
                "type": "storage",
                "status": "idle",
                "tags": {"kind": "volume"},
                "hourly_cost": "0.011",
                "updated_at": days_before(8),
            }
        ],
        [
            {
                "type": "storage",
                "status": "running",
                "tags": {"kind": "volume"},
                "hourly_cost": "0.011",
                "updated_at": days_before(8),
            }
        ],
    ),
    "unused_ip": (
        [
            {
                "type": "network",
                "status": "idle",
                "tags": {"kind": "ip"},
                "hourly_cost": "0.005",
                "updated_at": days_before(2),
            }
        ],
        [
            {
                "type": "network",
                "status": "idle",
                "tags": {"kind": "ip"},
                "hourly_cost": "0.005",
                "updated_at": days_before(0.5),
            }
        ],
    ),
    "old_snapshot": (
        [
            {
                "type": "storage",
                "tags": {"kind": "snapshot"},
                "hourly_cost": "0.002",
                "created_at": days_before(90),
                "updated_at": days_before(90),
            }
        ],
        [
            {
                "type": "storage",
                "tags": {"kind": "snapshot"},
                "hourly_cost": "0.002",
                "created_at": days_before(89),
                "updated_at": days_before(89),
            }
        ],
    ),
}


async def put_versions(client: Client, n: int, versions: list[dict[str, Any]]) -> None:
    async with client.app[DB_POOL].acquire() as conn:
        for fields in versions:
            created = {"created_at": days_before(200)} if "created_at" not in fields else {}
            body = resource(n, **{**created, **fields})
            await on_resource_event(
                new_event("resource.updated", source="t", data={"resource": body}), conn
            )


async def recommendations(client: Client) -> list[dict[str, Any]]:
    resp = await client.get("/api/costs/optimization", params={"at": AT.isoformat()})
    assert resp.status == 200
    data: list[dict[str, Any]] = (await resp.json())["data"]
    return data


@pytest.mark.parametrize("rule", list(CASES))
async def test_rule_fires_on_its_case_and_not_on_the_near_miss(client: Client, rule: str) -> None:
    hit, miss = CASES[rule]
    await put_versions(client, 1, hit)
    await put_versions(client, 2, miss)
    found = await recommendations(client)
    assert [(r["rule"], r["external_id"]) for r in found] == [(rule, "i-00000001")]
    hourly = Decimal(hit[-1]["hourly_cost"])
    share = Decimal("0.5") if rule == "rightsize" else Decimal(1)
    assert Decimal(found[0]["monthly_savings"]) == (hourly * 730 * share).quantize(Decimal("0.01"))
    assert found[0]["evidence"]


async def test_thresholds_are_configurable(
    aiohttp_client: ClientFactory, settings: CostsSettings, pg_url: str
) -> None:
    from common.testing import truncate_schema

    await truncate_schema(pg_url, "costs")
    strict = settings.model_copy(update={"idle_cpu_percent": Decimal("5")})
    client = await aiohttp_client(create_app(strict))
    await put_versions(client, 1, samples(["2", "6", "3", "4"], hourly_cost="0.1"))
    assert [r["rule"] for r in await recommendations(client)] == ["rightsize"]


async def test_optimization_rejects_a_bad_timestamp(client: Client) -> None:
    resp = await client.get("/api/costs/optimization", params={"at": "soon"})
    assert resp.status == 400
