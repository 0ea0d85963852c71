"""First deploy: an event published before its consumer ever ran is kept for it, not dropped.

``make up`` declares every consumer's queues and bindings at migrate time (each service's
``declare_queues``, from the consumers it runs), so the order in which services first start does
not decide whether an event reaches them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import asyncpg
import pytest

from alerts.events import rule_subscription
from alerts.rules import load_rules
from alerts.settings import AlertsSettings
from common.messaging import queue_topology
from common.testing import (
    TEST_AMQP_URL,
    ServiceProcess,
    delete_queues,
    free_port,
    scratch_database,
    scratch_exchange,
    scratch_redis_prefix,
)
from costs.events import CONSUMERS

from .conftest import load_platformctl, request


@pytest.fixture
def exchange() -> Iterator[str]:
    """A scratch events exchange; the queues declared under it are deleted afterwards."""
    name = scratch_exchange()
    yield name
    queues = [
        *queue_topology(name, "costs", CONSUMERS[0]).names,
        *queue_topology(
            name, "alerts", rule_subscription(load_rules(AlertsSettings().rules_file))
        ).names,
    ]
    asyncio.run(delete_queues(queues))


async def _fetchval(database_url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def _eventually(database_url: str, sql: str, *args: object, seconds: float = 30) -> object:
    deadline = time.monotonic() + seconds
    while True:
        value = asyncio.run(_fetchval(database_url, sql, *args))
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_an_event_published_before_its_consumers_first_ran_reaches_them(
    exchange: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deploy time declares the queues; resources publishes while costs and alerts have never
    run; once they start, each handles the event."""
    env = {
        "CLOUDOPS_EVENTS_EXCHANGE": exchange,
        "CLOUDOPS_AMQP_URL": TEST_AMQP_URL,
        "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
        "CLOUDOPS_REDIS_PREFIX": scratch_redis_prefix(),
        "CLOUDOPS_LOG_LEVEL": "WARNING",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    platformctl = load_platformctl()
    consumers = [s for s in platformctl.available_services() if s.name in ("costs", "alerts")]
    asyncio.run(platformctl.declare_queues(consumers))

    with scratch_database() as database_url:
        env["CLOUDOPS_DATABASE_URL"] = database_url
        port = free_port()
        resources = ServiceProcess("resources", {**env, "CLOUDOPS_RESOURCES_PORT": str(port)}, port)
        resources.start(timeout=60)
        try:
            body = {
                "external_id": "first-deploy-vm",
                "name": "first-deploy-vm",
                "provider": "aws",
                "type": "compute",
                "region": "eu-west-1",
                "account": "1",
                "status": "running",
            }
            identity = {"X-CloudOps-Principal": "test", "X-CloudOps-Permissions": "admin"}
            status, _, created = request(
                f"{resources.url}/api/resources",
                method="POST",
                body=json.dumps(body).encode(),
                headers=identity,
            )
            assert status == 201, created
            resource_id = json.loads(created)["data"]["id"]
            status, _, _ = request(
                f"{resources.url}/api/resources/{resource_id}",
                method="PATCH",
                body=b'{"status": "error"}',
                headers=identity,
            )
            assert status == 200
            # Every event has left the outbox (the broker confirmed it) before any consumer runs.
            assert _eventually(
                database_url,
                "SELECT count(*) = 0 FROM resources.outbox WHERE sent_at IS NULL",
            )
        finally:
            resources.close()

        started = []
        try:
            for name in ("costs", "alerts"):
                port = free_port()
                service = ServiceProcess(
                    name, {**env, f"CLOUDOPS_{name.upper()}_PORT": str(port)}, port
                )
                service.start(timeout=60)
                started.append(service)
            status_in_costs = _eventually(
                database_url, "SELECT status FROM costs.inventory WHERE id = $1::uuid", resource_id
            )
            alert = _eventually(
                database_url,
                "SELECT status FROM alerts.alerts WHERE labels->>'resource_id' = $1",
                resource_id,
            )
        finally:
            for service in started:
                service.close()
    assert status_in_costs == "error"
    assert alert == "firing"
