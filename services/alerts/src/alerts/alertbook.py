"""The alert use cases: ingest, acknowledge, resolve, comment, silences and periodic upkeep.

Every write is one PostgreSQL transaction that also records history, the ``alert.*`` event (outbox)
and the notification groups it touches. Feed entries (Redis stream) go out after the change.
No aiohttp here.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from aiohttp import web
from loguru import logger
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from alerts import storage
from alerts.domain import (
    Alert,
    AlertIn,
    AlertQuery,
    DeliveryAttempt,
    HistoryEntry,
    InhibitionIndex,
    Severity,
    Silence,
    SilenceIn,
    Status,
    match_all,
)
from alerts.rules import RemovalRule, RuleBook
from alerts.settings import Receiver
from alerts.stream import AlertFeed
from common.db import Connection
from common.errors import BadRequest, Conflict, NotFound
from common.messaging import CloudEvent, enqueue_event, enqueue_events, new_event
from common.metrics import APPLICATION_ERRORS
from common.tracing import TraceContext

SOURCE = "/cloudops/alerts"
#: How long a removal is remembered: a report older than it comes late by the consumer's retries
#: (a minute or so), never by days.
REMEMBER_REMOVALS = timedelta(days=1)
T = TypeVar("T")

ALERTS_RAISED = Counter("alerts", "Alerts raised (new or re-opened), by severity.", ["severity"])
ALERTS_FIRING = Gauge(
    "alerts_firing",
    "Alerts firing now and not suppressed, by severity.",
    ["severity"],
    multiprocess_mode="livemostrecent",
)


@dataclass(frozen=True)
class Caller:
    """Who acts (for history) and the trace the resulting events continue."""

    actor: str = "system"
    trace: TraceContext | None = None
    request_id: str | None = None


@dataclass
class Changes:
    """What one transaction changed, published to the live feed once it has committed."""

    feed: list[tuple[str, Alert]] = field(default_factory=list)
    raised: list[Severity] = field(default_factory=list)
    #: The active silences, read once per transaction (silence writes re-read them).
    silences: list[Silence] | None = None

    def add(self, kind: str, alert: Alert) -> None:
        self.feed.append((kind, alert))

    def merge(self, other: Changes) -> None:
        """Append ``other``'s changes after these (several events committed together)."""
        self.feed.extend(other.feed)
        self.raised.extend(other.raised)


def group_labels(receiver: Receiver, labels: dict[str, str]) -> dict[str, str]:
    return {name: labels.get(name, "") for name in receiver.group_by}


def group_key(receiver: Receiver, labels: dict[str, str]) -> str:
    """Alertmanager-style group key: the route and the group's label values."""
    values = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels(receiver, labels).items()))
    return f"{receiver.name}:{{{values}}}"


