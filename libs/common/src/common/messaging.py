"""Events over RabbitMQ (aio-pika): CloudEvents envelope, transactional outbox, relay and consumers.

- Writers call :func:`enqueue_event` inside the same PostgreSQL transaction as their change, so the
  change and its event commit or roll back together.
- :class:`OutboxRelay` publishes pending rows as persistent messages to the durable topic exchange
  (routing key = event type) and marks a row sent only after the broker confirmed it. One relay per
  schema is active at a time (a PostgreSQL advisory lock), which keeps events in commit order.
- :class:`Consumer` hands the messages that have arrived to its handler in batches, each batch
  inside one transaction that also records the event ids (so a handler can work set-based), acks
  only after that commit, skips ids it has seen, retries failures with growing delays through a
  per-queue retry queue, and dead-letters poison messages. A batch whose transaction fails is
  handled again one message at a time, so one bad event neither fails nor holds back the others.
  Each handling of an event is a span of its own in the event's trace (its ``traceparent``): its
  log lines carry that trace and span id, and the events it creates continue the trace.
- :func:`declare_queues` is the one description of a consumer's queues and bindings: a starting
  consumer declares from it, and so does deploy time (:func:`declare_subscriptions`), before any
  consumer has run, so an event published first waits in its queue instead of being dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import aiormq
import asyncpg
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiohttp import web
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from common.config import ServiceSettings
from common.db import DB_POOL, Connection, quote_schema
from common.metrics import (
    APPLICATION_ERRORS,
    EVENTS_CONSUMED,
    EVENTS_PUBLISHED,
    OUTBOX_LAG,
    OUTBOX_PENDING,
)
from common.tracing import TraceContext, new_trace, parse_traceparent
from common.validation import loggable
from common.web import READINESS, SETTINGS, is_unavailable

ATTEMPT_HEADER = "x-cloudops-attempt"
NOTIFY_CHANNEL_PREFIX = "cloudops_outbox_"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON mode."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    datacontenttype: str = "application/json"
    data: Any = None
    traceparent: str | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


def new_event(
    type_: str,
    *,
    source: str,
    data: Any,
    subject: str | None = None,
    trace: TraceContext | None = None,
) -> CloudEvent:
    """An event whose ``traceparent`` continues the caller's trace: ``trace``, else that of the
    event being handled in this task (:func:`handling_span`), else a new one."""
    parent = trace or handling_span()
    span = parent.child() if parent else new_trace()
    return CloudEvent(
        source=source, type=type_, subject=subject, data=data, traceparent=span.traceparent
    )


async def enqueue_event(conn: Connection, event: CloudEvent, request_id: str | None = None) -> None:
    """Write ``event`` to the outbox on ``conn``; call inside the transaction of the change."""
    await enqueue_events(conn, [event], request_id)


async def enqueue_events(
    conn: Connection, events: Sequence[CloudEvent], request_id: str | None = None
) -> None:
    """Write ``events`` to the outbox in one statement; they leave in this order."""
    if not events:
        return
    headers = {"x-request-id": request_id} if request_id else {}
    # The relay sends in (created_at, seq) order. clock_timestamp(), not the column default now():
    # now() is the same for every statement of a transaction; seq orders the rows of one statement.
    await conn.execute(
        """INSERT INTO outbox (id, type, payload, headers, created_at)
           SELECT id, type, payload, $4, clock_timestamp()
           FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) WITH ORDINALITY
                AS e(id, type, payload, n)
           ORDER BY n""",
        [uuid.UUID(event.id) for event in events],
        [event.type for event in events],
        [event.model_dump(mode="json", exclude_none=True) for event in events],
        headers,
    )
    # A statement trigger on the outbox (common migration 0002) notifies the relay at commit.


class Broker:
    """One robust AMQP connection per process, with a confirming channel and the events exchange.

    ``start`` keeps trying in the background, so a service starts (and writes to its outbox) even
    while RabbitMQ is away; ``ready`` tells whether it is connected now.
    """

    def __init__(self, url: str, exchange_name: str, *, service: str) -> None:
        self.url = url
        self.exchange_name = exchange_name
        self.service = service
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None
        self.exchange: AbstractExchange | None = None
        self.connected = asyncio.Event()
        self._connector: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        connection = await aio_pika.connect_robust(
            self.url, client_properties={"connection_name": f"cloudops-{self.service}"}
        )
        try:
            self.channel = await connection.channel(publisher_confirms=True)
            self.exchange = await self.channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        except BaseException:
            await connection.close()  # a half-set-up connection would leak and retry forever
            raise
        self.connection = connection
        self.connected.set()

    async def _keep_connecting(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.connect()
                logger.info("broker connected", exchange=self.exchange_name)
                return
            except (OSError, aio_pika.exceptions.AMQPException) as exc:
                logger.warning(
                    "broker unavailable, retrying", error=type(exc).__name__, delay=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def start(self) -> None:
        self._connector = asyncio.create_task(self._keep_connecting())

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self.connected.wait(), timeout)

    @property
    def ready(self) -> bool:
        return (
            self.connected.is_set()
            and self.connection is not None
            and not self.connection.is_closed
            and self.channel is not None
            and not self.channel.is_closed
        )

    async def publish(self, event: CloudEvent, headers: Mapping[str, str] | None = None) -> None:
        """Publish persistently and wait for the broker's confirm; raises if it is not taken."""
        if self.exchange is None:
            raise ConnectionError("broker not connected")
        message_headers: dict[str, Any] = dict(headers or {})
        if event.traceparent:
            message_headers["traceparent"] = event.traceparent
        message = aio_pika.Message(
            event.to_json(),
            content_type="application/cloudevents+json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.id,
            type=event.type,
            timestamp=event.time,
            headers=message_headers,
        )
        try:
            await self.exchange.publish(
                message, routing_key=event.type, mandatory=False, timeout=10
            )
        except aiormq.exceptions.ChannelInvalidStateError as exc:
            # The channel closed under us (the broker closed it, or the connection dropped
            # between the readiness check and this call). aiormq raises a RuntimeError for that,
            # which no caller would take for a broker outage; it is one, so say so.
            raise ConnectionError("the broker channel is closed") from exc
        EVENTS_PUBLISHED.labels(self.service, event.type).inc()

    async def close(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self.connection is not None:
            await self.connection.close()


class OutboxRelay:
    """Moves committed outbox rows to the broker, in order, marking each sent after its confirm."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        broker: Broker,
        *,
        database_url: str,
        schema: str,
        poll_seconds: float = 1.0,
        batch_size: int = 200,
        keep_sent: timedelta = timedelta(days=7),
    ) -> None:
        self.pool = pool
        self.broker = broker
        self.database_url = database_url
        self.schema = schema
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.keep_sent = keep_sent
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        lock_key = f"cloudops.outbox.{self.schema}"
        while True:
            try:
                conn = await asyncpg.connect(self.database_url)
            except (OSError, asyncpg.PostgresError) as exc:
                logger.warning("outbox relay cannot reach postgres", error=type(exc).__name__)
                await asyncio.sleep(self.poll_seconds)
                continue
            try:
                # Only the lock holder relays; the others wait, so events leave in commit order.
                while not await conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtext($1))", lock_key
                ):
                    await asyncio.sleep(max(self.poll_seconds, 1.0))
                await conn.add_listener(
                    NOTIFY_CHANNEL_PREFIX + self.schema, lambda *_: self._wakeup.set()
                )
                await self._relay_forever(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # InterfaceError: cleaning up after a lost connection met it already closed.
                logger.warning("outbox relay lost postgres", error=type(exc).__name__)
                await asyncio.sleep(self.poll_seconds)
            except Exception as exc:
                # The relay outlives whatever else went wrong: a dead one strands every event.
                APPLICATION_ERRORS.labels(self.broker.service, type(exc).__name__).inc()
                logger.opt(exception=loggable(exc)).error("outbox relay failed, starting over")
                await asyncio.sleep(self.poll_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close())

    async def _relay_forever(self, lock_conn: asyncpg.Connection) -> None:
        await self.broker.connected.wait()
        backoff = self.poll_seconds
        # The lock (and LISTEN) live on lock_conn: once it is gone, another replica's relay may
        # take the lock, so this one must stop relaying and start over.
        while not lock_conn.is_closed():
            try:
                sent = await self.relay_once()
                backoff = self.poll_seconds
            except (TimeoutError, ConnectionError, aio_pika.exceptions.AMQPError) as exc:
                logger.warning("outbox relay cannot publish", error=type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if sent == self.batch_size:
                continue
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.poll_seconds)
        raise ConnectionResetError("the relay's lock connection was closed")

    async def relay_once(self) -> int:
        """Publish one batch of pending events; returns how many were sent."""
        if not self.broker.ready:
            raise ConnectionError("broker not connected")
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, payload, headers, created_at FROM outbox
                   WHERE sent_at IS NULL ORDER BY created_at, seq
                   LIMIT $1 FOR UPDATE SKIP LOCKED""",
                self.batch_size,
            )
            # All in flight at once, confirms awaited together. The channel's publish lock is
            # FIFO and the publishes start in this order, so they reach the broker in it.
            await asyncio.gather(
                *(
                    self.broker.publish(CloudEvent.model_validate(row["payload"]), row["headers"])
                    for row in rows
                )
            )
            await conn.execute(
                "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::uuid[])",
                [row["id"] for row in rows],
            )
            lag = await conn.fetchrow(
                """SELECT count(*) AS pending,
                          coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age
                   FROM outbox WHERE sent_at IS NULL"""
            )
            assert lag is not None
            # Counted after this batch's UPDATEs, so the rows just sent are already excluded.
            OUTBOX_PENDING.labels(self.broker.service).set(lag["pending"])
            OUTBOX_LAG.labels(self.broker.service).set(float(lag["age"]))
            if rows:
                await conn.execute(
                    "DELETE FROM outbox WHERE sent_at < now() - $1::interval", self.keep_sent
                )
        return len(rows)


