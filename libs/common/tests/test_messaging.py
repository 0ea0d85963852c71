"""Events through the real RabbitMQ: CloudEvents, the transactional outbox, its relay, consumers."""

from __future__ import annotations

import asyncio
import inspect
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import aio_pika
import asyncpg
import orjson
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aiohttp import web
from aiohttp.test_utils import TestClient
from loguru import logger
from prometheus_client import REGISTRY
from pydantic import BaseModel

from common.config import ServiceSettings
from common.db import DB_POOL, Connection, postgres_ctx
from common.messaging import (
    ATTEMPT_HEADER,
    BROKER,
    AfterCommit,
    Broker,
    CloudEvent,
    Consumer,
    ConsumerRunner,
    OutboxRelay,
    each_event,
    enqueue_event,
    messaging_ctx,
    new_event,
    queue_names,
)
from common.testing import TEST_AMQP_URL, EventTap, TcpProxy, amqp_url_via, make_settings
from common.tracing import TraceContext, parse_traceparent
from common.web import READINESS, create_base_app, json_response

SERVICE = "msg-test"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
Client = TestClient[web.Request, web.Application]


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 10.0
) -> None:
    """Wait until ``condition()`` holds; fails the test after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            result = condition()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.05)


def consumed(consumer: str, outcome: str) -> float:
    labels = {"service": SERVICE, "consumer": consumer, "outcome": outcome}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


@pytest.fixture
async def channel() -> AsyncIterator[AbstractChannel]:
    """The test's own view of the broker (to watch exchanges and queues)."""
    connection = await aio_pika.connect(TEST_AMQP_URL)
    yield await connection.channel()
    await connection.close()


@pytest.fixture
async def queues_to_delete(channel: AbstractChannel) -> AsyncIterator[list[str]]:
    """Names of queues created by a test; deleted afterwards so the broker is left clean."""
    names: list[str] = []
    yield names
    for name in names:
        await channel.queue_delete(name)


@pytest.fixture
async def broker(events_exchange: str) -> AsyncIterator[Broker]:
    broker = Broker(TEST_AMQP_URL, events_exchange, service=SERVICE)
    await broker.connect()
    yield broker
    await broker.close()


