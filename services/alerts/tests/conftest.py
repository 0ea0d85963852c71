"""Fixtures: the real alerts app against the test database, Redis prefix and exchange."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alerts.app import create_app
from alerts.settings import AlertsSettings
from common.messaging import CloudEvent, new_event, queue_names
from common.testing import TEST_AMQP_URL, make_settings, truncate_schema

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def settings(pg_url: str, redis_prefix: str, events_exchange: str) -> AlertsSettings:
    return make_settings(
        AlertsSettings,
        database_url=pg_url,
        redis_prefix=redis_prefix,
        events_exchange=events_exchange,
        maintenance_interval_seconds=0.2,
        dispatch_interval_seconds=0.05,
        stream_keepalive_seconds=0.5,
    )


async def wait_consuming(exchange: str, timeout: float = 10.0) -> None:
    """Wait until the app's rule consumer listens: its queue is bound before it consumes."""
    queue_name = queue_names(exchange, "alerts", "alert-rules")[0]
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        async with asyncio.timeout(timeout):
            while True:
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(queue_name, passive=True)
                    if queue.declaration_result.consumer_count:
                        return
                except aio_pika.exceptions.ChannelClosed:
                    pass
                finally:
                    if not channel.is_closed:
                        await channel.close()
                await asyncio.sleep(0.05)
    finally:
        await connection.close()


async def start_app(aiohttp_client: ClientFactory, settings: AlertsSettings) -> Client:
    client = await aiohttp_client(create_app(settings))
    await wait_consuming(settings.events_exchange)
    return client


@pytest.fixture
async def client(aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str) -> Client:
    await truncate_schema(pg_url, "alerts")
    return await start_app(aiohttp_client, settings)


class Publisher:
    """Publishes events to the test exchange the way the other services' outbox relays do."""

    def __init__(self, exchange: str) -> None:
        self.exchange_name = exchange
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect(TEST_AMQP_URL)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def publish(self, event: CloudEvent) -> CloudEvent:
        assert self._exchange is not None
        await self._exchange.publish(
            aio_pika.Message(event.to_json(), message_id=event.id), routing_key=event.type
        )
        return event

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


@pytest.fixture
async def publisher(events_exchange: str) -> AsyncIterator[Publisher]:
    pub = Publisher(events_exchange)
    await pub.start()
    yield pub
    await pub.close()


def resource(n: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "external_id": f"i-{n:08x}",
        "name": f"web-{n}",
        "provider": "aws",
        "type": "compute",
        "region": "eu-west-1",
        "account": "123456789012",
        "status": "running",
        "hourly_cost": "0.0416",
        "currency": "USD",
        "tags": {},
        "team": "web",
        "cpu_utilization": None,
        "memory_utilization": None,
    }
    body.update(overrides)
    return body


def status_changed(n: int, old: str, new: str, **overrides: Any) -> CloudEvent:
    return new_event(
        "resource.status_changed",
        source="/cloudops/resources",
        subject=resource(n)["id"],
        data={
            "resource": resource(n, status=new, **overrides),
            "old_status": old,
            "new_status": new,
        },
    )


def resource_updated(n: int, **fields: Any) -> CloudEvent:
    return new_event(
        "resource.updated",
        source="/cloudops/resources",
        subject=resource(n)["id"],
        data={"resource": resource(n, **fields), "changed": sorted(fields)},
    )


async def wait_for(
    probe: Callable[[], Awaitable[Any]], *, timeout: float = 5.0, interval: float = 0.05
) -> Any:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not (result := await probe()):
            await asyncio.sleep(interval)
        return result


async def feed(client: Client, **params: Any) -> dict[str, Any]:
    resp = await client.get("/api/alerts", params=params)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def v2_alert(**labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": "DiskFull", **labels}, "annotations": {"summary": "disk"}}


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class SseReader:
    """Reads Server-Sent Events frames from an open streaming response."""

    def __init__(self, response: Any) -> None:
        self.response = response

    async def next(self, timeout: float = 2.0) -> dict[str, str]:
        """The next event frame (comments and the retry hint skipped)."""
        async with asyncio.timeout(timeout):
            frame: dict[str, str] = {}
            while True:
                line = (await self.response.content.readline()).decode().rstrip("\n")
                if line == "":
                    if "data" in frame:
                        return frame
                    frame = {}
                    continue
                if line.startswith(":"):
                    continue
                key, _, value = line.partition(": ")
                frame[key] = value

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 2.0) -> Any:
        """The data of the first event whose parsed data satisfies ``predicate``."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next(timeout)
                data = json.loads(frame["data"])
                if predicate({**data, "_event": frame.get("event"), "_id": frame.get("id")}):
                    return {**data, "_event": frame.get("event"), "_id": frame.get("id")}
