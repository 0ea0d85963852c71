"""What the resources service publishes: ``resource.*`` events, written to the outbox."""

from __future__ import annotations

from common.db import Connection
from common.messaging import enqueue_event, new_event
from resources.domain import Caller, Resource, change_events

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
