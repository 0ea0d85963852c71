"""PostgreSQL goes away under writes (its proxy refuses and drops every connection): requests get a
fast 503 problem+json, readiness fails, no acknowledged write is lost, and the service recovers by
itself once PostgreSQL is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp
import orjson
import pytest

from .faultproxy import PRINCIPAL, Stack, eventually, ready, resource, service_stack, wait_ready

WRITERS = 4


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with service_stack(("resources", "costs")) as stack:
        yield stack


@dataclass
class Outcomes:
    """What each write was answered, and how long it took."""

    acknowledged: list[str] = field(default_factory=list)
    failures: list[tuple[int, str, float]] = field(default_factory=list)
    slowest_failure: float = 0.0
    #: Answers other than 201 or a 503 problem with Retry-After.
    unexpected: list[dict[str, object]] = field(default_factory=list)
    count: int = 0


async def write_until(
    session: aiohttp.ClientSession, base: str, stop: asyncio.Event, outcomes: Outcomes, n: int
) -> None:
    """Create resources one after another until ``stop``; a bounded loop (at most 2,000)."""
    for i in range(2_000):
        if stop.is_set():
            return
        body = orjson.dumps(resource(f"pg-{n}-{i}"))
        headers = {**PRINCIPAL, "Content-Type": "application/json"}
        started = time.monotonic()
        async with session.post(f"{base}/api/resources", data=body, headers=headers) as resp:
            took = time.monotonic() - started
            outcomes.count += 1
            if resp.status == 201:
                outcomes.acknowledged.append((await resp.json())["data"]["id"])
                continue
            outcomes.failures.append((resp.status, resp.content_type, took))
            outcomes.slowest_failure = max(outcomes.slowest_failure, took)
            problem = await resp.json(content_type=None)
            if not (
                resp.status == problem["status"] == 503
                and resp.content_type == "application/problem+json"
                and resp.headers.get("Retry-After")
            ):
                outcomes.unexpected.append(problem)
        await asyncio.sleep(0.01)


async def test_postgres_down_is_a_fast_503_then_recovers_with_every_acknowledged_write(
    stack: Stack,
) -> None:
    await wait_ready(stack)
    base = stack.url("resources")
    outcomes = Outcomes()
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        writers = [
            asyncio.create_task(write_until(session, base, stop, outcomes, n))
            for n in range(WRITERS)
        ]
        await eventually(
            lambda: _true(len(outcomes.acknowledged) >= 20), timeout=20, what="writes before"
        )

        stack.postgres.cut()
        down_since = time.monotonic()
        await eventually(lambda: _true(len(outcomes.failures) >= 20), timeout=10, what="503s")
        # Readiness says so, quickly.
        started = time.monotonic()
        async with session.get(f"{base}/health/ready") as resp:
            assert resp.status == 503
            assert (await resp.json())["data"]["checks"]["postgres"].startswith("down")
        assert time.monotonic() - started < 3
        acknowledged_while_down = len(outcomes.acknowledged)
        await asyncio.sleep(max(0.0, 3 - (time.monotonic() - down_since)))

        stack.postgres.restore()
        recovered = await eventually(
            lambda: _true(len(outcomes.acknowledged) >= acknowledged_while_down + 20),
            timeout=20,
            what="writes acknowledged again",
        )
        await eventually(lambda: ready(session, base), timeout=20, what="ready again")
        stop.set()
        await asyncio.gather(*writers)

    errors = [ln for ln in stack.services["resources"].output().splitlines() if "unhandled" in ln]
    assert not outcomes.unexpected, (outcomes.unexpected[:3], errors[:3])
    assert outcomes.slowest_failure < 1.0, outcomes.failures[-5:]
    stored = {
        str(r["id"])
        for r in await stack.fetch(
            "SELECT id FROM resources.resources WHERE name LIKE 'fault pg-%'"
        )
    }
    assert set(outcomes.acknowledged) <= stored
    # And their events went out: costs mirrors every acknowledged resource.
    try:
        await eventually(
            lambda: _mirrored(stack, set(outcomes.acknowledged)), timeout=30, what="costs mirror"
        )
    except AssertionError:
        unsent = await stack.fetchval("SELECT count(*) FROM resources.outbox WHERE sent_at IS NULL")
        mirrored = await stack.fetchval("SELECT count(*) FROM costs.inventory")
        logs = stack.services["costs"].output().splitlines()
        raise AssertionError((len(outcomes.acknowledged), mirrored, unsent, logs[-10:])) from None
    print(
        f"\n{outcomes.count} writes, {len(outcomes.failures)} answered 503 "
        f"(slowest {outcomes.slowest_failure * 1000:.0f} ms), writes again {recovered:.1f}s "
        f"after PostgreSQL came back"
    )


async def _true(value: bool) -> bool:
    return value


async def _mirrored(stack: Stack, ids: set[str]) -> bool:
    rows = await stack.fetch("SELECT id FROM costs.inventory")
    return ids <= {str(r["id"]) for r in rows}
