"""The demo fleet is valid, varied, deterministic, and seeds idempotently through the API."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from resources.domain import ResourceFields
from resources.seed import demo_fleet, demo_utilization, forgotten_resources

from .conftest import Client

TODAY = date(2026, 3, 15)


def test_demo_fleet_is_valid_varied_and_deterministic() -> None:
    fleet = demo_fleet(400, today=TODAY)
    assert fleet == demo_fleet(400, today=TODAY)
    parsed = [ResourceFields.model_validate(r) for r in fleet]
    assert len({r.external_id for r in parsed}) == len(parsed) == 400
    assert {r["external_id"] for r in forgotten_resources(TODAY)} <= {r.external_id for r in parsed}
    assert set(Counter(r.provider for r in parsed)) == {"aws", "azure", "gcp", "oci"}
    assert len({r.region for r in parsed}) >= 8
    assert len({r.team for r in parsed}) == 7
    assert {"running", "stopped", "idle", "error"} <= {r.status for r in parsed}


async def test_seeding_twice_through_bulk_upsert_changes_nothing(client: Client) -> None:
    fleet = demo_fleet(300)
    first = await (await client.post("/api/resources/bulk", json={"resources": fleet})).json()
    assert first["meta"]["created"] == len(fleet)
    second = await (await client.post("/api/resources/bulk", json={"resources": fleet})).json()
    assert second["meta"] == {"created": 0, "updated": 0, "unchanged": len(fleet)}


def test_demo_utilization_keeps_each_machine_in_its_profile() -> None:
    fleet = demo_fleet(400, today=TODAY)
    end = datetime(2026, 3, 15, 6, tzinfo=UTC)
    samples = demo_utilization(fleet, end=end)
    assert samples == demo_utilization(fleet, end=end)
    by_resource: dict[str, list[dict[str, object]]] = {}
    for s in samples:
        by_resource.setdefault(str(s["external_id"]), []).append(s)
    figures = {r["external_id"]: r for r in fleet}
    quiet = oversized = 0
    for external_id, history in by_resource.items():
        assert len(history) == 30 * 4 + 1
        assert history[0]["timestamp"] == (end - timedelta(days=30)).isoformat()
        latest, resource = history[-1], figures[external_id]
        assert latest["cpu_percent"] == resource["cpu_utilization"]
        cpu, memory = resource["cpu_utilization"], resource["memory_utilization"]
        cpu_max = max(Decimal(str(s["cpu_percent"])) for s in history)
        memory_max = max(Decimal(str(s["memory_percent"])) for s in history)
        if Decimal(cpu) < 10:
            quiet += 1
            assert cpu_max <= 10
        elif Decimal(cpu) <= 30 and memory is not None and Decimal(memory) <= 34:
            oversized += 1
            assert cpu_max <= 40
            assert memory_max <= 40
        else:
            assert cpu_max > 40 or memory_max > 40
    assert quiet >= 10
    assert oversized >= 10
