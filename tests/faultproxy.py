"""Kit for the fault tests: the services as their own processes, each of their PostgreSQL, Redis
and RabbitMQ connections running through a loopback proxy the test can cut, slow down and restore,
and readers of what the services did (their tables and metrics).

The shared servers keep running for everyone else: "PostgreSQL is down" means the proxy in front
of it refuses and drops connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from common.testing import (
    ProxyThread,
    ServiceProcess,
    free_port,
    scratch_database,
    scratch_exchange,
    scratch_redis_prefix,
)

from .conftest import ADMIN_KEY

PRINCIPAL = {"X-CloudOps-Principal": "fault-test"}


@dataclass
class Stack:
    """Services behind proxies, and the direct way in for the test's own checks."""

    database_url: str
    exchange: str
    postgres: ProxyThread
    redis: ProxyThread
    amqp: ProxyThread
    services: dict[str, ServiceProcess] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.services[service].url

    async def fetchval(self, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.database_url)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


def _service_env(stack: Stack, name: str, port: int, extra: Mapping[str, str]) -> dict[str, str]:
    database = urlsplit(stack.database_url).path.lstrip("/")
    prefix = f"CLOUDOPS_{name.upper()}_"
    return {
        "CLOUDOPS_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{stack.postgres.port}/{database}",
        "CLOUDOPS_REDIS_URL": f"redis://127.0.0.1:{stack.redis.port}/0",
        # Robust connections try again every half second instead of every five.
        "CLOUDOPS_AMQP_URL": (
            f"amqp://guest:guest@127.0.0.1:{stack.amqp.port}/?reconnect_interval=0.5"
        ),
        "CLOUDOPS_EVENTS_EXCHANGE": stack.exchange,
        "CLOUDOPS_LOG_LEVEL": "WARNING",
        f"{prefix}PORT": str(port),
        f"{prefix}OUTBOX_POLL_SECONDS": "0.2",
        **extra,
    }


@contextmanager
def service_stack(
    names: tuple[str, ...] = ("resources", "costs", "alerts"),
    *,
    gateway: bool = False,
    env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """``names`` started (in order) on one scratch database, one exchange and one Redis prefix,
    each reaching the servers through the stack's three proxies; with ``gateway``, a gateway in
    front of them. Every process is stopped by its PID afterwards."""
    with ExitStack() as stack_of:
        database_url = stack_of.enter_context(scratch_database())
        stack = Stack(
            database_url,
            scratch_exchange(),
            stack_of.enter_context(ProxyThread("127.0.0.1", 5432)),
            stack_of.enter_context(ProxyThread("127.0.0.1", 6379)),
            stack_of.enter_context(ProxyThread("127.0.0.1", 5672)),
        )
        shared = {"CLOUDOPS_REDIS_PREFIX": scratch_redis_prefix(), **(env or {})}
        for name in names:
            port = free_port()
            service = ServiceProcess(name, _service_env(stack, name, port, shared), port)
            stack_of.callback(service.close)
            service.start(timeout=60)
            stack.services[name] = service
        if gateway:
            port = free_port()
            upstreams = {f"CLOUDOPS_GATEWAY_{n.upper()}_URL": stack.url(n) for n in names}
            service = ServiceProcess(
                "gateway",
                _service_env(
                    stack,
                    "gateway",
                    port,
                    {**shared, **upstreams, "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY},
                ),
                port,
            )
            stack_of.callback(service.close)
            service.start(timeout=60)
            stack.services["gateway"] = service
        yield stack


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, timeout: float, what: str, every: float = 0.2
) -> float:
    """Wait until ``condition()`` holds; returns the seconds it took, fails after ``timeout``."""
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(every)
    return time.monotonic() - started


async def ready(session: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with session.get(f"{base}/health/ready") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def wait_ready(stack: Stack, timeout: float = 30.0) -> None:
    async with aiohttp.ClientSession() as session:
        for name, service in stack.services.items():

            async def is_ready(base: str = service.url) -> bool:
                return await ready(session, base)

            await eventually(is_ready, timeout=timeout, what=f"{name} ready")


async def metric(base: str, name: str, labels: Mapping[str, str]) -> float:
    """The sum of the samples of ``name`` on ``base``/metrics whose labels include ``labels``."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def consumed(base: str, consumer: str, outcome: str) -> Awaitable[float]:
    return metric(base, "events_consumed_total", {"consumer": consumer, "outcome": outcome})


def resource(external_id: str, **fields: Any) -> dict[str, Any]:
    """A resource as a client sends it in a bulk import."""
    return {
        "external_id": external_id,
        "name": f"fault {external_id}",
        "provider": "aws",
        "type": "compute",
        "region": "eu-west-1",
        "account": "fault-test",
        "status": "running",
        "hourly_cost": "0.10",
        "team": "faults",
        "cpu_utilization": 10,
        "memory_utilization": 10,
        **fields,
    }
