"""Dashboard users: argon2 passwords, Redis sessions, login limits, tokens for users."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis

from gateway.settings import GatewaySettings

from .conftest import ADMIN, Client, Recorder

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]
PASSWORD = "correct horse battery staple"


async def make_user(
    client: Client, name: str = "alice", permissions: list[str] | None = None
) -> None:
    resp = await client.post(
        "/api/admin/users",
        json={"username": name, "password": PASSWORD, "permissions": permissions or ["read"]},
        headers=ADMIN,
    )
    assert resp.status == 201, await resp.text()


async def _get(redis: Redis, key: bytes) -> bytes:
    value = await redis.get(key)
    assert isinstance(value, bytes)
    return value


async def login(client: Client, name: str = "alice", password: str = PASSWORD) -> Any:
    return await client.post("/api/auth/login", json={"username": name, "password": password})


async def test_password_is_stored_as_argon2_only(client: Client, pg_url: str) -> None:
    await make_user(client)
    conn = await asyncpg.connect(pg_url)
    try:
        stored = await conn.fetchval("SELECT password_hash FROM gateway.users")
    finally:
        await conn.close()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    listed = await (await client.get("/api/admin/users", headers=ADMIN)).json()
    assert listed["data"][0]["username"] == "alice"
    assert "password_hash" not in listed["data"][0]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "bob", "password": "short", "permissions": ["read"]}, 422),
        ({"username": "B<o>b", "password": PASSWORD, "permissions": ["read"]}, 422),
        ({"username": "bob", "password": PASSWORD, "permissions": ["root"]}, 422),
    ],
)
async def test_invalid_users_are_refused(client: Client, body: dict[str, Any], status: int) -> None:
    assert (await client.post("/api/admin/users", json=body, headers=ADMIN)).status == status
    assert (await (await client.get("/api/admin/users", headers=ADMIN)).json())["data"] == []


async def test_duplicate_user_is_409(client: Client) -> None:
    await make_user(client)
    resp = await client.post(
        "/api/admin/users",
        json={"username": "alice", "password": PASSWORD, "permissions": ["read"]},
        headers=ADMIN,
    )
    assert resp.status == 409


async def test_login_sets_a_strict_httponly_session_that_authenticates(
    client: Client, costs_recorder: Recorder
) -> None:
    await make_user(client)
    resp = await login(client)
    assert resp.status == 200
    cookie = resp.cookies["cloudops_session"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert not cookie["secure"]
    assert (await client.get("/api/costs/daily")).status == 200
    assert costs_recorder.requests[-1]["headers"]["X-CloudOps-Principal"] == "alice"
    assert "Cookie" not in costs_recorder.requests[-1]["headers"]
    csrf = {"X-CSRF-Token": (await resp.json())["data"]["csrf_token"]}
    refused = await client.post("/api/costs/budgets", json={}, headers=csrf)
    assert refused.status == 403
    assert (await refused.json())["type"].endswith("/forbidden")


async def test_session_cookie_is_secure_behind_tls(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    from ipaddress import ip_network

    client = await make_client(
        settings.model_copy(update={"trusted_proxies": (ip_network("127.0.0.0/8"),)})
    )
    await make_user(client)
    resp = await client.post(
        "/api/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert resp.cookies["cloudops_session"]["secure"]


async def test_login_rotates_the_session_id_and_logout_ends_it(client: Client) -> None:
    await make_user(client)
    first = (await login(client)).cookies["cloudops_session"].value
    second_login = await login(client)
    second = second_login.cookies["cloudops_session"].value
    csrf = (await second_login.json())["data"]["csrf_token"]
    assert first != second
    client.session.cookie_jar.clear()

    async def status_with(session_id: str) -> int:
        headers = {"Cookie": f"cloudops_session={session_id}"}
        return (await client.get("/api/performance/stats", headers=headers)).status

    # The old id is gone server-side, not only replaced in this browser.
    assert await status_with(first) == 401
    assert await status_with(second) == 200
    logout = await client.post(
        "/api/auth/logout",
        headers={"Cookie": f"cloudops_session={second}", "X-CSRF-Token": csrf},
    )
    assert logout.status == 204
    assert await status_with(second) == 401


@pytest.mark.parametrize("clock", ["login_at", "seen_at"])
async def test_idle_and_absolute_timeouts_end_the_session(
    client: Client, redis_client: Redis, settings: GatewaySettings, clock: str
) -> None:
    await make_user(client)
    await login(client)
    keys = [
        k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}gateway:session:*")
    ]
    assert len(keys) == 1
    data = orjson.loads(await _get(redis_client, keys[0]))
    data[clock] = time.time() - settings.session_absolute_seconds - 1
    await redis_client.set(keys[0], orjson.dumps(data))
    assert (await client.get("/api/performance/stats")).status == 401
    assert await redis_client.exists(keys[0]) == 0


async def test_session_idle_clock_is_advanced_by_use(
    client: Client, redis_client: Redis, settings: GatewaySettings
) -> None:
    await make_user(client)
    await login(client)
    keys = [
        k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}gateway:session:*")
    ]
    assert len(keys) == 1
    key = keys[0]
    data = orjson.loads(await _get(redis_client, key))
    data["seen_at"] = time.time() - 120
    await redis_client.set(key, orjson.dumps(data))
    assert (await client.get("/api/performance/stats")).status == 200
    assert orjson.loads(await _get(redis_client, key))["seen_at"] > time.time() - 5


async def test_wrong_password_and_unknown_user_look_the_same(client: Client) -> None:
    await make_user(client)
    wrong = await login(client, password="not the password at all")
    unknown = await login(client, name="mallory")
    assert wrong.status == unknown.status == 401
    assert (await wrong.json())["detail"] == (await unknown.json())["detail"]
    assert "cloudops_session" not in wrong.cookies


async def test_login_failures_are_limited_per_account(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(settings.model_copy(update={"login_max_failures_per_account": 3}))
    await make_user(client)
    statuses = [(await login(client, password="wrong password!!")).status for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    locked = await login(client)  # even the right password waits now
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) >= 1


async def test_login_failures_are_limited_per_ip(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(settings.model_copy(update={"login_max_failures_per_ip": 3}))
    statuses = [(await login(client, name=f"user{i}", password="x")).status for i in range(4)]
    assert statuses == [401, 401, 401, 429]


async def test_user_credentials_exchange_for_a_token(client: Client) -> None:
    await make_user(client, permissions=["write"])
    resp = await client.post("/api/auth/token", json={"username": "alice", "password": PASSWORD})
    assert resp.status == 200
    token = (await resp.json())["data"]["access_token"]
    created = await client.post(
        "/api/costs/budgets", json={"a": 1}, headers={"Authorization": f"Bearer {token}"}
    )
    assert created.status == 200


async def test_malformed_login_is_rejected(client: Client) -> None:
    assert (await client.post("/api/auth/login", json={"username": "a"})).status == 422
    bad = await client.post(
        "/api/auth/login", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert bad.status == 400


async def test_login_body_has_its_own_small_limit(client: Client) -> None:
    resp = await client.post(
        "/api/auth/login", json={"username": "alice", "password": "x" * 10_000}
    )
    assert resp.status == 413


async def test_sessions_and_login_answer_503_when_redis_is_down(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    from common.testing import TcpProxy

    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    try:
        client = await make_client(
            settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{proxy.port}/0"})
        )
        await make_user(client)
        cookie = (await login(client)).cookies["cloudops_session"].value
        await proxy.cut()
        resp = await client.get(
            "/api/performance/stats", headers={"Cookie": f"cloudops_session={cookie}"}
        )
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "5"
        assert (await login(client)).status == 503
    finally:
        await proxy.cut()