#: Handles the new events of one transaction, in delivery order, on its connection; what it
#: returns is passed to ``after_commit``. :func:`each_event` adapts a per-event function.
EventHandler = Callable[[Sequence[CloudEvent], Connection], Awaitable[Any]]
#: Receives the events a transaction handled and the handler's result, once it committed.
AfterCommit = Callable[[Sequence[CloudEvent], Any], Awaitable[None]]


def each_event(
    handle: Callable[[CloudEvent, Connection], Awaitable[Any]],
) -> EventHandler:
    """A handler that calls ``handle`` for each event in turn and returns their results."""

    async def handler(events: Sequence[CloudEvent], conn: Connection) -> list[Any]:
        results = []
        for event in events:
            with _handling(event):
                results.append(await handle(event, conn))
        return results

    return handler


@dataclass
class Subscription:
    """A consumer's queues as the broker knows them: the main queue named ``name`` bound to
    ``routing_keys``, and the retry queues its retry policy names. Enough to declare them before
    the consumer ever runs (see :func:`declare_subscriptions`)."""

    name: str
    routing_keys: Sequence[str]
    max_attempts: int = 5
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 60.0

    def retry_delay(self, attempt: int) -> float:
        return float(min(self.retry_base_seconds * 2 ** (attempt - 1), self.retry_max_seconds))


