"""The live cost rate follows resource.* events consumed from the real broker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aio_pika

from common.messaging import new_event
from common.testing import TEST_AMQP_URL
from costs.settings import CostsSettings

from .conftest import Client, focus_bytes, imported


def resource(n: int, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.UUID(int=n)), "external_id": f"i-{n:08x}", "name": f"web-{n}",
        "provider": "aws", "type": "compute", "region": "eu-west-1", "account": "1",
        "status": "running", "hourly_cost": "0.0416", "currency": "USD", "tags": {},
        "owner": None, "team": "web", "cpu_utilization": None, "memory_utilization": None,
        "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "2024-01-01T00:00:00+00:00",
    }  # fmt: skip
    body.update(fields)
    return body


async def publish(exchange_name: str, event_type: str, data: dict[str, Any]) -> None:
    event = new_event(event_type, source="/cloudops/resources", data=data)
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await exchange.publish(aio_pika.Message(event.to_json()), routing_key=event_type)
    finally:
        await connection.close()


async def hourly(client: Client, **params: str) -> dict[str, Any]:
    body = await (await client.get("/api/costs/realtime", params=params)).json()
    data: dict[str, Any] = body["data"]
    return data


async def eventually_hourly(client: Client, expected: dict[str, str]) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while (data := await hourly(client))["hourly_cost"] != expected:
            await asyncio.sleep(0.1)
    return data


async def consumer_attached(client: Client) -> None:
    from common.messaging import BROKER

    await client.app[BROKER].wait_connected(10)
    await asyncio.sleep(0.5)  # the consumer binds right after the connection


async def test_live_rate_is_the_sum_of_running_resources_from_events(
    client: Client, settings: CostsSettings
) -> None:
    await consumer_attached(client)
    x = settings.events_exchange
    await publish(x, "resource.created", {"resource": resource(1)})
    await publish(x, "resource.created", {"resource": resource(2, hourly_cost="0.1000000001")})
    await publish(x, "resource.created", {"resource": resource(3, status="stopped")})
    await eventually_hourly(client, {"USD": "0.1416000001"})
    stopped = resource(2, status="stopped", updated_at="2024-01-02T00:00:00+00:00")
    await publish(x, "resource.status_changed", {"resource": stopped, "old_status": "running",
                                                 "new_status": "stopped"})  # fmt: skip
    await eventually_hourly(client, {"USD": "0.0416"})
    await publish(x, "resource.deleted", {"resource": resource(1)})
    await eventually_hourly(client, {})


async def test_a_late_older_event_does_not_overwrite_a_newer_state(client: Client) -> None:
    from common.db import DB_POOL
    from costs.events import on_resource_event

    newer = resource(5, hourly_cost="2", updated_at="2024-01-03T00:00:00+00:00")
    older = resource(5, hourly_cost="1", updated_at="2024-01-02T00:00:00+00:00")
    async with client.app[DB_POOL].acquire() as conn:
        for r in (newer, older):
            event = new_event("resource.updated", source="t", data={"resource": r})
            await on_resource_event(event, conn)
    assert (await hourly(client))["hourly_cost"] == {"USD": "2"}


async def test_projected_month_end_adds_the_live_rate_for_the_hours_left(client: Client) -> None:
    from common.db import DB_POOL
    from costs.events import on_resource_event

    await imported(client, focus_bytes("aws_focus_1_0.csv"))
    async with client.app[DB_POOL].acquire() as conn:
        event = new_event(
            "resource.created", source="t", data={"resource": resource(7, hourly_cost="2")}
        )
        await on_resource_event(event, conn)
    at = datetime(2024, 1, 31, 0, 0, tzinfo=UTC)
    data = await hourly(client, at="2024-01-31T00:00:00", group_by="team")  # no offset: UTC
    from costs.focus import parse_timestamp

    from .conftest import focus_rows

    mtd = sum(
        Decimal(r["BilledCost"])
        for r in focus_rows("aws_focus_1_0.csv")
        if parse_timestamp(r["ChargePeriodStart"]) < at
    )
    assert Decimal(data["month_to_date"]["USD"]) == mtd
    assert Decimal(data["projected_month_end"]["USD"]) == mtd + Decimal(2) * 24
    assert data["groups"] == [{"group": "web", "currency": "USD", "hourly_cost": "2",
                               "running_resources": 1}]  # fmt: skip


async def test_event_without_a_resource_is_refused() -> None:
    import pytest

    from costs.events import on_resource_event

    with pytest.raises(ValueError, match="without a resource"):
        await on_resource_event(new_event("resource.updated", source="t", data={}), None)  # type: ignore[arg-type]
