"""The walking skeleton: routes proxied to real upstreams, identity headers, streaming."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.breaker import BreakerState
from gateway.proxy import UPSTREAMS
from gateway.settings import GatewaySettings

from .conftest import (
    ADMIN,
    Client,
    Recorder,
    ServerFactory,
    create_key,
    resource_body,
    server_url,
)

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]


async def test_health_is_public(client: Client) -> None:
    resp = await client.get("/api/health")
    assert resp.status == 200
    assert (await resp.json())["data"] == {"status": "ok"}


async def test_resources_round_trip_through_the_real_service(client: Client) -> None:
    created = await client.post("/api/resources", json=resource_body(), headers=ADMIN)
    assert created.status == 201, await created.text()
    resource = (await created.json())["data"]
    assert created.headers["Location"] == f"/api/resources/{resource['id']}"

    listed = await client.get("/api/resources?limit=20", headers=ADMIN)
    assert listed.status == 200
    body = await listed.json()
    assert [r["id"] for r in body["data"]] == [resource["id"]]
    assert body["meta"]["total"] == 1

    fetched = await client.get(f"/api/resources/{resource['id']}", headers=ADMIN)
    assert Decimal((await fetched.json())["data"]["hourly_cost"]) == Decimal("0.0416")


async def test_upstream_problem_is_passed_through(client: Client) -> None:
    resp = await client.get("/api/resources/not-a-uuid", headers=ADMIN)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "recorder_name"),
    [("/api/costs/daily?window=7d", "costs_recorder"), ("/api/alerts/feed", "alerts_recorder")],
)
async def test_costs_and_alerts_are_proxied_with_path_and_query(
    client: Client, path: str, recorder_name: str, request: pytest.FixtureRequest
) -> None:
    recorder: Recorder = request.getfixturevalue(recorder_name)
    resp = await client.get(path, headers=ADMIN)
    assert resp.status == 200
    assert recorder.requests[-1]["path"] == path


async def test_forged_identity_headers_never_reach_a_service(
    client: Client, costs_recorder: Recorder
) -> None:
    key = await create_key(client, ["read"])
    resp = await client.get(
        "/api/costs/realtime",
        headers={
            "X-API-Key": key,
            "X-CloudOps-Principal": "root",
            "X-CloudOps-Permissions": "admin",
            "x-cloudops-anything": "forged",
            "X-Forwarded-For": "10.9.9.9",
            "X-CSRF-Token": "a-session-secret",
        },
    )
    assert resp.status == 200
    seen = {k.lower(): v for k, v in costs_recorder.requests[-1]["headers"].items()}
    assert seen["x-cloudops-principal"].startswith("key_")
    assert seen["x-cloudops-permissions"] == "read"
    assert "x-cloudops-anything" not in seen
    assert seen["x-forwarded-for"] == "127.0.0.1"
    # The credential stays at the door.
    assert "x-api-key" not in seen
    assert "x-csrf-token" not in seen
    assert seen["x-request-id"] == resp.headers["X-Request-ID"]


async def test_hop_by_hop_headers_are_dropped_both_ways(
    client: Client, costs_recorder: Recorder
) -> None:
    resp = await client.get(
        "/api/costs/realtime",
        headers={
            **ADMIN,
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "1",
            "TE": "trailers",
        },
    )
    assert resp.status == 200
    seen = {k.lower() for k in costs_recorder.requests[-1]["headers"]}
    assert "x-secret-hop" not in seen
    assert "te" not in seen
    assert "X-Hop" not in resp.headers
    assert "Set-Cookie" not in resp.headers
    assert "Keep-Alive" not in resp.headers


async def test_large_upstream_bodies_stream_through(client: Client) -> None:
    resp = await client.get("/api/costs/report/stream", headers=ADMIN)
    assert resp.status == 200
    assert len(await resp.read()) == 64 * 16384
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/nowhere", 404),
        ("GET", "/api", 404),
        ("PUT", "/api/resources", 405),
        ("DELETE", "/api/health", 405),
    ],
)
async def test_routes_outside_the_table_are_404_and_other_methods_405(
    client: Client, method: str, path: str, status: int
) -> None:
    resp = await client.request(method, path, headers=ADMIN)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    if status == 405:
        assert "GET" in resp.headers["Allow"] or "POST" in resp.headers["Allow"]


class LiveAlerts:
    """A stand-in alerts service on loopback: its stream stays open as long as its viewer does."""

    def __init__(self) -> None:
        self.streams = 0
        self.slow = 0

    def app(self) -> web.Application:
        async def stream(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            self.streams += 1
            try:
                while True:
                    await response.write(b": keepalive\n\n")
                    await asyncio.sleep(0.05)
            except ConnectionResetError:
                return response  # the viewer (the gateway) went away
            finally:
                self.streams -= 1

        async def feed(request: web.Request) -> web.Response:
            if request.path.endswith("/slow"):
                self.slow += 1
                try:
                    await asyncio.sleep(1.0)
                finally:
                    self.slow -= 1
            return web.json_response({"success": True, "data": [], "meta": {"total": 0}})

        app = web.Application()
        app.router.add_get("/api/alerts/stream", stream)
        app.router.add_get("/api/alerts/drip", stream)  # the same, on an ordinary route
        app.router.add_get("/api/alerts", feed)
        app.router.add_get("/api/alerts/slow", feed)
        return app


async def until(probe: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not probe():
            await asyncio.sleep(0.02)


class ServedAsInProduction(TestServer):
    """The gateway as ``common.serve`` runs it: a handler goes on when its client leaves (the
    test server cancels it instead, which would hide what the handler does then)."""

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return await super()._make_runner(**(kwargs | {"handler_cancellation": False}))


@pytest.fixture
def served(aiohttp_client: Callable[[TestServer], Awaitable[Client]]) -> MakeClient:
    async def make(settings: GatewaySettings) -> Client:
        return await aiohttp_client(ServedAsInProduction(create_app(settings)))

    return make


@pytest.fixture
async def live_alerts(aiohttp_server: ServerFactory) -> tuple[LiveAlerts, str]:
    stand_in = LiveAlerts()
    return stand_in, server_url(await aiohttp_server(stand_in.app()))


async def test_one_callers_streams_neither_starve_ordinary_requests_nor_open_the_breaker(
    served: MakeClient, settings: GatewaySettings, live_alerts: tuple[LiveAlerts, str]
) -> None:
    # 200 streams of one read key once took the whole pool to alerts; the overflow timed out,
    # the timeouts opened the breaker, and /api/alerts was a 503 for everyone.
    stand_in, url = live_alerts
    client = await served(
        settings.model_copy(
            update={"alerts_url": url, "upstream_pool_size": 4, "upstream_connect_timeout": 0.3}
        )
    )
    reader = {"X-API-Key": await create_key(client, ["read"])}
    streams = [await client.get("/api/alerts/stream", headers=reader) for _ in range(12)]
    assert [s.status for s in streams] == [200] * 12
    await until(lambda: stand_in.streams == 12)

    answers = await asyncio.gather(*(client.get("/api/alerts", headers=ADMIN) for _ in range(20)))
    assert [a.status for a in answers] == [200] * 20
    breaker = client.app[UPSTREAMS]["alerts"].breaker
    assert breaker.state is BreakerState.CLOSED

    for stream in streams:
        stream.close()  # viewers leaving are no failure of the service either
    await until(lambda: stand_in.streams == 0)
    assert breaker.consecutive_failures == 0
    assert breaker.state is BreakerState.CLOSED


async def test_a_timeout_waiting_for_our_own_pool_is_a_503_not_an_upstream_failure(
    served: MakeClient, settings: GatewaySettings, live_alerts: tuple[LiveAlerts, str]
) -> None:
    stand_in, url = live_alerts
    client = await served(
        settings.model_copy(
            update={"alerts_url": url, "upstream_pool_size": 2, "upstream_connect_timeout": 0.2}
        )
    )
    slow = [asyncio.create_task(client.get("/api/alerts/slow", headers=ADMIN)) for _ in range(2)]
    await until(lambda: stand_in.slow == 2)  # both pooled connections are busy

    resp = await client.get("/api/alerts", headers=ADMIN)
    assert resp.status == 503
    assert resp.content_type == "application/problem+json"
    assert int(resp.headers["Retry-After"]) >= 1
    assert client.app[UPSTREAMS]["alerts"].breaker.consecutive_failures == 0
    assert [(await s).status for s in slow] == [200, 200]


async def test_a_client_leaving_mid_body_is_not_an_upstream_failure(
    served: MakeClient, settings: GatewaySettings, live_alerts: tuple[LiveAlerts, str]
) -> None:
    stand_in, url = live_alerts
    client = await served(settings.model_copy(update={"alerts_url": url}))
    resp = await client.get("/api/alerts/drip", headers=ADMIN)
    assert resp.status == 200
    assert await resp.content.readline()
    resp.close()
    await until(lambda: stand_in.streams == 0)  # the gateway let go of the upstream too
    assert client.app[UPSTREAMS]["alerts"].breaker.consecutive_failures == 0
