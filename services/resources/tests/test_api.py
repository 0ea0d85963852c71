"""The /api/resources contract: CRUD, pagination, filters, sort, validation, cache, events."""

from __future__ import annotations

import asyncio
import io
import json
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from common.testing import EventTap
from resources.settings import ResourcesSettings

from .conftest import Client, resource_body

pytestmark = pytest.mark.usefixtures("event_tap")


async def create(client: Client, n: int = 1, **overrides: Any) -> dict[str, Any]:
    resp = await client.post("/api/resources", json=resource_body(n, **overrides))
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert resp.headers["Location"] == f"/api/resources/{body['data']['id']}"
    return body["data"]  # type: ignore[no-any-return]


async def count_rows(settings: ResourcesSettings, table: str) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM resources.{table}"))
    finally:
        await conn.close()


async def test_crud_round_trip(client: Client) -> None:
    created = await create(client, hourly_cost="0.1234567891")
    assert created["hourly_cost"] == "0.1234567891"
    assert created["currency"] == "USD"

    got = await (await client.get(f"/api/resources/{created['id']}")).json()
    assert got == {"success": True, "data": created}

    resp = await client.patch(
        f"/api/resources/{created['id']}", json={"status": "stopped", "team": None}
    )
    assert resp.status == 200
    patched = (await resp.json())["data"]
    assert patched["status"] == "stopped"
    assert patched["team"] is None
    assert patched["name"] == created["name"]
    assert patched["updated_at"] > created["updated_at"]

    assert (await client.delete(f"/api/resources/{created['id']}")).status == 204
    resp = await client.get(f"/api/resources/{created['id']}")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert (await client.delete(f"/api/resources/{created['id']}")).status == 404


async def test_hourly_cost_keeps_every_digit_from_a_json_number(client: Client) -> None:
    resp = await client.post(
        "/api/resources",
        data=b'{"external_id":"x-1","name":"n","provider":"gcp","type":"storage",'
        b'"region":"us-east1","account":"p","hourly_cost":12345678.0123456789}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 201
    assert (await resp.json())["data"]["hourly_cost"] == "12345678.0123456789"


async def test_duplicate_external_id_is_a_conflict(client: Client) -> None:
    await create(client, 1)
    resp = await client.post("/api/resources", json=resource_body(1))
    assert resp.status == 409
    assert (await resp.json())["status"] == 409


async def test_pagination_totals_and_stable_sort(client: Client) -> None:
    for n in range(25):
        # Equal names force the id tie-breaker to keep pages disjoint and complete.
        await create(client, n, name=f"svc-{n % 3}")
    seen: list[str] = []
    for offset in (0, 10, 20):
        resp = await client.get(f"/api/resources?limit=10&offset={offset}&sort=name")
        body = await resp.json()
        assert body["meta"] == {"total": 25, "limit": 10, "offset": offset}
        seen += [r["id"] for r in body["data"]]
        names = [r["name"] for r in body["data"]]
        assert names == sorted(names)
    assert len(seen) == len(set(seen)) == 25
    again = await (await client.get("/api/resources?limit=10&offset=10&sort=name")).json()
    assert [r["id"] for r in again["data"]] == seen[10:20]
    beyond = await (await client.get("/api/resources?offset=100")).json()
    assert beyond["data"] == []
    assert beyond["meta"]["total"] == 25


async def test_sort_descending_by_cost(client: Client) -> None:
    for n, cost in enumerate(["0.5", "2", "0.01", "1.25"]):
        await create(client, n, hourly_cost=cost)
    body = await (await client.get("/api/resources?sort=-hourly_cost")).json()
    assert [r["hourly_cost"] for r in body["data"]] == [
        "2.0000000000",
        "1.2500000000",
        "0.5000000000",
        "0.0100000000",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=stopped", {"b"}),
        ("type=database", {"c"}),
        ("provider=azure", {"b"}),
        ("region=westeurope", {"b"}),
        ("team=data", {"c"}),
        ("tag=env:dev", {"b"}),
        ("tag=env:prod&tag=tier:db", {"c"}),
        ("tag=tier", {"c"}),
        ("q=WEB", {"a"}),
        ("q=i-00000002", {"b"}),
        ("q=100%25", set()),
        ("status=running&provider=aws", {"a", "c"}),
    ],
)
async def test_each_filter(client: Client, query: str, expected: set[str]) -> None:
    await create(client, 1, name="a-web", tags={"env": "prod"})
    await create(
        client,
        2,
        name="b-vm",
        provider="azure",
        region="westeurope",
        status="stopped",
        tags={"env": "dev"},
    )
    await create(
        client,
        3,
        name="c-db",
        type="database",
        team="data",
        tags={"env": "prod", "tier": "db"},
    )
    body = await (await client.get(f"/api/resources?{query}")).json()
    assert {r["name"][0] for r in body["data"]} == expected
    assert body["meta"]["total"] == len(expected)


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "offset=-1", "status=exploded", "sort=password", "limit=abc", "x=1"],
)
async def test_bad_query_is_a_400_problem(client: Client, query: str) -> None:
    resp = await client.get(f"/api/resources?{query}")
    assert resp.status == 400
    body = await resp.json()
    assert body["errors"]
    assert body["success"] is False


