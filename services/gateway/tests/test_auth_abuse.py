"""Abuse that costs work: failed key checks are throttled per address before any database lookup,
and an account lock grows with failures but never keeps the owner's known device out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from gateway.keys import KEY_RING
from gateway.settings import GatewaySettings

from .conftest import ADMIN, Client

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]
PASSWORD = "correct horse battery staple"
LIMIT = 30


async def test_wrong_keys_from_one_address_are_throttled_before_the_database(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    shared = settings.model_copy(update={"auth_max_failures_per_ip": LIMIT})
    client = await make_client(shared)
    ring = client.app[KEY_RING]
    before = ring.lookups
    statuses = []
    for i in range(150):
        resp = await client.get("/api/resources", headers={"X-API-Key": f"ck_guess_{i:04d}"})
        statuses.append(resp.status)
    assert statuses == [401] * LIMIT + [429] * (150 - LIMIT)
    assert ring.lookups - before == LIMIT  # not 150
    refused = await client.get("/api/resources", headers={"X-API-Key": "ck_guess_x"})
    assert refused.content_type == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= shared.auth_failure_window_seconds
    # Another replica shares the count: it refuses at once, asking its database nothing.
    other = await make_client(shared)
    resp = await other.get("/api/resources", headers={"X-API-Key": "ck_guess_y"})
    assert resp.status == 429
    assert other.app[KEY_RING].lookups == 0


async def test_a_known_key_keeps_working_from_a_throttled_address(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(settings.model_copy(update={"auth_max_failures_per_ip": 3}))
    assert (await client.get("/api/resources", headers=ADMIN)).status == 200
    for i in range(4):
        await client.get("/api/resources", headers={"X-API-Key": f"ck_guess_{i}"})
    # Already verified by this process: no lookup needed, nothing to throttle.
    assert (await client.get("/api/resources", headers=ADMIN)).status == 200


async def test_forged_tokens_count_as_failures(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(settings.model_copy(update={"auth_max_failures_per_ip": 3}))
    for _ in range(3):
        forged = {"Authorization": "Bearer not.a.jwt"}
        assert (await client.get("/api/resources", headers=forged)).status == 401
    guess = await client.get("/api/resources", headers={"X-API-Key": "ck_guess"})
    assert guess.status == 429


async def make_user(client: Client, name: str = "gina") -> None:
    resp = await client.post(
        "/api/admin/users",
        json={"username": name, "password": PASSWORD, "permissions": ["read"]},
        headers=ADMIN,
    )
    assert resp.status == 201, await resp.text()


async def login(client: Client, password: str = PASSWORD) -> int:
    resp = await client.post("/api/auth/login", json={"username": "gina", "password": password})
    return resp.status


async def test_the_owners_known_device_gets_through_an_account_lock(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    limited = settings.model_copy(update={"login_max_failures_per_account": 3})
    owner = await make_client(limited)
    await make_user(owner)
    assert await login(owner) == 200  # the owner's browser is now a known device
    assert "cloudops_device" in {c.key for c in owner.session.cookie_jar}
    # Someone else, elsewhere, who knows only the user name.
    attacker = cast(Client, TestClient(owner.server, cookie_jar=CookieJar(unsafe=True)))
    await attacker.start_server()
    try:
        statuses = [await login(attacker, "wrong password!!") for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        assert await login(attacker) == 429  # even the right password waits, from elsewhere
        assert await login(owner) == 200  # but not from the owner's device
        assert await login(attacker) == 429  # and that did not lift the lock for others
    finally:
        await attacker.close()


async def test_a_device_cookie_of_another_user_does_not_help(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(settings.model_copy(update={"login_max_failures_per_account": 2}))
    await make_user(client, "hal")
    await make_user(client)
    ok = await client.post("/api/auth/login", json={"username": "hal", "password": PASSWORD})
    assert ok.status == 200  # a device cookie for hal, not for gina
    assert [await login(client, "nope nope nope") for _ in range(2)] == [401, 401]
    assert await login(client) == 429


async def test_the_account_lock_doubles_with_each_further_failure(
    make_client: MakeClient, settings: GatewaySettings, redis_client: Redis
) -> None:
    limited = settings.model_copy(
        update={"login_max_failures_per_account": 2, "login_lockout_base_seconds": 10}
    )
    client = await make_client(limited)
    await make_user(client)
    lock = f"{settings.redis_prefix}gateway:login-failures:lock:gina"
    waits = []
    for _ in range(3):
        while await login(client, "wrong password!!") == 401:
            pass
        resp = await client.post("/api/auth/login", json={"username": "gina", "password": "x"})
        assert resp.status == 429
        waits.append(int(resp.headers["Retry-After"]))
        await redis_client.delete(lock)  # as if the lock had run out
    assert waits[0] <= 10 < waits[1] <= 20 < waits[2] <= 40


async def test_a_wrong_key_answered_from_the_cache_counts_once(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    # nginx's edge decision and the gateway rendering the 401 see the same key twice.
    client = await make_client(settings.model_copy(update={"auth_max_failures_per_ip": 3}))
    ring = client.app[KEY_RING]
    before = ring.lookups
    for _ in range(10):
        resp = await client.get("/api/resources", headers={"X-API-Key": "ck_same_guess"})
        assert resp.status == 401
    assert ring.lookups - before == 1
