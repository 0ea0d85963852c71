"""Pytest plugin: isolated use of the real PostgreSQL, Redis and RabbitMQ on loopback.

Each test session gets its own database; each test its own Redis key prefix and events exchange
(queues declared under it expire once unused). Everything created is removed afterwards, so the
shared servers are left as they were found.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import asyncpg
import orjson
import pytest
from loguru import logger
from redis.asyncio import Redis

from common.config import ServiceSettings
from common.logging import setup_logging

S = TypeVar("S", bound=ServiceSettings)

ADMIN_DATABASE_URL = os.environ.get(
    "CLOUDOPS_TEST_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TEST_REDIS_URL = os.environ.get("CLOUDOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_AMQP_URL = os.environ.get("CLOUDOPS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


#: Every exchange and Redis prefix a test run uses carries this token, so the run can remove
#: exactly what it made, and nothing of another run sharing the same servers.
RUN_TOKEN = uuid.uuid4().hex[:8]
_EXCHANGES: set[str] = set()


def scratch_exchange() -> str:
    """An events exchange name of this run's own, deleted (with its ``.dlx``) when the run ends."""
    name = f"cloudops.test.{RUN_TOKEN}.{uuid.uuid4().hex[:8]}"
    _EXCHANGES.add(name)
    return name


def scratch_redis_prefix() -> str:
    """A Redis key prefix of this run's own; its keys are deleted when the run ends."""
    return f"cloudopstest:{RUN_TOKEN}:{uuid.uuid4().hex[:8]}:"


@contextlib.asynccontextmanager
async def _broker_channel() -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    """A channel on the test broker, its connection closed afterwards."""
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def delete_exchanges(names: Iterable[str]) -> None:
    """Delete each events exchange and its dead-letter exchange (``<name>.dlx``)."""
    async with _broker_channel() as channel:
        for name in names:
            for exchange in (name, f"{name}.dlx"):
                await channel.exchange_delete(exchange)


async def delete_queues(names: Iterable[str]) -> None:
    async with _broker_channel() as channel:
        for name in names:
            await channel.queue_delete(name)


