"""What the alerts service consumes: the events its configured rules map to alerts.

It publishes ``alert.raised`` and ``alert.resolved`` through the outbox, from
:mod:`alerts.alertbook`.
"""

from __future__ import annotations

from collections.abc import Sequence

from alerts.alertbook import AlertBook, Changes
from alerts.rules import RuleBook
from common.db import Connection
from common.messaging import CloudEvent, Consumer, Subscription


def rule_subscription(rules: RuleBook) -> Subscription:
    """One durable queue bound to every event type a rule names (declared at deploy time too)."""
    return Subscription(name="alert-rules", routing_keys=rules.event_types)


def rule_consumer(book: AlertBook, *, prefetch: int = 256, batch_size: int = 100) -> Consumer:
    """The consumer of :func:`rule_subscription`'s queue; a batch per transaction."""

    async def handle(events: Sequence[CloudEvent], conn: Connection) -> Changes:
        return await book.apply_events(events, conn)

    async def after_commit(_: Sequence[CloudEvent], changes: Changes) -> None:
        # Live viewers see a change only once it is committed (and can be read back).
        await book.publish(changes)

    return Consumer.of(
        rule_subscription(book.rules),
        handler=handle,
        prefetch=prefetch,
        batch_size=batch_size,
        after_commit=after_commit,
    )
