"""What the alerts service consumes: the events its configured rules map to alerts.

It publishes ``alert.raised`` and ``alert.resolved`` through the outbox, from
:mod:`alerts.alertbook`.
"""

from __future__ import annotations

from contextvars import ContextVar

from alerts.alertbook import AlertBook, Changes
from common.db import Connection
from common.messaging import CloudEvent, Consumer

# The changes of the event being handled, kept for the step after its commit. Each message is
# handled in its own task, so each has its own value.
_PENDING: ContextVar[Changes | None] = ContextVar("alerts_pending_changes", default=None)


def rule_consumer(book: AlertBook, *, prefetch: int = 64) -> Consumer:
    """One durable queue bound to every event type a rule names."""

    async def handle(event: CloudEvent, conn: Connection) -> None:
        _PENDING.set(await book.apply_event(event, conn))

    async def after_commit(event: CloudEvent) -> None:
        # Live viewers see a change only once it is committed (and can be read back).
        changes = _PENDING.get()
        _PENDING.set(None)
        if changes is not None:
            await book.publish(changes)

    return Consumer(
        name="alert-rules",
        routing_keys=book.rules.event_types,
        handler=handle,
        prefetch=prefetch,
        after_commit=after_commit,
    )
