"""Fixtures: the real gateway app against the test database and Redis, with the real resources
service as an upstream process, and small real aiohttp apps standing in for costs and alerts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from common.testing import (
    TEST_REDIS_URL,
    ServiceProcess,
    delete_exchanges,
    delete_redis_keys,
    free_port,
    make_settings,
    scratch_database,
    scratch_exchange,
    scratch_redis_prefix,
    truncate_schema,
)
from gateway.app import create_app
from gateway.settings import GatewaySettings

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]

ADMIN_KEY = "ck_test_bootstrap_admin_DO_NOT_LOG_7f3e9a"
JWT_SECRET = "test-jwt-secret-DO-NOT-LOG-" + "0123456789abcdef" * 3
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture(scope="session")
def resources_database() -> Iterator[str]:
    """The resources process's own database: it runs all session, and its outbox relay would
    otherwise take over the resources schema (and its events) of every other suite."""
    with scratch_database() as url:
        yield url


@pytest.fixture(scope="session")
def resources_service(resources_database: str) -> Iterator[ServiceProcess]:
    """The real resources service, one process for the whole session (it takes a while to start)."""
    prefix = scratch_redis_prefix()
    exchange = scratch_exchange()
    port = free_port()
    process = ServiceProcess(
        "resources",
        {
            "CLOUDOPS_RESOURCES_PORT": str(port),
            "CLOUDOPS_DATABASE_URL": resources_database,
            "CLOUDOPS_REDIS_PREFIX": prefix,
            "CLOUDOPS_EVENTS_EXCHANGE": exchange,
            "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
        },
        port,
    )
    process.start()
    yield process
    process.close()
    asyncio.run(delete_redis_keys(f"{prefix}*"))
    asyncio.run(delete_exchanges([exchange]))


class Recorder:
    """What a stand-in upstream received."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.drop_next = 0  # close this many connections without answering


def stand_in_upstream(name: str, recorder: Recorder) -> web.Application:
    """A real HTTP service on loopback that echoes what reached it."""

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen = {
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "body": body.decode(errors="replace"),
        }
        recorder.requests.append(seen)
        if recorder.drop_next > 0:
            recorder.drop_next -= 1
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if recorder.fail_with is not None:
            return web.Response(status=recorder.fail_with)
        if request.path.endswith("/slow"):
            await asyncio.sleep(2)
        if request.path.endswith(("/broken", "/broken-small")):
            length = "100000" if request.path.endswith("small") else "1000000"
            response = web.StreamResponse(headers={"Content-Length": length})
            await response.prepare(request)
            await response.write(b"x" * 1000)
            assert request.transport is not None
            request.transport.close()
            return response
        if request.path.endswith("/stream"):
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            for _ in range(64):
                await response.write(b"x" * 16384)
            await response.write_eof()
            return response
        return web.json_response(
            {"success": True, "data": {"service": name, **seen}},
            headers={
                "Connection": "close, X-Hop",
                "X-Hop": "secret-hop",
                "Set-Cookie": "upstream=1",
                "Keep-Alive": "timeout=5",
            },
        )

    async def live(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", live)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
def costs_recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def alerts_recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def costs_upstream(aiohttp_server: ServerFactory, costs_recorder: Recorder) -> TestServer:
    return await aiohttp_server(stand_in_upstream("costs", costs_recorder))


@pytest.fixture
async def alerts_upstream(aiohttp_server: ServerFactory, alerts_recorder: Recorder) -> TestServer:
    return await aiohttp_server(stand_in_upstream("alerts", alerts_recorder))


def server_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def settings(
    pg_url: str,
    redis_prefix: str,
    resources_service: ServiceProcess,
    costs_upstream: TestServer,
    alerts_upstream: TestServer,
) -> GatewaySettings:
    await truncate_schema(pg_url, "gateway")
    return gateway_settings(
        pg_url,
        redis_prefix,
        resources_url=resources_service.url,
        costs_url=server_url(costs_upstream),
        alerts_url=server_url(alerts_upstream),
    )


def gateway_settings(pg_url: str, redis_prefix: str, **values: Any) -> GatewaySettings:
    defaults: dict[str, Any] = {
        "database_url": pg_url,
        "redis_prefix": redis_prefix,
        "bootstrap_admin_key": ADMIN_KEY,
        "jwt_secret": JWT_SECRET,
        "breaker_reset_seconds": 0.5,
        "upstream_read_timeout": 5.0,
        "rate_limit": 1000,
    }
    defaults.update(values)
    return make_settings(GatewaySettings, **defaults)


@pytest.fixture
def make_client(aiohttp_client: ClientFactory) -> Callable[[GatewaySettings], Awaitable[Client]]:
    async def make(settings: GatewaySettings) -> Client:
        return await aiohttp_client(create_app(settings))

    return make


@pytest.fixture
async def client(
    make_client: Callable[[GatewaySettings], Awaitable[Client]],
    settings: GatewaySettings,
    resources_database: str,
) -> Client:
    await truncate_schema(resources_database, "resources")
    return await make_client(settings)


async def create_key(client: Client, permissions: list[str], **extra: Any) -> str:
    resp = await client.post(
        "/api/admin/keys",
        json={"name": "test key", "owner": "tests", "permissions": permissions, **extra},
        headers=ADMIN,
    )
    assert resp.status == 201, await resp.text()
    key: str = (await resp.json())["data"]["key"]
    return key


def resource_body(n: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": f"arn:aws:ec2:eu-west-1:123456789012:instance/i-{n:08x}",
        "name": f"web-{n}",
        "provider": "aws",
        "type": "compute",
        "region": "eu-west-1",
        "account": "123456789012",
        "status": "running",
        "hourly_cost": "0.0416",
        "tags": {"env": "prod"},
        "team": "web",
    }
    body.update(overrides)
    return body


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    yield client
    await client.aclose()