class Tap:
    """Every message published to the test exchange, through an exclusive (self-deleting) queue."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    async def start(self, channel: AbstractChannel, exchange_name: str) -> None:
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, arguments={"x-expires": 60_000})
        await queue.bind(exchange, routing_key="#")
        await queue.consume(self.messages.put, no_ack=True)

    async def take(self, count: int, timeout: float = 10.0) -> list[AbstractIncomingMessage]:
        async with asyncio.timeout(timeout):
            return [await self.messages.get() for _ in range(count)]

    async def quiet(self, seconds: float = 0.5) -> list[AbstractIncomingMessage]:
        await asyncio.sleep(seconds)
        return [self.messages.get_nowait() for _ in range(self.messages.qsize())]


@pytest.fixture
async def tap(channel: AbstractChannel, events_exchange: str) -> Tap:
    tap = Tap()
    await tap.start(channel, events_exchange)
    return tap


def relay_for(
    pool: asyncpg.Pool, broker: Broker, pg_url: str, schema: str, **kw: Any
) -> OutboxRelay:
    return OutboxRelay(pool, broker, database_url=pg_url, schema=schema, **kw)


async def unsent(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    return count


async def all_sent(pool: asyncpg.Pool) -> bool:
    return await unsent(pool) == 0


# --- the envelope -------------------------------------------------------------------------------


def test_new_event_continues_the_callers_trace() -> None:
    caller = TraceContext(TRACE_ID, "00f067aa0ba902b7")

    event = new_event("resource.created", source="/resources", data={"id": "r1"}, trace=caller)

    span = parse_traceparent(event.traceparent)
    assert span is not None
    assert span.trace_id == TRACE_ID
    assert span.span_id != caller.span_id


def test_new_event_without_a_trace_starts_one() -> None:
    event = new_event("resource.created", source="/resources", data=None)

    assert parse_traceparent(event.traceparent) is not None


def test_event_json_is_a_cloudevent_without_empty_attributes() -> None:
    event = new_event("cost.anomaly_detected", source="/costs", data={"amount": "1.50"})

    body = orjson.loads(event.to_json())

    assert set(body) == {
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "datacontenttype",
        "data",
        "traceparent",
    }
    assert (body["specversion"], body["datacontenttype"]) == ("1.0", "application/json")
    assert body["time"].endswith("Z")
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert CloudEvent.model_validate(body) == event


# --- outbox and relay ---------------------------------------------------------------------------


async def test_event_committed_with_the_change_is_published_to_the_exchange(
    pool: asyncpg.Pool, broker: Broker, tap: Tap, pg_url: str, schema: str
) -> None:
    event = new_event("resource.created", source="/resources", data={"id": "r1"}, subject="r1")
    async with pool.acquire() as conn, conn.transaction():
        await enqueue_event(conn, event, request_id="req-42")
    relay = relay_for(pool, broker, pg_url, schema, poll_seconds=0.2)

    relay.start()
    try:
        [message] = await tap.take(1)
        await eventually(lambda: all_sent(pool))
    finally:
        await relay.stop()

    assert CloudEvent.model_validate_json(message.body) == event
    assert message.routing_key == "resource.created"
    assert message.message_id == event.id
    assert message.content_type == "application/cloudevents+json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.headers == {"x-request-id": "req-42", "traceparent": event.traceparent}


async def test_event_without_a_trace_is_published_without_traceparent(
    broker: Broker, event_tap: EventTap
) -> None:
    event = CloudEvent(source="/t", type="thing.created", data={"n": 1})

    await broker.publish(event)

    [received] = await event_tap.take(1)
    assert received == {
        "specversion": "1.0",
        "id": event.id,
        "source": "/t",
        "type": "thing.created",
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {"n": 1},
        "_headers": {},
    }
    assert REGISTRY.get_sample_value(
        "events_published_total", {"service": SERVICE, "type": "thing.created"}
    )


async def test_publishing_on_a_closed_channel_is_a_connection_error(broker: Broker) -> None:
    # What the outbox relay sees when the broker closes the channel mid-batch: a broker outage it
    # retries with back-off, not an unexpected error that would end the relay for good.
    assert broker.channel is not None
    await broker.channel.close()

    with pytest.raises(ConnectionError, match="channel is closed"):
        await broker.publish(new_event("thing.created", source="/t", data={}))


async def test_commit_wakes_the_relay_without_waiting_for_its_poll(
    pool: asyncpg.Pool, broker: Broker, tap: Tap, pg_url: str, schema: str
) -> None:
    relay = relay_for(pool, broker, pg_url, schema, poll_seconds=30)
    relay.start()
    try:
        await asyncio.sleep(0.5)  # the relay has found the outbox empty and now waits
        event = new_event("resource.updated", source="/resources", data={})
        async with pool.acquire() as conn, conn.transaction():
            await enqueue_event(conn, event)

        [message] = await tap.take(1, timeout=5)
    finally:
        await relay.stop()

    assert message.message_id == event.id


async def test_rolled_back_transaction_leaves_no_event_and_publishes_nothing(
    pool: asyncpg.Pool, broker: Broker, tap: Tap, pg_url: str, schema: str
) -> None:
    class ChangeFailed(Exception):
        pass

    async def delete_then_fail() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await enqueue_event(conn, new_event("resource.deleted", source="/r", data={}))
            raise ChangeFailed

    with pytest.raises(ChangeFailed):
        await delete_then_fail()

    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert await relay_for(pool, broker, pg_url, schema).relay_once() == 0
    assert await tap.quiet() == []


async def test_relay_publishes_in_commit_order_and_reports_what_is_left(
    pool: asyncpg.Pool, broker: Broker, tap: Tap, pg_url: str, schema: str
) -> None:
    events = [new_event(f"thing.n{i}", source="/t", data={"n": i}) for i in range(3)]
    for event in events:
        async with pool.acquire() as conn, conn.transaction():
            await enqueue_event(conn, event)
    relay = relay_for(pool, broker, pg_url, schema, batch_size=2)
    gauge = {"service": SERVICE}

    assert await relay.relay_once() == 2
    assert REGISTRY.get_sample_value("outbox_pending_events", gauge) == 1
    assert (REGISTRY.get_sample_value("outbox_lag_seconds", gauge) or 0) > 0
    assert await relay.relay_once() == 1
    assert REGISTRY.get_sample_value("outbox_pending_events", gauge) == 0
    assert REGISTRY.get_sample_value("outbox_lag_seconds", gauge) == 0
    assert await relay.relay_once() == 0

    assert [m.message_id for m in await tap.take(3)] == [e.id for e in events]
    assert await unsent(pool) == 0


async def test_one_transactions_events_leave_in_write_order_across_batches(
    pool: asyncpg.Pool, broker: Broker, event_tap: EventTap, pg_url: str, schema: str
) -> None:
    events = [new_event("thing.created", source="/t", data={"n": n}) for n in range(7)]
    async with pool.acquire() as conn, conn.transaction():
        for event in events:
            await enqueue_event(conn, event)
    relay = relay_for(pool, broker, pg_url, schema, batch_size=2, poll_seconds=30)

    relay.start()
    try:
        arrived = await event_tap.take(7, timeout=5)
    finally:
        await relay.stop()

    assert [e["id"] for e in arrived] == [e.id for e in events]


async def test_only_one_relay_per_schema_publishes(
    pool: asyncpg.Pool, broker: Broker, event_tap: EventTap, pg_url: str, schema: str
) -> None:
    relays = [relay_for(pool, broker, pg_url, schema, poll_seconds=0.05) for _ in range(3)]
    for relay in relays:
        relay.start()
    try:
        events = [new_event("thing.created", source="/t", data={"n": n}) for n in range(10)]
        for event in events:
            async with pool.acquire() as conn, conn.transaction():
                await enqueue_event(conn, event)
        arrived = await event_tap.take(10)
        extra = await event_tap.quiet(0.5)
    finally:
        for relay in relays:
            await relay.stop()

    assert [e["id"] for e in arrived] == [e.id for e in events]
    assert extra == []
    assert await relay_lock_holders(pool, schema) == []


async def relay_lock_holders(pool: asyncpg.Pool, schema: str) -> list[int]:
    """Backend pids holding the relay's advisory lock for ``schema``."""
    rows = await pool.fetch(
        """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND objid = hashtext($1)::oid""",
        f"cloudops.outbox.{schema}",
    )
    return [r["pid"] for r in rows]


