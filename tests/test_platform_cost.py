"""The platform's own cost across processes: the resources service's requests reach the costs
service's ledger and the request-rate history that scaling advice reads; every service serves its
memory report."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from common.costtracker import RATE_KEY
from common.redis import create_redis
from common.testing import (
    TEST_REDIS_URL,
    ServiceProcess,
    delete_redis_keys,
    free_port,
    scratch_database,
    scratch_redis_prefix,
)
from gateway.performance import ScalingSettings, advise, rate_history

ADMIN = {"X-CloudOps-Principal": "root", "X-CloudOps-Permissions": "admin,read,write"}


def get(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read())["data"]


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[dict[str, ServiceProcess], str]]:
    prefix = scratch_redis_prefix()
    with scratch_database() as database:
        started: dict[str, ServiceProcess] = {}
        try:
            for name in ("resources", "costs"):
                port = free_port()
                started[name] = ServiceProcess(
                    name,
                    {
                        f"CLOUDOPS_{name.upper()}_PORT": str(port),
                        "CLOUDOPS_DATABASE_URL": database,
                        "CLOUDOPS_REDIS_PREFIX": prefix,
                        "CLOUDOPS_PLATFORM_FLUSH_SECONDS": "1",
                        "CLOUDOPS_LOG_LEVEL": "WARNING",
                    },
                    port,
                )
                started[name].start(timeout=60)
            yield started, prefix
        finally:
            for process in started.values():
                process.close()
            asyncio.run(delete_redis_keys(f"{prefix}*"))


def test_another_services_requests_reach_the_costs_ledger(
    services: tuple[dict[str, ServiceProcess], str],
) -> None:
    processes, _ = services
    for _ in range(5):
        get(f"{processes['resources'].url}/api/resources", {"X-CloudOps-Principal": "alice"})
    deadline = time.monotonic() + 20
    while True:
        # The five may reach the ledger in two flushes: wait for the route's own count (the
        # service's total also counts the probes that saw the process start).
        report = get(f"{processes['costs'].url}/api/costs/platform", ADMIN)
        routes = {(r["service"], r["route"]): r for r in report["per_route"]}
        listed = routes.get(("resources", "/api/resources"), {}).get("requests", 0)
        if listed >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    by_service = {s["service"]: s for s in report["per_service"]}
    assert by_service["resources"]["requests"] >= 5
    assert routes[("resources", "/api/resources")]["requests"] == 5
    alice = next(u for u in report["per_user"] if u["principal"] == "alice")
    assert alice["requests"] == 5
    assert float(alice["cost"]) > 0


def test_the_request_rate_history_feeds_scaling_advice(
    services: tuple[dict[str, ServiceProcess], str],
) -> None:
    processes, prefix = services
    for _ in range(3):
        get(f"{processes['resources'].url}/api/resources")
    time.sleep(2.5)  # a flush

    async def history() -> dict[str, dict[int, int]]:
        redis = create_redis(TEST_REDIS_URL)
        try:
            keys = [k async for k in redis.scan_iter(f"{prefix}{RATE_KEY}:resources:*")]
            assert keys, "the resources service keeps per-minute counts"
            return await rate_history(redis, prefix, datetime.now(UTC), 1)
        finally:
            await redis.aclose()

    counted = asyncio.run(history())
    assert sum(counted["resources"].values()) >= 3
    advice = advise(counted, datetime.now(UTC), 2, ScalingSettings())
    resources = next(s for s in advice["services"] if s["service"] == "resources")
    assert resources["history_hours"] >= 1
    assert resources["recommended_replicas"] == 2, "a few requests: the minimum"


def test_every_service_serves_its_memory_report(
    services: tuple[dict[str, ServiceProcess], str],
) -> None:
    processes, _ = services
    for name, process in processes.items():
        report = get(f"{process.url}/health/memory")
        assert report["service"] == name
        assert report["rss_bytes"] > 0
        assert report["leak_suspected"] is False