@dataclass(kw_only=True)
class Consumer(Subscription):
    """A durable queue bound to ``routing_keys`` whose events go to ``handler``."""

    handler: EventHandler
    prefetch: int = 256
    #: At most this many of the messages waiting are handled in one transaction. There is no
    #: waiting for a batch to fill: one message alone goes at once, and a burst forms batches
    #: while the previous ones are being written.
    batch_size: int = 100
    #: Batches (transactions) in progress at once per process.
    concurrency: int = 2
    #: For side effects that must not be seen before the commit (live feeds). A failure is
    #: logged; the events stay processed.
    after_commit: AfterCommit | None = None

    @classmethod
    def of(cls, subscription: Subscription, *, handler: EventHandler, **options: Any) -> Consumer:
        """The consumer of ``subscription``'s queues (the same names, bindings and retries)."""
        return cls(
            name=subscription.name,
            routing_keys=subscription.routing_keys,
            max_attempts=subscription.max_attempts,
            retry_base_seconds=subscription.retry_base_seconds,
            retry_max_seconds=subscription.retry_max_seconds,
            handler=handler,
            **options,
        )


def queue_names(exchange: str, service: str, consumer: str) -> tuple[str, str, str]:
    """Main queue, retry queue prefix (one queue per delay: ``<prefix>.<ms>ms``) and dead-letter
    queue; prefixed by the exchange so test runs isolate."""
    main = f"{exchange}.{service}.{consumer}"
    return main, f"{main}.retry", f"{main}.dead"


