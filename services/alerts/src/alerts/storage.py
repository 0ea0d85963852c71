"""SQL for alerts, their history, silences and notification bookkeeping; returns domain objects."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from alerts.domain import (
    STORED,
    Alert,
    AlertQuery,
    DeliveryAttempt,
    HistoryEntry,
    Matcher,
    Silence,
    SilenceIn,
    Status,
)
from common.db import Connection
from common.paging import Where

ALERT_COLUMNS = (
    "id, fingerprint, source, severity, status, labels, annotations, starts_at, ends_at, "
    "generator_url, observed_at, suppressed, silenced_by, inhibited_by, acknowledged_by, "
    "acknowledged_at, resolved_by, resolved_at, created_at, updated_at"
)
SILENCE_COLUMNS = "id, matchers, starts_at, ends_at, created_by, comment, created_at, updated_at"


def to_alert(row: asyncpg.Record) -> Alert:
    return Alert.model_validate(dict(row))


def to_silence(row: asyncpg.Record) -> Silence:
    return Silence.model_validate(dict(row), context={STORED: True})


# -- alerts -------------------------------------------------------------------------------------


async def lock_alert(conn: Connection, fingerprint: str) -> Alert | None:
    row = await conn.fetchrow(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE fingerprint = $1 FOR UPDATE", fingerprint
    )
    return to_alert(row) if row else None


async def insert_alert(
    conn: Connection, values: dict[str, Any], *, actor: str, action: str
) -> Alert | None:
    """Insert a new alert and its first history entry (one statement); None when a concurrent
    writer inserted this fingerprint first."""
    names = ", ".join(values)
    placeholders = ", ".join(f"${i}" for i in range(4, len(values) + 4))
    row = await conn.fetchrow(
        f"""WITH created AS (
                INSERT INTO alerts (id, {names}) VALUES ($1, {placeholders})
                ON CONFLICT (fingerprint) DO NOTHING RETURNING {ALERT_COLUMNS}
            ), history AS (
                INSERT INTO alert_history (alert_id, actor, action, from_status, to_status)
                SELECT id, $2, $3, NULL, status FROM created
            )
            SELECT {ALERT_COLUMNS} FROM created""",
        uuid.uuid4(),
        actor,
        action,
        *values.values(),
    )
    return to_alert(row) if row else None


async def lock_alerts(conn: Connection, fingerprints: Sequence[str]) -> list[Alert]:
    """Lock the alerts with these fingerprints, in fingerprint order (a stable lock order)."""
    rows = await conn.fetch(
        f"""SELECT {ALERT_COLUMNS} FROM alerts WHERE fingerprint = ANY($1::text[])
            ORDER BY fingerprint FOR UPDATE""",
        sorted(fingerprints),
    )
    return [to_alert(r) for r in rows]


async def lock_open_alerts(conn: Connection, containing: dict[str, str]) -> list[Alert]:
    """Lock the unresolved alerts whose labels include ``containing``, in fingerprint order."""
    rows = await conn.fetch(
        f"""SELECT {ALERT_COLUMNS} FROM alerts WHERE status <> 'resolved' AND labels @> $1
            ORDER BY fingerprint FOR UPDATE""",
        containing,
    )
    return [to_alert(r) for r in rows]


async def lock_subjects(conn: Connection, subjects: Sequence[tuple[str, str]]) -> None:
    """Lock each ``(label, value)`` subject until the transaction ends, in a stable order, so a
    removal and a report about the same thing never interleave."""
    if not subjects:
        return
    await conn.execute(
        """SELECT count(pg_advisory_xact_lock(hashtextextended(key, 0)))
           FROM (SELECT DISTINCT unnest($1::text[]) AS key ORDER BY 1) AS keys""",
        [f"alerts.subject:{label}={value}" for label, value in subjects],
    )


async def record_removal(conn: Connection, label: str, value: str, removed_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO removed_subjects (label, value, removed_at) VALUES ($1, $2, $3)
           ON CONFLICT (label, value) DO UPDATE
           SET removed_at = greatest(removed_subjects.removed_at, excluded.removed_at),
               recorded_at = now()""",
        label,
        value,
        removed_at,
    )


