"""The service as operators run it: ``python -m alerts`` with two workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from common.testing import ServiceProcess, free_port, truncate_schema

from .conftest import Publisher, status_changed, wait_consuming


@pytest.fixture
async def service(
    pg_url: str, redis_prefix: str, events_exchange: str, tmp_path: Path
) -> AsyncIterator[ServiceProcess]:
    await truncate_schema(pg_url, "alerts")
    port = free_port()
    process = ServiceProcess(
        "alerts",
        {
            "CLOUDOPS_ALERTS_PORT": str(port),
            "CLOUDOPS_ALERTS_WORKERS": "2",
            "CLOUDOPS_DATABASE_URL": pg_url,
            "CLOUDOPS_REDIS_PREFIX": redis_prefix,
            "CLOUDOPS_EVENTS_EXCHANGE": events_exchange,
            "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
            "CLOUDOPS_ALERTS_MAINTENANCE_INTERVAL_SECONDS": "0.5",
            "CLOUDOPS_ALERTS_RECEIVERS": orjson.dumps(
                [{"name": "ops", "url": "http://127.0.0.1:9/hook", "format": "slack"}]
            ).decode(),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        },
        port,
    )
    process.start()
    yield process
    process.close()


async def next_event(response: aiohttp.ClientResponse) -> dict[str, str]:
    frame: dict[str, str] = {}
    while True:
        line = (await response.content.readline()).decode().rstrip("\n")
        if not line and "data" in frame:
            return frame
        if line and not line.startswith(":"):
            key, _, value = line.partition(": ")
            frame[key] = value


async def test_every_worker_streams_an_alert_raised_from_an_event_within_two_seconds(
    service: ServiceProcess, publisher: Publisher, events_exchange: str
) -> None:
    await wait_consuming(events_exchange, timeout=20)
    async with aiohttp.ClientSession() as session:
        # Several connections: SO_REUSEPORT spreads them over both workers. Several viewers
        # too: one caller may hold only a few streams open.
        streams = [
            await session.get(
                f"{service.url}/api/alerts/stream", headers={"X-CloudOps-Principal": f"v{i}"}
            )
            for i in range(6)
        ]
        assert [s.status for s in streams] == [200] * 6
        started = time.monotonic()
        await publisher.publish(status_changed(1, "running", "error"))
        async with asyncio.timeout(2):
            frames = await asyncio.gather(*(next_event(s) for s in streams))
        assert time.monotonic() - started < 2
        assert {f["event"] for f in frames} == {"alert.raised"}
        assert len({f["id"] for f in frames}) == 1
        for stream in streams:
            stream.close()
        async with session.get(f"{service.url}/api/alerts?status=firing") as resp:
            assert (await resp.json())["meta"]["total"] == 1
        async with session.get(f"{service.url}/metrics") as resp:
            metrics = await resp.text()
        assert 'alerts_total{severity="critical"} 1.0' in metrics
