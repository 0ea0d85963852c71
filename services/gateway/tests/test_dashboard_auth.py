"""What the dashboard relies on: the session endpoint, CSRF tokens, and a session's own quota."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from gateway.settings import GatewaySettings

from .conftest import ADMIN, Client, Recorder, create_key

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]
PASSWORD = "correct horse battery staple"


async def make_user(client: Client, permissions: list[str]) -> None:
    resp = await client.post(
        "/api/admin/users",
        json={"username": "dana", "password": PASSWORD, "permissions": permissions},
        headers=ADMIN,
    )
    assert resp.status == 201, await resp.text()


async def login(client: Client, permissions: list[str] | None = None) -> dict[str, Any]:
    """Create the user, log in (the cookie lands in the client's jar); the login ``data``."""
    await make_user(client, permissions or ["write"])
    resp = await client.post("/api/auth/login", json={"username": "dana", "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = (await resp.json())["data"]
    return data


async def session_keys(redis: Redis, settings: GatewaySettings) -> list[bytes]:
    pattern = f"{settings.redis_prefix}gateway:session:*"
    return [k async for k in redis.scan_iter(match=pattern)]


async def test_login_returns_the_user_and_a_random_csrf_token(client: Client) -> None:
    data = await login(client, ["admin"])
    assert data["username"] == "dana"
    assert data["permissions"] == ["admin"]
    assert len(data["csrf_token"]) >= 40
    again = await client.post("/api/auth/login", json={"username": "dana", "password": PASSWORD})
    assert (await again.json())["data"]["csrf_token"] != data["csrf_token"]


async def test_session_endpoint_answers_while_the_cookie_is_live(client: Client) -> None:
    data = await login(client)
    resp = await client.get("/api/auth/session")
    assert resp.status == 200
    assert (await resp.json())["data"] == data


async def test_session_endpoint_is_401_without_a_cookie(client: Client) -> None:
    resp = await client.get("/api/auth/session")
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    assert "WWW-Authenticate" in resp.headers


async def test_session_endpoint_is_401_once_the_session_expired(
    client: Client, redis_client: Redis, settings: GatewaySettings
) -> None:
    await login(client)
    (key,) = await session_keys(redis_client, settings)
    record = orjson.loads(await redis_client.get(key) or b"")
    record["seen_at"] = time.time() - settings.session_idle_seconds - 1
    await redis_client.set(key, orjson.dumps(record))
    resp = await client.get("/api/auth/session")
    assert resp.status == 401
    assert (await resp.json())["type"].endswith("/unauthorized")


async def test_session_endpoint_is_401_after_logout(client: Client) -> None:
    data = await login(client)
    logout = await client.post("/api/auth/logout", headers={"X-CSRF-Token": data["csrf_token"]})
    assert logout.status == 204
    assert (await client.get("/api/auth/session")).status == 401


async def test_the_csrf_token_lives_in_the_session_record(
    client: Client, redis_client: Redis, settings: GatewaySettings
) -> None:
    data = await login(client)
    (key,) = await session_keys(redis_client, settings)
    assert orjson.loads(await redis_client.get(key) or b"")["csrf"] == data["csrf_token"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/costs/budgets"),
        ("PUT", "/api/alerts/silences/s1"),
        ("PATCH", "/api/costs/budgets/b1"),
        ("DELETE", "/api/costs/budgets/b1"),
        ("POST", "/api/auth/token"),
        ("POST", "/api/auth/logout"),
    ],
)
@pytest.mark.parametrize("sent", ["missing", "wrong", "empty", "other session's"])
async def test_session_changes_without_the_right_csrf_token_are_403(
    client: Client, costs_recorder: Recorder, method: str, path: str, sent: str
) -> None:
    data = await login(client)
    headers = {
        "missing": {},
        "wrong": {"X-CSRF-Token": data["csrf_token"][:-1] + "x"},
        "empty": {"X-CSRF-Token": ""},
        "other session's": {"X-CSRF-Token": "A" * len(data["csrf_token"])},
    }[sent]
    resp = await client.request(method, path, json={"a": 1}, headers=headers)
    assert resp.status == 403
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["type"].endswith("/csrf")
    assert "X-CSRF-Token" in body["detail"]
    assert costs_recorder.requests == []
    # A refused logout leaves the session as it was.
    assert (await client.get("/api/auth/session")).status == 200


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])  # costs has no PUT
async def test_session_changes_with_the_right_csrf_token_pass(
    client: Client, costs_recorder: Recorder, method: str
) -> None:
    data = await login(client)
    resp = await client.request(
        method, "/api/costs/budgets/b1", json={"a": 1}, headers={"X-CSRF-Token": data["csrf_token"]}
    )
    assert resp.status == 200
    assert costs_recorder.requests[-1]["method"] == method
    assert costs_recorder.requests[-1]["headers"]["X-CloudOps-Principal"] == "dana"