async def one_lock_holder(pool: asyncpg.Pool, schema: str, other_than: int | None = None) -> bool:
    holders = await relay_lock_holders(pool, schema)
    return len(holders) == 1 and holders[0] != other_than


async def test_relay_that_loses_its_lock_connection_takes_the_lock_again(
    pool: asyncpg.Pool, broker: Broker, event_tap: EventTap, pg_url: str, schema: str
) -> None:
    relay = relay_for(pool, broker, pg_url, schema, poll_seconds=0.05)
    relay.start()
    try:
        await eventually(lambda: one_lock_holder(pool, schema))
        [first_holder] = await relay_lock_holders(pool, schema)

        await pool.fetchval("SELECT pg_terminate_backend($1)", first_holder)
        await eventually(lambda: one_lock_holder(pool, schema, other_than=first_holder))
        event = new_event("thing.created", source="/t", data={})
        async with pool.acquire() as conn, conn.transaction():
            await enqueue_event(conn, event)
        [received] = await event_tap.take(1)
    finally:
        await relay.stop()

    assert received["id"] == event.id
    assert await relay_lock_holders(pool, schema) == []


async def test_relay_keeps_trying_while_postgres_is_unreachable(
    pool: asyncpg.Pool, broker: Broker, schema: str, log_lines: list[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    relay = relay_for(
        pool, broker, f"postgresql://postgres@127.0.0.1:{closed_port}/x", schema, poll_seconds=0.05
    )

    relay.start()
    await eventually(
        lambda: sum('"outbox relay cannot reach postgres"' in x for x in log_lines) >= 3
    )
    await relay.stop()

    assert relay._task is not None
    assert relay._task.cancelled()


async def test_relay_marks_nothing_sent_while_the_broker_is_not_connected(
    pool: asyncpg.Pool, pg_url: str, schema: str, events_exchange: str
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await enqueue_event(conn, new_event("thing.created", source="/t", data={}))
    never_connected = Broker(TEST_AMQP_URL, events_exchange, service=SERVICE)

    with pytest.raises(ConnectionError, match="broker not connected"):
        await relay_for(pool, never_connected, pg_url, schema).relay_once()
    with pytest.raises(ConnectionError, match="broker not connected"):
        await never_connected.publish(new_event("thing.created", source="/t", data={}))

    assert await unsent(pool) == 1


async def test_sent_events_are_purged_after_keep_sent(
    pool: asyncpg.Pool, broker: Broker, pg_url: str, schema: str
) -> None:
    relay = relay_for(pool, broker, pg_url, schema, keep_sent=timedelta(0))
    first, second = (new_event("thing.created", source="/t", data={}) for _ in range(2))
    async with pool.acquire() as conn:
        await enqueue_event(conn, first)
        await relay.relay_once()
        await enqueue_event(conn, second)
        await relay.relay_once()

    rows = await pool.fetch("SELECT id::text, sent_at IS NOT NULL AS sent FROM outbox")
    assert [(r["id"], r["sent"]) for r in rows] == [(second.id, True)]


async def test_events_written_while_the_broker_is_cut_arrive_after_it_returns(
    pool: asyncpg.Pool,
    amqp_proxy: TcpProxy,
    tap: Tap,
    pg_url: str,
    schema: str,
    events_exchange: str,
) -> None:
    broker = Broker(
        amqp_url_via(amqp_proxy) + "?reconnect_interval=0.5", events_exchange, service=SERVICE
    )
    await broker.connect()
    relay = relay_for(pool, broker, pg_url, schema, poll_seconds=0.1)
    relay.start()
    try:
        before = new_event("thing.before", source="/t", data={})
        async with pool.acquire() as conn, conn.transaction():
            await enqueue_event(conn, before)
        assert [m.message_id for m in await tap.take(1)] == [before.id]

        await amqp_proxy.cut()
        await eventually(lambda: not broker.ready)
        during = [new_event("thing.during", source="/t", data={"n": n}) for n in range(3)]
        for event in during:
            async with pool.acquire() as conn, conn.transaction():
                await enqueue_event(conn, event)
        assert await tap.quiet(1.0) == []
        assert await unsent(pool) == 3

        await amqp_proxy.restore()
        arrived = await tap.take(3, timeout=30)
        await eventually(lambda: all_sent(pool))
    finally:
        await relay.stop()
        await broker.close()

    assert [m.message_id for m in arrived] == [e.id for e in during]


async def _has_consumer(queue_name: str) -> bool:
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        return bool(queue.declaration_result.consumer_count)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        await connection.close()


# --- consumers ----------------------------------------------------------------------------------


class Handled:
    """A consumer handler recording what it saw; ``fail_times`` makes the first calls raise."""

    def __init__(self, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        self.calls: list[str] = []

    async def __call__(self, event: CloudEvent, conn: Connection) -> str | None:
        self.calls.append(event.id)
        # Written in the consumer's transaction: it must vanish if the handler fails.
        await conn.execute("INSERT INTO side_effects (event_id) VALUES ($1)", event.id)
        logger.info("handled", attempt=len(self.calls))
        if len(self.calls) <= self.fail_times:
            raise RuntimeError("downstream refused")
        return None


@pytest.fixture
async def side_effects(pool: asyncpg.Pool) -> None:
    await pool.execute("CREATE TABLE side_effects (event_id text NOT NULL)")


@pytest.fixture
async def start_consumer(
    broker: Broker, pool: asyncpg.Pool, queues_to_delete: list[str], side_effects: None
) -> AsyncIterator[Callable[..., Awaitable[ConsumerRunner]]]:
    runners: list[ConsumerRunner] = []

    async def start(
        handler: Handled,
        max_attempts: int = 3,
        after_commit: AfterCommit | None = None,
        **options: Any,
    ) -> ConsumerRunner:
        consumer = Consumer(
            name=f"c{uuid.uuid4().hex[:8]}",
            routing_keys=["thing.*"],
            handler=each_event(handler),
            max_attempts=max_attempts,
            retry_base_seconds=0.05,
            after_commit=after_commit,
            **options,
        )
        runner = ConsumerRunner(broker, pool, consumer, queue_expires_ms=60_000)
        queues_to_delete.extend([runner.queue, *runner.retry_queues.values(), runner.dead_queue])
        await runner.start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        await runner.close()


async def dead_letters(
    channel: AbstractChannel, runner: ConsumerRunner, count: int, timeout: float = 10.0
) -> list[AbstractIncomingMessage]:
    queue: AbstractQueue = await channel.declare_queue(runner.dead_queue, passive=True)
    found: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(timeout):
        while len(found) < count:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                found.append(message)
    return found


async def processed_ids(pool: asyncpg.Pool, consumer: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT event_id FROM processed_events WHERE consumer = $1 ORDER BY event_id", consumer
    )
    return [r["event_id"] for r in rows]


def test_queue_names_are_scoped_by_exchange_service_and_consumer() -> None:
    assert queue_names("cloudops.events", "alerts", "on_cost") == (
        "cloudops.events.alerts.on_cost",
        "cloudops.events.alerts.on_cost.retry",
        "cloudops.events.alerts.on_cost.dead",
    )


@pytest.mark.parametrize(
    ("attempt", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (20, 60.0)]
)
def test_retry_delay_doubles_up_to_the_cap(attempt: int, delay: float) -> None:
    consumer = Consumer(name="c", routing_keys=["x"], handler=each_event(Handled()))

    assert consumer.retry_delay(attempt) == delay


async def test_handler_runs_once_per_event_id_even_if_delivered_twice(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]], broker: Broker, pool: asyncpg.Pool
) -> None:
    handler = Handled()
    runner = await start_consumer(handler)
    name = runner.consumer.name
    processed, duplicate = consumed(name, "processed"), consumed(name, "duplicate")
    event = new_event("thing.created", source="/t", data={"n": 1})

    await broker.publish(event)
    await broker.publish(event)
    await eventually(
        lambda: (
            (consumed(name, "processed"), consumed(name, "duplicate"))
            == (processed + 1, duplicate + 1)
        )
    )

    assert handler.calls == [event.id]
    assert await processed_ids(pool, name) == [event.id]
    assert await pool.fetchval("SELECT count(*) FROM side_effects") == 1


async def test_after_commit_sees_the_committed_change_once_and_never_for_failed_attempts(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]], broker: Broker, pool: asyncpg.Pool
) -> None:
    seen: list[tuple[str, int]] = []

    async def after_commit(handled: Sequence[CloudEvent], _: Any) -> None:
        for event in handled:
            # Read on another connection: only a committed change is visible there.
            visible = await pool.fetchval(
                "SELECT count(*) FROM side_effects WHERE event_id = $1", event.id
            )
            seen.append((event.id, visible))

    handler = Handled(fail_times=1)
    runner = await start_consumer(handler, after_commit=after_commit)
    name = runner.consumer.name
    duplicate = consumed(name, "duplicate")
    event = new_event("thing.created", source="/t", data={"n": 1})

    await broker.publish(event)
    await eventually(lambda: bool(seen))
    await broker.publish(event)
    await eventually(lambda: consumed(name, "duplicate") == duplicate + 1)

    assert len(handler.calls) == 2
    assert seen == [(event.id, 1)]