BAD_BODIES: list[tuple[str, bytes, str, int]] = [
    ("malformed json", b'{"name": ', "application/json", 400),
    ("wrong content type", b"name=x", "application/x-www-form-urlencoded", 415),
    ("unknown field", b'{"zzz": 1}', "application/json", 422),
    ("not an object", b"[1, 2]", "application/json", 422),
]


@pytest.mark.parametrize(("label", "raw", "content_type", "status"), BAD_BODIES)
async def test_malformed_create_writes_nothing(
    client: Client,
    settings: ResourcesSettings,
    event_tap: EventTap,
    label: str,
    raw: bytes,
    content_type: str,
    status: int,
) -> None:
    resp = await client.post("/api/resources", data=raw, headers={"Content-Type": content_type})
    assert resp.status == status, label
    assert resp.content_type == "application/problem+json"
    assert await count_rows(settings, "resources") == 0
    assert await count_rows(settings, "outbox") == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"unknown": "x"}, "unknown"),
        ({"name": 123}, "name"),
        ({"hourly_cost": "-0.01"}, "hourly_cost"),
        ({"hourly_cost": "NaN"}, "hourly_cost"),
        ({"provider": "ibm"}, "provider"),
        ({"status": "melting"}, "status"),
        ({"currency": "usd"}, "currency"),
        ({"cpu_utilization": 101}, "cpu_utilization"),
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "evil\x00name"}, "name"),
        ({"tags": {f"k{i}": "v" for i in range(10_000)}}, "tags"),
        ({"tags": {"k": "v" * 257}}, "tags.k"),
    ],
)
async def test_invalid_values_are_422_and_write_nothing(
    client: Client,
    settings: ResourcesSettings,
    event_tap: EventTap,
    overrides: dict[str, Any],
    field: str,
) -> None:
    resp = await client.post("/api/resources", json=resource_body(**overrides))
    assert resp.status == 422
    body = await resp.json()
    assert body["type"].endswith("/validation-failed")
    assert field in {e["field"] for e in body["errors"]}
    assert await count_rows(settings, "resources") == 0
    assert await event_tap.quiet(0.3) == []


async def test_ten_megabyte_name_is_rejected_without_writing(
    client: Client, settings: ResourcesSettings
) -> None:
    raw = json.dumps(resource_body(name="x" * 10_000_000)).encode()
    resp = await client.post(
        "/api/resources", data=io.BytesIO(raw), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert (await resp.json())["status"] == 413
    assert await count_rows(settings, "resources") == 0


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_invalid_uuid_in_path_is_400(client: Client, method: str) -> None:
    resp = await client.request(method, "/api/resources/not-a-uuid", json={"name": "x"})
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["field"] == "id"


@pytest.mark.parametrize(
    "patch",
    [{}, {"name": None}, {"external_id": "other"}, {"hourly_cost": -1}, {"tags": None}],
)
async def test_invalid_patch_is_422_and_changes_nothing(
    client: Client, patch: dict[str, Any]
) -> None:
    created = await create(client)
    resp = await client.patch(f"/api/resources/{created['id']}", json=patch)
    assert resp.status == 422
    after = (await (await client.get(f"/api/resources/{created['id']}")).json())["data"]
    assert after == created


async def test_patch_of_missing_resource_is_404(client: Client) -> None:
    resp = await client.patch(
        "/api/resources/00000000-0000-4000-8000-000000000000", json={"name": "x"}
    )
    assert resp.status == 404


async def test_unknown_method_is_405_with_allow(client: Client) -> None:
    resp = await client.put("/api/resources", json={})
    assert resp.status == 405
    assert "GET" in resp.headers["Allow"]
    assert resp.content_type == "application/problem+json"


def cache_counter(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"service": "resources", "cache": "resources"}) or 0.0


