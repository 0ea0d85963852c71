"""A generation-keyed read cache: rendered bodies in Redis, and the hottest ones in the process.

Every cached value's key embeds the namespace's current *generation*. A write commits to
PostgreSQL first and then bumps the generation, so a read after the write can never see an older
value: a reader that raced the write stores its stale copy under the old generation, which no one
asks for again. Entries also expire, which bounds memory. Redis errors degrade to a miss.

Values are stored as the bytes a response carries: no parsing, no per-item serialisation.

Two tiers. Redis holds every worker's entries. Each worker also keeps the entries it served
last (bounded in bytes), tagged with their generation, and on each read asks Redis only for the
current generation. Concurrent reads share that question: a read joins the next question not yet
sent, never one already on its way, so the answer it gets was read after it began, and a write
that finished before the read began is always seen. Under load one small round trip then serves
every read of an event-loop turn, and a hit costs a dictionary lookup.

A third tier lives in nginx (``nginx/cloudops_edge.lua``): a body served from this cache says
which generation it belongs to (:attr:`Cached.tag`), and the edge keeps it and serves it again
only while a generation question it asks after the request began gets the same answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from aiohttp import web
from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.encoding import dumps, loads
from common.metrics import CACHE_HITS, CACHE_MISSES
from common.redis import ScriptPipe
from common.web import route_template

#: Bytes of rendered bodies one cache keeps in the process (per worker).
LOCAL_BYTES = 16 * 1024 * 1024


class Cached(NamedTuple):
    """A rendered body and the generation it belongs to: ``generation_key``'s value in Redis must
    still be ``generation`` for the body to be current, and it may be kept at most ``seconds``
    more."""

    body: bytes
    generation_key: str = ""
    generation: int = 0
    seconds: float = 0.0

    @property
    def tag(self) -> str | None:
        """``"<generation key> <generation> <seconds>"``, for the edge to keep the body by. None
        when no generation was read (Redis unreachable) or none exists yet (a namespace never
        written: a Redis the reader does not share, or one that lost its keys, reads the same),
        so no one else may keep the body. Made only when asked for, off the hot path."""
        if self.generation <= 0 or self.seconds < 1:
            return None
        return f"{self.generation_key} {self.generation} {int(self.seconds)}"


class ReadCache:
    """Cache of JSON-serialisable values for one namespace (e.g. ``resources``)."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        namespace: str,
        service: str,
        ttl_seconds: int = 60,
        local_bytes: int = LOCAL_BYTES,
    ) -> None:
        self._redis = redis
        self._base = f"{prefix}cache:{namespace}"
        self._generation_key = f"{self._base}:generation"
        self._ttl = ttl_seconds
        self._hits = CACHE_HITS.labels(service, namespace)
        self._misses = CACHE_MISSES.labels(service, namespace)
        # Generation, value and the value's remaining life in one round trip, on a pipelined
        # connection of its own rather than through redis-py's pool. The value's key is built in
        # the script from ARGV, so this needs a single Redis node (or a hash tag in the prefix on
        # Redis Cluster).
        self._lookup = ScriptPipe(
            redis,
            "local g = redis.call('GET', KEYS[1]) or '0' "
            "local k = ARGV[1] .. ':' .. g .. ':' .. ARGV[2] "
            "return {g, redis.call('GET', k), redis.call('PTTL', k)}",
        )
        self._generation = ScriptPipe(redis, "return redis.call('GET', KEYS[1]) or '0'")
        #: The reads waiting for the generation question that is not sent yet.
        self._joining: list[asyncio.Future[int]] | None = None
        # key -> (generation, expires at (monotonic), body), least recently used first
        self._local: OrderedDict[str, tuple[int, float, bytes]] = OrderedDict()
        self._local_size = 0
        self._local_budget = local_bytes

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
        """Close the lookup connections; the Redis client itself belongs to the caller."""
        await self._lookup.aclose()
        await self._generation.aclose()

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
        return (await self.get_or_load_cached(key, load)).body

    async def get_or_load_cached(self, key: str, load: Callable[[], Awaitable[bytes]]) -> Cached:
        """Like :meth:`get_or_load_bytes`, with the generation the body belongs to."""
        try:
            generation = await self._current_generation()
        except (RedisError, OSError) as exc:
            return await self._unavailable(exc, load)
        entry = self._local.get(key)
        if entry is not None and entry[0] == generation:
            left = entry[1] - time.monotonic()
            if left > 0:
                self._local.move_to_end(key)
                self._hits.inc()
                return Cached(entry[2], self._generation_key, generation, left)
        try:
            raw_generation, cached, ttl_ms = await self._lookup(
                [self._generation_key], [self._base, key]
            )
        except (RedisError, OSError) as exc:
            return await self._unavailable(exc, load)
        generation = int(raw_generation)
        if cached is not None:
            self._hits.inc()
            body = bytes(cached)
            self._keep(key, generation, body, ttl_ms / 1000)
            return Cached(body, self._generation_key, generation, ttl_ms / 1000)
        self._misses.inc()
        body = await load()
        try:
            await self._redis.set(f"{self._base}:{generation}:{key}", body, ex=self._ttl)
        except RedisError as exc:
            logger.warning("cache store failed", error=type(exc).__name__)
            return Cached(body)
        self._keep(key, generation, body, self._ttl)
        return Cached(body, self._generation_key, generation, self._ttl)

    async def _unavailable(self, exc: Exception, load: Callable[[], Awaitable[bytes]]) -> Cached:
        logger.warning("cache unavailable", error=type(exc).__name__)
        self._misses.inc()
        return Cached(await load())

    async def _current_generation(self) -> int:
        """The namespace's generation, read after this call began."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int] = loop.create_future()
        if self._joining is None:
            self._joining = []
            loop.call_soon(self._ask_generation)
        self._joining.append(answer)
        return await answer

    def _ask_generation(self) -> None:
        # One loop turn after the first caller: every caller until now joins this question, and
        # every later one asks anew, since this answer may be read before it began. Each caller
        # waits on a future of its own, so one that gives up cancels nobody else's answer.
        joining, self._joining = self._joining or [], None
        question = asyncio.ensure_future(self._generation([self._generation_key], []))

        def answer(done: asyncio.Future[Any]) -> None:
            error = None if done.cancelled() else done.exception()
            for waiter in joining:
                if waiter.done():
                    continue
                if done.cancelled():
                    waiter.cancel()
                elif error is not None:
                    waiter.set_exception(error)
                else:
                    waiter.set_result(int(done.result()))

        question.add_done_callback(answer)

    def _keep(self, key: str, generation: int, body: bytes, seconds: float) -> None:
        """Keep ``body`` in the process for at most ``seconds`` (its remaining life in Redis)."""
        if len(body) > self._local_budget // 8 or seconds <= 0:
            return
        old = self._local.pop(key, None)
        if old is not None:
            self._local_size -= len(old[2])
        self._local[key] = (generation, time.monotonic() + seconds, body)
        self._local_size += len(body)
        while self._local_size > self._local_budget:
            _, (_, _, dropped) = self._local.popitem(last=False)
            self._local_size -= len(dropped)


#: nginx's edge asks for the tag of a body it may keep (it sets this header on what it sends a
#: service, never letting a client's through) and takes the tag off the answer.
EDGE_BODY_HEADER = "X-CloudOps-Edge-Body"
BODY_TAG_HEADER = "X-CloudOps-Body-Tag"


def cached_json_response(request: web.Request, cached: Cached) -> web.Response:
    """A body from a :class:`~common.cache.ReadCache`, with its tag when the edge asks for it."""
    response = web.Response(body=cached.body, content_type="application/json")
    if EDGE_BODY_HEADER in request.headers and (tag := cached.tag) is not None:
        # The route template names the read in the usage meter when nginx answers it again.
        response.headers[BODY_TAG_HEADER] = f"{tag} {route_template(request)}"
    return response