class Gated(Handled):
    """Holds the first event until ``gate`` opens, so the ones published meanwhile wait in a
    backlog; records the transaction of every call and fails the events in ``fail_ids``."""

    def __init__(self, fail_ids: set[str] | None = None) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.fail_ids = fail_ids or set()
        self.transactions: list[int] = []

    async def __call__(self, event: CloudEvent, conn: Connection) -> str:
        await self.gate.wait()
        self.transactions.append(await conn.fetchval("SELECT txid_current()"))
        await super().__call__(event, conn)
        if event.id in self.fail_ids:
            raise RuntimeError("downstream refused")
        return f"result-{event.id}"


async def publish_behind_gate(
    broker: Broker, runner: ConsumerRunner, handler: Gated, events: list[CloudEvent]
) -> None:
    """Publish ``events`` while the first is held, then let them all through."""
    for event in events:
        await broker.publish(event)
    await eventually(lambda: runner.backlog == len(events) - 1)
    handler.gate.set()


async def test_a_backlog_is_handled_in_batches_each_in_one_transaction(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]], broker: Broker, pool: asyncpg.Pool
) -> None:
    handled: list[list[tuple[str, Any]]] = []

    async def after_commit(batch: Sequence[CloudEvent], results: list[str]) -> None:
        handled.append([(event.id, result) for event, result in zip(batch, results, strict=True)])

    handler = Gated()
    runner = await start_consumer(handler, after_commit=after_commit, batch_size=20, concurrency=1)
    events = [new_event("thing.created", source="/t", data={"n": n}) for n in range(41)]

    await publish_behind_gate(broker, runner, handler, events)
    await eventually(lambda: sum(map(len, handled)) == 41)

    # The held event alone, then the 40 that waited: two full batches, each one transaction.
    assert [len(batch) for batch in handled] == [1, 20, 20]
    assert len(set(handler.transactions)) == 3
    assert handler.calls == [e.id for e in events]  # delivery order within and across batches
    assert [pair for batch in handled for pair in batch] == [
        (e.id, f"result-{e.id}") for e in events
    ]
    assert await pool.fetchval("SELECT count(*) FROM side_effects") == 41
    assert len(await processed_ids(pool, runner.consumer.name)) == 41


