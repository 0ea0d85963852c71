"""The benchmark's baseline: a naive forwarder, one Redis INCR+EXPIRE pipeline and a shared
keep-alive ClientSession per request, nothing else (no auth, no headers, no breaker).

Usage: python bench/gateway_naive_forwarder.py PORT UPSTREAM_URL REDIS_PREFIX
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

SESSION = web.AppKey("session", aiohttp.ClientSession)
REDIS = web.AppKey("redis", Redis)


async def forward(request: web.Request) -> web.Response:
    key = f"{sys.argv[3]}naive:{request.headers.get('X-API-Key', request.remote)}"
    async with request.app[REDIS].pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, 900)
        await pipe.execute()
    async with request.app[SESSION].get(sys.argv[2] + request.path_qs) as upstream:
        body = await upstream.read()
        return web.Response(body=body, status=upstream.status, content_type=upstream.content_type)


async def clients(app: web.Application) -> AsyncIterator[None]:
    app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    app[REDIS] = Redis.from_url("redis://127.0.0.1:6379/0")
    yield
    await app[SESSION].close()
    await app[REDIS].aclose()


async def live(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    app = web.Application()
    app.cleanup_ctx.append(clients)
    app.router.add_get("/health/live", live)
    app.router.add_get("/{tail:.*}", forward)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
