"""Admission control: beyond the in-flight bound, an immediate 503; probes still answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from common.admission import ADMISSION
from common.config import ServiceSettings
from common.testing import make_settings
from common.web import create_base_app

Client = TestClient[web.Request, web.Application]
BOUND = 3


class Gate:
    """Holds requests in the handler until the test opens it; says when ``BOUND`` are inside."""

    def __init__(self) -> None:
        self.inside = 0
        self.full = asyncio.Event()
        self.open = asyncio.Event()

    async def slow(self, request: web.Request) -> web.Response:
        self.inside += 1
        if self.inside == BOUND:
            self.full.set()
        await self.open.wait()
        return web.json_response({"ok": True})


async def crash(request: web.Request) -> web.Response:
    raise RuntimeError("boom")


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def client(aiohttp_client: Callable[..., Awaitable[Client]], gate: Gate) -> Client:
    settings = make_settings(ServiceSettings, service_name="admission-t", max_in_flight=BOUND)
    app = create_base_app(settings)
    app.router.add_get("/slow", gate.slow)
    app.router.add_get("/crash", crash)
    app.router.add_get("/stream", gate.slow)
    return await aiohttp_client(app)


def rejected() -> float:
    labels = {"service": "admission-t"}
    return REGISTRY.get_sample_value("http_requests_rejected_total", labels) or 0.0


async def fill(client: Client, gate: Gate, path: str = "/slow") -> list[asyncio.Task[int]]:
    async def status() -> int:
        async with client.get(path) as resp:
            return resp.status

    held = [asyncio.create_task(status()) for _ in range(BOUND)]
    await asyncio.wait_for(gate.full.wait(), 10)
    return held


async def test_beyond_the_bound_a_request_is_refused_at_once_and_probes_still_answer(
    client: Client, gate: Gate
) -> None:
    before = rejected()
    held = await fill(client, gate)

    # The held requests cannot finish before the gate opens, so a queued request would time out.
    over = await asyncio.wait_for(client.get("/slow"), 5)
    assert over.status == 503
    assert over.headers["Retry-After"] == "1"
    assert over.content_type == "application/problem+json"
    problem = await over.json()
    assert problem["type"].endswith("/overloaded")
    assert problem["instance"] == "/slow"
    assert rejected() == before + 1

    for path in ("/health/live", "/health/ready", "/metrics"):
        probe = await asyncio.wait_for(client.get(path), 5)
        assert probe.status == 200, path
    assert "http_requests_rejected_total" in await (await client.get("/metrics")).text()

    gate.open.set()
    assert await asyncio.gather(*held) == [200] * BOUND
    assert (await client.get("/slow")).status == 200
    assert rejected() == before + 1


async def test_a_failed_request_gives_its_slot_back(client: Client) -> None:
    for _ in range(BOUND + 2):
        assert (await client.get("/crash")).status == 500
    assert client.app[ADMISSION].in_flight == 0


async def test_an_exempt_stream_holds_no_slot(client: Client, gate: Gate) -> None:
    client.app[ADMISSION].exempt.add("/stream")
    held = await fill(client, gate, "/stream")

    assert client.app[ADMISSION].in_flight == 0
    gate.open.set()
    assert await asyncio.gather(*held) == [200] * BOUND
