"""Redis (``redis.asyncio``): one client per process, opened and closed in ``cleanup_ctx``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from common.web import READINESS, SETTINGS

REDIS = web.AppKey("redis", Redis)


def create_redis(url: str) -> Redis:
    # Short timeouts: a slow Redis must degrade a request, not hang it.
    return Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    client = create_redis(app[SETTINGS].redis_url)
    app[REDIS] = client

    async def check() -> None:
        await client.ping()

    app[READINESS].add("redis", check)
    try:
        yield
    finally:
        await client.aclose()
