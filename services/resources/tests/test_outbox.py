"""A resource change and its event are one unit: both commit or neither, and none is lost."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from common.db import DB_POOL
from common.testing import EventTap, TcpProxy, amqp_url_via, make_settings, truncate_schema
from resources import storage
from resources.app import create_app
from resources.domain import Caller, ResourceFields
from resources.events import record_change
from resources.settings import ResourcesSettings

from .conftest import Client, ClientFactory, resource_body


async def outbox_rows(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch("SELECT type, sent_at FROM resources.outbox ORDER BY created_at")
    finally:
        await conn.close()


async def test_failed_transaction_leaves_neither_row_nor_event(
    client: Client, settings: ResourcesSettings, event_tap: EventTap
) -> None:
    pool = client.app[DB_POOL]
    fields = ResourceFields.model_validate(resource_body())

    async def change_then_fail() -> None:
        async with pool.acquire() as conn, conn.transaction():
            resource = await storage.insert(conn, fields)
            await record_change(conn, None, resource, Caller())
            assert len(await conn.fetch("SELECT 1 FROM outbox")) == 1
            raise RuntimeError("failure after the insert")

    with pytest.raises(RuntimeError, match="after the insert"):
        await change_then_fail()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM resources") == 0
    assert await outbox_rows(settings.database_url) == []
    assert await event_tap.quiet(0.5) == []


async def test_committed_change_is_marked_sent_after_delivery(
    client: Client, settings: ResourcesSettings, event_tap: EventTap
) -> None:
    resp = await client.post("/api/resources", json=resource_body())
    assert resp.status == 201
    [event] = await event_tap.take(1)
    assert event["type"] == "resource.created"
    for _ in range(50):
        rows = await outbox_rows(settings.database_url)
        if rows and rows[0]["sent_at"] is not None:
            break
        await asyncio.sleep(0.05)
    assert [r["type"] for r in rows] == ["resource.created"]
    assert rows[0]["sent_at"] is not None


async def test_writes_succeed_while_broker_is_away_and_events_follow_once_it_returns(
    aiohttp_client: ClientFactory,
    pg_url: str,
    redis_prefix: str,
    events_exchange: str,
    amqp_proxy: TcpProxy,
    event_tap: EventTap,
) -> None:
    await truncate_schema(pg_url, "resources")
    settings = make_settings(
        ResourcesSettings,
        database_url=pg_url,
        redis_prefix=redis_prefix,
        events_exchange=events_exchange,
        amqp_url=amqp_url_via(amqp_proxy),
    )
    client = await aiohttp_client(create_app(settings))
    assert (await client.post("/api/resources", json=resource_body(1))).status == 201
    assert len(await event_tap.take(1)) == 1

    await amqp_proxy.cut()
    for n in (2, 3, 4):
        resp = await client.post("/api/resources", json=resource_body(n))
        assert resp.status == 201
    ready = await client.get("/health/ready")
    assert ready.status == 503
    assert (await ready.json())["data"]["checks"]["rabbitmq"].startswith("down")
    assert await event_tap.quiet(1.0) == []
    pending = [r for r in await outbox_rows(pg_url) if r["sent_at"] is None]
    assert len(pending) == 3

    await amqp_proxy.restore()
    events = await event_tap.take(3, timeout=30)
    names = [e["data"]["resource"]["name"] for e in events]
    assert names == ["web-2", "web-3", "web-4"]
    assert await event_tap.quiet(1.0) == []