async def test_a_failing_event_in_a_batch_fails_alone_and_the_others_apply_once(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]],
    broker: Broker,
    pool: asyncpg.Pool,
    channel: AbstractChannel,
) -> None:
    events = [new_event("thing.created", source="/t", data={"n": n}) for n in range(6)]
    bad = events[3]
    handler = Gated(fail_ids={bad.id})
    runner = await start_consumer(handler, max_attempts=1, concurrency=1)
    name = runner.consumer.name
    processed, dead = consumed(name, "processed"), consumed(name, "dead_lettered")

    await publish_behind_gate(broker, runner, handler, events)
    [message] = await dead_letters(channel, runner, 1)
    await eventually(lambda: consumed(name, "processed") == processed + 5)

    assert message.message_id == bad.id
    assert consumed(name, "dead_lettered") == dead + 1
    # The batch of five rolled back at the bad event, then each ran again on its own.
    assert handler.calls == [e.id for e in events[:4]] + [e.id for e in events[1:]]
    good = sorted(e.id for e in events if e is not bad)
    assert await processed_ids(pool, name) == good
    rows = await pool.fetch("SELECT event_id FROM side_effects ORDER BY event_id")
    assert [r["event_id"] for r in rows] == good


async def test_the_same_event_twice_in_one_batch_is_handled_once(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]], broker: Broker, pool: asyncpg.Pool
) -> None:
    first, twice, last = (new_event("thing.created", source="/t", data={}) for _ in range(3))
    handler = Gated()
    runner = await start_consumer(handler, concurrency=1)
    name = runner.consumer.name
    processed, duplicate = consumed(name, "processed"), consumed(name, "duplicate")

    await publish_behind_gate(broker, runner, handler, [first, twice, twice, last])
    await eventually(lambda: consumed(name, "processed") == processed + 3)

    assert consumed(name, "duplicate") == duplicate + 1
    assert handler.calls == [first.id, twice.id, last.id]
    assert len(set(handler.transactions[1:])) == 1
    assert await pool.fetchval("SELECT count(*) FROM side_effects") == 3


async def test_events_not_matching_the_routing_keys_are_not_delivered(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]], broker: Broker
) -> None:
    handler = Handled()
    runner = await start_consumer(handler)
    wanted = new_event("thing.created", source="/t", data={})

    await broker.publish(new_event("other.created", source="/t", data={}))
    await broker.publish(new_event("thing.created.deep", source="/t", data={}))
    await broker.publish(wanted)
    await eventually(lambda: len(handler.calls) == 1)
    await asyncio.sleep(0.2)

    assert handler.calls == [wanted.id]
    assert runner.consumer.routing_keys == ["thing.*"]


async def test_failing_handler_is_retried_then_succeeds_once(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]], broker: Broker, pool: asyncpg.Pool
) -> None:
    handler = Handled(fail_times=2)
    runner = await start_consumer(handler, max_attempts=3)
    name = runner.consumer.name
    retried, processed = consumed(name, "retried"), consumed(name, "processed")
    event = new_event("thing.created", source="/t", data={})

    await broker.publish(event)
    await eventually(lambda: consumed(name, "processed") == processed + 1)

    assert handler.calls == [event.id] * 3
    assert consumed(name, "retried") == retried + 2
    assert await processed_ids(pool, name) == [event.id]
    assert await pool.fetchval("SELECT count(*) FROM side_effects") == 1


