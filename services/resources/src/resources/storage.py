"""SQL for the ``resources`` table; every function takes a connection and returns domain objects."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from common.db import Connection
from common.errors import Conflict
from common.paging import Where
from resources.domain import Resource, ResourceFields, ResourceQuery, StoredSample

COLUMNS = (
    "id, external_id, name, provider, type, region, account, status, hourly_cost, currency, "
    "tags, owner, team, cpu_utilization, memory_utilization, status_since, provisioned_at, "
    "created_at, updated_at"
)
WRITABLE = [name for name in ResourceFields.model_fields]


def to_resource(row: asyncpg.Record) -> Resource:
    values = dict(row)
    values["currency"] = values["currency"].strip()
    return Resource.model_validate(values)


async def insert(conn: Connection, fields: ResourceFields) -> Resource:
    values = fields.model_dump()
    placeholders = ", ".join(f"${i}" for i in range(2, len(WRITABLE) + 2))
    await lock_external_ids(conn, [fields.external_id])
    try:
        row = await conn.fetchrow(
            f"INSERT INTO resources (id, {', '.join(WRITABLE)}) VALUES ($1, {placeholders}) "
            f"RETURNING {COLUMNS}",
            uuid.uuid4(),
            *(values[name] for name in WRITABLE),
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"A resource with external_id {fields.external_id!r} exists.") from None
    assert row is not None
    return to_resource(row)


async def get(conn: Connection, resource_id: UUID, *, for_update: bool = False) -> Resource | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM resources WHERE id = $1{lock}", resource_id)
    return to_resource(row) if row else None


async def update(conn: Connection, resource_id: UUID, changes: dict[str, Any]) -> Resource:
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE resources SET {assignments}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
        resource_id,
        *changes.values(),
    )
    assert row is not None
    return to_resource(row)


async def delete(conn: Connection, resource_id: UUID) -> Resource | None:
    row = await conn.fetchrow(
        f"DELETE FROM resources WHERE id = $1 RETURNING {COLUMNS}", resource_id
    )
    return to_resource(row) if row else None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(query: ResourceQuery) -> tuple[str, list[Any]]:
    where = Where()
    for column in ("status", "type", "provider", "region", "team", "account"):
        value = getattr(query, column)
        if value is not None:
            where.add(f"{column} = {where.arg(value)}")
    for key, value in query.tag_filters():
        if value is None:
            where.add(f"tags ? {where.arg(key)}")
        else:
            where.add(f"tags @> {where.arg({key: value})}")
    if query.q:
        pattern = where.arg(_like(query.q))
        where.add(f"(name ILIKE {pattern} OR external_id ILIKE {pattern})")
    return where.sql(), where.args


def _order_by(sort: str) -> str:
    # The field is checked against SortField by ResourceQuery; id breaks ties so pages are stable.
    direction = "DESC" if sort.startswith("-") else "ASC"
    return f" ORDER BY {sort.removeprefix('-')} {direction}, id {direction}"


async def list_page(conn: Connection, query: ResourceQuery) -> tuple[list[Resource], int]:
    where, args = _where(query)
    total = await conn.fetchval(f"SELECT count(*) FROM resources{where}", *args)
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM resources{where}{_order_by(query.sort)} "
        f"LIMIT {query.limit} OFFSET {query.offset}",
        *args,
    )
    return [to_resource(r) for r in rows], int(total)


async def lock_external_ids(conn: Connection, external_ids: Sequence[str]) -> None:
    """Transaction-scoped advisory locks on external ids, in sorted order (no deadlocks)."""
    await conn.execute(
        """SELECT pg_advisory_xact_lock(h) FROM (
               SELECT DISTINCT hashtextextended('resources.external_id:' || x, 0) AS h
               FROM unnest($1::text[]) AS x ORDER BY 1) AS ordered""",
        list(external_ids),
    )


async def lock_by_external_ids(
    conn: Connection, external_ids: Sequence[str]
) -> dict[str, Resource]:
    """Lock these external ids for the transaction, existing or not, and return existing rows.

    Row locks alone cannot cover rows that do not exist yet, so two transactions creating the same
    new resources would race; sorted advisory locks serialise them without deadlock.
    """
    await lock_external_ids(conn, external_ids)
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM resources WHERE external_id = ANY($1::text[]) "
        "ORDER BY external_id FOR UPDATE",
        list(external_ids),
    )
    return {r["external_id"]: to_resource(r) for r in rows}


async def upsert(conn: Connection, fields: ResourceFields) -> Resource | None:
    """Insert or update by external id; None when the stored row already had these values."""
    values = fields.model_dump()
    names = ", ".join(WRITABLE)
    placeholders = ", ".join(f"${i}" for i in range(2, len(WRITABLE) + 2))
    mutable = [n for n in WRITABLE if n != "external_id"]
    assignments = ", ".join(f"{n} = EXCLUDED.{n}" for n in mutable)
    current = ", ".join(f"resources.{n}" for n in mutable)
    incoming = ", ".join(f"EXCLUDED.{n}" for n in mutable)
    row = await conn.fetchrow(
        f"INSERT INTO resources (id, {names}) VALUES ($1, {placeholders}) "
        f"ON CONFLICT (external_id) DO UPDATE SET {assignments}, updated_at = now() "
        f"WHERE ({current}) IS DISTINCT FROM ({incoming}) RETURNING {COLUMNS}",
        uuid.uuid4(),
        *(values[n] for n in WRITABLE),
    )
    return to_resource(row) if row else None


async def counts_by_status_and_type(conn: Connection) -> dict[tuple[str, str], int]:
    rows = await conn.fetch("SELECT status, type, count(*) AS n FROM resources GROUP BY 1, 2")
    return {(r["status"], r["type"]): r["n"] for r in rows}


# ----- utilisation samples --------------------------------------------------------------------


async def resolve_resources(
    conn: Connection, ids: Sequence[UUID], external_ids: Sequence[str]
) -> list[asyncpg.Record]:
    """``id, external_id`` of the named resources that exist, share-locked for the transaction.

    The lock keeps a resource from being deleted between this check and its samples' insert.
    """
    return await conn.fetch(
        """SELECT id, external_id FROM resources
           WHERE id = ANY($1::uuid[]) OR external_id = ANY($2::text[])
           ORDER BY id FOR SHARE""",
        list(ids),
        list(external_ids),
    )


async def upsert_samples(conn: Connection, samples: Sequence[StoredSample]) -> None:
    """One statement for the whole batch; a resent sample replaces the stored one."""
    await conn.execute(
        """INSERT INTO utilization_samples
               (resource_id, sampled_at, cpu_percent, memory_percent, network_bytes)
           SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::numeric[], $4::numeric[],
                                $5::bigint[])
           ON CONFLICT (resource_id, sampled_at) DO UPDATE SET
               cpu_percent = EXCLUDED.cpu_percent, memory_percent = EXCLUDED.memory_percent,
               network_bytes = EXCLUDED.network_bytes""",
        [s.resource_id for s in samples],
        [s.sampled_at for s in samples],
        [s.cpu_percent for s in samples],
        [s.memory_percent for s in samples],
        [s.network_bytes for s in samples],
    )


async def trim_history(
    conn: Connection, resource_ids: Sequence[UUID], *, oldest: datetime, keep: int
) -> int:
    """Drop these resources' samples before ``oldest`` and beyond the newest ``keep``."""
    dropped = await conn.fetchval(
        """WITH ranked AS (
               SELECT resource_id, sampled_at,
                      row_number() OVER (PARTITION BY resource_id ORDER BY sampled_at DESC) AS n
               FROM utilization_samples WHERE resource_id = ANY($1::uuid[])),
           gone AS (
               DELETE FROM utilization_samples s USING ranked r
               WHERE s.resource_id = r.resource_id AND s.sampled_at = r.sampled_at
                 AND (r.sampled_at < $2 OR r.n > $3)
               RETURNING 1)
           SELECT count(*) FROM gone""",
        list(resource_ids),
        oldest,
        keep,
    )
    return int(dropped)


