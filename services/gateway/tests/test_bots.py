"""Bot defence: honeypot paths and login field, User-Agent patterns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gateway.settings import GatewaySettings

from .conftest import ADMIN, Client

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]


@pytest.mark.parametrize("trap_path", ["/wp-login.php", "/.env", "/wp-admin/setup.php"])
async def test_trap_path_answers_like_any_unknown_path_then_blocks_the_client(
    client: Client, trap_path: str
) -> None:
    normal = await client.get("/no-such-page")
    trap = await client.get(trap_path)
    assert trap.status == normal.status == 404
    normal_body, trap_body = await normal.json(), await trap.json()
    assert {k: v for k, v in trap_body.items() if k not in ("instance", "request_id")} == {
        k: v for k, v in normal_body.items() if k not in ("instance", "request_id")
    }
    blocked = await client.get("/api/resources", headers=ADMIN)
    assert blocked.status == 403
    assert blocked.headers["X-Frame-Options"] == "DENY"


async def test_flag_expires(make_client: MakeClient, settings: GatewaySettings) -> None:
    client = await make_client(settings.model_copy(update={"flag_seconds": 1}))
    await client.get("/.env")
    assert (await client.get("/api/resources", headers=ADMIN)).status == 403
    import asyncio

    await asyncio.sleep(1.1)
    assert (await client.get("/api/resources", headers=ADMIN)).status == 200


async def test_honeypot_login_field_looks_like_a_failed_login_and_flags(client: Client) -> None:
    resp = await client.post(
        "/api/auth/login",
        json={"username": "alice", "password": "whatever-password", "website": "http://spam"},
    )
    assert resp.status == 401
    assert (await client.get("/api/resources", headers=ADMIN)).status == 403


@pytest.mark.parametrize(
    ("agent", "status"),
    [("sqlmap/1.7", 403), ("Mozilla/5.0 (Nikto)", 403), ("Mozilla/5.0", 200), ("", 200)],
)
async def test_denied_user_agents(client: Client, agent: str, status: int) -> None:
    resp = await client.get("/api/resources", headers={**ADMIN, "User-Agent": agent})
    assert resp.status == status


async def test_allow_list_of_user_agents(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(
        settings.model_copy(update={"allowed_user_agents": (r"^cloudops-cli/",)})
    )
    ok = await client.get("/api/resources", headers={**ADMIN, "User-Agent": "cloudops-cli/1.0"})
    assert ok.status == 200
    other = await client.get("/api/resources", headers={**ADMIN, "User-Agent": "curl/8"})
    assert other.status == 403