async def test_handler_failing_every_time_is_dead_lettered_after_max_attempts(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]],
    broker: Broker,
    pool: asyncpg.Pool,
    channel: AbstractChannel,
) -> None:
    handler = Handled(fail_times=99)
    runner = await start_consumer(handler, max_attempts=3)
    name = runner.consumer.name
    retried, dead = consumed(name, "retried"), consumed(name, "dead_lettered")
    event = new_event("thing.created", source="/t", data={})

    await broker.publish(event, headers={"x-request-id": "req-dead"})
    [message] = await dead_letters(channel, runner, 1)

    assert handler.calls == [event.id] * 3
    assert message.message_id == event.id
    assert message.headers[ATTEMPT_HEADER] == 3
    assert message.headers["x-request-id"] == "req-dead"
    assert consumed(name, "retried") == retried + 2
    assert consumed(name, "dead_lettered") == dead + 1
    # The handler's writes and the de-duplication record rolled back with each failure.
    assert await processed_ids(pool, name) == []
    assert await pool.fetchval("SELECT count(*) FROM side_effects") == 0


def test_each_retry_delay_has_its_own_queue(broker: Broker, pool: asyncpg.Pool) -> None:
    consumer = Consumer(name="c", routing_keys=["x"], handler=each_event(Handled()), max_attempts=9)
    runner = ConsumerRunner(broker, pool, consumer)

    # Delays 1, 2, 4, ... capped at 60 s: the capped attempts share one queue.
    assert list(runner.retry_queues) == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert runner.retry_queues[60.0] == f"{runner.queue}.retry.60000ms"


class FailsUntil(Handled):
    """Fails an event until its ``n``-th attempt (from the event's data)."""

    async def __call__(self, event: CloudEvent, conn: Connection) -> str | None:
        self.calls.append(event.id)
        if self.calls.count(event.id) < event.data["succeeds_on"]:
            raise RuntimeError("not yet")
        return None


async def test_a_long_retry_delay_does_not_hold_back_a_short_one(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]], broker: Broker
) -> None:
    handler = FailsUntil()
    await start_consumer(handler, max_attempts=9)  # delays 0.05, 0.1, 0.2, ... 6.4 s
    slow = new_event("thing.created", source="/t", data={"succeeds_on": 99})
    quick = new_event("thing.created", source="/t", data={"succeeds_on": 2})

    # The slow event's 8th attempt waits 6.4 s; the quick one's first retry 0.05 s, queued after.
    await broker.publish(slow, headers={ATTEMPT_HEADER: "8"})
    await eventually(lambda: handler.calls.count(slow.id) == 1)
    await broker.publish(quick)
    await eventually(lambda: handler.calls.count(quick.id) == 2, timeout=3)

    assert handler.calls.count(slow.id) == 1  # still waiting out its own, longer delay


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x00not json", id="not-json"),
        pytest.param(b'{"type": "thing.created"}', id="json-but-not-a-cloudevent"),
        pytest.param(b"[1, 2]", id="json-array"),
    ],
)
async def test_poison_message_goes_straight_to_the_dead_letter_queue(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]],
    broker: Broker,
    channel: AbstractChannel,
    body: bytes,
) -> None:
    handler = Handled()
    runner = await start_consumer(handler)
    name = runner.consumer.name
    dead, retried = consumed(name, "dead_lettered"), consumed(name, "retried")
    assert broker.exchange is not None

    await broker.exchange.publish(
        aio_pika.Message(body, message_id="poison-1"), routing_key="thing.created"
    )
    [message] = await dead_letters(channel, runner, 1)

    assert (message.body, message.message_id) == (body, "poison-1")
    assert handler.calls == []
    assert consumed(name, "dead_lettered") == dead + 1
    assert consumed(name, "retried") == retried


async def test_consumer_logs_carry_the_events_request_and_trace_ids(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]],
    broker: Broker,
    log_lines: list[str],
) -> None:
    handler = Handled()
    await start_consumer(handler)
    event = new_event(
        "thing.created", source="/t", data={}, trace=TraceContext(TRACE_ID, "00f067aa0ba902b7")
    )

    await broker.publish(event, headers={"x-request-id": "req-from-api"})
    await eventually(lambda: any('"handled"' in x for x in log_lines))

    [handled] = [orjson.loads(x) for x in log_lines if '"handled"' in x]
    assert {k: handled[k] for k in ("request_id", "trace_id", "event_id")} == {
        "request_id": "req-from-api",
        "trace_id": TRACE_ID,
        "event_id": event.id,
    }


class Republishing(Handled):
    """Fails its first call, and creates a follow-up event on each, as a consumer may."""

    def __init__(self) -> None:
        super().__init__(fail_times=1)
        self.follow_ups: list[CloudEvent] = []

    async def __call__(self, event: CloudEvent, conn: Connection) -> str | None:
        self.follow_ups.append(new_event("thing.followed", source="/t", data={}))
        return await super().__call__(event, conn)