@dataclass(frozen=True)
class QueueTopology:
    """Every queue of one subscription of one service under one exchange, and how each is
    declared. The one description both deploy time and a starting consumer declare from, so the
    two never disagree (RabbitMQ refuses a redeclaration with other arguments)."""

    exchange: str
    main: str
    dead: str
    #: One retry queue per delay, each with a queue-level TTL. A per-message TTL would expire
    #: only at the head of one shared queue, so a long delay there held back every shorter one.
    retry: Mapping[float, str]
    routing_keys: tuple[str, ...]
    #: ``x-expires`` for every queue, when set: unused queues vanish (test runs set it).
    expiry: Mapping[str, Any]

    @property
    def names(self) -> list[str]:
        return [self.main, *self.retry.values(), self.dead]


def queue_topology(
    exchange: str, service: str, subscription: Subscription, *, queue_expires_ms: int | None = None
) -> QueueTopology:
    main, retry_prefix, dead = queue_names(exchange, service, subscription.name)
    delays = {subscription.retry_delay(a) for a in range(1, max(2, subscription.max_attempts))}
    return QueueTopology(
        exchange=exchange,
        main=main,
        dead=dead,
        retry={d: f"{retry_prefix}.{round(d * 1000)}ms" for d in sorted(delays)},
        routing_keys=tuple(subscription.routing_keys),
        expiry={"x-expires": queue_expires_ms} if queue_expires_ms is not None else {},
    )