async def test_session_reads_need_no_csrf_token(client: Client) -> None:
    await login(client)
    assert (await client.get("/api/costs/budgets")).status == 200


async def test_api_key_and_bearer_callers_are_exempt(client: Client) -> None:
    key = await create_key(client, ["write"])
    # Even with a live session cookie in the jar, a key identifies the caller instead.
    await login(client)
    by_key = await client.post("/api/costs/budgets", json={"a": 1}, headers={"X-API-Key": key})
    assert by_key.status == 200
    token_resp = await client.post("/api/auth/token", headers={"X-API-Key": key})
    token = (await token_resp.json())["data"]["access_token"]
    client.session.cookie_jar.clear()
    by_token = await client.post(
        "/api/costs/budgets", json={"a": 1}, headers={"Authorization": f"Bearer {token}"}
    )
    assert by_token.status == 200


async def test_login_again_needs_no_csrf_token(client: Client) -> None:
    first = await login(client)
    again = await client.post("/api/auth/login", json={"username": "dana", "password": PASSWORD})
    assert again.status == 200
    assert (await again.json())["data"]["csrf_token"] != first["csrf_token"]


async def test_logout_with_the_token_ends_the_session_and_clears_the_cookie(
    client: Client,
) -> None:
    data = await login(client)
    resp = await client.post("/api/auth/logout", headers={"X-CSRF-Token": data["csrf_token"]})
    assert resp.status == 204
    assert resp.cookies["cloudops_session"].value == ""
    assert (await client.get("/api/costs/budgets")).status == 401


async def test_session_has_its_own_quota_separate_from_keys(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(
        settings.model_copy(
            update={"rate_limit": 2, "session_rate_limit": 4, "session_rate_window_seconds": 30}
        )
    )
    await login(client)
    statuses = [(await client.get("/api/costs/budgets")).status for _ in range(5)]
    # The login itself counted against the anonymous caller's IP, not the user's quota.
    assert statuses == [200, 200, 200, 200, 429]
    first = await client.get("/api/auth/session")
    assert first.status == 429
    assert first.headers["RateLimit-Policy"] == '"session";q=4;w=30'
    client.session.cookie_jar.clear()
    key = await make_key_elsewhere(make_client, settings)
    by_key = await client.get("/api/costs/budgets", headers={"X-API-Key": key})
    assert by_key.status == 200
    assert by_key.headers["RateLimit-Policy"] == f'"default";q=2;w={settings.rate_window_seconds}'


async def test_session_quota_headers_count_down(client: Client, settings: GatewaySettings) -> None:
    await login(client)
    resp = await client.get("/api/auth/session")
    limit, window = settings.session_rate_limit, settings.session_rate_window_seconds
    assert (limit, window) == (3000, 300)
    assert resp.headers["RateLimit-Policy"] == f'"session";q={limit};w={window}'
    assert resp.headers["RateLimit"] == f'"session";r={limit - 1};t={window}'
    assert resp.headers["RateLimit-Remaining"] == str(limit - 1)
    again = await client.get("/api/auth/session")
    assert again.headers["RateLimit-Remaining"] == str(limit - 2)


async def make_key_elsewhere(make_client: MakeClient, settings: GatewaySettings) -> str:
    """A key made through a second app with default limits, so the test's limits stay intact."""
    other = await make_client(settings)
    return await create_key(other, ["read"])
