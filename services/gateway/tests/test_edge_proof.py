"""The edge proof: with CLOUDOPS_GATEWAY_EDGE_SECRET set, forwarding headers count only on requests
that carry the secret in X-CloudOps-Edge (as nginx sends it), whatever the peer address; a local
process on the gateway's port cannot pick its IP, reset its quota or shed its honeypot flag."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ipaddress import ip_network

import pytest
from pydantic import SecretStr

from gateway.settings import GatewaySettings

from .conftest import ADMIN, Client, Recorder

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]
SECRET = "edge-secret-DO-NOT-LOG-" + "9" * 24
EDGE = {"X-CloudOps-Edge": SECRET}


@pytest.fixture
async def edged(make_client: MakeClient, settings: GatewaySettings) -> Client:
    # Loopback is even listed as a trusted proxy: with the secret set, that alone proves nothing.
    return await make_client(
        settings.model_copy(
            update={
                "edge_secret": SecretStr(SECRET),
                "trusted_proxies": (ip_network("127.0.0.0/8"),),
            }
        )
    )


@pytest.mark.parametrize(
    ("proof", "client_ip"),
    [
        ({}, "127.0.0.1"),
        ({"X-CloudOps-Edge": "guess"}, "127.0.0.1"),
        ({"X-CloudOps-Edge": SECRET[:-1]}, "127.0.0.1"),
        (EDGE, "203.0.113.9"),
    ],
    ids=["none", "wrong", "prefix", "secret"],
)
async def test_forwarded_for_counts_only_with_the_edge_secret(
    edged: Client, costs_recorder: Recorder, proof: dict[str, str], client_ip: str
) -> None:
    resp = await edged.get(
        "/api/costs/daily", headers={**ADMIN, **proof, "X-Forwarded-For": "203.0.113.9"}
    )
    assert resp.status == 200
    seen = {k.lower(): v for k, v in costs_recorder.requests[-1]["headers"].items()}
    assert seen["x-forwarded-for"] == client_ip
    assert "x-cloudops-edge" not in seen  # the proof never leaves the gateway


async def test_x_real_ip_counts_with_the_secret_when_there_is_no_forwarded_for(
    edged: Client, costs_recorder: Recorder
) -> None:
    await edged.get("/api/costs/daily", headers={**ADMIN, **EDGE, "X-Real-IP": "198.51.100.4"})
    assert costs_recorder.requests[-1]["headers"]["X-Forwarded-For"] == "198.51.100.4"


async def test_a_local_process_cannot_shed_its_honeypot_flag(edged: Client) -> None:
    assert (await edged.get("/.env", headers={"X-Forwarded-For": "198.51.100.1"})).status == 404
    # Claiming another address does not help: the flag is on the real one.
    resp = await edged.get("/api/resources", headers={**ADMIN, "X-Forwarded-For": "198.51.100.2"})
    assert resp.status == 403


async def test_a_local_process_cannot_reset_the_anonymous_quota(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(
        settings.model_copy(
            update={
                "edge_secret": SecretStr(SECRET),
                "trusted_proxies": (ip_network("127.0.0.0/8"),),
                "rate_limit": 3,
            }
        )
    )
    statuses = [
        (
            await client.get("/api/auth/session", headers={"X-Forwarded-For": f"198.51.100.{i}"})
        ).status
        for i in range(5)
    ]
    assert statuses[-1] == 429, statuses


async def test_only_nginx_may_ask_for_an_edge_decision(edged: Client) -> None:
    original = {"X-Original-Method": "GET", "X-Original-URI": "/api/resources", **ADMIN}
    refused = await edged.get("/_edge/auth", headers=original)
    assert refused.status == 404
    assert "X-CloudOps-Upstream" not in refused.headers
    assert refused.content_type == "application/problem+json"
    guessed = await edged.get("/_edge/auth", headers={**original, "X-CloudOps-Edge": "guess"})
    assert guessed.status == 404
    asked = await edged.get("/_edge/auth", headers={**original, **EDGE})
    assert asked.status == 204
    assert asked.headers["X-CloudOps-Principal"]
