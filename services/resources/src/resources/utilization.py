"""Utilisation history: batches of samples, each batch one transaction and one event.

The history is bounded on every write: samples older than the retention window are refused, and
the write drops the resource's samples that have aged out of the window or exceed the
per-resource cap (oldest first). No aiohttp here; handlers call these and render the results.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from aiohttp import web

from common.cache import ReadCache
from common.errors import NotFound, ValidationFailed
from resources import storage
from resources.domain import (
    Caller,
    StoredSample,
    UtilizationBatch,
    UtilizationRecorded,
    UtilizationSample,
    UtilizationWindow,
)
from resources.events import record_utilization

#: Percentages are stored, read and announced with two places.
CENT = Decimal("0.01")
#: A clock a little ahead of ours is not an error; a sample further in the future is.
CLOCK_SKEW = timedelta(minutes=5)


def _now() -> datetime:
    return datetime.now(UTC)


class UtilizationHistory:
    """Records and reads utilisation samples over one pool; writes invalidate the read cache."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        cache: ReadCache,
        *,
        retention_days: int,
        max_samples_per_resource: int,
    ) -> None:
        self.pool = pool
        self.cache = cache
        self.retention = timedelta(days=retention_days)
        self.max_samples_per_resource = max_samples_per_resource

    async def record(self, batch: UtilizationBatch, caller: Caller) -> UtilizationRecorded:
        """Store every sample of ``batch`` or none; unknown resources are a 422 naming them."""
        now = _now()
        oldest = now - self.retention
        _check_times(batch.samples, oldest=oldest, newest=now + CLOCK_SKEW)
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await _resolve(conn, batch.samples)
            resource_ids = sorted({s.resource_id for s in stored}, key=str)
            await storage.upsert_samples(conn, stored)
            dropped = await storage.trim_history(
                conn, resource_ids, oldest=oldest, keep=self.max_samples_per_resource
            )
            changed = await storage.follow_latest_sample(conn, resource_ids)
            await record_utilization(conn, stored, caller)
        if changed:
            await self.cache.invalidate()
        return UtilizationRecorded(
            accepted=len(stored), resources=len(resource_ids), dropped=dropped
        )

    async def history(self, resource_id: UUID, window: UtilizationWindow) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            if await storage.get(conn, resource_id) is None:
                raise NotFound(f"No resource with id {resource_id}.")
            return await storage.samples_between(conn, resource_id, window.start, window.end)


def _check_times(samples: list[UtilizationSample], *, oldest: datetime, newest: datetime) -> None:
    errors = [
        {"field": f"samples.{i}.timestamp", "message": message}
        for i, s in enumerate(samples)
        if (message := _time_problem(s.timestamp, oldest, newest))
    ]
    if errors:
        raise ValidationFailed("Some samples are outside the accepted time range.", errors=errors)


def _time_problem(at: datetime, oldest: datetime, newest: datetime) -> str | None:
    if at < oldest:
        return f"older than the retention window (before {oldest.isoformat()})"
    if at > newest:
        return "in the future"
    return None


async def _resolve(conn: Any, samples: list[UtilizationSample]) -> list[StoredSample]:
    """Each sample with its resource's id and external id; unknown or repeated ones are a 422."""
    ids = {s.resource_id for s in samples if s.resource_id is not None}
    external_ids = {s.external_id for s in samples if s.external_id is not None}
    rows = await storage.resolve_resources(conn, sorted(ids, key=str), sorted(external_ids))
    by_id = {r["id"]: r["external_id"] for r in rows}
    by_external_id = {r["external_id"]: r["id"] for r in rows}
    unknown = sorted(str(i) for i in ids - by_id.keys()) + sorted(
        external_ids - by_external_id.keys()
    )
    if unknown:
        raise ValidationFailed(
            f"{len(unknown)} of the named resources are not in the inventory; nothing was stored.",
            errors=[{"field": "samples", "message": f"unknown resource {u!r}"} for u in unknown],
        )
    stored = []
    for s in samples:
        resource_id = s.resource_id or by_external_id[s.external_id]
        stored.append(
            StoredSample(
                resource_id=resource_id,
                external_id=by_id[resource_id],
                sampled_at=s.timestamp.astimezone(UTC),
                cpu_percent=s.cpu_percent.quantize(CENT),
                memory_percent=s.memory_percent.quantize(CENT),
                network_bytes=s.network_bytes,
            )
        )
    counts = Counter((s.resource_id, s.sampled_at) for s in stored)
    repeated = [key for key, n in counts.items() if n > 1]
    if repeated:
        raise ValidationFailed(
            "Each resource may have one sample per timestamp in a request.",
            errors=[
                {"field": "samples", "message": f"two samples for {r} at {at.isoformat()}"}
                for r, at in sorted(repeated, key=lambda k: (str(k[0]), k[1]))
            ],
        )
    return stored


UTILIZATION = web.AppKey("utilization", UtilizationHistory)