async def removals(
    conn: Connection, subjects: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """When each of ``subjects`` that was removed was removed."""
    if not subjects:
        return {}
    rows = await conn.fetch(
        """SELECT r.label, r.value, r.removed_at FROM removed_subjects r
           JOIN unnest($1::text[], $2::text[]) AS s(label, value) USING (label, value)""",
        [label for label, _ in subjects],
        [value for _, value in subjects],
    )
    return {(r["label"], r["value"]): r["removed_at"] for r in rows}


async def forget_removals(conn: Connection, older_than: timedelta) -> None:
    await conn.execute(
        "DELETE FROM removed_subjects WHERE recorded_at < now() - $1::interval", older_than
    )


_NEW_ALERT = (
    "id uuid, fingerprint text, source text, severity text, status text, labels jsonb, "
    "annotations jsonb, starts_at timestamptz, ends_at timestamptz, generator_url text, "
    "observed_at timestamptz, suppressed boolean, silenced_by uuid[], inhibited_by text[], "
    "actor text"
)


async def insert_alerts(
    conn: Connection, rows: Sequence[dict[str, Any]], *, action: str
) -> list[Alert]:
    """Insert new alerts and their first history entries (by each row's ``actor``) in one
    statement; a fingerprint a concurrent writer inserted first is skipped (not returned)."""
    names = [n.split()[0] for n in _NEW_ALERT.split(", ")][:-1]
    columns = ", ".join(names)
    values = [{"id": uuid.uuid4(), **row} for row in sorted(rows, key=lambda r: r["fingerprint"])]
    found = await conn.fetch(
        f"""WITH created AS (
                INSERT INTO alerts ({columns})
                SELECT {columns} FROM jsonb_to_recordset($1::jsonb) AS r({_NEW_ALERT})
                ON CONFLICT (fingerprint) DO NOTHING RETURNING {ALERT_COLUMNS}
            ), history AS (
                INSERT INTO alert_history (alert_id, actor, action, from_status, to_status)
                SELECT created.id, r.actor, $2, NULL, created.status
                FROM created JOIN jsonb_to_recordset($1::jsonb) AS r(id uuid, actor text)
                     USING (id)
            )
            SELECT {ALERT_COLUMNS} FROM created""",
        values,
        action,
    )
    return [to_alert(r) for r in found]


async def update_alert(conn: Connection, alert_id: UUID, changes: dict[str, Any]) -> Alert:
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE alerts SET {assignments}, updated_at = now() WHERE id = $1 "
        f"RETURNING {ALERT_COLUMNS}",
        alert_id,
        *changes.values(),
    )
    assert row is not None
    return to_alert(row)


async def get_alert(conn: Connection, alert_id: UUID, *, for_update: bool = False) -> Alert | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1{lock}", alert_id)
    return to_alert(row) if row else None


async def add_history(
    conn: Connection,
    alert_id: UUID,
    *,
    actor: str,
    action: str,
    from_status: Status | None,
    to_status: Status | None,
    comment: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO alert_history (alert_id, actor, action, from_status, to_status, comment)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        alert_id,
        actor,
        action,
        from_status,
        to_status,
        comment,
    )


async def history(conn: Connection, alert_id: UUID) -> list[HistoryEntry]:
    rows = await conn.fetch(
        """SELECT at, actor, action, from_status, to_status, comment FROM alert_history
           WHERE alert_id = $1 ORDER BY id""",
        alert_id,
    )
    return [HistoryEntry.model_validate(dict(r)) for r in rows]


def _matcher_sql(matcher: Matcher, arg: Any) -> str:
    value = f"coalesce(labels->>{arg(matcher.name)}, '')"
    if matcher.is_regex:
        # Anchored like Alertmanager: the whole value must match.
        clause = f"{value} ~ {arg('^(?:' + matcher.value + ')$')}"
    else:
        clause = f"{value} = {arg(matcher.value)}"
    return clause if matcher.is_equal else f"NOT ({clause})"


def _where(query: AlertQuery) -> tuple[str, list[Any]]:
    where = Where()
    arg = where.arg
    if query.severity:
        where.add(f"severity = ANY({arg([s.value for s in query.severity])}::text[])")
    if query.status:
        where.add(f"status = ANY({arg([s.value for s in query.status])}::text[])")
    if query.source is not None:
        where.add(f"source = {arg(query.source)}")
    if query.suppressed is not None:
        where.add(f"suppressed = {arg(query.suppressed)}")
    if query.since is not None:
        where.add(f"starts_at >= {arg(query.since)}")
    if query.until is not None:
        where.add(f"starts_at < {arg(query.until)}")
    equality = query.equality_labels()
    if equality:
        where.add(f"labels @> {arg(equality)}")  # uses the GIN index
    for matcher in query.matcher:
        if matcher.op != "=" or not matcher.value:
            where.add(_matcher_sql(matcher, arg))
    return where.sql(), where.args


async def list_alerts(conn: Connection, query: AlertQuery) -> tuple[list[Alert], int]:
    where, args = _where(query)
    total = await conn.fetchval(f"SELECT count(*) FROM alerts{where}", *args)
    rows = await conn.fetch(
        f"SELECT {ALERT_COLUMNS} FROM alerts{where} ORDER BY starts_at DESC, id DESC "
        f"LIMIT {query.limit} OFFSET {query.offset}",
        *args,
    )
    return [to_alert(r) for r in rows], int(total)


