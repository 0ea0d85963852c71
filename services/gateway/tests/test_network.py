"""Client IP resolution, trusted proxies, IP allow/deny lists, and HSTS behind TLS."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ipaddress import ip_network
from typing import Any

import pytest

from gateway.settings import GatewaySettings

from .conftest import ADMIN, Client, Recorder

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]
LOOPBACK = (ip_network("127.0.0.0/8"),)


async def with_settings(
    make_client: MakeClient, settings: GatewaySettings, **values: Any
) -> Client:
    return await make_client(settings.model_copy(update=values))


async def test_forged_forwarded_for_from_untrusted_peer_is_ignored(
    client: Client, costs_recorder: Recorder
) -> None:
    await client.get("/api/costs/daily", headers={**ADMIN, "X-Forwarded-For": "203.0.113.9"})
    assert costs_recorder.requests[-1]["headers"]["X-Forwarded-For"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("forwarded", "client_ip"),
    [
        ("203.0.113.9", "203.0.113.9"),
        # The client prepended a forged hop; nginx appended the real one.
        ("198.51.100.1, 203.0.113.9", "203.0.113.9"),
        ("198.51.100.1, 203.0.113.9, 127.0.0.5", "203.0.113.9"),
        ("2001:db8::7", "2001:db8::7"),
        ("not-an-ip", "127.0.0.1"),
    ],
)
async def test_trusted_proxy_forwarded_for_is_read_right_to_left(
    make_client: MakeClient,
    settings: GatewaySettings,
    costs_recorder: Recorder,
    forwarded: str,
    client_ip: str,
) -> None:
    client = await with_settings(make_client, settings, trusted_proxies=LOOPBACK)
    await client.get("/api/costs/daily", headers={**ADMIN, "X-Forwarded-For": forwarded})
    assert costs_recorder.requests[-1]["headers"]["X-Forwarded-For"] == client_ip


async def test_hsts_only_when_the_trusted_proxy_says_https(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    trusted = await with_settings(make_client, settings, trusted_proxies=LOOPBACK)
    over_tls = await trusted.get("/api/health", headers={"X-Forwarded-Proto": "https"})
    assert over_tls.headers["Strict-Transport-Security"].startswith("max-age=")
    untrusted = await make_client(settings)
    forged = await untrusted.get("/api/health", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in forged.headers


@pytest.mark.parametrize(
    ("values", "status"),
    [
        ({"deny_cidrs": (ip_network("127.0.0.0/8"),)}, 403),
        ({"allow_cidrs": (ip_network("10.0.0.0/8"),)}, 403),
        ({"allow_cidrs": (ip_network("127.0.0.1/32"),)}, 200),
        ({"allow_cidrs": LOOPBACK, "deny_cidrs": (ip_network("127.0.0.1/32"),)}, 403),
        ({"deny_cidrs": (ip_network("::1/128"),)}, 200),
    ],
)
async def test_global_ip_lists(
    make_client: MakeClient, settings: GatewaySettings, values: dict[str, Any], status: int
) -> None:
    client = await with_settings(make_client, settings, **values)
    resp = await client.get("/api/resources", headers=ADMIN)
    assert resp.status == status
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_admin_routes_have_their_own_allow_list(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await with_settings(
        make_client, settings, admin_allow_cidrs=(ip_network("10.0.0.0/8"),)
    )
    assert (await client.get("/api/resources", headers=ADMIN)).status == 200
    assert (await client.get("/api/admin/keys", headers=ADMIN)).status == 403


async def test_denied_forwarded_client_behind_trusted_proxy(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await with_settings(
        make_client,
        settings,
        trusted_proxies=LOOPBACK,
        deny_cidrs=(ip_network("203.0.113.0/24"),),
    )
    denied = await client.get("/api/health", headers={"X-Forwarded-For": "203.0.113.9"})
    assert denied.status == 403
    allowed = await client.get("/api/health", headers={"X-Forwarded-For": "198.51.100.9"})
    assert allowed.status == 200
