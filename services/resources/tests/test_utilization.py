"""Utilisation samples: strict validation, all-or-nothing batches, a bounded history, one event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.testing import EventTap
from resources.app import create_app
from resources.settings import ResourcesSettings

from .conftest import Client, ClientFactory, resource_body


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()


def sample(
    ref: dict[str, Any], at: str, cpu: Any = "12.5", memory: Any = "40", **extra: Any
) -> Any:
    return {**ref, "timestamp": at, "cpu_percent": cpu, "memory_percent": memory, **extra}


async def create(client: Client, n: int) -> dict[str, Any]:
    resp = await client.post("/api/resources", json=resource_body(n))
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = (await resp.json())["data"]
    return data


async def record(client: Client, samples: list[Any]) -> Any:
    return await client.post("/api/resources/utilization", json={"samples": samples})


async def history(client: Client, resource_id: str, **params: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/resources/{resource_id}/utilization", params=params)
    assert resp.status == 200, await resp.text()
    data: list[dict[str, Any]] = (await resp.json())["data"]
    return data


async def test_samples_by_id_or_external_id_are_stored_and_read_oldest_first(
    client: Client, event_tap: EventTap
) -> None:
    a, b = await create(client, 1), await create(client, 2)
    await event_tap.take(2)
    resp = await record(
        client,
        [
            sample({"resource_id": a["id"]}, ago(hours=1), "3.5", "20", network_bytes=1024),
            sample({"resource_id": a["id"]}, ago(hours=3), "7", "21"),
            sample({"external_id": b["external_id"]}, ago(hours=2), "55", "60"),
        ],
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["data"] == {"accepted": 3, "resources": 2, "dropped": 0}

    got = await history(client, a["id"])
    assert [(s["cpu_percent"], s["memory_percent"], s["network_bytes"]) for s in got] == [
        ("7.00", "21.00", None),
        ("3.50", "20.00", 1024),
    ]
    assert got[0]["timestamp"] < got[1]["timestamp"]
    assert await history(client, a["id"], start=ago(hours=2)) == got[1:]
    assert await history(client, a["id"], end=ago(hours=2)) == got[:1]

    # The resource's current figures follow its newest sample.
    current = (await (await client.get(f"/api/resources/{a['id']}")).json())["data"]
    assert (current["cpu_utilization"], current["memory_utilization"]) == ("3.50", "20.00")
    assert current["updated_at"] == a["updated_at"]

    [event] = await event_tap.take(1)
    assert event["type"] == "resource.utilization_recorded"
    data = event["data"]
    assert data["count"] == 3
    assert data["columns"] == ["timestamp", "cpu_percent", "memory_percent", "network_bytes"]
    rows = {r["external_id"]: r["samples"] for r in data["resources"]}
    assert [row[1:] for row in rows[a["external_id"]]] == [["7.00", "21.00", None],
                                                           ["3.50", "20.00", 1024]]  # fmt: skip
    assert [row[1:] for row in rows[b["external_id"]]] == [["55.00", "60.00", None]]
    assert await event_tap.quiet(0.3) == []


async def test_a_resent_sample_replaces_the_stored_one(client: Client) -> None:
    a = await create(client, 1)
    at = ago(hours=1)
    assert (await record(client, [sample({"resource_id": a["id"]}, at, "10")])).status == 200
    assert (await record(client, [sample({"resource_id": a["id"]}, at, "11")])).status == 200
    assert [s["cpu_percent"] for s in await history(client, a["id"])] == ["11.00"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"cpu_percent": "100.01"}, "samples.0.cpu_percent"),
        ({"memory_percent": -1}, "samples.0.memory_percent"),
        ({"cpu_percent": "12.345"}, "samples.0.cpu_percent"),
        ({"timestamp": "2026-01-01T00:00:00"}, "samples.0.timestamp"),
        ({"timestamp": "yesterday"}, "samples.0.timestamp"),
        ({"network_bytes": -5}, "samples.0.network_bytes"),
        ({"network_bytes": 1.5}, "samples.0.network_bytes"),
        ({"network_bytes": True}, "samples.0.network_bytes"),
        ({"colour": "red"}, "samples.0.colour"),
        ({"external_id": "also-given"}, "samples.0"),
    ],
)
async def test_invalid_samples_are_422_naming_the_field(
    client: Client, bad: dict[str, Any], field: str
) -> None:
    a = await create(client, 1)
    resp = await record(client, [sample({"resource_id": a["id"]}, ago(hours=1), **bad)])
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert field in {e["field"] for e in (await resp.json())["errors"]}


async def test_a_sample_without_a_resource_reference_is_422(client: Client) -> None:
    resp = await record(client, [sample({}, ago(hours=1))])
    assert resp.status == 422


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"samples": []}', 422),
        (b'{"samples": {}}', 422),
        (b"[]", 422),
    ],
)
async def test_malformed_bodies_are_problems(client: Client, body: bytes, status: int) -> None:
    resp = await client.post(
        "/api/resources/utilization", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == status
    assert resp.content_type == "application/problem+json"


async def test_more_than_5000_samples_are_refused(client: Client) -> None:
    a = await create(client, 1)
    start = datetime.now(UTC) - timedelta(days=2)
    samples = [
        sample({"resource_id": a["id"]}, (start + timedelta(seconds=i)).isoformat())
        for i in range(5001)
    ]
    resp = await record(client, samples)
    assert resp.status == 422
    assert await history(client, a["id"]) == []
    assert (await record(client, samples[:5000])).status == 200
    assert len(await history(client, a["id"])) == 5000


@pytest.mark.parametrize(
    ("bad_ref", "expected"),
    [
        (
            {"resource_id": "00000000-0000-0000-0000-0000000000aa"},
            "00000000-0000-0000-0000-0000000000aa",
        ),
        ({"external_id": "i-not-there"}, "i-not-there"),
    ],
)
async def test_unknown_resources_are_named_and_nothing_is_written(
    client: Client, event_tap: EventTap, bad_ref: dict[str, str], expected: str
) -> None:
    a = await create(client, 1)
    await event_tap.take(1)
    resp = await record(
        client, [sample({"resource_id": a["id"]}, ago(hours=1)), sample(bad_ref, ago(hours=1))]
    )
    assert resp.status == 422
    messages = [e["message"] for e in (await resp.json())["errors"]]
    assert messages == [f"unknown resource {expected!r}"]
    assert await history(client, a["id"]) == []
    assert await event_tap.quiet(0.3) == []


async def test_the_same_resource_and_time_twice_in_one_call_is_422(client: Client) -> None:
    a = await create(client, 1)
    at = ago(hours=1)
    resp = await record(
        client,
        [sample({"resource_id": a["id"]}, at), sample({"external_id": a["external_id"]}, at)],
    )
    assert resp.status == 422
    assert await history(client, a["id"]) == []


@pytest.mark.parametrize(
    ("at", "accepted"),
    [
        ({"days": 34, "hours": 23}, True),
        ({"days": 35, "hours": 1}, False),
        ({"minutes": -4}, True),
        ({"minutes": -10}, False),
    ],
)
async def test_samples_outside_the_retention_window_or_from_the_future_are_refused(
    client: Client, at: dict[str, float], accepted: bool
) -> None:
    a = await create(client, 1)
    resp = await record(client, [sample({"resource_id": a["id"]}, ago(**at))])
    assert resp.status == (200 if accepted else 422), await resp.text()


async def test_history_is_capped_per_resource_oldest_first(
    aiohttp_client: ClientFactory, settings: ResourcesSettings, pg_url: str
) -> None:
    from common.testing import truncate_schema

    await truncate_schema(pg_url, "resources")
    capped = settings.model_copy(update={"utilization_max_samples_per_resource": 3})
    client = await aiohttp_client(create_app(capped))
    a, b = await create(client, 1), await create(client, 2)
    times = [ago(hours=h) for h in (5, 4, 3, 2, 1)]
    samples = [sample({"resource_id": a["id"]}, t, str(i)) for i, t in enumerate(times)]
    resp = await record(client, [*samples, sample({"resource_id": b["id"]}, times[0])])
    assert (await resp.json())["data"]["dropped"] == 2
    assert [s["cpu_percent"] for s in await history(client, a["id"])] == ["2.00", "3.00", "4.00"]
    assert len(await history(client, b["id"])) == 1


async def test_history_of_an_unknown_or_malformed_id(client: Client) -> None:
    resp = await client.get("/api/resources/00000000-0000-0000-0000-000000000001/utilization")
    assert resp.status == 404
    assert (await client.get("/api/resources/nope/utilization")).status == 400
    a = await create(client, 1)
    resp = await client.get(
        f"/api/resources/{a['id']}/utilization", params={"start": ago(hours=1), "end": ago(hours=2)}
    )
    assert resp.status == 400


async def test_deleting_a_resource_deletes_its_history(client: Client) -> None:
    a = await create(client, 1)
    assert (await record(client, [sample({"resource_id": a["id"]}, ago(hours=1))])).status == 200
    assert (await client.delete(f"/api/resources/{a['id']}")).status == 204
    assert (await record(client, [sample({"resource_id": a["id"]}, ago(hours=1))])).status == 422


@pytest.mark.parametrize("status_since", [None, "2026-01-02T03:04:05+00:00"])
async def test_a_new_status_without_its_start_time_forgets_the_old_one(
    client: Client, status_since: str | None
) -> None:
    resp = await client.post(
        "/api/resources",
        json=resource_body(1, status="stopped", status_since="2025-01-01T00:00:00Z",
                           provisioned_at="2024-05-01T00:00:00Z"),
    )  # fmt: skip
    created = (await resp.json())["data"]
    assert created["status_since"] == "2025-01-01T00:00:00Z"
    patch: dict[str, Any] = {"status": "running"}
    if status_since:
        patch["status_since"] = status_since
    resp = await client.patch(f"/api/resources/{created['id']}", json=patch)
    patched = (await resp.json())["data"]
    expected = status_since.replace("+00:00", "Z") if status_since else None
    assert patched["status_since"] == expected
    assert patched["provisioned_at"] == "2024-05-01T00:00:00Z"
