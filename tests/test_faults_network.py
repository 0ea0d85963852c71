"""Network faults between the services and their servers: the proxies in front of RabbitMQ and
PostgreSQL slow every packet down, then drop every connection, under a steady stream of writes.
Nothing acknowledged is lost, latency stays bounded while the network is slow, and the services
reconnect by themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp
import orjson
import pytest

from .faultproxy import PRINCIPAL, Stack, eventually, resource, service_stack, wait_ready

WRITERS = 3


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with service_stack(("resources", "costs")) as stack:
        yield stack


@dataclass
class Writes:
    phase: str = "calm"
    acknowledged: list[str] = field(default_factory=list)
    #: (phase, status, seconds) of every answer.
    answers: list[tuple[str, int, float]] = field(default_factory=list)


async def writer(session: aiohttp.ClientSession, base: str, writes: Writes, n: int) -> None:
    """Create resources at a steady pace until the phase is "done"; at most 3,000."""
    headers = {**PRINCIPAL, "Content-Type": "application/json"}
    for i in range(3_000):
        phase = writes.phase
        if phase == "done":
            return
        body = orjson.dumps(resource(f"net-{n}-{i}"))
        started = time.monotonic()
        async with session.post(f"{base}/api/resources", data=body, headers=headers) as resp:
            answer = await resp.json(content_type=None)
            writes.answers.append((phase, resp.status, time.monotonic() - started))
            if resp.status == 201:
                writes.acknowledged.append(answer["data"]["id"])
        await asyncio.sleep(0.05)


def latencies(writes: Writes, phase: str) -> list[float]:
    return sorted(s for p, status, s in writes.answers if p == phase and status == 201)


async def test_slow_and_dropped_connections_lose_nothing_and_heal_by_themselves(
    stack: Stack,
) -> None:
    await wait_ready(stack)
    base = stack.url("resources")
    writes = Writes()
    phases: list[tuple[str, float]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        tasks = [asyncio.create_task(writer(session, base, writes, n)) for n in range(WRITERS)]

        async def phase(name: str, seconds: float) -> None:
            writes.phase = name
            phases.append((name, seconds))
            await asyncio.sleep(seconds)

        await phase("calm", 1)
        stack.amqp.set_delay(0.2)
        await phase("broker slow", 3)
        stack.amqp.cut()
        await phase("broker dropped", 2)
        stack.amqp.set_delay(0)
        stack.amqp.restore()
        stack.postgres.set_delay(0.02)
        await phase("database slow", 3)
        stack.postgres.cut()
        await phase("database dropped", 1)
        stack.postgres.set_delay(0)
        stack.postgres.restore()
        await phase("healed", 2)
        writes.phase = "done"
        await asyncio.gather(*tasks)

    # Both services reconnect on their own: ready again, and everything reaches costs.
    await wait_ready(stack, timeout=20)

    async def mirrored() -> bool:
        rows = await stack.fetch("SELECT id FROM costs.inventory")
        return set(writes.acknowledged) <= {str(r["id"]) for r in rows}

    await eventually(mirrored, timeout=30, what="every acknowledged write mirrored in costs")
    assert not await stack.fetchval("SELECT count(*) FROM resources.outbox WHERE sent_at IS NULL")

    statuses = {status for _, status, _ in writes.answers}
    assert statuses <= {201, 503}, statuses
    # Writes never wait on the broker: its faults leave them as fast as before.
    for name in ("calm", "broker slow", "broker dropped", "healed"):
        assert latencies(writes, name), f"no write acknowledged while {name}"
        assert latencies(writes, name)[-1] < 1.0, (name, latencies(writes, name)[-3:])
    # A slow database slows writes down, within bounds.
    slow = latencies(writes, "database slow")
    assert slow
    assert slow[-1] < 3.0, slow[-3:]
    assert all(s < 1.5 for p, status, s in writes.answers if status == 503)
    summary = ", ".join(
        f"{name}: {len(latencies(writes, name))} ok, max "
        f"{max(latencies(writes, name), default=0) * 1000:.0f} ms"
        for name, _ in phases
    )
    print(f"\n{summary}")
