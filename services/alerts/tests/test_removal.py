"""Alerts about a thing that is gone resolve: a removal rule (``resource.deleted``) closes them.

Nothing else would: no later event about a deleted resource can clear its condition. Each one left
open stayed open for ever, and the upkeep's periodic full pass loads every open alert, so under a
steady churn of resources the alerts process's memory grew without bound.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from alerts import storage
from alerts.rules import DEFAULT_RULES_FILE, load_rules
from common.db import DB_POOL
from common.messaging import CloudEvent, new_event

from .conftest import (
    Client,
    Publisher,
    feed,
    resource,
    resource_updated,
    status_changed,
    wait_for,
)


def resource_deleted(n: int) -> CloudEvent:
    return new_event(
        "resource.deleted",
        source="/cloudops/resources",
        subject=resource(n)["id"],
        data={"resource": resource(n, status="error"), "actor": "test"},
    )


async def processed_count(pg_url: str) -> int:
    conn = await asyncpg.connect(pg_url)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM alerts.processed_events")
        return count
    finally:
        await conn.close()


async def open_resource_ids(client: Client) -> list[str]:
    """The resources of what the upkeep's full pass loads: every unresolved alert."""
    async with client.app[DB_POOL].acquire() as conn:
        return sorted(a.labels["resource_id"] for a in await storage.open_alerts(conn))


async def processed_at_least(pg_url: str, count: int) -> bool:
    return await processed_count(pg_url) >= count


def test_the_default_rules_consume_resource_deletions() -> None:
    assert "resource.deleted" in load_rules(DEFAULT_RULES_FILE).event_types


@pytest.mark.parametrize("churn", [1, 40])
async def test_open_alerts_stay_bounded_while_resources_in_error_come_and_go(
    client: Client, publisher: Publisher, pg_url: str, churn: int
) -> None:
    for n in range(1, churn + 1):
        await publisher.publish(status_changed(n, "running", "error"))
        await publisher.publish(resource_deleted(n))
    kept = churn + 1
    await publisher.publish(status_changed(kept, "running", "error"))
    # Every event's transaction committed once its id is recorded (the same transaction).
    await wait_for(lambda: processed_at_least(pg_url, 2 * churn + 1), timeout=30)

    assert await open_resource_ids(client) == [resource(kept)["id"]]
    # A report handled after its resource's removal raised nothing; the others were resolved.
    resolved = await feed(client, status="resolved", limit=100)
    assert resolved["meta"]["total"] <= churn
    assert {a["resolved_by"] for a in resolved["data"]} <= {"event:resource.deleted"}


async def test_deleting_a_resource_resolves_its_open_alerts(
    client: Client, publisher: Publisher, pg_url: str
) -> None:
    await publisher.publish(status_changed(1, "running", "error"))
    await publisher.publish(resource_updated(1, cpu_utilization="99.00"))
    await wait_for(lambda: processed_at_least(pg_url, 2), timeout=30)
    assert len(await open_resource_ids(client)) == 3  # in error, CPU warning and critical

    await publisher.publish(resource_deleted(1))
    await wait_for(lambda: processed_at_least(pg_url, 3), timeout=30)
    assert await open_resource_ids(client) == []
    resolved = await feed(client, status="resolved")
    assert [a["resolved_by"] for a in resolved["data"]] == ["event:resource.deleted"] * 3
    detail = await (await client.get(f"/api/alerts/{resolved['data'][0]['id']}")).json()
    assert detail["data"]["history"][-1]["comment"] == "resource deleted"


async def test_a_report_older_than_the_removal_raises_nothing(
    client: Client, publisher: Publisher, pg_url: str
) -> None:
    removal = resource_deleted(1)
    late = status_changed(1, "running", "error").model_copy(
        update={"time": removal.time - timedelta(seconds=1)}
    )
    await publisher.publish(removal)
    await wait_for(lambda: processed_at_least(pg_url, 1), timeout=30)
    await publisher.publish(late)
    await wait_for(lambda: processed_at_least(pg_url, 2), timeout=30)
    assert await open_resource_ids(client) == []


async def test_a_removal_without_its_subject_resolves_nothing(
    client: Client, publisher: Publisher, pg_url: str
) -> None:
    await publisher.publish(status_changed(1, "running", "error"))
    await publisher.publish(
        new_event("resource.deleted", source="/cloudops/resources", data={"actor": "test"})
    )
    await wait_for(lambda: processed_at_least(pg_url, 2), timeout=30)
    assert await open_resource_ids(client) == [resource(1)["id"]]