async def open_alerts(conn: Connection, containing: dict[str, str] | None = None) -> list[Alert]:
    """Unresolved alerts, optionally only those whose labels include ``containing``."""
    if containing:
        rows = await conn.fetch(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE status <> 'resolved' AND labels @> $1",
            containing,
        )
    else:
        rows = await conn.fetch(f"SELECT {ALERT_COLUMNS} FROM alerts WHERE status <> 'resolved'")
    return [to_alert(r) for r in rows]


async def open_alerts_containing_any(
    conn: Connection, subsets: Sequence[dict[str, str]]
) -> list[Alert]:
    """Unresolved alerts whose labels include at least one of ``subsets`` (one statement)."""
    if not subsets:
        return []
    if not all(subsets):
        return await open_alerts(conn)  # an empty subset is contained in every label set
    rows = await conn.fetch(
        f"""SELECT {ALERT_COLUMNS} FROM alerts
            WHERE status <> 'resolved' AND labels @> ANY($1::jsonb[])""",
        list(subsets),
    )
    return [to_alert(r) for r in rows]


async def lock_expired(conn: Connection, limit: int = 500) -> list[Alert]:
    rows = await conn.fetch(
        f"""SELECT {ALERT_COLUMNS} FROM alerts
            WHERE status <> 'resolved' AND ends_at IS NOT NULL AND ends_at <= now()
            ORDER BY ends_at LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )
    return [to_alert(r) for r in rows]


async def firing_counts(conn: Connection) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT severity, count(*) AS n FROM alerts
           WHERE status = 'firing' AND NOT suppressed GROUP BY severity"""
    )
    return {r["severity"]: r["n"] for r in rows}


# -- silences -----------------------------------------------------------------------------------


def _silence_values(silence: SilenceIn) -> list[Any]:
    return [
        [m.model_dump(by_alias=True) for m in silence.matchers],
        silence.starts_at,
        silence.ends_at,
        silence.comment,
    ]


# A silence without startsAt starts at the transaction's now(), the same clock
# ``active_silences`` uses, so it applies within the transaction that creates it.


async def insert_silence(conn: Connection, silence: SilenceIn, created_by: str) -> Silence:
    row = await conn.fetchrow(
        f"""INSERT INTO silences (id, matchers, starts_at, ends_at, comment, created_by)
            VALUES ($1, $2, coalesce($3, now()), $4, $5, $6) RETURNING {SILENCE_COLUMNS}""",
        uuid.uuid4(),
        *_silence_values(silence),
        created_by,
    )
    assert row is not None
    return to_silence(row)


async def replace_silence(conn: Connection, silence_id: UUID, silence: SilenceIn) -> Silence | None:
    row = await conn.fetchrow(
        f"""UPDATE silences SET matchers = $2, starts_at = coalesce($3, now()), ends_at = $4,
                   comment = $5, updated_at = now()
            WHERE id = $1 RETURNING {SILENCE_COLUMNS}""",
        silence_id,
        *_silence_values(silence),
    )
    return to_silence(row) if row else None


async def expire_silence(conn: Connection, silence_id: UUID) -> Silence | None:
    row = await conn.fetchrow(
        f"""UPDATE silences SET ends_at = least(ends_at, now()),
                   starts_at = least(starts_at, now()), updated_at = now()
            WHERE id = $1 RETURNING {SILENCE_COLUMNS}""",
        silence_id,
    )
    return to_silence(row) if row else None


async def get_silence(conn: Connection, silence_id: UUID) -> Silence | None:
    row = await conn.fetchrow(f"SELECT {SILENCE_COLUMNS} FROM silences WHERE id = $1", silence_id)
    return to_silence(row) if row else None


async def list_silences(conn: Connection) -> list[Silence]:
    rows = await conn.fetch(f"SELECT {SILENCE_COLUMNS} FROM silences ORDER BY created_at DESC")
    return [to_silence(r) for r in rows]


async def silence_window_crossed(conn: Connection, since: datetime) -> bool:
    """Whether a silence started or ended after ``since`` (so suppression must be re-applied)."""
    return bool(
        await conn.fetchval(
            """SELECT exists(SELECT 1 FROM silences
                             WHERE (starts_at > $1 AND starts_at <= now())
                                OR (ends_at > $1 AND ends_at <= now()))""",
            since,
        )
    )


