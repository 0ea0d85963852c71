"""The security log: structured events for every refusal, and never a credential in any line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from ipaddress import ip_network

import orjson
import pytest

from common.testing import captured_logs
from gateway.settings import GatewaySettings

from .conftest import ADMIN, ADMIN_KEY, JWT_SECRET, Client, create_key

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]
PASSWORD = "correct horse battery staple DO-NOT-LOG"


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every JSON line the app writes, at DEBUG; loguru and stdlib logging restored after."""
    with captured_logs("gateway") as lines:
        yield lines


def events(lines: list[str]) -> list[dict[str, object]]:
    parsed = [orjson.loads(line) for line in lines]
    return [e for e in parsed if "security_event" in e]


async def test_no_credential_is_ever_logged(
    log_lines: list[str], make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(
        settings.model_copy(
            update={"rate_limit": 12, "admin_allow_cidrs": (ip_network("10.0.0.0/8"),)}
        )
    )
    secrets: list[str] = [ADMIN_KEY, JWT_SECRET, PASSWORD]
    # Admin routes are closed to loopback here, so set a user up straight through storage.
    from gateway.domain import UserRequest
    from gateway.users import USERS

    await client.app[USERS].create(
        UserRequest(username="alice", password=PASSWORD, permissions=["read"])
    )
    key = await _key_via_other_app(make_client, settings)
    secrets.append(key)
    token_resp = await client.post("/api/auth/token", headers={"X-API-Key": key})
    token = (await token_resp.json())["data"]["access_token"]
    secrets.append(token)
    login = await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    cookie = login.cookies["cloudops_session"].value
    secrets.append(cookie)

    await client.get("/api/resources", headers={"X-API-Key": key})
    await client.get("/api/resources", headers={"Authorization": f"Bearer {token}"})
    await client.get("/api/resources", headers={"Authorization": f"Bearer {token}x"})
    await client.get("/api/resources", headers={"X-API-Key": key + "x"})
    await client.get(f"/api/resources?api_key={key}")
    await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD + "x"})
    await client.get("/api/performance/stats")  # the session cookie, from the jar
    await client.get("/api/admin/keys", headers=ADMIN)  # network refused
    for _ in range(12):
        await client.get("/api/performance/stats", headers={"X-API-Key": key})
    await client.post(
        "/api/auth/login",
        json={"username": "alice", "password": PASSWORD, "website": "x"},
    )
    await client.get("/wp-login.php", headers={"X-API-Key": key})

    text = "\n".join(log_lines)
    for secret in secrets:
        assert secret not in text
    seen = {e["security_event"] for e in events(log_lines)}
    assert {
        "auth_failed",
        "query_credential",
        "login_failed",
        "ip_denied",
        "rate_limited",
        "honeypot_hit",
    } <= seen
    for event in events(log_lines):
        assert event["client_ip"] == "127.0.0.1"
        assert event["request_id"]


async def _key_via_other_app(make_client: MakeClient, settings: GatewaySettings) -> str:
    admin_client = await make_client(settings)
    return await create_key(admin_client, ["read"])
