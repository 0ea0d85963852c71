"""A bearer token lives only as long as what minted it: revoking or expiring the key, logging out
the session, or disabling the user ends its tokens within seconds on every replica."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from gateway.settings import GatewaySettings

from .conftest import ADMIN, Client, create_key

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]
CACHE_SECONDS = 1.0
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def replicas(make_client: MakeClient, settings: GatewaySettings) -> tuple[Client, Client]:
    """Two gateway instances sharing PostgreSQL and Redis, as two replicas would."""
    shared = settings.model_copy(update={"key_cache_seconds": CACHE_SECONDS})
    return await make_client(shared), await make_client(shared)


async def status_with(client: Client, token: str) -> int:
    resp = await client.get("/api/costs/daily", headers={"Authorization": f"Bearer {token}"})
    return resp.status


async def seconds_until_refused(client: Client, token: str, bound: float = 10) -> float:
    """How long ``token`` kept working on ``client`` after the call."""
    started = time.monotonic()
    while await status_with(client, token) == 200:
        assert time.monotonic() - started < bound, "the token outlived what minted it"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def key_token(client: Client, key: str) -> str:
    resp = await client.post("/api/auth/token", headers={"X-API-Key": key})
    assert resp.status == 200, await resp.text()
    token: str = (await resp.json())["data"]["access_token"]
    return token


async def key_id(client: Client) -> str:
    listed = await (await client.get("/api/admin/keys", headers=ADMIN)).json()
    found: str = listed["data"][-1]["id"]
    return found


async def test_revoking_a_key_ends_its_tokens_on_every_replica(
    replicas: tuple[Client, Client],
) -> None:
    a, b = replicas
    key = await create_key(a, ["read"])
    token = await key_token(a, key)
    assert await status_with(b, token) == 200  # replica b now caches the key as usable
    revoked = await a.delete(f"/api/admin/keys/{await key_id(a)}", headers=ADMIN)
    assert revoked.status == 200
    assert await status_with(a, token) == 401  # at once where it was revoked
    waited = await seconds_until_refused(b, token)
    assert waited <= CACHE_SECONDS + 1


async def test_an_expired_key_ends_its_tokens(replicas: tuple[Client, Client], pg_url: str) -> None:
    a, b = replicas
    key = await create_key(a, ["read"])
    token = await key_token(a, key)
    assert await status_with(b, token) == 200
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(
            "UPDATE gateway.api_keys SET expires_at = now() - interval '1 second' "
            "WHERE id <> 'key_bootstrap'"
        )
    finally:
        await conn.close()
    assert await seconds_until_refused(b, token) <= CACHE_SECONDS + 1


async def test_logging_out_ends_the_sessions_tokens_on_every_replica(
    replicas: tuple[Client, Client],
) -> None:
    a, b = replicas
    created = await a.post(
        "/api/admin/users",
        json={"username": "erin", "password": PASSWORD, "permissions": ["read"]},
        headers=ADMIN,
    )
    assert created.status == 201
    login = await a.post("/api/auth/login", json={"username": "erin", "password": PASSWORD})
    csrf = {"X-CSRF-Token": (await login.json())["data"]["csrf_token"]}
    minted = await a.post("/api/auth/token", headers=csrf)
    assert minted.status == 200, await minted.text()
    token = (await minted.json())["data"]["access_token"]
    assert await status_with(b, token) == 200
    assert (await a.post("/api/auth/logout", headers=csrf)).status == 204
    assert await status_with(a, token) == 401
    assert await seconds_until_refused(b, token) <= CACHE_SECONDS + 1


async def test_disabling_a_user_ends_the_tokens_of_its_password(
    replicas: tuple[Client, Client], pg_url: str
) -> None:
    a, b = replicas
    created = await a.post(
        "/api/admin/users",
        json={"username": "fred", "password": PASSWORD, "permissions": ["read"]},
        headers=ADMIN,
    )
    assert created.status == 201
    minted = await a.post("/api/auth/token", json={"username": "fred", "password": PASSWORD})
    token = (await minted.json())["data"]["access_token"]
    assert await status_with(b, token) == 200
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("UPDATE gateway.users SET disabled_at = now() WHERE username = 'fred'")
    finally:
        await conn.close()
    assert await seconds_until_refused(b, token) <= CACHE_SECONDS + 1


async def test_a_live_origin_keeps_its_tokens_working(replicas: tuple[Client, Client]) -> None:
    a, b = replicas
    token = await key_token(a, await create_key(a, ["read"]))
    for _ in range(3):
        assert await status_with(b, token) == 200
        await asyncio.sleep(CACHE_SECONDS / 2)
