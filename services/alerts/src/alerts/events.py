"""What the alerts service consumes: the events its configured rules map to alerts.

It publishes ``alert.raised`` and ``alert.resolved`` through the outbox, from
:mod:`alerts.alertbook`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alerts.alertbook import AlertBook, Changes
from common.db import Connection
from common.messaging import CloudEvent, Consumer, transaction_scope


def rule_consumer(book: AlertBook, *, prefetch: int = 256, batch_size: int = 100) -> Consumer:
    """One durable queue bound to every event type a rule names."""

    async def handle(event: CloudEvent, conn: Connection) -> Changes:
        # The active silences are read once per transaction (batch), not once per event.
        scope = transaction_scope()
        changes = await book.apply_event(event, conn, Changes(silences=scope.get("silences")))
        scope["silences"] = changes.silences
        return changes

    async def after_commit(handled: Sequence[tuple[CloudEvent, Changes]]) -> None:
        # Live viewers see a change only once it is committed (and can be read back).
        changes = Changes()
        for _, each in handled:
            changes.merge(each)
        await book.publish(changes)

    return Consumer(
        name="alert-rules",
        routing_keys=book.rules.event_types,
        handler=handle,
        prefetch=prefetch,
        batch_size=batch_size,
        after_commit=after_commit,
    )
