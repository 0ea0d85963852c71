"""A RabbitMQ restart in the middle of 10,000 resource changes: every change reaches costs and
alerts exactly once, and every outbox drains.

The broker really restarts (``rabbitmqctl stop_app`` / ``start_app``, a few seconds): what is
proven includes that durable queues and persistent messages survive it. Exactly once is read
from the consumers' own ledgers (``processed_events``), their tables and their metrics: the
handler of each consumer ran once per distinct event, redeliveries included.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator

import aio_pika
import aiohttp
import orjson
import pytest

from common.testing import TEST_AMQP_URL

from .faultproxy import (
    PRINCIPAL,
    Stack,
    consumed,
    eventually,
    resource,
    service_stack,
    wait_ready,
)

RESOURCES = 5_000
IN_ERROR = 1_000
PER_REQUEST = 250
CONCURRENCY = 4


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with service_stack(("resources", "costs", "alerts")) as stack:
        yield stack


async def rabbitmq_restart() -> float:
    """Stop and start the broker application; returns how long it was away."""
    started = time.monotonic()
    for action in ("stop_app", "start_app"):
        process = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "-q", action,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await process.communicate()
        assert process.returncode == 0, err.decode()
    return time.monotonic() - started


async def bulk(session: aiohttp.ClientSession, base: str, items: list[dict[str, object]]) -> None:
    body = orjson.dumps({"resources": items})
    headers = {**PRINCIPAL, "Content-Type": "application/json"}
    async with session.post(f"{base}/api/resources/bulk", data=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()


async def send_changes(stack: Stack, on_halfway: asyncio.Event) -> None:
    """5,000 creations, then 5,000 updates (1,000 of them into ``error``), 4 requests at a time."""
    ids = [f"fault-{n:05d}" for n in range(RESOURCES)]
    creations = [
        [resource(i) for i in ids[n : n + PER_REQUEST]] for n in range(0, RESOURCES, PER_REQUEST)
    ]
    updates = [
        [
            resource(i, status="error")
            if int(i[-5:]) < IN_ERROR
            else resource(i, cpu_utilization=20)
            for i in ids[n : n + PER_REQUEST]
        ]
        for n in range(0, RESOURCES, PER_REQUEST)
    ]
    batches = creations + updates
    base = stack.url("resources")
    queue: asyncio.Queue[list[dict[str, object]]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    done = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while not queue.empty():
            await bulk(session, base, queue.get_nowait())
            done += 1
            if done == len(batches) // 4:
                on_halfway.set()

    async with aiohttp.ClientSession() as session:
        # Creations first, then updates: an update of a resource not yet created would create it.
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))


async def test_a_broker_restart_midway_loses_and_doubles_none_of_10000_changes(
    stack: Stack,
) -> None:
    assert shutil.which("rabbitmqctl"), "the broker restart needs rabbitmqctl"
    await wait_ready(stack)
    halfway = asyncio.Event()
    sending = asyncio.create_task(send_changes(stack, halfway))
    await asyncio.wait_for(halfway.wait(), 120)
    started = time.monotonic()
    away = await rabbitmq_restart()
    await asyncio.wait_for(sending, 180)
    sent = time.monotonic() - started

    # 5,000 created + 5,000 updated + 1,000 status_changed, all committed with their change.
    events = RESOURCES * 2 + IN_ERROR
    assert await stack.fetchval("SELECT count(*) FROM resources.outbox") == events

    async def drained() -> bool:
        unsent = await stack.fetchval(
            "SELECT (SELECT count(*) FROM resources.outbox WHERE sent_at IS NULL)"
            " + (SELECT count(*) FROM alerts.outbox WHERE sent_at IS NULL)"
        )
        return bool(unsent == 0)

    async def all_consumed() -> bool:
        counts = await stack.fetch(
            """SELECT p.consumer, count(*) AS n FROM (
                   SELECT 'costs' AS consumer, event_id FROM costs.processed_events
                   UNION ALL SELECT 'alerts', event_id FROM alerts.processed_events) p
               JOIN resources.outbox o ON o.id::text = p.event_id GROUP BY p.consumer"""
        )
        return {r["consumer"]: r["n"] for r in counts} == {"costs": events, "alerts": events}

    drain = await eventually(drained, timeout=120, what="every outbox drained")
    consume = await eventually(
        all_consumed, timeout=180, what="every event consumed by costs and alerts"
    )

    # Costs mirrors the inventory exactly as the resources service holds it.
    mismatched = await stack.fetchval(
        """SELECT count(*) FROM resources.resources r
           FULL JOIN costs.inventory i ON i.id = r.id
           WHERE i.id IS NULL OR r.id IS NULL OR i.status <> r.status
              OR i.updated_at <> r.updated_at OR i.cpu_utilization <> r.cpu_utilization"""
    )
    assert mismatched == 0
    # One alert per resource in error, raised once: one history entry and one event each.
    alerts = await stack.fetchval(
        "SELECT count(*) FROM alerts.alerts WHERE labels->>'alertname' = 'ResourceInError'"
        " AND status = 'firing'"
    )
    assert alerts == IN_ERROR
    raised = await stack.fetchval(
        "SELECT count(*) FROM alerts.alert_history WHERE action = 'raised'"
    )
    assert raised == IN_ERROR
    assert (
        await stack.fetchval("SELECT count(*) FROM alerts.outbox WHERE type = 'alert.raised'")
        == IN_ERROR
    )

    await assert_each_handler_ran_once_per_event(stack, events)
    print(
        f"\nbroker away {away:.1f}s; {events} events, each consumed once by costs and alerts; "
        f"written in {sent:.1f}s, outboxes empty {drain:.1f}s and all consumed "
        f"{drain + consume:.1f}s after that"
    )


async def assert_each_handler_ran_once_per_event(stack: Stack, events: int) -> None:
    """Redeliver 200 events already handled, as a broker does after a lost ack: each consumer
    counts them as duplicates, and its handler has run exactly once per distinct event."""
    rows = await stack.fetch(
        "SELECT payload FROM resources.outbox WHERE type = 'resource.status_changed' LIMIT 200"
    )
    consumers = (
        (stack.url("costs"), "inventory", "costs"),
        (stack.url("alerts"), "alert-rules", "alerts"),
    )

    async def settled() -> list[float]:
        """Per consumer, the events it has taken in: processed or skipped as duplicates."""
        return [
            await consumed(base, name, "processed") + await consumed(base, name, "duplicate")
            for base, name, _ in consumers
        ]

    before = await settled()
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(stack.exchange)
        for row in rows:
            payload = orjson.loads(row["payload"])
            await exchange.publish(
                aio_pika.Message(row["payload"].encode(), message_id=payload["id"]),
                routing_key=payload["type"],
            )
    finally:
        await connection.close()

    async def all_taken_in() -> bool:
        now = await settled()
        return all(n >= b + len(rows) for n, b in zip(now, before, strict=True))

    await eventually(all_taken_in, timeout=30, what="the redelivered events taken in")
    for base, name, schema in consumers:
        handled = await stack.fetchval(f"SELECT count(*) FROM {schema}.processed_events")
        runs = await consumed(base, name, "processed")
        assert runs == handled, f"{name}'s handler ran {runs:.0f} times for {handled} events"
        assert handled >= events