async def test_each_handling_of_a_consumed_event_logs_under_its_own_span_in_the_events_trace(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]],
    broker: Broker,
    log_lines: list[str],
) -> None:
    handler = Republishing()
    await start_consumer(handler)
    publisher = TraceContext(TRACE_ID, "00f067aa0ba902b7")
    event = new_event("thing.created", source="/t", data={}, trace=publisher)
    published_span = parse_traceparent(event.traceparent)
    assert published_span is not None

    await broker.publish(event, headers={"x-request-id": "req-from-api"})
    await eventually(lambda: sum('"handled"' in x for x in log_lines) == 2)

    lines = [orjson.loads(x) for x in log_lines]
    mine = [line for line in lines if line.get("event_id") == event.id]
    assert {line["message"] for line in mine} >= {"handled", "event handling failed, will retry"}
    assert {line["trace_id"] for line in mine} == {TRACE_ID}
    assert {line["request_id"] for line in mine} == {"req-from-api"}
    spans = [line["span_id"] for line in mine]
    assert all(isinstance(span, str) and len(span) == 16 for span in spans), spans
    assert published_span.span_id not in spans
    first, retry, second = (
        next(line for line in mine if line["message"] == "handled" and line["attempt"] == 1),
        next(line for line in mine if line["message"] == "event handling failed, will retry"),
        next(line for line in mine if line["message"] == "handled" and line["attempt"] == 2),
    )
    # One span per handling: the consumer's own line shares the handler's; a redelivery is new.
    assert first["span_id"] == retry["span_id"] != second["span_id"]
    # What a handler publishes continues the trace of the event it handles.
    assert {parse_traceparent(e.traceparent).trace_id for e in handler.follow_ups} == {TRACE_ID}  # type: ignore[union-attr]


async def test_a_poison_messages_line_carries_the_trace_of_its_traceparent_header(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]],
    broker: Broker,
    channel: AbstractChannel,
    log_lines: list[str],
) -> None:
    runner = await start_consumer(Handled())
    assert broker.exchange is not None
    await broker.exchange.publish(
        aio_pika.Message(
            b"{not json", message_id="poison-traced", headers={"traceparent": TRACEPARENT}
        ),
        routing_key="thing.created",
    )
    await dead_letters(channel, runner, 1)
    [line] = [orjson.loads(x) for x in log_lines if '"poison message dead-lettered"' in x]
    assert line["trace_id"] == TRACE_ID
    assert len(line["span_id"]) == 16
    assert line["span_id"] != "00f067aa0ba902b7"


PLANTED_SECRET = "co_planted_in_event_data_0123456789abcdef"


class Order(BaseModel):
    quantity: int
    note: str


class Validating(Handled):
    """Validates the event's data with a model, as a consumer of a typed event does."""

    async def __call__(self, event: CloudEvent, conn: Connection) -> str | None:
        Order.model_validate(event.data)
        return await super().__call__(event, conn)


async def test_a_validation_error_over_event_data_is_logged_without_the_data(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]],
    broker: Broker,
    channel: AbstractChannel,
    log_lines: list[str],
) -> None:
    runner = await start_consumer(Validating(), max_attempts=2)
    event = new_event(
        "thing.created", source="/t", data={"quantity": PLANTED_SECRET, "note": [PLANTED_SECRET]}
    )
    await broker.publish(event)
    await dead_letters(channel, runner, 1)

    lines = [orjson.loads(x) for x in log_lines]
    [dead] = [line for line in lines if line["message"] == "event dead-lettered"]
    assert dead["exception.type"] == "RedactedValidationError"
    assert dead["exception.message"] == (
        "2 validation errors for Order: quantity [int_parsing]; note [string_type]"
    )
    assert "Order.model_validate(event.data)" in dead["exception.stacktrace"]
    assert not [x for x in log_lines if PLANTED_SECRET in x]


# --- the cleanup_ctx ----------------------------------------------------------------------------