async def declare_queues(channel: AbstractChannel, topology: QueueTopology) -> AbstractQueue:
    """Declare the events exchange, its dead-letter exchange and every queue and binding of
    ``topology`` (idempotent); returns the main queue. Events published from then on wait in it,
    whether or not a consumer has ever run."""
    exchange = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dlx = await channel.declare_exchange(
        f"{topology.exchange}.dlx", aio_pika.ExchangeType.DIRECT, durable=True
    )
    expiry = dict(topology.expiry)
    dead = await channel.declare_queue(topology.dead, durable=True, arguments=expiry)
    await dead.bind(dlx, routing_key=topology.main)
    # Expired retry copies dead-letter back into the main queue through the default exchange.
    for delay, name in topology.retry.items():
        await channel.declare_queue(
            name,
            durable=True,
            arguments={
                "x-message-ttl": round(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": topology.main,
                **expiry,
            },
        )
    queue = await channel.declare_queue(
        topology.main,
        durable=True,
        arguments={
            "x-dead-letter-exchange": dlx.name,
            "x-dead-letter-routing-key": topology.main,
            **expiry,
        },
    )
    for key in topology.routing_keys:
        await queue.bind(exchange, routing_key=key)
    return queue


async def declare_subscriptions(
    settings: ServiceSettings, subscriptions: Sequence[Subscription]
) -> list[str]:
    """Declare the queues and bindings of a service's ``subscriptions`` on its broker and
    exchange, at deploy time, so an event published before the service first consumes is kept
    for it rather than dropped as unroutable. Returns the main queues' names."""
    connection = await aio_pika.connect(
        settings.amqp_url,
        client_properties={"connection_name": f"cloudops-{settings.service_name}-declare"},
    )
    try:
        channel = await connection.channel()
        declared = []
        for subscription in subscriptions:
            topology = queue_topology(
                settings.events_exchange,
                settings.service_name,
                subscription,
                queue_expires_ms=settings.queue_expires_ms,
            )
            await declare_queues(channel, topology)
            declared.append(topology.main)
        return declared
    finally:
        await connection.close()


class ConsumerRunner:
    """Declares a consumer's queues on the broker and processes its messages."""

    def __init__(
        self,
        broker: Broker,
        pool: asyncpg.Pool,
        consumer: Consumer,
        *,
        queue_expires_ms: int | None = None,
    ) -> None:
        self.broker = broker
        self.pool = pool
        self.consumer = consumer
        self.topology = queue_topology(
            broker.exchange_name, broker.service, consumer, queue_expires_ms=queue_expires_ms
        )
        self.queue, self.dead_queue = self.topology.main, self.topology.dead
        self.retry_queues = dict(self.topology.retry)
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._waiting: asyncio.Queue[tuple[AbstractIncomingMessage, asyncio.Future[None]]] = (
            asyncio.Queue()
        )
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        assert self.broker.connection is not None
        channel = await self.broker.connection.channel(publisher_confirms=True)
        self._channel = channel
        await channel.set_qos(prefetch_count=self.consumer.prefetch)
        queue = await declare_queues(channel, self.topology)
        self._queue = queue
        self._workers = [
            asyncio.create_task(self._work()) for _ in range(max(1, self.consumer.concurrency))
        ]
        self._consumer_tag = await queue.consume(self._track)

    @property
    def backlog(self) -> int:
        """Messages delivered to this process and not yet taken into a batch."""
        return self._waiting.qsize()

    async def _track(self, message: AbstractIncomingMessage) -> None:
        """Queue a delivered message for the batch workers and wait until it is settled.

        Waiting keeps the message counted as in flight, so ``close`` lets it finish first.
        """
        self._in_flight += 1
        self._idle.clear()
        try:
            settled = asyncio.get_running_loop().create_future()
            self._waiting.put_nowait((message, settled))
            await settled
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _work(self) -> None:
        """Take what is waiting (up to a batch) and handle it; one of ``concurrency`` loops."""
        while True:
            batch = [await self._waiting.get()]
            while len(batch) < self.consumer.batch_size and not self._waiting.empty():
                batch.append(self._waiting.get_nowait())
            try:
                await self.handle_batch([message for message, _ in batch])
            except Exception as exc:
                # Unsettled messages stay unacked and the broker redelivers them.
                logger.opt(exception=loggable(exc)).error(
                    "batch handling failed", consumer=self.consumer.name
                )
            finally:
                for _, settled in batch:
                    if not settled.done():
                        settled.set_result(None)

    async def handle_batch(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Handle ``messages`` in one transaction; on failure, each again on its own."""
        parsed: list[tuple[AbstractIncomingMessage, CloudEvent]] = []
        for message in messages:
            event = await self._parse(message)
            if event is not None:
                parsed.append((message, event))
        if len(parsed) == 1:
            await self.on_message(*parsed[0])
            return
        if not parsed:
            return
        try:
            handled, result = await self._handle(parsed)
        except Exception as exc:
            logger.warning(
                "batch failed, handling its events one by one",
                consumer=self.consumer.name,
                size=len(parsed),
                error=type(exc).__name__,
            )
            for message, event in parsed:
                await self.on_message(message, event)
            return
        await self._settle([message for message, _ in parsed], handled, result)

    async def _parse(self, message: AbstractIncomingMessage) -> CloudEvent | None:
        try:
            return CloudEvent.model_validate_json(message.body)
        except ValueError:
            span = _event_span(None, message)
            logger.error(
                "poison message dead-lettered",
                consumer=self.consumer.name,
                message_id=message.message_id,
                trace_id=span.trace_id,
                span_id=span.span_id,
            )
            EVENTS_CONSUMED.labels(self.broker.service, self.consumer.name, "dead_lettered").inc()
            await message.reject(requeue=False)
            return None

    async def on_message(self, message: AbstractIncomingMessage, event: CloudEvent) -> None:
        """Handle one message in its own transaction, retrying or dead-lettering a failure."""
        attempt = _attempt(message)
        with _handling(event, message):
            try:
                handled, result = await self._handle([(message, event)])
            except Exception as exc:
                await self._retry_or_dead_letter(message, event, attempt, exc)
                return
            await self._settle([message], handled, result)

    async def _settle(
        self,
        messages: Sequence[AbstractIncomingMessage],
        handled: Sequence[CloudEvent],
        result: Any,
    ) -> None:
        """Ack ``messages`` whose transaction committed, count them and run the after-commit step.

        The last two happen even when an ack fails (the broker went away after the commit): the
        change is committed, and the redelivery that follows is a duplicate, which runs neither.
        """
        try:
            for message in messages:
                await message.ack()
        finally:
            self._count(len(handled), len(messages) - len(handled))
            await self._after_commit(handled, result)

    def _count(self, processed: int, duplicates: int) -> None:
        name, service = self.consumer.name, self.broker.service
        if processed:
            EVENTS_CONSUMED.labels(service, name, "processed").inc(processed)
        if duplicates:
            EVENTS_CONSUMED.labels(service, name, "duplicate").inc(duplicates)

    async def _handle(
        self, parsed: Sequence[tuple[AbstractIncomingMessage, CloudEvent]]
    ) -> tuple[list[CloudEvent], Any]:
        """Record the event ids and run the handler on the new ones, in one transaction.

        Returns the events handled and the handler's result; ids seen before (or twice in
        ``parsed``) are duplicates and skipped.
        """
        fresh: list[CloudEvent] = []
        async with self.pool.acquire() as conn, conn.transaction():
            new_ids = {
                row["event_id"]
                for row in await conn.fetch(
                    """INSERT INTO processed_events (consumer, event_id)
                       SELECT $1, unnest($2::text[])
                       ON CONFLICT DO NOTHING RETURNING event_id""",
                    self.consumer.name,
                    [event.id for _, event in parsed],
                )
            }
            for _, event in parsed:
                if event.id in new_ids:
                    new_ids.discard(event.id)
                    fresh.append(event)
            if not fresh:
                return fresh, None
            if len(parsed) == 1:
                with _handling(parsed[0][1], parsed[0][0]):
                    result = await self.consumer.handler(fresh, conn)
            else:
                with logger.contextualize(event_count=len(fresh)):
                    result = await self.consumer.handler(fresh, conn)
        return fresh, result

    async def _after_commit(self, events: Sequence[CloudEvent], result: Any) -> None:
        if self.consumer.after_commit is None or not events:
            return
        try:
            await self.consumer.after_commit(events, result)
        except Exception as exc:
            APPLICATION_ERRORS.labels(self.broker.service, type(exc).__name__).inc()
            logger.opt(exception=loggable(exc)).warning(
                "after-commit step failed", consumer=self.consumer.name
            )

    async def _retry_or_dead_letter(
        self, message: AbstractIncomingMessage, event: CloudEvent, attempt: int, exc: Exception
    ) -> None:
        name, service = self.consumer.name, self.broker.service
        APPLICATION_ERRORS.labels(service, type(exc).__name__).inc()
        # A database out of reach says nothing about the event: it is retried for as long as that
        # lasts, without spending its attempts, rather than dead-lettered with the outage.
        unavailable = is_unavailable(exc)
        if attempt >= self.consumer.max_attempts and not unavailable:
            logger.opt(exception=loggable(exc)).error(
                "event dead-lettered", consumer=name, attempt=attempt
            )
            EVENTS_CONSUMED.labels(service, name, "dead_lettered").inc()
            await message.reject(requeue=False)
            return
        delay = self.consumer.retry_delay(min(attempt, max(1, self.consumer.max_attempts - 1)))
        logger.warning(
            "event handling failed, will retry",
            consumer=name,
            attempt=attempt,
            delay_seconds=delay,
            error=type(exc).__name__,
        )
        assert self._channel is not None
        retry = aio_pika.Message(
            message.body,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            type=message.type,
            headers={**message.headers, ATTEMPT_HEADER: attempt if unavailable else attempt + 1},
        )
        # The retry copy is confirmed before the original is acked: nothing is lost in between.
        await self._channel.default_exchange.publish(
            retry, routing_key=self.retry_queues[delay], timeout=10
        )
        await message.ack()
        EVENTS_CONSUMED.labels(service, name, "retried").inc()

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Stop taking messages, let those in hand finish (and ack), then close the channel.

        Closing first would make their later acks hit a closed channel, which RabbitMQ answers by
        closing the whole connection.
        """
        if self._channel is None or self._channel.is_closed:
            return
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await self._channel.close()


def _attempt(message: AbstractIncomingMessage) -> int:
    """Which delivery attempt this is (1 for a first delivery or a header we did not write)."""
    try:
        return max(1, int(message.headers.get(ATTEMPT_HEADER) or 1))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 1


#: The event being handled in this task, and the span of its handling.
_HANDLING: contextvars.ContextVar[tuple[str, TraceContext] | None] = contextvars.ContextVar(
    "cloudops_event_handling", default=None
)


def handling_span() -> TraceContext | None:
    """The span of the event being handled in this task, if one is: what it publishes continues
    that trace."""
    handling = _HANDLING.get()
    return handling[1] if handling else None


def _event_span(event: CloudEvent | None, message: AbstractIncomingMessage | None) -> TraceContext:
    """A new span for handling ``event``, a child of the span that published it: its
    ``traceparent``, which the relay also writes into the message's headers (the envelope is
    read first; the header serves a message whose envelope did not parse)."""
    header = message.headers.get("traceparent") if message is not None else None
    parent = parse_traceparent(event.traceparent if event else None) or (
        parse_traceparent(header) if isinstance(header, str) else None
    )
    return parent.child() if parent else new_trace()


@contextlib.contextmanager
def _handling(event: CloudEvent, message: AbstractIncomingMessage | None = None) -> Iterator[None]:
    """While ``event`` is handled, log lines carry its id, its trace, the span of its handling and
    (given the ``message``) the originating request's id.

    One handling has one span: nested for the same event (the consumer's retry and dead-letter
    lines around a handler's own), the span of the outer one is kept.
    """
    current = _HANDLING.get()
    span = current[1] if current and current[0] == event.id else _event_span(event, message)
    fields: dict[str, Any] = {
        "event_id": event.id,
        "trace_id": span.trace_id,
        "span_id": span.span_id,
    }
    request_id = message.headers.get("x-request-id") if message is not None else None
    if isinstance(request_id, str):
        fields["request_id"] = request_id
    token = _HANDLING.set((event.id, span))
    try:
        with logger.contextualize(**fields):
            yield
    finally:
        _HANDLING.reset(token)


BROKER = web.AppKey("broker", Broker)


def messaging_ctx(
    consumers: Sequence[Consumer] = (), *, relay: bool = True
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` for the broker, the outbox relay and the service's consumers.

    Must come after ``postgres_ctx``. Consumers are attached once the broker is reachable, so the
    service starts even while RabbitMQ is away.
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        broker = Broker(settings.amqp_url, settings.events_exchange, service=settings.service_name)
        app[BROKER] = broker
        pool = app[DB_POOL]
        quote_schema(settings.db_schema)

        async def check() -> None:
            if not broker.ready:
                raise ConnectionError("broker not connected")

        app[READINESS].add("rabbitmq", check)
        broker.start()
        runners = [
            ConsumerRunner(broker, pool, c, queue_expires_ms=settings.queue_expires_ms)
            for c in consumers
        ]

        attached = asyncio.Event()

        async def attach_consumers() -> None:
            await broker.connected.wait()
            pending = list(runners)
            delay = 0.5
            while pending:
                try:
                    await pending[0].start()
                    pending.pop(0)
                except Exception as exc:
                    # aio-pika can turn the cancellation of a shutdown into another error; retrying
                    # then would swallow the cancel and keep the shutdown waiting forever.
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise asyncio.CancelledError from exc
                    logger.opt(exception=loggable(exc)).error(
                        "consumer could not attach, retrying", consumer=pending[0].consumer.name
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
            attached.set()

        async def consumers_check() -> None:
            if not attached.is_set():
                raise ConnectionError("consumers not attached")

        if runners:
            app[READINESS].add("consumers", consumers_check)

        attaching = asyncio.create_task(attach_consumers())
        outbox = None
        if relay:
            outbox = OutboxRelay(
                pool,
                broker,
                database_url=settings.database_url,
                schema=settings.db_schema,
                poll_seconds=settings.outbox_poll_seconds,
            )
            outbox.start()
        try:
            yield
        finally:
            attaching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await attaching
            if outbox is not None:
                await outbox.stop()
            for runner in runners:
                with contextlib.suppress(Exception):
                    await runner.close()
            await broker.close()

    return ctx