async def test_read_after_write_is_fresh_and_counters_move(client: Client) -> None:
    created = await create(client)
    url = f"/api/resources/{created['id']}"
    hits, misses = cache_counter("cache_hits_total"), cache_counter("cache_misses_total")
    await client.get(url)
    await client.get(url)
    assert cache_counter("cache_misses_total") == misses + 1
    assert cache_counter("cache_hits_total") == hits + 1
    await client.get("/api/resources")
    listed = await (await client.get("/api/resources")).json()
    assert listed["data"][0]["name"] == created["name"]

    await client.patch(url, json={"name": "renamed"})
    assert (await (await client.get(url)).json())["data"]["name"] == "renamed"
    listed = await (await client.get("/api/resources")).json()
    assert listed["data"][0]["name"] == "renamed"
    await client.delete(url)
    assert (await client.get(url)).status == 404
    assert (await (await client.get("/api/resources")).json())["meta"]["total"] == 0


@pytest.mark.parametrize("path", ["/api/resources?limit=20", "/api/resources/{id}"])
async def test_a_hit_serves_the_bytes_of_the_miss_and_a_write_makes_the_next_read_miss(
    client: Client, path: str
) -> None:
    created = await create(client)
    await create(client, 2)
    url = path.format(id=created["id"])
    hits, misses = cache_counter("cache_hits_total"), cache_counter("cache_misses_total")

    filled = await client.get(url)
    served = await client.get(url)
    assert cache_counter("cache_misses_total") == misses + 1
    assert cache_counter("cache_hits_total") == hits + 1
    assert served.content_type == filled.content_type == "application/json"
    assert await served.read() == await filled.read()

    await client.patch(f"/api/resources/{created['id']}", json={"name": "renamed"})
    fresh = await client.get(url)
    assert cache_counter("cache_misses_total") == misses + 2
    assert cache_counter("cache_hits_total") == hits + 1
    assert b'"renamed"' in await fresh.read()
    assert b'"renamed"' not in await filled.read()


@pytest.mark.parametrize(
    ("path", "route"),
    [("/api/resources?limit=5", "/api/resources"), ("/api/resources/{id}", "/api/resources/{id}")],
)
async def test_a_cached_read_is_tagged_for_the_edge_only_when_it_asks(
    client: Client, path: str, route: str, settings: ResourcesSettings
) -> None:
    created = await create(client)  # a write: the namespace has a generation
    url = path.format(id=created["id"])
    plain = await client.get(url)
    assert "X-CloudOps-Body-Tag" not in plain.headers
    for _ in range(2):  # a miss, then a hit from the worker's memory: both tagged
        asked = await client.get(url, headers={"X-CloudOps-Edge-Body": "1"})
        key, generation, seconds, tagged_route = asked.headers["X-CloudOps-Body-Tag"].split(" ")
        assert key == f"{settings.redis_prefix}cache:resources:generation"
        assert int(generation) >= 1
        assert 1 <= int(seconds) <= 60
        assert tagged_route == route
        assert await asked.read() == await plain.read()
    missing = await client.get(
        "/api/resources/00000000-0000-4000-8000-000000000000",
        headers={"X-CloudOps-Edge-Body": "1"},
    )
    assert missing.status == 404
    assert "X-CloudOps-Body-Tag" not in missing.headers


async def test_resources_total_gauge_follows_writes(client: Client) -> None:
    def gauge(status: str, type_: str) -> float | None:
        return REGISTRY.get_sample_value("resources_total", {"status": status, "type": type_})

    a = await create(client, 1)
    await create(client, 2)
    assert gauge("running", "compute") == 2
    await client.patch(f"/api/resources/{a['id']}", json={"status": "error"})
    assert gauge("running", "compute") == 1
    assert gauge("error", "compute") == 1
    await client.delete(f"/api/resources/{a['id']}")
    assert gauge("error", "compute") == 0
    assert gauge("pending", "serverless") == 0


