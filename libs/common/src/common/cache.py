"""A generation-keyed read cache in Redis.

Every cached value's key embeds the namespace's current *generation*. A write commits to
PostgreSQL first and then bumps the generation, so a read after the write can never see an older
value: a reader that raced the write stores its stale copy under the old generation, which no one
asks for again. Entries also expire, which bounds memory. Redis errors degrade to a miss.

Values are stored as the bytes a response carries, so a hit is one Redis round trip and a write
of those bytes: no parsing, no per-item serialisation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.encoding import dumps, loads
from common.metrics import CACHE_HITS, CACHE_MISSES
from common.redis import ScriptPipe


class ReadCache:
    """Cache of JSON-serialisable values for one namespace (e.g. ``resources``)."""

    def __init__(
        self, redis: Redis, *, prefix: str, namespace: str, service: str, ttl_seconds: int = 60
    ) -> None:
        self._redis = redis
        self._base = f"{prefix}cache:{namespace}"
        self._generation_key = f"{self._base}:generation"
        self._namespace = namespace
        self._service = service
        self._ttl = ttl_seconds
        # Generation and value in one round trip: this is the hot path of every cached read, so
        # it runs on a pipelined connection of its own rather than through redis-py's pool.
        # The value's key is built in the script from ARGV, so this needs a single Redis node
        # (or a hash tag in the prefix on Redis Cluster).
        self._lookup = ScriptPipe(
            redis,
            "local g = redis.call('GET', KEYS[1]) or '0' "
            "return {g, redis.call('GET', ARGV[1] .. ':' .. g .. ':' .. ARGV[2])}",
        )

    @staticmethod
    def key_for(*parts: Any) -> str:
        """A short stable key for a query (its parameters hashed)."""
        return hashlib.blake2b(dumps(parts, sort_keys=True), digest_size=16).hexdigest()

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        """The cached JSON value for ``key``, or ``load()``'s result, stored for next time."""

        async def load_bytes() -> bytes:
            return dumps(await load())

        return loads(await self.get_or_load_bytes(key, load_bytes))

    async def aclose(self) -> None:
        """Close the lookup connection; the Redis client itself belongs to the caller."""
        await self._lookup.aclose()

    async def invalidate(self) -> None:
        """Call after a write has committed; a failure here is logged and must not fail the write.

        If Redis is unreachable the old generation's entries still expire within the TTL.
        """
        try:
            await self._redis.incr(self._generation_key)
        except RedisError as exc:
            logger.error("cache invalidation failed", error=type(exc).__name__)

    async def get_or_load_bytes(self, key: str, load: Callable[[], Awaitable[bytes]]) -> bytes:
        """Like :meth:`get_or_load` for an already-rendered body: no JSON work on a hit."""
        try:
            generation, cached = await self._lookup([self._generation_key], [self._base, key])
        except (RedisError, OSError) as exc:
            logger.warning("cache unavailable", error=type(exc).__name__)
            CACHE_MISSES.labels(self._service, self._namespace).inc()
            return await load()
        if cached is not None:
            CACHE_HITS.labels(self._service, self._namespace).inc()
            return bytes(cached)
        CACHE_MISSES.labels(self._service, self._namespace).inc()
        value = await load()
        try:
            await self._redis.set(f"{self._base}:{int(generation)}:{key}", value, ex=self._ttl)
        except RedisError as exc:
            logger.warning("cache store failed", error=type(exc).__name__)
        return value
