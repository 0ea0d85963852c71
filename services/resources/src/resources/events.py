"""What the resources service publishes: ``resource.*`` events, written to the outbox.

Changes of a resource make one event each; a batch of utilisation samples makes one event.
"""

from __future__ import annotations

from common.db import Connection
from common.messaging import enqueue_event, new_event
from resources.domain import Caller, Resource, StoredSample, change_events, utilization_recorded

SOURCE = "/cloudops/resources"


async def record_change(
    conn: Connection, old: Resource | None, new: Resource | None, caller: Caller
) -> int:
    """Enqueue the events for one change in the caller's transaction; returns how many."""
    subject = str(new.id if new is not None else old.id if old is not None else "")
    events = change_events(old, new, caller.principal)
    for event_type, data in events:
        event = new_event(event_type, source=SOURCE, subject=subject, data=data, trace=caller.trace)
        await enqueue_event(conn, event, caller.request_id)
    return len(events)


async def record_utilization(conn: Connection, samples: list[StoredSample], caller: Caller) -> None:
    """Enqueue the one ``resource.utilization_recorded`` event of an accepted batch."""
    event = new_event(
        "resource.utilization_recorded",
        source=SOURCE,
        subject="utilization",
        data=utilization_recorded(samples, caller.principal),
        trace=caller.trace,
    )
    await enqueue_event(conn, event, caller.request_id)
