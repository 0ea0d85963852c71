"""The inventory use cases: each write is one transaction with its events, then cache invalidation.

No aiohttp here; handlers call these and render the results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from aiohttp import web
from prometheus_client import Gauge

from common.cache import Cached, ReadCache
from common.encoding import dumps
from common.errors import NotFound, ValidationFailed
from resources import storage
from resources.domain import (
    BulkUpsert,
    Caller,
    Resource,
    ResourceFields,
    ResourcePatch,
    ResourceQuery,
    ResourceType,
    Status,
)
from resources.events import record_change

RESOURCES_TOTAL = Gauge(
    "resources_total",
    "Resources in the inventory by status and type.",
    ["status", "type"],
    multiprocess_mode="livemostrecent",
)


@dataclass(frozen=True)
class BulkResult:
    created: int
    updated: int
    unchanged: int
    resources: list[Resource]


class Inventory:
    """The resource use cases over one PostgreSQL pool and one read cache."""

    def __init__(self, pool: asyncpg.Pool, cache: ReadCache, *, bulk_max_items: int = 1000) -> None:
        self.pool = pool
        self.cache = cache
        self.bulk_max_items = bulk_max_items

    @staticmethod
    def list_key(query: ResourceQuery) -> str:
        """The cache key of a list query."""
        return ReadCache.key_for("list", query.model_dump(mode="json"))

    async def list_page_json(self, query: ResourceQuery, key: str) -> Cached:
        """The rendered list response, from the cache when possible (``key``: the query's
        :meth:`list_key`, which the handler remembers with the parsed query)."""

        async def load() -> bytes:
            async with self.pool.acquire() as conn:
                items, total = await storage.list_page(conn, query)
            meta = {"total": total, "limit": query.limit, "offset": query.offset}
            return dumps({"success": True, "data": items, "meta": meta})

        return await self.cache.get_or_load_cached(key, load)

    async def get_json(self, resource_id: UUID) -> Cached:
        async def load() -> bytes:
            async with self.pool.acquire() as conn:
                resource = await storage.get(conn, resource_id)
            if resource is None:
                raise NotFound(f"No resource with id {resource_id}.")
            return dumps({"success": True, "data": resource})

        return await self.cache.get_or_load_cached(ReadCache.key_for("get", str(resource_id)), load)

    async def _write(
        self, change: Callable[[asyncpg.pool.PoolConnectionProxy[Any]], Awaitable[Any]]
    ) -> Any:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                result = await change(conn)
            await self.refresh_gauge(conn)
        await self.cache.invalidate()
        return result

    async def create(self, fields: ResourceFields, caller: Caller) -> Resource:
        async def change(conn: Any) -> Resource:
            resource = await storage.insert(conn, fields)
            await record_change(conn, None, resource, caller)
            return resource

        created: Resource = await self._write(change)
        return created

    async def update(self, resource_id: UUID, patch: ResourcePatch, caller: Caller) -> Resource:
        async def change(conn: Any) -> Resource:
            old = await storage.get(conn, resource_id, for_update=True)
            if old is None:
                raise NotFound(f"No resource with id {resource_id}.")
            new = await storage.update(conn, resource_id, patch.changes(old))
            await record_change(conn, old, new, caller)
            return new

        updated: Resource = await self._write(change)
        return updated

    async def delete(self, resource_id: UUID, caller: Caller) -> None:
        async def change(conn: Any) -> None:
            old = await storage.delete(conn, resource_id)
            if old is None:
                raise NotFound(f"No resource with id {resource_id}.")
            await record_change(conn, old, None, caller)

        await self._write(change)

    async def bulk_upsert(self, request: BulkUpsert, caller: Caller) -> BulkResult:
        """Insert or update each resource by external id; unchanged rows write and emit nothing."""
        items = request.resources
        if len(items) > self.bulk_max_items:
            raise ValidationFailed(
                f"At most {self.bulk_max_items} resources per request.",
                errors=[{"field": "resources", "message": f"more than {self.bulk_max_items}"}],
            )
        counts = Counter(i.external_id for i in items)
        duplicates = [external_id for external_id, n in counts.items() if n > 1]
        if duplicates:
            raise ValidationFailed(
                "Each external_id may appear once per request.",
                errors=[
                    {"field": "resources", "message": f"duplicate external_id {d!r}"}
                    for d in sorted(duplicates)
                ],
            )

        async def change(conn: Any) -> BulkResult:
            # Rows are locked in external_id order so concurrent bulk calls cannot deadlock.
            ordered = sorted(items, key=lambda i: i.external_id)
            before = await storage.lock_by_external_ids(conn, [i.external_id for i in ordered])
            created = updated = 0
            results: list[Resource] = []
            for fields in ordered:
                old = before.get(fields.external_id)
                new = await storage.upsert(conn, fields)
                if new is None:
                    assert old is not None
                    results.append(old)
                    continue
                created += old is None
                updated += old is not None
                results.append(new)
                await record_change(conn, old, new, caller)
            return BulkResult(created, updated, len(items) - created - updated, results)

        result: BulkResult = await self._write(change)
        return result

    async def refresh_gauge(self, conn: Any) -> None:
        """Set ``resources_total`` from the table itself, zeros included, so it is always true."""
        counts = await storage.counts_by_status_and_type(conn)
        for status in Status:
            for type_ in ResourceType:
                RESOURCES_TOTAL.labels(status.value, type_.value).set(
                    counts.get((status, type_), 0)
                )


INVENTORY = web.AppKey("inventory", Inventory)
