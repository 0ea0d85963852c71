"""Rate-limit refusals are counted by principal (key id, never the key) for the per-key alert."""

from __future__ import annotations

from prometheus_client import REGISTRY

from .conftest import ADMIN, Client


def refused(principal: str) -> float:
    labels = {"principal": principal, "policy": "key"}
    return REGISTRY.get_sample_value("gateway_rate_limit_rejections_total", labels) or 0.0


async def test_refusals_are_counted_by_key_id(client: Client) -> None:
    resp = await client.post(
        "/api/admin/keys",
        json={"name": "ci bot", "owner": "tests", "permissions": ["read"], "rate_limit": 2},
        headers=ADMIN,
    )
    assert resp.status == 201
    created = (await resp.json())["data"]
    principal = f"key:{created['id']}"
    before = refused(principal)

    statuses = []
    for _ in range(5):
        r = await client.get("/api/performance/stats", headers={"X-API-Key": created["key"]})
        statuses.append(r.status)

    assert statuses == [200, 200, 429, 429, 429]
    assert refused(principal) == before + 3
    text = await (await client.get("/metrics")).text()
    assert created["key"] not in text
