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

SOURCE = "/cloudops/costs"
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
    resource = data.get("resource")
    if not isinstance(resource, dict):
        raise ValueError(f"{event.type} without a resource")
    resource_id = UUID(str(resource["id"]))
    if event.type == "resource.deleted":
        await storage.delete_inventory(conn, resource_id)
        return
    await storage.upsert_inventory(conn, _resource_values(resource, resource_id))


def _resource_values(resource: dict[str, Any], resource_id: UUID) -> dict[str, Any]:
    def instant(name: str) -> datetime:
        return datetime.fromisoformat(str(resource[name]))

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
    }


RESOURCE_CONSUMER = Consumer(
    name="inventory",
    routing_keys=[
        "resource.created",
        "resource.updated",
        "resource.status_changed",
        "resource.deleted",
    ],
    handler=each_event(on_resource_event),
)
