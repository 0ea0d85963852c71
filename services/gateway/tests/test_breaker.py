"""The circuit breaker per upstream and the single retry of idempotent requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from common.testing import TcpProxy
from gateway.breaker import BreakerState, CircuitBreaker
from gateway.settings import GatewaySettings

from .conftest import ADMIN, Client, Recorder

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]


@pytest.fixture
async def costs_proxy(costs_upstream: TestServer) -> AsyncIterator[TcpProxy]:
    assert costs_upstream.port is not None
    proxy = TcpProxy("127.0.0.1", costs_upstream.port)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.fixture
async def via_proxy(
    make_client: MakeClient, settings: GatewaySettings, costs_proxy: TcpProxy
) -> Client:
    return await make_client(
        settings.model_copy(
            update={
                "costs_url": f"http://127.0.0.1:{costs_proxy.port}",
                "breaker_reset_seconds": 2.0,
            }
        )
    )


def breaker_lines(metrics: str, upstream: str) -> list[str]:
    return [
        line
        for line in metrics.splitlines()
        if line.startswith("breaker_") and f'upstream="{upstream}"' in line
    ]


async def test_stopped_upstream_opens_the_breaker_and_restart_closes_it(
    via_proxy: Client, costs_proxy: TcpProxy, costs_recorder: Recorder
) -> None:
    assert (await via_proxy.get("/api/costs/daily", headers=ADMIN)).status == 200
    await costs_proxy.cut()
    # A GET is tried twice, so three GETs make five failed attempts: the breaker opens.
    statuses = [(await via_proxy.get("/api/costs/daily", headers=ADMIN)).status for _ in range(3)]
    assert statuses == [503, 503, 503]
    await costs_proxy.restore()
    seen = len(costs_recorder.requests)

    # Failing fast is shown by what the breaker does, not by a clock: the upstream is up again,
    # yet none of these requests reaches it until the reset timeout has passed.
    for _ in range(100):
        resp = await via_proxy.get("/api/costs/daily", headers=ADMIN)
        assert resp.status == 503
        assert 1 <= int(resp.headers["Retry-After"]) <= 2
        assert resp.headers["X-Frame-Options"] == "DENY"
    assert len(costs_recorder.requests) == seen, "an open breaker must not call the upstream"

    metrics = await (await via_proxy.get("/metrics")).text()
    assert any(
        line.startswith("breaker_state{") and line.endswith(" 1.0")
        for line in breaker_lines(metrics, "costs")
    )

    await _wait_for_half_open(via_proxy)
    assert (await via_proxy.get("/api/costs/daily", headers=ADMIN)).status == 200
    metrics = await (await via_proxy.get("/metrics")).text()
    assert any(
        line.startswith("breaker_state{") and line.endswith(" 0.0")
        for line in breaker_lines(metrics, "costs")
    )
    assert any(
        "breaker_transitions_total" in line and 'to="closed"' in line
        for line in breaker_lines(metrics, "costs")
    )


async def _wait_for_half_open(client: Client) -> None:
    from gateway.proxy import UPSTREAMS

    breaker = client.app[UPSTREAMS]["costs"].breaker
    deadline = time.monotonic() + 5
    while breaker.state is not BreakerState.HALF_OPEN:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_upstream_5xx_answers_count_as_failures(
    client: Client, costs_recorder: Recorder
) -> None:
    costs_recorder.fail_with = 503
    statuses = [(await client.get("/api/costs/daily", headers=ADMIN)).status for _ in range(6)]
    assert statuses == [503] * 6
    assert len(costs_recorder.requests) == 5  # the sixth never left the gateway


async def test_idempotent_request_is_retried_once(client: Client, costs_recorder: Recorder) -> None:
    costs_recorder.drop_next = 1
    resp = await client.get("/api/costs/daily", headers=ADMIN)
    assert resp.status == 200
    assert len(costs_recorder.requests) == 2


async def test_idempotent_request_is_not_retried_twice(
    client: Client, costs_recorder: Recorder
) -> None:
    costs_recorder.drop_next = 2
    resp = await client.delete("/api/costs/budgets/1", headers=ADMIN)
    assert resp.status == 503
    assert len(costs_recorder.requests) == 2


async def test_non_idempotent_request_is_never_retried(
    client: Client, costs_recorder: Recorder
) -> None:
    costs_recorder.drop_next = 1
    resp = await client.post("/api/costs/budgets", json={"a": 1}, headers=ADMIN)
    assert resp.status == 503
    assert len(costs_recorder.requests) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_on_failure_ratio_over_the_window() -> None:
    clock = Clock()
    breaker = CircuitBreaker("test", "ratio", clock=clock)
    for i in range(20):
        assert breaker.allow()
        if i % 2:
            breaker.record_failure()
        else:
            breaker.record_success()
    assert breaker.state is BreakerState.OPEN


def test_breaker_forgets_failures_outside_the_window() -> None:
    clock = Clock()
    breaker = CircuitBreaker("test", "window", clock=clock)
    for _ in range(10):
        breaker.record_success()
    for i in range(19):
        clock.now += 1.0
        if i % 3 == 0:
            breaker.record_failure()
        else:
            breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_half_open_admits_one_trial_and_failure_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker("test", "trial", reset_seconds=3, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    assert not breaker.allow()
    assert breaker.retry_after() == 3
    clock.now += 3
    assert breaker.allow()
    assert not breaker.allow(), "only one trial at a time"
    breaker.record_failure()
    assert state_of(breaker) is BreakerState.OPEN
    clock.now += 3
    assert breaker.allow()
    breaker.record_success()
    assert state_of(breaker) is BreakerState.CLOSED


def state_of(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


async def test_slow_upstream_is_a_504_and_counts_against_the_breaker(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    from gateway.proxy import UPSTREAMS

    client = await make_client(settings.model_copy(update={"upstream_read_timeout": 0.3}))
    resp = await client.get("/api/costs/report/slow", headers=ADMIN)
    assert resp.status == 504
    assert resp.content_type == "application/problem+json"
    assert client.app[UPSTREAMS]["costs"].breaker.consecutive_failures == 1


async def test_upstream_dying_mid_small_body_is_a_502(client: Client) -> None:
    resp = await client.get("/api/costs/report/broken-small", headers=ADMIN)
    assert resp.status == 502
    assert resp.content_type == "application/problem+json"


async def test_upstream_dying_mid_streamed_body_cuts_the_client_connection(
    client: Client,
) -> None:
    import aiohttp

    resp = await client.get("/api/costs/report/broken", headers=ADMIN)
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