async def test_service_publishes_and_consumes_through_messaging_ctx(
    aiohttp_client: Callable[..., Awaitable[Client]],
    pg_url: str,
    events_exchange: str,
    queues_to_delete: list[str],
) -> None:
    service = f"svc_{uuid.uuid4().hex[:10]}"
    settings = make_settings(
        ServiceSettings, service_name=service, database_url=pg_url, events_exchange=events_exchange
    )
    received: list[CloudEvent] = []

    async def on_thing(event: CloudEvent, conn: Connection) -> None:
        received.append(event)

    async def create_thing(request: web.Request) -> web.Response:
        event = new_event("thing.created", source=f"/{service}", data={"name": "vm"})
        async with request.app[DB_POOL].acquire() as conn, conn.transaction():
            await enqueue_event(conn, event, request_id=request.headers["X-Request-ID"])
        return json_response({"event_id": event.id}, status=202)

    consumer = Consumer(
        name="on_thing", routing_keys=["thing.created"], handler=each_event(on_thing)
    )
    queues_to_delete.extend(queue_names(events_exchange, service, consumer.name))
    app = create_base_app(settings)
    app.router.add_post("/things", create_thing)
    app.cleanup_ctx.append(postgres_ctx(None))
    app.cleanup_ctx.append(messaging_ctx([consumer]))
    try:
        client = await aiohttp_client(app)
        # Events published before the consumer's queue exists are routed nowhere: wait for it.
        await eventually(
            lambda: _has_consumer(queue_names(events_exchange, service, "on_thing")[0])
        )

        response = await client.post("/things", headers={"X-Request-ID": "req-things"})
        event_id = orjson.loads(await response.read())["data"]["event_id"]
        await eventually(lambda: len(received) == 1)
        ready = await client.get("/health/ready")

        assert response.status == 202
        assert [e.id for e in received] == [event_id]
        assert received[0].data == {"name": "vm"}
        assert ready.status == 200
        assert orjson.loads(await ready.read())["data"]["checks"] == {
            "postgres": "ok",
            "rabbitmq": "ok",
            "consumers": "ok",
        }
        await client.close()
        assert not app[BROKER].ready
        assert app[READINESS].checks.keys() == {"postgres", "rabbitmq", "consumers"}
    finally:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{service}" CASCADE')
        finally:
            await conn.close()


async def test_service_starts_while_the_broker_is_away(
    aiohttp_client: Callable[..., Awaitable[Client]],
    pg_url: str,
    events_exchange: str,
    amqp_proxy: TcpProxy,
) -> None:
    await amqp_proxy.cut()
    service = f"svc_{uuid.uuid4().hex[:10]}"
    settings = make_settings(
        ServiceSettings,
        service_name=service,
        database_url=pg_url,
        events_exchange=events_exchange,
        amqp_url=amqp_url_via(amqp_proxy),
    )
    app = create_base_app(settings)
    app.cleanup_ctx.append(postgres_ctx(None))
    app.cleanup_ctx.append(messaging_ctx(relay=False))
    try:
        client = await aiohttp_client(app)
        ready = await client.get("/health/ready")

        assert ready.status == 503
        assert orjson.loads(await ready.read())["data"]["checks"] == {
            "postgres": "ok",
            "rabbitmq": "down: ConnectionError",
        }
        assert (await client.get("/health/live")).status == 200
        await amqp_proxy.restore()
        await app[BROKER].wait_connected(15)
        assert (await client.get("/health/ready")).status == 200
    finally:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{service}" CASCADE')
        finally:
            await conn.close()


class SlowHandler(Handled):
    """Signals when it has started, then takes ``seconds`` before it finishes."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.started = asyncio.Event()

    async def __call__(self, event: CloudEvent, conn: Connection) -> None:
        self.started.set()
        await asyncio.sleep(self.seconds)
        await super().__call__(event, conn)


async def test_close_lets_the_message_in_hand_finish_and_ack(
    start_consumer: Callable[..., Awaitable[ConsumerRunner]],
    broker: Broker,
    pool: asyncpg.Pool,
    channel: AbstractChannel,
) -> None:
    handler = SlowHandler(0.5)
    runner = await start_consumer(handler)
    event = new_event("thing.created", source="/t", data={})
    await broker.publish(event)
    async with asyncio.timeout(10):
        await handler.started.wait()

    await runner.close()

    assert await processed_ids(pool, runner.consumer.name) == [event.id]
    assert broker.ready, "an ack on a closed channel would have closed the connection"
    queue = await channel.declare_queue(runner.queue, passive=True)
    assert queue.declaration_result.message_count == 0


async def test_consumer_that_cannot_attach_is_retried_and_readiness_says_so(
    aiohttp_client: Callable[..., Awaitable[Client]],
    pg_url: str,
    events_exchange: str,
    channel: AbstractChannel,
) -> None:
    service = f"svc_{uuid.uuid4().hex[:10]}"
    consumer = Consumer(name="blocked", routing_keys=["thing.*"], handler=each_event(Handled()))
    main_queue = queue_names(events_exchange, service, "blocked")[0]
    # A queue of that name with other arguments makes the consumer's declaration fail.
    await channel.declare_queue(main_queue, durable=False, arguments={"x-expires": 60_000})
    settings = make_settings(
        ServiceSettings, service_name=service, database_url=pg_url, events_exchange=events_exchange
    )
    app = create_base_app(settings)
    app.cleanup_ctx.append(postgres_ctx(None))
    app.cleanup_ctx.append(messaging_ctx([consumer], relay=False))
    try:
        client = await aiohttp_client(app)
        await app[BROKER].wait_connected(15)
        await asyncio.sleep(1.0)
        ready = await client.get("/health/ready")
        assert ready.status == 503
        checks = orjson.loads(await ready.read())["data"]["checks"]
        assert checks["consumers"] == "down: ConnectionError"

        await channel.queue_delete(main_queue)

        async def attached() -> bool:
            return (await client.get("/health/ready")).status == 200

        await eventually(attached, timeout=20)
    finally:
        for name in queue_names(events_exchange, service, "blocked"):
            await channel.queue_delete(name)
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{service}" CASCADE')
        finally:
            await conn.close()
