"""HEAD is answered on every GET route of the table, with GET's permission, and without a body."""

from __future__ import annotations

import re

import aiohttp
import pytest

from common.testing import ServiceProcess
from gateway.app import gateway_routes
from gateway.routes import upstream_routes

from .conftest import ADMIN, Client

# A concrete path for each template: path parameters filled in, ``{tail}`` with a real sub-path.
FILLERS = {"tail": "daily", "id": "00000000-0000-0000-0000-000000000000", "asset": "x.css"}
GET_TEMPLATES = sorted(
    {s.template for s in [*gateway_routes(), *upstream_routes()] if "GET" in s.methods}
)


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: FILLERS.get(m.group(1), "x"), template)


@pytest.mark.parametrize("template", GET_TEMPLATES)
async def test_every_get_route_answers_head(client: Client, template: str) -> None:
    path = concrete(template)
    get = await client.get(path, headers=ADMIN)
    head = await client.head(path, headers=ADMIN)
    assert head.status != 405, template
    assert head.status == get.status, template
    assert await head.read() == b""


async def test_head_needs_the_permission_of_get(client: Client) -> None:
    assert (await client.head("/api/resources")).status == 401
    assert (await client.head("/api/admin/keys")).status == 401
    assert (await client.head("/api/health")).status == 200


async def test_a_service_answers_head_on_its_get_routes(resources_service: ServiceProcess) -> None:
    identity = {"X-CloudOps-Principal": "tests", "X-CloudOps-Permissions": "read"}
    async with aiohttp.ClientSession() as session:
        for path in ("/api/resources", "/health/live", "/metrics"):
            async with session.head(resources_service.url + path, headers=identity) as resp:
                assert resp.status == 200, path