async def test_events_carry_the_resource_and_status_change(
    client: Client, event_tap: EventTap
) -> None:
    created = await create(client)
    [event] = await event_tap.take(1)
    assert event["type"] == "resource.created"
    assert event["specversion"] == "1.0"
    assert event["source"] == "/cloudops/resources"
    assert event["subject"] == created["id"]
    assert event["data"]["resource"] == created
    assert event["_headers"]["traceparent"] == event["traceparent"]

    await client.patch(f"/api/resources/{created['id']}", json={"status": "error"})
    updated, status_changed = await event_tap.take(2)
    assert updated["type"] == "resource.updated"
    assert updated["data"]["changed"] == ["status"]
    assert status_changed["type"] == "resource.status_changed"
    assert status_changed["data"]["old_status"] == "running"
    assert status_changed["data"]["new_status"] == "error"

    await client.patch(f"/api/resources/{created['id']}", json={"name": created["name"]})
    assert await event_tap.quiet(0.5) == []  # no change, no event

    await client.delete(f"/api/resources/{created['id']}")
    [deleted] = await event_tap.take(1)
    assert deleted["type"] == "resource.deleted"
    assert deleted["data"]["resource"]["id"] == created["id"]


async def test_event_continues_the_callers_trace(client: Client, event_tap: EventTap) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    resp = await client.post(
        "/api/resources",
        json=resource_body(),
        headers={
            "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
            "X-Request-ID": "req-42",
            "X-CloudOps-Principal": "key:ops-bot",
        },
    )
    assert resp.headers["X-Request-ID"] == "req-42"
    [event] = await event_tap.take(1)
    assert event["traceparent"].split("-")[1] == trace_id
    assert event["_headers"]["x-request-id"] == "req-42"
    assert event["data"]["actor"] == "key:ops-bot"


async def test_bulk_upsert_is_idempotent(client: Client, event_tap: EventTap) -> None:
    fleet = [resource_body(n) for n in range(5)]
    resp = await client.post("/api/resources/bulk", json={"resources": fleet})
    assert resp.status == 200
    body = await resp.json()
    assert body["meta"] == {"created": 5, "updated": 0, "unchanged": 0}
    assert len(await event_tap.take(5)) == 5

    again = await (await client.post("/api/resources/bulk", json={"resources": fleet})).json()
    assert again["meta"] == {"created": 0, "updated": 0, "unchanged": 5}
    assert {r["id"] for r in again["data"]} == {r["id"] for r in body["data"]}
    assert await event_tap.quiet(0.5) == []

    fleet[0]["status"] = "stopped"
    fleet.append(resource_body(99))
    third = await (await client.post("/api/resources/bulk", json={"resources": fleet})).json()
    assert third["meta"] == {"created": 1, "updated": 1, "unchanged": 4}
    types = sorted(e["type"] for e in await event_tap.take(3))
    assert types == ["resource.created", "resource.status_changed", "resource.updated"]
    listed = await (await client.get("/api/resources?limit=100")).json()
    assert listed["meta"]["total"] == 6


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"resources": []}, 422),
        ({"resources": [resource_body(1), resource_body(1)]}, 422),
        ({"resources": [resource_body(1), resource_body(2, hourly_cost="-1")]}, 422),
        ({"resources": [resource_body(n) for n in range(1001)]}, 422),
    ],
)
async def test_bad_bulk_writes_nothing(
    client: Client, settings: ResourcesSettings, payload: dict[str, Any], status: int
) -> None:
    resp = await client.post("/api/resources/bulk", json=payload)
    assert resp.status == status
    assert await count_rows(settings, "resources") == 0
    assert await count_rows(settings, "outbox") == 0


async def test_concurrent_bulk_upserts_of_the_same_fleet_do_not_deadlock(client: Client) -> None:
    fleet = [resource_body(n) for n in range(50)]
    reversed_fleet = list(reversed(fleet))
    results = await asyncio.gather(
        *(
            client.post("/api/resources/bulk", json={"resources": f})
            for f in (fleet, reversed_fleet, fleet, reversed_fleet)
        )
    )
    assert [r.status for r in results] == [200] * 4
    bodies = [await r.json() for r in results]
    assert sum(b["meta"]["created"] for b in bodies) == 50
    assert (await (await client.get("/api/resources")).json())["meta"]["total"] == 50


async def test_cost_as_decimal_in_listing(client: Client) -> None:
    await create(client, hourly_cost="0.0000000001")
    body = await (await client.get("/api/resources")).json()
    assert Decimal(body["data"][0]["hourly_cost"]) == Decimal("1E-10")
    # Plain notation, as money is written everywhere: never "1E-10" or "1.0000E-10".
    assert "E" not in body["data"][0]["hourly_cost"].upper()