async def count_unexpired_silences(conn: Connection) -> int:
    """Active and pending silences; serialised with other creations (transaction lock)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('alerts.silences'))")
    return int(await conn.fetchval("SELECT count(*) FROM silences WHERE ends_at > now()"))


async def active_silences(conn: Connection) -> list[Silence]:
    rows = await conn.fetch(
        f"SELECT {SILENCE_COLUMNS} FROM silences WHERE starts_at <= now() AND ends_at > now()"
    )
    return [to_silence(r) for r in rows]


# -- notifications ------------------------------------------------------------------------------


async def touch_groups(conn: Connection, groups: Sequence[tuple[str, str, dict[str, str]]]) -> None:
    """:func:`touch_group` for many ``(receiver, group_key, group_labels)`` in one statement."""
    unique = {(receiver, key): labels for receiver, key, labels in groups}
    if not unique:
        return
    await conn.execute(
        """INSERT INTO notification_groups (receiver, group_key, group_labels)
           SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])
           ON CONFLICT (receiver, group_key) DO UPDATE SET changed_at = now()""",
        [receiver for receiver, _ in unique],
        [key for _, key in unique],
        list(unique.values()),
    )


async def touch_group(
    conn: Connection, receiver: str, group_key: str, group_labels: dict[str, str]
) -> None:
    await conn.execute(
        """INSERT INTO notification_groups (receiver, group_key, group_labels)
           VALUES ($1, $2, $3)
           ON CONFLICT (receiver, group_key) DO UPDATE SET changed_at = now()""",
        receiver,
        group_key,
        group_labels,
    )


async def claim_due_groups(
    conn: Connection,
    receiver: str,
    *,
    group_wait: float,
    group_interval: float,
    repeat_interval: float,
) -> list[asyncpg.Record]:
    """Mark the receiver's due groups as sent now and return them (with the previous send time).

    Due as Alertmanager documents: a new group after ``group_wait``; a changed group
    ``group_interval`` after its last notification; an unchanged firing group after
    ``repeat_interval``. ``SKIP LOCKED`` lets several processes dispatch without doubling.
    """
    return await conn.fetch(
        """WITH due AS (
               SELECT receiver, group_key, sent_at FROM notification_groups
               WHERE receiver = $1 AND (
                   (sent_at IS NULL AND created_at <= now() - make_interval(secs => $2))
                   OR (sent_at IS NOT NULL AND changed_at > sent_at
                       AND sent_at <= now() - make_interval(secs => $3))
                   OR (sent_at IS NOT NULL AND sent_firing
                       AND sent_at <= now() - make_interval(secs => $4)))
               FOR UPDATE SKIP LOCKED)
           UPDATE notification_groups g SET sent_at = now()
           FROM due WHERE g.receiver = due.receiver AND g.group_key = due.group_key
           RETURNING g.group_key, g.group_labels, due.sent_at AS previous_sent_at""",
        receiver,
        group_wait,
        group_interval,
        repeat_interval,
    )


async def set_group_firing(conn: Connection, receiver: str, group_key: str, firing: bool) -> None:
    await conn.execute(
        "UPDATE notification_groups SET sent_firing = $3 WHERE receiver = $1 AND group_key = $2",
        receiver,
        group_key,
        firing,
    )


async def record_attempt(
    conn: Connection,
    *,
    receiver: str,
    group_key: str,
    delivery_id: UUID,
    attempt: int,
    status_code: int | None,
    outcome: str,
    error: str | None,
    duration_ms: float,
) -> None:
    await conn.execute(
        """INSERT INTO notification_attempts
               (receiver, group_key, delivery_id, attempt, status_code, outcome, error, duration_ms)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        receiver,
        group_key,
        delivery_id,
        attempt,
        status_code,
        outcome,
        error,
        duration_ms,
    )


async def list_attempts(
    conn: Connection, receiver: str | None, limit: int, offset: int
) -> tuple[list[DeliveryAttempt], int]:
    """Delivery attempts, newest first, optionally of one receiver."""
    where = " WHERE receiver = $1" if receiver is not None else ""
    args: list[Any] = [receiver] if receiver is not None else []
    total = await conn.fetchval(f"SELECT count(*) FROM notification_attempts{where}", *args)
    rows = await conn.fetch(
        f"""SELECT receiver, group_key, delivery_id, attempt, at, status_code, outcome, error,
                   duration_ms FROM notification_attempts{where}
            ORDER BY id DESC LIMIT {int(limit)} OFFSET {int(offset)}""",
        *args,
    )
    return [DeliveryAttempt.model_validate(dict(r)) for r in rows], int(total)


async def group_members(
    conn: Connection, group_labels: dict[str, str], resolved_since: datetime | None
) -> list[Alert]:
    """Open alerts carrying ``group_labels``, plus those resolved after ``resolved_since``."""
    present = {k: v for k, v in group_labels.items() if v != ""}
    rows = await conn.fetch(
        f"""SELECT {ALERT_COLUMNS} FROM alerts WHERE labels @> $1
            AND (status <> 'resolved' OR ($2::timestamptz IS NOT NULL AND resolved_at > $2))
            ORDER BY starts_at, id""",
        present,
        resolved_since,
    )
    return [
        alert
        for alert in map(to_alert, rows)
        if all(alert.labels.get(k, "") == v for k, v in group_labels.items())
    ]
