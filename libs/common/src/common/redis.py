"""Redis (``redis.asyncio``): one client per process, opened and closed in ``cleanup_ctx``,
and :class:`ScriptPipe` for a Lua script run on every request."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

import hiredis
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import ResponseError

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
    # Redis holds only what a process can do without for a while (read caches, rate-limit
    # windows with an in-process fallback, live feeds): without it the process serves, degraded.
    # Reporting not-ready would take every replica out of rotation at once, an outage.
    app[READINESS].relax("redis")
    try:
        yield
    finally:
        await client.aclose()


class ScriptPipe:
    """Runs one Lua script on a dedicated connection, pipelining concurrent calls.

    For a script on every request (the gateway's rate limit): redis-py takes a pooled connection,
    writes, waits for the reply and returns the connection for each call, and that bookkeeping
    cost more CPU than the script itself. Here the ``EVALSHA`` of every call made in one turn of
    the event loop leaves in one send on one connection, and a reader task hands out the replies
    in order (Redis answers in order), so concurrent calls share round trips and system calls and
    there is no lock or pool.

    Errors are ``ConnectionError``/``TimeoutError`` (both ``OSError``) for the transport and
    ``redis.exceptions.ResponseError`` for an error reply. A call not answered within ``timeout``
    drops the connection, so the replies of calls still in flight cannot be handed to the wrong
    caller; the next call connects again. One timer watches the oldest call (replies come in
    order, so it is the first to be late), rather than a timeout scope per call.
    """

    def __init__(self, client: Redis, script: str, *, timeout: float = 2.0) -> None:
        self.script = script.encode()
        self.sha = hashlib.sha1(self.script, usedforsecurity=False).hexdigest().encode()
        self.timeout = timeout
        self._kwargs = client.connection_pool.connection_kwargs
        self._writer: asyncio.StreamWriter | None = None
        # Calls waiting for their reply, oldest first, each with its deadline (loop time).
        self._pending: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        # Commands written in one turn of the event loop leave in one send.
        self._outgoing: list[bytes] = []
        self._reading: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()

    async def __call__(self, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        reply = await self._send(b"EVALSHA", self.sha, keys, args)
        if isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT"):
            reply = await self._send(b"EVAL", self.script, keys, args)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _send(
        self, command: bytes, script: bytes, keys: Sequence[str], args: Sequence[str | int]
    ) -> Any:
        if self._writer is None:
            async with asyncio.timeout(self.timeout):
                await self._connect()
        loop = asyncio.get_running_loop()
        reply = loop.create_future()
        deadline = loop.time() + self.timeout
        self._pending.append((reply, deadline))
        if self._watchdog is None:
            self._watchdog = loop.call_at(deadline, self._check_overdue)
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(_pack(command, script, len(keys), *keys, *args))
        return await reply

    def _check_overdue(self) -> None:
        self._watchdog = None
        if not self._pending:
            return
        deadline = self._pending[0][1]
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            self._drop(TimeoutError("redis reply timed out"))
        else:
            self._watchdog = loop.call_at(deadline, self._check_overdue)

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self._writer is not None and outgoing:
            self._writer.write(b"".join(outgoing))

    async def _connect(self) -> asyncio.StreamWriter:
        async with self._connecting:
            if self._writer is not None:
                return self._writer
            kw = self._kwargs
            reader, writer = await asyncio.open_connection(
                kw.get("host", "localhost"), kw.get("port", 6379), ssl=kw.get("ssl") or None
            )
            parser = hiredis.Reader(replyError=ResponseError)
            setup: list[bytes] = []
            if kw.get("password"):
                user = kw.get("username")
                setup.append(
                    _pack(b"AUTH", user, kw["password"]) if user else _pack(b"AUTH", kw["password"])
                )
            if kw.get("db"):
                setup.append(_pack(b"SELECT", kw["db"]))
            if setup:
                writer.write(b"".join(setup))
                for _ in setup:
                    reply = await _read_one(reader, parser)
                    if isinstance(reply, Exception):
                        writer.close()
                        raise ConnectionError(f"redis refused the connection: {reply}")
            self._writer = writer
            self._reading = asyncio.create_task(self._read(reader, parser, writer))
            return writer

    async def _read(
        self, reader: asyncio.StreamReader, parser: Any, writer: asyncio.StreamWriter
    ) -> None:
        error: Exception = ConnectionError("redis closed the connection")
        try:
            while data := await reader.read(65536):
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    future = self._pending.popleft()[0]
                    if not future.done():
                        future.set_result(reply)
        except OSError as exc:
            error = ConnectionError(f"redis connection lost: {exc}")
        finally:
            if self._writer is writer:
                self._drop(error)

    def _drop(self, error: Exception) -> None:
        """Forget the connection and fail every call still waiting on it."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if self._reading is not None and self._reading is not asyncio.current_task():
            self._reading.cancel()
        self._reading = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        pending, self._pending = self._pending, deque()
        self._outgoing = []
        for future, _ in pending:
            if not future.done():
                future.set_exception(error)

    async def aclose(self) -> None:
        reading = self._reading
        self._drop(ConnectionError("closed"))
        if reading is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reading


def _pack(*parts: bytes | str | int) -> bytes:
    """One command in RESP."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        value = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(value), value))
    return b"".join(out)


async def _read_one(reader: asyncio.StreamReader, parser: Any) -> Any:
    while (reply := parser.gets()) is False:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("redis closed the connection")
        parser.feed(data)
    return reply
