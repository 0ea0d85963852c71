"""Redis goes away under load (its proxy refuses and drops every connection).

What the README promises: reads bypass the cache, the gateway keeps serving under its in-process
limits (``CLOUDOPS_GATEWAY_FALLBACK_RATE_LIMIT`` per window instead of the configured limit), and
every process stays ready, "degraded". So: no 5xx, 429s only beyond the fallback limit, and when
Redis is back the shared limits and the cache are used again without anyone restarting anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import aiohttp
import orjson
import pytest

from .conftest import ADMIN_KEY
from .faultproxy import Stack, eventually, metric, resource, service_stack, wait_ready

FALLBACK_LIMIT = 150
CLIENTS = 4


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    env = {
        "CLOUDOPS_GATEWAY_RATE_LIMIT": "100000",
        "CLOUDOPS_GATEWAY_FALLBACK_RATE_LIMIT": str(FALLBACK_LIMIT),
    }
    with service_stack(("resources",), gateway=True, env=env) as stack:
        yield stack


@dataclass
class Answer:
    phase: str
    status: int
    seconds: float
    content_type: str
    policy: str


@dataclass
class Load:
    phase: str = "before"
    answers: list[Answer] = field(default_factory=list)

    def of(self, phase: str, status: int | None = None) -> list[Answer]:
        return [
            a for a in self.answers if a.phase == phase and (status is None or a.status == status)
        ]


async def client(session: aiohttp.ClientSession, base: str, load: Load, n: int) -> None:
    """Reads (cached) and a write every fifth request, paced; bounded to 3,000 requests."""
    headers = {"X-API-Key": ADMIN_KEY}
    for i in range(3_000):
        if load.phase == "done":
            return
        phase = load.phase
        started = time.monotonic()
        if i % 5 == 4:
            body = orjson.dumps(resource(f"redis-{n}-{i}"))
            request = session.post(
                f"{base}/api/resources",
                data=body,
                headers={**headers, "Content-Type": "application/json"},
            )
        else:
            request = session.get(f"{base}/api/resources?limit=5", headers=headers)
        try:
            async with request as resp:
                await resp.read()
                answer = Answer(
                    phase,
                    resp.status,
                    time.monotonic() - started,
                    resp.content_type,
                    resp.headers.get("RateLimit-Policy", ""),
                )
        except aiohttp.ClientOSError:
            # A limited write can be answered (429) and closed before its body is sent; the
            # client then sees the connection go instead of the answer.
            answer = Answer(phase, 0, time.monotonic() - started, "", "")
        load.answers.append(answer)
        await asyncio.sleep(0.02)


async def test_redis_down_under_load_degrades_without_5xx_and_recovers_by_itself(
    stack: Stack,
) -> None:
    await wait_ready(stack)
    gateway, resources = stack.url("gateway"), stack.url("resources")
    load = Load()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        clients = [asyncio.create_task(client(session, gateway, load, n)) for n in range(CLIENTS)]
        await asyncio.sleep(2)

        stack.redis.cut()
        load.phase = "down"
        await asyncio.sleep(4)
        # Every process stays ready: Redis only holds what can be bypassed or kept in process.
        for base in (gateway, resources):
            async with session.get(f"{base}/health/ready") as resp:
                body = await resp.json()
                assert resp.status == 200, body
                assert body["data"]["checks"]["redis"].startswith("down")

        stack.redis.restore()
        load.phase = "after"
        hits_before = await metric(resources, "cache_hits_total", {})

        async def shared_limits_again() -> bool:
            recent = load.of("after")[-CLIENTS * 3 :]
            return len(recent) == CLIENTS * 3 and all(
                a.status in (200, 201) and str(FALLBACK_LIMIT) not in a.policy for a in recent
            )

        try:
            recovered = await eventually(
                shared_limits_again, timeout=20, what="shared limits and 2xx again"
            )
        except AssertionError:
            raise AssertionError(load.of("after")[-CLIENTS * 3 :]) from None
        await eventually(
            lambda: _above(metric(resources, "cache_hits_total", {}), hits_before),
            timeout=10,
            what="cache hits again",
        )
        load.phase = "done"
        await asyncio.gather(*clients)

    server_errors = [a for a in load.answers if a.status >= 500]
    assert not server_errors, server_errors[:5]
    down = load.of("down")
    assert down, "no request was sent while Redis was down"
    limited = load.of("down", 429)
    allowed = [a for a in down if a.status in (200, 201)]
    # The fallback limit applied: at most its worth allowed in the window, the rest 429 problems.
    assert limited, "the in-process limit never applied"
    assert len(allowed) <= FALLBACK_LIMIT
    assert all(a.content_type == "application/problem+json" for a in limited)
    assert all(a.status in (200, 201, 429) for a in load.answers if a.phase != "down")
    assert all(a.status in (0, 200, 201, 429) for a in down)
    slowest = max(a.seconds for a in load.answers)
    assert slowest < 2.5, slowest
    print(
        f"\n{len(load.answers)} requests: {len(down)} while Redis was down "
        f"({len(allowed)} allowed, {len(limited)} limited), none 5xx, slowest "
        f"{slowest * 1000:.0f} ms; shared limits again {recovered:.1f}s after Redis came back"
    )


async def _above(value: object, threshold: float) -> bool:
    assert asyncio.iscoroutine(value)
    return bool(await value > threshold)
