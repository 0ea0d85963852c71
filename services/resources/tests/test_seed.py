"""The demo fleet is valid, varied, deterministic, and seeds idempotently through the API."""

from __future__ import annotations

from collections import Counter

from resources.domain import ResourceFields
from resources.seed import demo_fleet

from .conftest import Client


def test_demo_fleet_is_valid_varied_and_deterministic() -> None:
    fleet = demo_fleet(400)
    assert fleet == demo_fleet(400)
    parsed = [ResourceFields.model_validate(r) for r in fleet]
    assert len({r.external_id for r in parsed}) == 400
    assert set(Counter(r.provider for r in parsed)) == {"aws", "azure", "gcp", "oci"}
    assert len({r.region for r in parsed}) >= 8
    assert len({r.team for r in parsed}) == 7
    assert {"running", "stopped", "idle", "error"} <= {r.status for r in parsed}


async def test_seeding_twice_through_bulk_upsert_changes_nothing(client: Client) -> None:
    fleet = demo_fleet(300)
    first = await (await client.post("/api/resources/bulk", json={"resources": fleet})).json()
    assert first["meta"]["created"] == 300
    second = await (await client.post("/api/resources/bulk", json={"resources": fleet})).json()
    assert second["meta"] == {"created": 0, "updated": 0, "unchanged": 300}