async def follow_latest_sample(conn: Connection, resource_ids: Sequence[UUID]) -> int:
    """Set each resource's current CPU and memory figures from its newest sample.

    ``updated_at`` stays: it dates edits of the resource record, and readings are not edits.
    """
    result = await conn.execute(
        """UPDATE resources r SET cpu_utilization = l.cpu_percent,
               memory_utilization = l.memory_percent
           FROM (SELECT DISTINCT ON (resource_id) resource_id, cpu_percent, memory_percent
                 FROM utilization_samples WHERE resource_id = ANY($1::uuid[])
                 ORDER BY resource_id, sampled_at DESC) AS l
           WHERE r.id = l.resource_id
             AND (r.cpu_utilization, r.memory_utilization)
                 IS DISTINCT FROM (l.cpu_percent, l.memory_percent)""",
        list(resource_ids),
    )
    return int(result.split()[-1])


async def samples_between(
    conn: Connection, resource_id: UUID, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT sampled_at AS timestamp, cpu_percent, memory_percent, network_bytes
           FROM utilization_samples WHERE resource_id = $1
             AND ($2::timestamptz IS NULL OR sampled_at >= $2)
             AND ($3::timestamptz IS NULL OR sampled_at < $3)
           ORDER BY sampled_at""",
        resource_id,
        start,
        end,
    )
    return [dict(r) for r in rows]
