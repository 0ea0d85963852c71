"""Utilisation reaches the savings rules through the real path: the resources API, its outbox,
the broker, and the costs service's consumer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from common.testing import make_settings, truncate_schema
from costs.settings import CostsSettings
from resources.app import create_app as create_resources_app
from resources.settings import ResourcesSettings

from .conftest import Client, ClientFactory
from .test_inventory import consumer_attached


async def recommendations(costs: Client) -> list[dict[str, Any]]:
    body = await (await costs.get("/api/costs/optimization")).json()
    data: list[dict[str, Any]] = body["data"]
    return data


async def test_samples_posted_to_resources_make_costs_recommend(
    client: Client, aiohttp_client: ClientFactory, settings: CostsSettings, pg_url: str
) -> None:
    await consumer_attached(client)
    await truncate_schema(pg_url, "resources")
    resources = await aiohttp_client(
        create_resources_app(
            make_settings(
                ResourcesSettings,
                database_url=pg_url,
                redis_prefix=settings.redis_prefix,
                events_exchange=settings.events_exchange,
            )
        )
    )
    created = []
    for n, cpu in ((1, "4"), (2, "60")):
        body = {"external_id": f"vm-{n}", "name": f"vm-{n}", "provider": "aws",
                "type": "compute", "region": "eu-west-1", "account": "1", "status": "running",
                "hourly_cost": "0.1"}  # fmt: skip
        resp = await resources.post("/api/resources", json=body)
        assert resp.status == 201, await resp.text()
        created.append(((await resp.json())["data"]["id"], cpu))
    now = datetime.now(UTC)
    samples = [
        {"resource_id": resource_id, "timestamp": (now - timedelta(hours=6 * i)).isoformat(),
         "cpu_percent": cpu, "memory_percent": "70", "network_bytes": 1000}
        for resource_id, cpu in created
        for i in range(8)
    ]  # fmt: skip
    resp = await resources.post("/api/resources/utilization", json={"samples": samples})
    assert resp.status == 200, await resp.text()

    async with asyncio.timeout(15):
        while not (found := await recommendations(client)):
            await asyncio.sleep(0.1)
    assert [(r["rule"], r["external_id"]) for r in found] == [("idle_compute", "vm-1")]
    assert found[0]["evidence"]["samples"] == 8
    assert found[0]["evidence"]["network_max_bytes"] == 1000
