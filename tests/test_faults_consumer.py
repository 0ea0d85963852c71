"""Consumer faults: an ack lost after the commit, and poison messages in a real service.

A poison event (one its handler always fails on) is retried the configured number of times, then
dead-lettered, counted in ``events_consumed_total{outcome="dead_lettered"}`` (what the
``CloudOpsEventsDeadLettered`` alert rule watches) and kept in the dead-letter queue, while the
events behind it are handled at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import orjson
import pytest
from prometheus_client import REGISTRY

from common.db import Connection, create_pool, migrate
from common.messaging import (
    Broker,
    CloudEvent,
    Consumer,
    ConsumerRunner,
    OutboxRelay,
    enqueue_event,
    new_event,
    queue_names,
)
from common.testing import TEST_AMQP_URL, EventTap

from .faultproxy import Stack, consumed, eventually, resource, service_stack, wait_ready

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "fault-consumer"


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    await migrate(pg_url, schema, None)
    pool = await create_pool(pg_url, schema=schema, min_size=1, max_size=3)
    yield pool
    await pool.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


@pytest.fixture
async def broker(events_exchange: str) -> AsyncIterator[Broker]:
    broker = Broker(TEST_AMQP_URL, events_exchange, service=SERVICE)
    await broker.connect()
    yield broker
    await broker.close()


def processed(consumer: str) -> float:
    labels = {"service": SERVICE, "consumer": consumer, "outcome": "processed"}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


async def test_a_commit_whose_ack_is_lost_is_still_counted_and_followed_up(
    pool: asyncpg.Pool, broker: Broker
) -> None:
    """The broker can go between a batch's commit and its ack. The change is committed, and the
    redelivery will be skipped as a duplicate: the count and the after-commit step (the live
    feed) must happen now, or never."""
    runner: ConsumerRunner | None = None
    followed: list[str] = []

    async def handler(events: Sequence[CloudEvent], conn: Connection) -> None:
        await conn.execute("SELECT 1")
        assert runner is not None
        assert runner._channel is not None
        await runner._channel.close()  # the ack after this transaction's commit will fail

    async def after_commit(events: Sequence[CloudEvent], _: Any) -> None:
        followed.extend(e.id for e in events)

    name = f"lost-ack-{uuid.uuid4().hex[:6]}"
    consumer = Consumer(
        name=name, routing_keys=["thing.#"], handler=handler, after_commit=after_commit
    )
    runner = ConsumerRunner(broker, pool, consumer, queue_expires_ms=60_000)
    await runner.start()
    before = processed(name)
    event = new_event("thing.created", source="/t", data={"n": 1})

    await broker.publish(event)
    await eventually(
        lambda: _true(bool(followed) or processed(name) > before),
        timeout=10,
        what="the event handled",
    )
    await asyncio.sleep(0.2)

    assert followed == [event.id]
    assert processed(name) == before + 1
    assert await pool.fetchval("SELECT count(*) FROM processed_events") == 1


async def _true(value: bool) -> bool:
    return value


async def test_an_event_is_not_dead_lettered_while_its_database_is_out_of_reach(
    pool: asyncpg.Pool, broker: Broker
) -> None:
    """Two attempts are configured; the database is away for five. An outage is not a poison
    event: it is retried until the database is back, then handled once."""
    calls = 0

    async def handler(events: Sequence[CloudEvent], conn: Connection) -> None:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise ConnectionRefusedError("connect call failed")

    name = f"outage-{uuid.uuid4().hex[:6]}"
    consumer = Consumer(
        name=name,
        routing_keys=["thing.#"],
        handler=handler,
        max_attempts=2,
        retry_base_seconds=0.1,
    )
    runner = ConsumerRunner(broker, pool, consumer, queue_expires_ms=60_000)
    await runner.start()
    try:
        before = processed(name)
        await broker.publish(new_event("thing.created", source="/t", data={"n": 1}))
        await eventually(
            lambda: _true(processed(name) > before), timeout=15, what="handled once the db is back"
        )
    finally:
        await runner.close()
    assert calls == 6
    labels = {"service": SERVICE, "consumer": name, "outcome": "dead_lettered"}
    assert not REGISTRY.get_sample_value("events_consumed_total", labels)


class RelayMeetingAClosedConnection(OutboxRelay):
    """The first batch meets what asyncpg raises when a transaction's connection was lost."""

    failed = False

    async def relay_once(self) -> int:
        if not self.failed:
            self.failed = True
            raise asyncpg.InterfaceError(
                "cannot call Transaction.__aexit__(): the underlying connection is closed"
            )
        return await super().relay_once()


