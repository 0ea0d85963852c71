"""A cost-aware cache of the costs service's expensive answers: daily breakdowns, forecasts and
savings recommendations.

An entry lives as long as it was expensive to compute: its miss's measured time x
``CLOUDOPS_COSTS_CACHE_TTL_PER_MISS_SECOND``, bounded by ``_CACHE_MIN_TTL_SECONDS`` and
``_CACHE_MAX_TTL_SECONDS`` (by default a 50 ms answer is kept 30 s, a 0.5 s one 5 minutes, 1.5 s
and beyond 15 minutes).

Invalidation is by *source*, with the generation scheme of :mod:`common.cache`: each entry's key
embeds the current generation of every source it was computed from, and a change bumps only the
generations of what it changed, after its commit:

- an import bumps ``line_items`` (forecasts and recommendations read them) and
  ``line_items:<YYYY-MM>`` for each UTC month whose charges it added or replaced: a breakdown
  depends on the months of its window only, so importing March's bill leaves January's cached;
- a resource event bumps ``inventory`` (resource-grouped breakdowns, recommendations);
- a utilisation event bumps ``utilization`` (recommendations only);
- a budget change bumps nothing cached.

So an import makes the next breakdown of its months a miss with the new totals, while a budget
change, a utilisation batch or another month's bill leaves breakdowns cached. Hits, misses
(``cache_hits_total`` and ``cache_misses_total``, ``cache`` = ``costs_daily``,
``costs_forecast``, ``costs_optimization``) and the compute time hits saved
(``cache_saved_seconds_total``) are exported. Redis errors degrade to computing the answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Any

from loguru import logger
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.cache import ReadCache
from common.encoding import dumps, loads
from common.messaging import CloudEvent
from common.metrics import CACHE_HITS, CACHE_MISSES

CACHE_SAVED = Counter(
    "cache_saved_seconds_total",
    "Compute time that cache hits did not spend: the measured time of the misses they replaced.",
    ["service", "cache"],
)

LINE_ITEMS = "line_items"
INVENTORY = "inventory"
UTILIZATION = "utilization"
SOURCES = (LINE_ITEMS, INVENTORY, UTILIZATION)
CACHES = ("costs_daily", "costs_forecast", "costs_optimization")
#: costs.events.UTILIZATION_RECORDED (that module imports this one).
_UTILIZATION_RECORDED = "resource.utilization_recorded"

# The generations of the entry's sources, then its value under the key they make, in one trip.
_LOOKUP = """
local generations = {}
for i, key in ipairs(KEYS) do generations[i] = redis.call('GET', key) or '0' end
local key = ARGV[1] .. ':' .. table.concat(generations, '.')
return {key, redis.call('GET', key)}
"""


def months_of(start: date, end: date) -> list[str]:
    """The ``line_items:<YYYY-MM>`` sources of the days ``[start, end]``."""
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(f"{LINE_ITEMS}:{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def import_sources(months: set[str]) -> list[str]:
    """What an import that charged ``months`` (``YYYY-MM``) changed."""
    return [LINE_ITEMS, *(f"{LINE_ITEMS}:{m}" for m in sorted(months))]


class CostAwareCache:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        service: str,
        ttl_per_miss_second: float,
        min_ttl: int,
        max_ttl: int,
    ) -> None:
        self._redis = redis
        self._base = f"{prefix}cache:costs"
        self._service = service
        self._ttl_per_miss_second = ttl_per_miss_second
        self._min_ttl = min_ttl
        self._max_ttl = max(max_ttl, min_ttl)
        self._lookup = redis.register_script(_LOOKUP)
        for name in CACHES:  # every series exists from the start, hits or not
            CACHE_SAVED.labels(service, name)

    def ttl_for(self, miss_seconds: float) -> int:
        """Seconds an entry lives: longer the more its miss cost, within the bounds."""
        wanted = round(miss_seconds * self._ttl_per_miss_second)
        return min(max(wanted, self._min_ttl), self._max_ttl)

    def _generation_key(self, source: str) -> str:
        return f"{self._base}:generation:{source}"

    async def get_or_compute(
        self,
        cache: str,
        parts: Sequence[Any],
        sources: Sequence[str],
        compute: Callable[[], Awaitable[Any]],
    ) -> Any:
        """The JSON form of ``compute()``'s result for the query ``parts``, which reads
        ``sources``; cached as long as it cost to compute (see the module doc)."""
        digest = ReadCache.key_for(cache, *parts)
        try:
            key, cached = await self._lookup(
                keys=[self._generation_key(s) for s in sources],
                args=[f"{self._base}:{cache}:{digest}"],
            )
        except (RedisError, OSError) as exc:
            logger.warning("cache unavailable", error=type(exc).__name__)
            CACHE_MISSES.labels(self._service, cache).inc()
            return loads(dumps(await compute()))
        if cached is not None:
            cost, _, body = bytes(cached).partition(b"\n")
            CACHE_HITS.labels(self._service, cache).inc()
            CACHE_SAVED.labels(self._service, cache).inc(float(cost))
            return loads(body)
        CACHE_MISSES.labels(self._service, cache).inc()
        started = time.perf_counter()
        body = dumps(await compute())
        spent = time.perf_counter() - started
        try:
            await self._redis.set(key, b"%.6f\n" % spent + body, ex=self.ttl_for(spent))
        except (RedisError, OSError) as exc:
            logger.warning("cache store failed", error=type(exc).__name__)
        return loads(body)

    async def imported(self, months: set[str]) -> None:
        """After an import committed charges in ``months`` (``YYYY-MM``)."""
        await self.changed(*import_sources(months))

    async def changed(self, *sources: str) -> None:
        """After a commit that changed ``sources``: later reads of entries built on them miss.
        A failure is logged (the entries still expire within their TTL), never raised."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for source in sources:
                    pipe.incr(self._generation_key(source))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.error("cache invalidation failed", error=type(exc).__name__)


class CacheHolder:
    """The worker's cache, for code that runs outside a request (the event consumer)."""

    cache: CostAwareCache | None = None


HOLDER = CacheHolder()


def sources_of(events: Sequence[CloudEvent]) -> list[str]:
    """What a batch of consumed events changed: utilisation samples and/or the inventory."""
    changed = set()
    for event in events:
        changed.add(UTILIZATION if event.type == _UTILIZATION_RECORDED else INVENTORY)
    return sorted(changed)


async def invalidate_after_events(events: Sequence[CloudEvent], result: Any) -> None:
    """The inventory consumer's ``after_commit``: bump what the committed batch changed."""
    if HOLDER.cache is not None and events:
        await HOLDER.cache.changed(*sources_of(events))