class AlertBook:
    """The alert use cases over one PostgreSQL pool, the live feed and the configured rules."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        feed: AlertFeed,
        rules: RuleBook,
        receivers: Sequence[Receiver] = (),
        *,
        resolve_timeout: timedelta = timedelta(minutes=5),
        full_check_every: timedelta = timedelta(minutes=1),
    ) -> None:
        self.pool = pool
        self.full_check_every = full_check_every
        self._last_upkeep = datetime.now(UTC)
        self._last_full_check = datetime.now(UTC)
        self.feed = feed
        self.rules = rules
        self.receivers = list(receivers)
        self.resolve_timeout = resolve_timeout

    # -- transactions ---------------------------------------------------------------------------

    async def _write(self, change: Callable[[Connection, Changes], Awaitable[T]]) -> T:
        changes = Changes()
        async with self.pool.acquire() as conn, conn.transaction():
            result = await change(conn, changes)
        await self.publish(changes)
        return result

    async def publish(self, changes: Changes) -> None:
        """Count raised alerts and send changes to the live feed (after their commit).

        The live feed is best effort: with Redis away, alerts are still stored, evented and
        listed; only live viewers miss the entries (and reload the feed when they reconnect).
        """
        for severity in changes.raised:
            ALERTS_RAISED.labels(severity.value).inc()
        try:
            await self.feed.publish_many([(kind, alert.public()) for kind, alert in changes.feed])
        except (RedisError, OSError) as exc:
            APPLICATION_ERRORS.labels("alerts", type(exc).__name__).inc()
            logger.warning("live feed unavailable", error=type(exc).__name__)

    # -- ingest ---------------------------------------------------------------------------------

    async def ingest_http(
        self, alerts: Sequence[AlertIn], *, source: str, caller: Caller, expire: bool
    ) -> list[Alert]:
        """Alerts pushed over HTTP (Alertmanager formats): one transaction for the batch.

        An alert without ``endsAt`` resolves after the resolve timeout unless sent again, as in
        Alertmanager. Returns only the alerts that changed (a replay changes nothing).
        """

        async def change(conn: Connection, changes: Changes) -> list[Alert]:
            out: list[Alert] = []
            # Fingerprint order: concurrent batches lock the same rows in the same order.
            for incoming in sorted(alerts, key=lambda a: a.fingerprint):
                stored = await self.ingest(
                    conn, incoming, source=source, caller=caller, changes=changes, expire=expire
                )
                if stored is not None:
                    out.append(stored)
            return out

        return await self._write(change)

    async def apply_events(self, events: Sequence[CloudEvent], conn: Connection) -> Changes:
        """Raise or resolve the alerts the configured rules map ``events`` to, in their order,
        then resolve the open alerts of what the batch's removal events say is gone.

        New alerts whose fingerprint comes up once in the batch (most of a burst) are created
        set-based, in a few statements for the whole batch; every other case (an update, a
        resolution, a re-opening, a fingerprint met twice) goes through :meth:`ingest` one by one.
        Removals come last, so an alert raised earlier in the same batch is resolved too.
        """
        changes = Changes()
        actions: list[tuple[CloudEvent, AlertIn, bool]] = []  # (event, alert, fires)
        removals: list[tuple[CloudEvent, RemovalRule]] = []
        for event in events:
            for rule in self.rules.for_event(event.type):
                if rule.fires(event.data):
                    incoming = rule.alert(event.data)
                    if rule.ends_after_seconds is not None:
                        # From the event's time, so a re-delivered report changes nothing.
                        incoming.ends_at = event.time + timedelta(seconds=rule.ends_after_seconds)
                    actions.append((event, incoming, True))
                elif rule.resolves(event.data):
                    actions.append((event, rule.alert(event.data), False))
            removals.extend((event, rule) for rule in self.rules.removals_for(event.type))
        subjects = {s for _, incoming, fires in actions if fires for s in self._subjects(incoming)}
        subjects.update((r.label, v) for event, r in removals if (v := r.subject(event.data)))
        await storage.lock_subjects(conn, sorted(subjects))
        actions = await self._without_removed(conn, actions)
        if actions:
            await self._apply_actions(conn, actions, changes)
        for event, removal in removals:
            await self._remove(conn, event, removal, changes)
        return changes

    def _subjects(self, incoming: AlertIn) -> list[tuple[str, str]]:
        """The ``(label, value)`` pairs of ``incoming`` that a removal rule may remove."""
        labels = {r.label for r in self.rules.removal_rules}
        return [
            (name, incoming.labels[name]) for name in sorted(labels) if incoming.labels.get(name)
        ]

    async def _without_removed(
        self, conn: Connection, actions: list[tuple[CloudEvent, AlertIn, bool]]
    ) -> list[tuple[CloudEvent, AlertIn, bool]]:
        """``actions`` less the reports that fire about a thing removed since (they were handled
        concurrently with its removal, which committed first)."""
        firing = {s for _, incoming, fires in actions if fires for s in self._subjects(incoming)}
        removed = await storage.removals(conn, sorted(firing))
        if not removed:
            return actions

        def gone(event: CloudEvent, incoming: AlertIn) -> bool:
            return any(s in removed and removed[s] >= event.time for s in self._subjects(incoming))

        # A report as old as its removal is stale too: the removal wins a tie.
        return [
            (event, incoming, fires)
            for event, incoming, fires in actions
            if not (fires and gone(event, incoming))
        ]

    async def _apply_actions(
        self,
        conn: Connection,
        actions: Sequence[tuple[CloudEvent, AlertIn, bool]],
        changes: Changes,
    ) -> None:
        """Apply the (event, alert, fires) actions of one batch, in their order."""
        seen = collections.Counter(incoming.fingerprint for _, incoming, _ in actions)
        stored = {a.fingerprint for a in await storage.lock_alerts(conn, list(seen))}
        now = datetime.now(UTC)
        new: list[tuple[CloudEvent, AlertIn]] = []
        for event, incoming, fires in actions:
            ends_at = incoming.ends_at
            if (
                fires
                and seen[incoming.fingerprint] == 1
                and incoming.fingerprint not in stored
                and (ends_at is None or ends_at > now)
            ):
                new.append((event, incoming))
            else:
                await self._apply_one(conn, event, incoming, fires, changes)
        if new:
            await self._create_many(conn, new, changes)

    async def _remove(
        self, conn: Connection, event: CloudEvent, removal: RemovalRule, changes: Changes
    ) -> None:
        """Resolve the open alerts labelled with the thing ``event`` says is gone."""
        subject = removal.subject(event.data)
        if not subject:
            return
        await storage.record_removal(conn, removal.label, subject, event.time)
        caller = Caller(actor=f"event:{event.type}")
        for alert in await storage.lock_open_alerts(conn, {removal.label: subject}):
            # A report newer than the removal (clocks, redeliveries) is not undone by it.
            if alert.observed_at <= event.time:
                await self._resolve(
                    conn, alert, caller, changes, reason=removal.reason, at=event.time
                )

    async def _apply_one(
        self, conn: Connection, event: CloudEvent, incoming: AlertIn, fires: bool, changes: Changes
    ) -> None:
        caller = Caller(actor=f"event:{event.type}")
        if fires:
            await self.ingest(
                conn, incoming, source=event.type, caller=caller, changes=changes,
                observed_at=event.time,
            )  # fmt: skip
            return
        alert = await storage.lock_alert(conn, incoming.fingerprint)
        if (
            alert is not None
            and alert.status is not Status.RESOLVED
            and alert.observed_at <= event.time
        ):
            await self._resolve(
                conn, alert, caller, changes, reason="condition cleared", at=event.time
            )

    async def _create_many(
        self, conn: Connection, new: Sequence[tuple[CloudEvent, AlertIn]], changes: Changes
    ) -> None:
        """Create firing alerts for fingerprints not stored yet: one statement for the alerts
        and their history, one for their events, one per inhibit rule to check inhibitions."""
        now = datetime.now(UTC)
        silences = await self._silences(conn, changes)
        inhibited = await self._inhibitors_of_new(conn, [incoming.labels for _, incoming in new])
        rows = []
        for (event, incoming), inhibitors in zip(new, inhibited, strict=True):
            silenced = sorted(
                (s.id for s in silences if match_all(s.matchers, incoming.labels)),
                key=lambda i: i.hex,
            )
            rows.append(
                {
                    "fingerprint": incoming.fingerprint,
                    "source": event.type,
                    "severity": incoming.severity.value,
                    "status": Status.FIRING.value,
                    "labels": incoming.labels,
                    "annotations": incoming.annotations,
                    "starts_at": incoming.starts_at or now,
                    "ends_at": incoming.ends_at,
                    "generator_url": incoming.generator_url,
                    "observed_at": event.time,
                    "suppressed": bool(silenced or inhibitors),
                    "silenced_by": silenced,
                    "inhibited_by": inhibitors,
                    "actor": f"event:{event.type}",
                }
            )
        inserted = {
            a.fingerprint: a for a in await storage.insert_alerts(conn, rows, action="raised")
        }
        created = [inserted[i.fingerprint] for _, i in new if i.fingerprint in inserted]
        await enqueue_events(
            conn,
            [
                new_event(
                    "alert.raised", source=SOURCE, subject=str(a.id), data={"alert": a.public()}
                )
                for a in created
            ],
        )
        for alert in created:
            changes.raised.append(alert.severity)
            changes.add("alert.raised", alert)
        await storage.touch_groups(
            conn,
            [
                (r.name, group_key(r, a.labels), group_labels(r, a.labels))
                for a in created
                for r in self.receivers
                if match_all(r.matchers, a.labels)
            ],
        )
        # Sources created together may inhibit each other's targets, old or new: re-check them.
        for rule in self.rules.inhibit_rules:
            subsets = [
                _nonempty(rule.equal_values(a.labels))
                for a in created
                if match_all(rule.source_matchers, a.labels)
            ]
            if subsets:
                candidates = await storage.open_alerts_containing_any(conn, subsets)
                await self._reevaluate(conn, candidates, changes, lock=True)
        for event, incoming in new:
            if incoming.fingerprint not in inserted:  # a concurrent writer created it first
                await self._apply_one(conn, event, incoming, True, changes)

    async def _inhibitors_of_new(
        self, conn: Connection, labelsets: Sequence[dict[str, str]]
    ) -> list[list[str]]:
        """For each label set, the open alerts inhibiting it (one statement per inhibit rule)."""
        found: list[set[str]] = [set() for _ in labelsets]
        for rule in self.rules.inhibit_rules:
            targets = [
                i for i, labels in enumerate(labelsets) if match_all(rule.target_matchers, labels)
            ]
            if not targets:
                continue
            subsets = [_nonempty(rule.equal_values(labelsets[i])) for i in targets]
            sources = await storage.open_alerts_containing_any(conn, subsets)
            index = InhibitionIndex([rule], [a.labels for a in sources])
            for i in targets:
                found[i].update(index.inhibitors(labelsets[i]))
        return [sorted(each) for each in found]

    async def ingest(
        self,
        conn: Connection,
        incoming: AlertIn,
        *,
        source: str,
        caller: Caller,
        changes: Changes,
        expire: bool = False,
        observed_at: datetime | None = None,
    ) -> Alert | None:
        """Create or update the alert with this label set; None when nothing changed.

        Consumers handle events concurrently, so a report older than the one already applied
        (``observed_at``) is stale and ignored: the latest report wins, not the last to arrive.
        """
        now = datetime.now(UTC)
        observed = observed_at or now
        ends_at = incoming.ends_at
        if ends_at is None and expire:
            ends_at = now + self.resolve_timeout
        ended = ends_at is not None and ends_at <= now
        existing = await storage.lock_alert(conn, incoming.fingerprint)
        if existing is None:
            created = await self._create(
                conn, incoming, source, ends_at, ended, observed, caller, changes
            )
            if created is not None:
                return created
            existing = await storage.lock_alert(conn, incoming.fingerprint)
            assert existing is not None
        if observed < existing.observed_at:
            return None
        return await self._update(
            conn, existing, incoming, ends_at, ended, observed, caller, changes
        )

    async def _create(
        self,
        conn: Connection,
        incoming: AlertIn,
        source: str,
        ends_at: datetime | None,
        ended: bool,
        observed: datetime,
        caller: Caller,
        changes: Changes,
    ) -> Alert | None:
        now = datetime.now(UTC)
        silenced, inhibited = await self._suppression(conn, incoming.labels, changes)
        values: dict[str, Any] = {
            "fingerprint": incoming.fingerprint,
            "source": source,
            "severity": incoming.severity.value,
            "status": (Status.RESOLVED if ended else Status.FIRING).value,
            "labels": incoming.labels,
            "annotations": incoming.annotations,
            "starts_at": incoming.starts_at or now,
            "ends_at": ends_at,
            "generator_url": incoming.generator_url,
            "observed_at": observed,
            "suppressed": bool(silenced or inhibited),
            "silenced_by": silenced,
            "inhibited_by": inhibited,
            "resolved_by": caller.actor if ended else None,
            "resolved_at": ends_at if ended else None,
        }
        alert = await storage.insert_alert(
            conn, values, actor=caller.actor, action="resolved" if ended else "raised"
        )
        if alert is None:
            return None
        if not ended:
            await self._emit(conn, "alert.raised", alert, caller)
            changes.raised.append(alert.severity)
        changes.add("alert.resolved" if ended else "alert.raised", alert)
        await self._touch_groups(conn, alert)
        await self._reevaluate_targets_of(conn, alert, changes)
        return alert

    async def _update(
        self,
        conn: Connection,
        existing: Alert,
        incoming: AlertIn,
        ends_at: datetime | None,
        ended: bool,
        observed: datetime,
        caller: Caller,
        changes: Changes,
    ) -> Alert | None:
        update: dict[str, Any] = {}
        if incoming.annotations != existing.annotations:
            update["annotations"] = incoming.annotations  # the latest annotations win
        if incoming.generator_url and incoming.generator_url != existing.generator_url:
            update["generator_url"] = incoming.generator_url
        if ends_at != existing.ends_at and not (ended and existing.status is Status.RESOLVED):
            update["ends_at"] = ends_at
        if ended and existing.status is not Status.RESOLVED:
            update["observed_at"] = max(observed, existing.observed_at)
            existing = await storage.update_alert(conn, existing.id, update)
            return await self._resolve(conn, existing, caller, changes, reason=None, at=ends_at)
        if not ended and existing.status is Status.RESOLVED:
            update["observed_at"] = max(observed, existing.observed_at)
            return await self._reopen(conn, existing, incoming, update, caller, changes)
        if not update:
            return None  # a replay: nothing to write, not even observed_at
        update["observed_at"] = max(observed, existing.observed_at)
        alert = await storage.update_alert(conn, existing.id, update)
        changes.add("alert.updated", alert)
        return alert

    async def _reopen(
        self,
        conn: Connection,
        existing: Alert,
        incoming: AlertIn,
        update: dict[str, Any],
        caller: Caller,
        changes: Changes,
    ) -> Alert:
        silenced, inhibited = await self._suppression(conn, existing.labels, changes)
        update |= {
            "status": Status.FIRING.value,
            "starts_at": incoming.starts_at or datetime.now(UTC),
            "acknowledged_by": None,
            "acknowledged_at": None,
            "resolved_by": None,
            "resolved_at": None,
            "suppressed": bool(silenced or inhibited),
            "silenced_by": silenced,
            "inhibited_by": inhibited,
        }
        alert = await storage.update_alert(conn, existing.id, update)
        await storage.add_history(
            conn,
            alert.id,
            actor=caller.actor,
            action="reopened",
            from_status=Status.RESOLVED,
            to_status=Status.FIRING,
        )
        await self._emit(conn, "alert.raised", alert, caller)
        changes.raised.append(alert.severity)
        changes.add("alert.raised", alert)
        await self._touch_groups(conn, alert)
        await self._reevaluate_targets_of(conn, alert, changes)
        return alert

    async def _resolve(
        self,
        conn: Connection,
        alert: Alert,
        caller: Caller,
        changes: Changes,
        *,
        reason: str | None,
        at: datetime | None = None,
    ) -> Alert:
        """Resolve ``alert`` as of ``at`` (default now); a report older than that is stale."""
        when = at or datetime.now(UTC)
        resolved = await storage.update_alert(
            conn,
            alert.id,
            {
                "status": Status.RESOLVED.value,
                "resolved_by": caller.actor,
                "resolved_at": when,
                "observed_at": max(when, alert.observed_at),
            },
        )
        await storage.add_history(
            conn,
            alert.id,
            actor=caller.actor,
            action="resolved",
            from_status=alert.status,
            to_status=Status.RESOLVED,
            comment=reason,
        )
        await self._emit(conn, "alert.resolved", resolved, caller)
        changes.add("alert.resolved", resolved)
        await self._touch_groups(conn, resolved)
        await self._reevaluate_targets_of(conn, resolved, changes)
        return resolved

    async def _emit(self, conn: Connection, type_: str, alert: Alert, caller: Caller) -> None:
        event = new_event(
            type_,
            source=SOURCE,
            subject=str(alert.id),
            data={"alert": alert.public()},
            trace=caller.trace,
        )
        await enqueue_event(conn, event, caller.request_id)

    # -- suppression ----------------------------------------------------------------------------

    async def _silences(self, conn: Connection, changes: Changes) -> list[Silence]:
        if changes.silences is None:
            changes.silences = await storage.active_silences(conn)
        return changes.silences

    async def _suppression(
        self, conn: Connection, labels: dict[str, str], changes: Changes
    ) -> tuple[list[UUID], list[str]]:
        silences = await self._silences(conn, changes)
        silenced = sorted(
            (s.id for s in silences if match_all(s.matchers, labels)), key=lambda i: i.hex
        )
        inhibited: set[str] = set()
        for rule in self.rules.inhibit_rules:
            if not match_all(rule.target_matchers, labels):
                continue
            sources = [
                a.labels
                for a in await storage.open_alerts(conn, _nonempty(rule.equal_values(labels)))
            ]
            inhibited.update(InhibitionIndex([rule], sources).inhibitors(labels))
        return silenced, sorted(inhibited)

    async def _reevaluate_targets_of(
        self, conn: Connection, source: Alert, changes: Changes
    ) -> None:
        """A source alert fired or resolved: re-check the alerts it may (no longer) inhibit."""
        for rule in self.rules.inhibit_rules:
            if not match_all(rule.source_matchers, source.labels):
                continue
            candidates = await storage.open_alerts(
                conn, _nonempty(rule.equal_values(source.labels))
            )
            await self._reevaluate(conn, candidates, changes, lock=True)

    async def _reevaluate(
        self, conn: Connection, alerts: Sequence[Alert], changes: Changes, *, lock: bool
    ) -> int:
        """Recompute silences and inhibitions of open ``alerts``; returns how many changed."""
        silences = await self._silences(conn, changes)
        index = InhibitionIndex(
            self.rules.inhibit_rules, [a.labels for a in alerts if a.status is not Status.RESOLVED]
        )
        changed = 0
        for alert in alerts:
            if alert.status is Status.RESOLVED:
                continue
            silenced = sorted(
                (s.id for s in silences if match_all(s.matchers, alert.labels)),
                key=lambda i: i.hex,
            )
            inhibited = index.inhibitors(alert.labels)
            if silenced == alert.silenced_by and inhibited == alert.inhibited_by:
                continue
            if lock and not await _try_lock(conn, alert.id):
                continue  # someone else is writing it; the periodic pass will catch up
            changed += 1
            updated = await storage.update_alert(
                conn,
                alert.id,
                {
                    "suppressed": bool(silenced or inhibited),
                    "silenced_by": silenced,
                    "inhibited_by": inhibited,
                },
            )
            if updated.suppressed != alert.suppressed:
                await storage.add_history(
                    conn,
                    alert.id,
                    actor="system",
                    action="suppressed" if updated.suppressed else "unsuppressed",
                    from_status=alert.status,
                    to_status=alert.status,
                    comment=_suppression_reason(silenced, inhibited),
                )
                await self._touch_groups(conn, updated)
            changes.add("alert.updated", updated)
        return changed

    # -- notifications bookkeeping ----------------------------------------------------------------

    async def _touch_groups(self, conn: Connection, alert: Alert) -> None:
        for receiver in self.receivers:
            if match_all(receiver.matchers, alert.labels):
                await storage.touch_group(
                    conn,
                    receiver.name,
                    group_key(receiver, alert.labels),
                    group_labels(receiver, alert.labels),
                )

    # -- operator actions ------------------------------------------------------------------------

    async def _locked(self, conn: Connection, alert_id: UUID) -> Alert:
        alert = await storage.get_alert(conn, alert_id, for_update=True)
        if alert is None:
            raise NotFound(f"No alert with id {alert_id}.")
        return alert

    async def acknowledge(self, alert_id: UUID, caller: Caller, comment: str | None) -> Alert:
        async def change(conn: Connection, changes: Changes) -> Alert:
            alert = await self._locked(conn, alert_id)
            if alert.status is not Status.FIRING:
                raise Conflict(f"Only a firing alert can be acknowledged; it is {alert.status}.")
            updated = await storage.update_alert(
                conn,
                alert_id,
                {
                    "status": Status.ACKNOWLEDGED.value,
                    "acknowledged_by": caller.actor,
                    "acknowledged_at": datetime.now(UTC),
                },
            )
            await storage.add_history(
                conn,
                alert_id,
                actor=caller.actor,
                action="acknowledged",
                from_status=alert.status,
                to_status=updated.status,
                comment=comment,
            )
            changes.add("alert.acknowledged", updated)
            return updated

        return await self._write(change)

    async def resolve(self, alert_id: UUID, caller: Caller, comment: str | None) -> Alert:
        async def change(conn: Connection, changes: Changes) -> Alert:
            alert = await self._locked(conn, alert_id)
            if alert.status is Status.RESOLVED:
                raise Conflict("The alert is already resolved.")
            return await self._resolve(conn, alert, caller, changes, reason=comment)

        return await self._write(change)

    async def comment(self, alert_id: UUID, caller: Caller, text: str) -> Alert:
        async def change(conn: Connection, changes: Changes) -> Alert:
            alert = await self._locked(conn, alert_id)
            await storage.add_history(
                conn,
                alert_id,
                actor=caller.actor,
                action="commented",
                from_status=alert.status,
                to_status=alert.status,
                comment=text,
            )
            changes.add("alert.commented", alert)
            return alert

        return await self._write(change)

    # -- reads ----------------------------------------------------------------------------------

    async def get(self, alert_id: UUID) -> tuple[Alert, list[HistoryEntry]]:
        async with self.pool.acquire() as conn:
            alert = await storage.get_alert(conn, alert_id)
            if alert is None:
                raise NotFound(f"No alert with id {alert_id}.")
            return alert, await storage.history(conn, alert_id)

    async def list_page(self, query: AlertQuery) -> tuple[list[Alert], int]:
        async with self.pool.acquire() as conn:
            try:
                return await storage.list_alerts(conn, query)
            except asyncpg.InvalidRegularExpressionError:
                # Valid for Python but not for PostgreSQL's regex dialect, which filters the feed.
                raise BadRequest(
                    "A matcher's regular expression is not supported.",
                    errors=[{"field": "matcher", "message": "unsupported regular expression"}],
                ) from None

    async def delivery_attempts(
        self, receiver: str | None, limit: int, offset: int
    ) -> tuple[list[DeliveryAttempt], int]:
        async with self.pool.acquire() as conn:
            return await storage.list_attempts(conn, receiver, limit, offset)

    # -- silences -------------------------------------------------------------------------------

    async def create_silence(
        self, silence: SilenceIn, creator: str, *, max_unexpired: int | None = None
    ) -> Silence:
        """Store ``silence`` as created by ``creator``, the caller: a ``createdBy`` in the body
        (Alertmanager clients send one) is never trusted for it.

        Every ingest checks every active silence, so at most ``max_unexpired`` silences may be
        active or pending at once (as Alertmanager's ``--silences.max-silences``).
        """

        async def change(conn: Connection, changes: Changes) -> Silence:
            if (
                max_unexpired is not None
                and await storage.count_unexpired_silences(conn) >= max_unexpired
            ):
                raise Conflict(
                    f"At most {max_unexpired} silences may be active or pending at once; "
                    "expire one first."
                )
            created = await storage.insert_silence(conn, silence, creator)
            await self._reevaluate(conn, await storage.open_alerts(conn), changes, lock=False)
            return created

        return await self._write(change)

    async def replace_silence(self, silence_id: UUID, silence: SilenceIn) -> Silence:
        async def change(conn: Connection, changes: Changes) -> Silence:
            replaced = await storage.replace_silence(conn, silence_id, silence)
            if replaced is None:
                raise NotFound(f"No silence with id {silence_id}.")
            await self._reevaluate(conn, await storage.open_alerts(conn), changes, lock=False)
            return replaced

        return await self._write(change)

    async def expire_silence(self, silence_id: UUID) -> Silence:
        async def change(conn: Connection, changes: Changes) -> Silence:
            expired = await storage.expire_silence(conn, silence_id)
            if expired is None:
                raise NotFound(f"No silence with id {silence_id}.")
            await self._reevaluate(conn, await storage.open_alerts(conn), changes, lock=False)
            return expired

        return await self._write(change)

    async def get_silence(self, silence_id: UUID) -> Silence:
        async with self.pool.acquire() as conn:
            silence = await storage.get_silence(conn, silence_id)
        if silence is None:
            raise NotFound(f"No silence with id {silence_id}.")
        return silence

    async def list_silences(self) -> list[Silence]:
        async with self.pool.acquire() as conn:
            return await storage.list_silences(conn)

    # -- upkeep ---------------------------------------------------------------------------------

    async def upkeep(self) -> int:
        """Resolve alerts whose ``endsAt`` passed, re-apply silences whose window opened or closed,
        and refresh the firing gauges. Returns how many alerts changed.

        Every open alert is re-checked only when a silence window opened or closed since the last
        round, or once per ``full_check_every`` as a safety net (for an inhibition update skipped
        because another writer held the row).
        """

        async def change(conn: Connection, changes: Changes) -> int:
            # One process at a time; the others skip this round.
            if not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtext('alerts.upkeep'))"
            ):
                return 0
            caller = Caller(actor="system:expired")
            expired = await storage.lock_expired(conn)
            for alert in expired:
                await self._resolve(
                    conn, alert, caller, changes, reason="endsAt passed", at=alert.ends_at
                )
            changed = len(expired)
            # The database's clock on both ends of the window, as the silence rows use it.
            since, self._last_upkeep = self._last_upkeep, await conn.fetchval("SELECT now()")
            due = self._last_upkeep - self._last_full_check >= self.full_check_every
            if due or await storage.silence_window_crossed(conn, since):
                self._last_full_check = self._last_upkeep
                changed += await self._reevaluate(
                    conn, await storage.open_alerts(conn), changes, lock=True
                )
            counts = await storage.firing_counts(conn)
            for severity in Severity:
                ALERTS_FIRING.labels(severity.value).set(counts.get(severity.value, 0))
            await storage.forget_removals(conn, REMEMBER_REMOVALS)
            return changed

        return await self._write(change)


async def _try_lock(conn: Connection, alert_id: UUID) -> bool:
    locked = await conn.fetchval(
        "SELECT true FROM alerts WHERE id = $1 FOR UPDATE SKIP LOCKED", alert_id
    )
    return bool(locked)


def _nonempty(labels: dict[str, str]) -> dict[str, str]:
    """The labels with a value: an alert lacking an ``equal`` label matches any value of it."""
    return {k: v for k, v in labels.items() if v != ""}


def _suppression_reason(silenced: Sequence[UUID], inhibited: Sequence[str]) -> str | None:
    parts = [f"silence {s}" for s in silenced] + [f"inhibited by {fp}" for fp in inhibited]
    return ", ".join(parts) or None


ALERT_BOOK = web.AppKey("alert_book", AlertBook)