async def test_the_outbox_relay_outlives_a_connection_lost_mid_batch(
    pool: asyncpg.Pool, broker: Broker, event_tap: EventTap, pg_url: str
) -> None:
    event = new_event("thing.created", source="/t", data={"n": 1})
    async with pool.acquire() as conn, conn.transaction():
        await enqueue_event(conn, event)
    schema = await pool.fetchval("SELECT current_schema()")
    relay = RelayMeetingAClosedConnection(
        pool, broker, database_url=pg_url, schema=schema, poll_seconds=0.1
    )
    relay.start()
    try:
        [received] = await event_tap.take(1, timeout=10)
    finally:
        await relay.stop()
    assert relay.failed
    assert received["id"] == event.id


# --- poison messages in the costs service -------------------------------------------------------


@pytest.fixture(scope="module")
def costs_stack() -> Iterator[Stack]:
    with service_stack(("costs",)) as stack:
        yield stack


def dead_letter_rule() -> str:
    """The text of the alert rule on dead-lettered events, up to the next rule."""
    text = (ROOT / "k8s/monitoring/prometheusrule.yaml").read_text()
    start = text.index("- alert: CloudOpsEventsDeadLettered")
    end = text.find("- alert:", start + 1)
    return text[start : end if end > 0 else None]


async def test_a_poison_event_is_dead_lettered_counted_and_alertable_and_blocks_nothing(
    costs_stack: Stack,
) -> None:
    await wait_ready(costs_stack)
    base = costs_stack.url("costs")
    dead_queue = queue_names(costs_stack.exchange, "costs", "inventory")[2]
    dead_before = await consumed(base, "inventory", "dead_lettered")
    # A resource.created without a resource: the inventory handler fails on it every time.
    poison = new_event("resource.created", source="/fault-test", data={"nothing": "useful"})
    behind = [
        new_event(
            "resource.created",
            source="/fault-test",
            data={"resource": _stored(resource(f"behind-{n}"))},
        )
        for n in range(20)
    ]
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(costs_stack.exchange)
        for event in [poison, *behind]:
            await exchange.publish(
                aio_pika.Message(event.to_json(), message_id=event.id), routing_key=event.type
            )
        # The events behind the poison are in the inventory while it is still being retried.
        took = await eventually(
            lambda: _inventory_has(costs_stack, len(behind)), timeout=5, what="events behind"
        )
        assert await consumed(base, "inventory", "dead_lettered") == dead_before

        # 5 attempts, 1 + 2 + 4 + 8 s apart: dead-lettered after about 15 s.
        await eventually(
            lambda: _above(consumed(base, "inventory", "dead_lettered"), dead_before),
            timeout=40,
            what="the poison event dead-lettered",
        )
        queue = await channel.declare_queue(dead_queue, passive=True)
        message = await queue.get(timeout=5)
        assert message is not None
        assert orjson.loads(message.body)["id"] == poison.id
        assert message.headers.get("x-cloudops-attempt") == 5
        await message.ack()
    finally:
        await connection.close()
    assert await consumed(base, "inventory", "dead_lettered") == dead_before + 1
    assert await consumed(base, "inventory", "retried") >= 4
    assert not await costs_stack.fetchval(
        "SELECT count(*) FROM costs.processed_events WHERE event_id = $1", poison.id
    )
    # The alert rule watches exactly this counter, so the operator hears of it.
    rule = dead_letter_rule()
    assert 'increase(events_consumed_total{outcome="dead_lettered"}' in rule
    assert ") > 0" in rule
    print(f"\nevents behind the poison handled within {took:.2f}s")


def _stored(fields: dict[str, Any]) -> dict[str, Any]:
    """A resource as the resources service publishes it (with its id and timestamps)."""
    now = "2026-01-01T00:00:00+00:00"
    return {
        **fields,
        "id": str(uuid.uuid4()),
        "currency": "USD",
        "created_at": now,
        "updated_at": now,
    }


async def _inventory_has(stack: Stack, count: int) -> bool:
    found = await stack.fetchval(
        "SELECT count(*) FROM costs.inventory WHERE external_id LIKE 'behind-%'"
    )
    return bool(found == count)


async def _above(value: Any, threshold: float) -> bool:
    return bool(await value > threshold)
