"""API key use cases: verify a presented key (cached briefly), create, list, revoke, bootstrap."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import asyncpg
from aiohttp import web
from loguru import logger

from common.db import DB_POOL
from common.errors import NotFound, ValidationFailed
from gateway import storage
from gateway.domain import ApiKey, KeyRequest, hash_key, new_key, utcnow
from gateway.principal import Permission, Principal
from gateway.settings import GATEWAY_SETTINGS

BOOTSTRAP_KEY_ID = "key_bootstrap"
MAX_CACHED_KEYS = 10_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BriefCache(Generic[K, V]):
    """Answers remembered for ``seconds``, at most ``MAX_CACHED_KEYS`` of them (then forgotten
    all at once): what keeps PostgreSQL and Redis off the hot path of every credential check."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._answers: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> tuple[V] | None:
        """``(answer,)`` while it is fresh, else None."""
        found = self._answers.get(key)
        if found is None or found[0] <= time.monotonic():
            return None
        return (found[1],)

    def put(self, key: K, value: V) -> None:
        if len(self._answers) >= MAX_CACHED_KEYS:
            self._answers.clear()
        self._answers[key] = (time.monotonic() + self.seconds, value)

    def forget(self, key: K) -> None:
        self._answers.pop(key, None)


class KeyRing:
    """Looks keys up by hash; remembers answers (hits and misses) for ``cache_seconds``.

    The cache keeps PostgreSQL off the hot path; a revocation is seen at once by the process
    that made it and within ``cache_seconds`` by the others. ``lookups`` counts the queries.
    """

    def __init__(self, pool: asyncpg.Pool, cache_seconds: float) -> None:
        self._pool = pool
        self._cache: BriefCache[bytes, ApiKey | None] = BriefCache(cache_seconds)
        self._usable_ids: BriefCache[str, bool] = BriefCache(cache_seconds)
        self.lookups = 0

    async def verify(self, presented: str) -> ApiKey | None:
        """The usable key matching ``presented``, or None (unknown, revoked or expired)."""
        return (await self.check(presented))[0]

    async def check(
        self, presented: str, before_lookup: Callable[[], Awaitable[None]] | None = None
    ) -> tuple[ApiKey | None, bool]:
        """As :meth:`verify`, and whether the database was asked (the answer was not cached).

        ``before_lookup`` runs when the answer is not cached, before the database is asked: it
        may refuse (raise) instead.
        """
        digest = hash_key(presented)
        cached = self._cache.get(digest)
        looked_up = cached is None
        if cached is not None:
            key = cached[0]
        else:
            if before_lookup is not None:
                await before_lookup()
            key = await self._lookup(digest)
        # The lookup is by hash; the final comparison is constant time all the same.
        if key is None or not hmac.compare_digest(key.key_hash, digest):
            return None, looked_up
        return (key if key.usable(utcnow()) else None), looked_up

    async def _lookup(self, digest: bytes) -> ApiKey | None:
        self.lookups += 1
        async with self._pool.acquire() as conn:
            key = await storage.key_by_hash(conn, digest)
        self._cache.put(digest, key)
        return key

    async def usable(self, key_id: str) -> bool:
        """Whether the key ``key_id`` exists and is neither revoked nor expired (cached)."""
        cached = self._usable_ids.get(key_id)
        if cached is not None:
            return cached[0]
        self.lookups += 1
        async with self._pool.acquire() as conn:
            key = await storage.key_by_id(conn, key_id)
        usable = key is not None and key.usable(utcnow())
        self._usable_ids.put(key_id, usable)
        return usable

    async def create(self, request: KeyRequest) -> tuple[ApiKey, str]:
        try:
            request.check_expiry(utcnow())
        except ValueError as exc:
            raise ValidationFailed(
                "The key request has invalid values.",
                errors=[{"field": "expires_at", "message": str(exc)}],
            ) from None
        key_id, secret = new_key()
        key = ApiKey(
            id=key_id,
            name=request.name,
            owner=request.owner,
            key_hash=hash_key(secret),
            permissions=frozenset(request.permissions),
            created_at=utcnow(),
            expires_at=request.expires_at,
            revoked_at=None,
            rate_limit=request.rate_limit,
            rate_window_seconds=request.rate_window_seconds,
        )
        async with self._pool.acquire() as conn:
            stored = await storage.insert_key(conn, key)
        assert stored is not None
        return stored, secret

    async def list(self, limit: int, offset: int) -> tuple[list[ApiKey], int]:
        async with self._pool.acquire() as conn:
            return await storage.list_keys(conn, limit, offset)

    async def revoke(self, key_id: str) -> ApiKey:
        async with self._pool.acquire() as conn:
            key = await storage.revoke_key(conn, key_id, utcnow())
        if key is None:
            raise NotFound(f"No API key {key_id!r}.")
        self._cache.forget(key.key_hash)
        self._usable_ids.forget(key.id)
        return key

    async def bootstrap(self, secret: str) -> None:
        """Store the operator's initial admin key (hashed); a no-op when it is already there."""
        key = ApiKey(
            id=BOOTSTRAP_KEY_ID,
            name="bootstrap admin",
            owner="operator",
            key_hash=hash_key(secret),
            permissions=frozenset(Permission),
            created_at=utcnow(),
            expires_at=None,
            revoked_at=None,
        )
        async with self._pool.acquire() as conn, conn.transaction():
            # A changed bootstrap key replaces the old one rather than adding a second.
            await conn.execute(
                "DELETE FROM api_keys WHERE id = $1 AND key_hash <> $2", key.id, key.key_hash
            )
            stored = await storage.insert_key(conn, key, if_absent=True)
        if stored is not None:
            logger.info("bootstrap admin key stored", key_id=key.id)


def key_principal(key: ApiKey) -> Principal:
    return Principal(
        kind="key",
        name=key.id,
        permissions=key.permissions,
        rate_limit=key.rate_limit,
        rate_window_seconds=key.rate_window_seconds,
    )


KEY_RING = web.AppKey("key_ring", KeyRing)


async def key_ring_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[GATEWAY_SETTINGS]
    ring = KeyRing(app[DB_POOL], settings.key_cache_seconds)
    if settings.bootstrap_admin_key is not None:
        await ring.bootstrap(settings.bootstrap_admin_key.get_secret_value())
    else:
        logger.warning("CLOUDOPS_BOOTSTRAP_ADMIN_KEY is not set: no bootstrap admin key")
    app[KEY_RING] = ring
    yield
