"""Fixtures: the real resources app against the test database, Redis prefix and exchange."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from common.testing import make_settings, truncate_schema
from resources.app import create_app
from resources.settings import ResourcesSettings

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
def settings(pg_url: str, redis_prefix: str, events_exchange: str) -> ResourcesSettings:
    return make_settings(
        ResourcesSettings,
        database_url=pg_url,
        redis_prefix=redis_prefix,
        events_exchange=events_exchange,
    )


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory,
    settings: ResourcesSettings,
    pg_url: str,
) -> Client:
    await truncate_schema(pg_url, "resources")
    return await aiohttp_client(create_app(settings))


def resource_body(n: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": f"arn:aws:ec2:eu-west-1:123456789012:instance/i-{n:08x}",
        "name": f"web-{n}",
        "provider": "aws",
        "type": "compute",
        "region": "eu-west-1",
        "account": "123456789012",
        "status": "running",
        "hourly_cost": "0.0416",
        "tags": {"env": "prod", "team": "web"},
        "team": "web",
    }
    body.update(overrides)
    return body
