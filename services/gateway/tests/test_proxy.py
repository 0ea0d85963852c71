"""The walking skeleton: routes proxied to real upstreams, identity headers, streaming."""

from __future__ import annotations

from decimal import Decimal

import pytest

from .conftest import ADMIN, Client, Recorder, create_key, resource_body


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
