"""What the costs service publishes (``cost.*``, via the outbox) and consumes (``resource.*``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from common.db import Connection
from common.encoding import dumps
from common.messaging import CloudEvent, Consumer, each_event, enqueue_event, new_event
from costs import storage
from costs.cache import invalidate_after_events

SOURCE = "/cloudops/costs"
UTILIZATION_RECORDED = "resource.utilization_recorded"
#: Days of utilisation kept per resource, counted back from its newest sample: the savings rules
#: look back 14 days by default, and a window configured up to this long still finds its samples.
SAMPLE_HISTORY_DAYS = 35
BUDGET_THRESHOLD_CROSSED = "cost.budget_threshold_crossed"
ANOMALY_DETECTED = "cost.anomaly_detected"


def _json(value: Any) -> Any:
    """Plain JSON data (Decimal as exact strings, dates as ISO text)."""
    return orjson.loads(dumps(value))


def anomaly_detected(anomaly: dict[str, Any]) -> tuple[str, Any]:
    return ANOMALY_DETECTED, _json({k: v for k, v in anomaly.items() if k != "new"})


def budget_threshold_crossed(data: dict[str, Any]) -> tuple[str, Any]:
    return BUDGET_THRESHOLD_CROSSED, _json(data)


async def publish(conn: Connection, event: tuple[str, Any], *, subject: str) -> None:
    """Enqueue in the caller's transaction: the fact and its event commit together."""
    event_type, data = event
    await enqueue_event(conn, new_event(event_type, source=SOURCE, subject=subject, data=data))


async def on_resource_event(event: CloudEvent, conn: Connection) -> None:
    """Mirror the inventory: the live cost rate and the optimisation rules read this copy."""
    data = event.data or {}
    if event.type == UTILIZATION_RECORDED:
        await on_utilization_recorded(data, conn)
        return
    resource = data.get("resource")
    if not isinstance(resource, dict):
        raise ValueError(f"{event.type} without a resource")
    resource_id = UUID(str(resource["id"]))
    if event.type == "resource.deleted":
        await storage.delete_inventory(conn, resource_id)
        return
    await storage.upsert_inventory(conn, _resource_values(resource, resource_id))


async def on_utilization_recorded(data: dict[str, Any], conn: Connection) -> None:
    """Keep a batch's samples, set-based: one statement to add them, one to trim the history."""
    columns = data.get("columns")
    if columns != ["timestamp", "cpu_percent", "memory_percent", "network_bytes"]:
        raise ValueError(f"{UTILIZATION_RECORDED} with unknown columns {columns!r}")
    samples = []
    for resource in data.get("resources") or []:
        resource_id = UUID(str(resource["id"]))
        for at, cpu, memory, network in resource["samples"]:
            network_bytes = int(network) if network is not None else None
            samples.append(
                (resource_id, datetime.fromisoformat(at), Decimal(cpu), Decimal(memory),
                 network_bytes)
            )  # fmt: skip
    if not samples:
        return
    resource_ids = sorted({s[0] for s in samples}, key=str)
    await storage.record_samples(conn, samples)
    await storage.trim_samples(conn, resource_ids, SAMPLE_HISTORY_DAYS)
    await storage.follow_latest_sample(conn, resource_ids)


def _resource_values(resource: dict[str, Any], resource_id: UUID) -> dict[str, Any]:
    def instant(name: str) -> datetime:
        return datetime.fromisoformat(str(resource[name]))

    def optional_instant(name: str) -> datetime | None:
        value = resource.get(name)
        return datetime.fromisoformat(str(value)) if value is not None else None

    def optional_decimal(name: str) -> Decimal | None:
        value = resource.get(name)
        return Decimal(str(value)) if value is not None else None

    return {
        **resource,
        "id": resource_id,
        "hourly_cost": Decimal(str(resource["hourly_cost"])),
        "cpu_utilization": optional_decimal("cpu_utilization"),
        "memory_utilization": optional_decimal("memory_utilization"),
        "created_at": instant("created_at"),
        "updated_at": instant("updated_at"),
        "status_since": optional_instant("status_since"),
        "provisioned_at": optional_instant("provisioned_at"),
    }


RESOURCE_CONSUMER = Consumer(
    name="inventory",
    routing_keys=[
        "resource.created",
        "resource.updated",
        "resource.status_changed",
        "resource.deleted",
        # In the same queue as the resource's own events, so its samples follow its creation.
        UTILIZATION_RECORDED,
    ],
    handler=each_event(on_resource_event),
    # Cached answers built on the inventory or the samples miss once the batch has committed.
    after_commit=invalidate_after_events,
)

#: Every consumer the service runs; ``make up`` declares their queues at deploy time from this too.
CONSUMERS = (RESOURCE_CONSUMER,)