async def delete_redis_keys(pattern: str) -> None:
    client = Redis.from_url(TEST_REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=pattern, count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


@pytest.fixture(scope="session", autouse=True)
def _leave_servers_as_found() -> Iterator[None]:
    """Remove, once every app and process of the run has stopped, what the run left on the
    shared broker and Redis: a service still shutting down when its test's own teardown ran (a
    relay's self-healing channel, say) can declare an exchange again after it was deleted.
    Queues under these exchanges expire by themselves (``x-expires``)."""
    yield
    asyncio.run(delete_exchanges(sorted(_EXCHANGES)))
    asyncio.run(delete_redis_keys(f"cloudopstest:{RUN_TOKEN}:*"))


def _database_url(name: str) -> str:
    base, _, _ = ADMIN_DATABASE_URL.rpartition("/")
    return f"{base}/{name}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DATABASE_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def scratch_database() -> Iterator[str]:
    """A database of its own (dropped afterwards), for a process that must not share one.

    Call it outside a running event loop (a sync or session fixture).
    """
    name = f"cloudops_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _database_url(name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database for this test session, dropped at the end.

    Long-lived service processes of a test module should use :func:`scratch_database` instead:
    a service's outbox relay holds its schema's lock for as long as it runs, so a process left
    on this database would publish every later test's events to its own exchange.
    """
    with scratch_database() as url:
        yield url


async def truncate_schema(url: str, schema: str) -> None:
    """Empty every table of ``schema`` except its migration ledger."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            """SELECT quote_ident(table_name) AS name FROM information_schema.tables
               WHERE table_schema = $1 AND table_type = 'BASE TABLE'
                 AND table_name <> 'schema_migrations'""",
            schema,
        )
        if tables:
            names = ", ".join(f'"{schema}".{t["name"]}' for t in tables)
            await conn.execute(f"TRUNCATE {names} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (and again at the end)."""
    prefix = scratch_redis_prefix()
    yield prefix
    await delete_redis_keys(f"{prefix}*")


@pytest.fixture
async def events_exchange() -> AsyncIterator[str]:
    """An events exchange of this test's own; deleted afterwards (and again at the end)."""
    name = scratch_exchange()
    yield name
    await delete_exchanges([name])


def make_settings(cls: type[S], **values: Any) -> S:
    """Settings for a test: real local servers, fast polling, expiring queues."""
    defaults: dict[str, Any] = {
        "environment": "test",
        "events_exchange": scratch_exchange(),
        "redis_prefix": scratch_redis_prefix(),
        "redis_url": TEST_REDIS_URL,
        "amqp_url": TEST_AMQP_URL,
        "outbox_poll_seconds": 0.2,
        "queue_expires_ms": 60_000,
        "db_pool_min": 1,
        "db_pool_max": 5,
    }
    defaults.update(values)
    return cls(**defaults)


class TcpProxy:
    """A loopback TCP proxy that a test can cut, slow down and restore, to simulate a server
    going away or a slow network.

    The real server keeps running for everyone else; only this proxy's clients lose it.
    """

    def __init__(self, target_host: str, target_port: int, *, delay: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        #: Seconds each chunk waits before it is passed on, either way (a slow network); may be
        #: changed while connections are open.
        self.delay = delay
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()


class ProxyThread:
    """A :class:`TcpProxy` on an event loop of its own thread, driven by plain calls.

    For tests whose clients are other processes (services started with :class:`ServiceProcess`)
    and whose own calls block: the proxy keeps forwarding while the test waits. Use it as a
    context manager; the port stays the same across ``cut`` and ``restore``.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.proxy = TcpProxy(target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.proxy.port

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def cut(self) -> None:
        """Drop every open connection and refuse new ones, as a server that went away."""
        self._call(self.proxy.cut())

    def restore(self) -> None:
        self._call(self.proxy.restore())

    def set_delay(self, seconds: float) -> None:
        """Hold every chunk ``seconds`` before passing it on (0 passes at once again)."""
        self._loop.call_soon_threadsafe(setattr, self.proxy, "delay", seconds)

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        self._call(self.proxy.start())
        return self

    def __exit__(self, *_: object) -> None:
        self._call(self.proxy.cut())

        async def finish() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._call(finish())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture
async def amqp_proxy() -> AsyncIterator[TcpProxy]:
    """A cuttable path to the real RabbitMQ; ``amqp_url_via(proxy)`` gives its URL."""
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    yield proxy
    await proxy.cut()


def amqp_url_via(proxy: TcpProxy) -> str:
    return f"amqp://guest:guest@127.0.0.1:{proxy.port}/"


class ServiceProcess:
    """A service started as its own OS process (``python -m <module>``), stopped by its PID."""

    def __init__(self, module: str, env: Mapping[str, str], port: int) -> None:
        self.module = module
        # Never the production exchange or key space, whatever a test forgot to set.
        self.env = {
            **os.environ,
            "CLOUDOPS_ENVIRONMENT": "test",
            "CLOUDOPS_EVENTS_EXCHANGE": scratch_exchange(),
            "CLOUDOPS_REDIS_PREFIX": scratch_redis_prefix(),
            "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
            **env,
        }
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: a chatty child must never block on a full pipe buffer.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - fixed interpreter and module name
            [sys.executable, "-m", self.module],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        import urllib.request

        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.output()
                self.close()
                raise RuntimeError(f"{self.module} exited early: {output[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health/live", timeout=1):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise TimeoutError(f"{self.module} did not become live in {timeout}s")

    def output(self) -> str:
        """Everything the process wrote so far (its JSON log lines included)."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def close(self) -> None:
        """Stop the process and release its log file."""
        self.stop()
        self.log.close()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_port_block(size: int) -> int:
    """A base port whose next ``size`` ports are all free on loopback (for a whole stack)."""
    import random
    import socket

    for _ in range(50):
        base = random.randrange(20000, 30000)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


class EventTap:
    """Receives every event published to a test exchange, through a real exclusive queue."""

    def __init__(self, exchange: str, routing_key: str = "#") -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._connection: aio_pika.abc.AbstractConnection | None = None

    async def start(self) -> None:
        self._connection = await aio_pika.connect(TEST_AMQP_URL)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=self.routing_key)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                event = orjson.loads(message.body)
                event["_headers"] = dict(message.headers)
                await self.received.put(event)

        await queue.consume(on_message)

    async def take(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The next ``count`` events, in arrival order; fails the test if they do not come."""
        events = []
        async with asyncio.timeout(timeout):
            for _ in range(count):
                events.append(await self.received.get())
        return events

    async def quiet(self, seconds: float = 0.5) -> list[dict[str, Any]]:
        """Whatever else arrives within ``seconds`` (to assert that nothing more came)."""
        await asyncio.sleep(seconds)
        events = []
        while not self.received.empty():
            events.append(self.received.get_nowait())
        return events

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


@pytest.fixture
async def event_tap(events_exchange: str) -> AsyncIterator[EventTap]:
    tap = EventTap(events_exchange)
    await tap.start()
    yield tap
    await tap.close()


@contextmanager
def captured_logs(service: str, level: str = "DEBUG") -> Iterator[list[str]]:
    """The JSON lines written through :func:`setup_logging` inside the block.

    Loguru and the stdlib root logger are restored afterwards, so other tests keep their output.
    """
    lines: list[str] = []
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    access = logging.getLogger("aiohttp.access")
    saved_access_disabled = access.disabled
    setup_logging(service, level, sink=lambda message: lines.append(str(message)))
    try:
        yield lines
    finally:
        logger.remove()
        logger.configure(patcher=None, extra={})
        logger.add(sys.stderr)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        access.disabled = saved_access_disabled


class RssSampler:
    """VmRSS (MiB) of one process every ``interval`` seconds, from a thread of its own, while the
    ``with`` block runs: what tests and benchmarks read to bound a process's memory."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.before = self.rss_mb()
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def peak(self) -> float:
        return max([self.before, *self.samples])

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(self.rss_mb())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
