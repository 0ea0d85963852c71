"""A NUL character anywhere in a JSON body is a 422 problem naming the field: PostgreSQL's text and
jsonb refuse it, so it must never get as far as a statement."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from resources.settings import ResourcesSettings

from .conftest import Client, resource_body

NUL = "we\x00b"


async def resource_rows(settings: ResourcesSettings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM resources.resources"))
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/resources", resource_body(owner=NUL), "owner"),
        ("/api/resources", resource_body(external_id=NUL), "external_id"),
        ("/api/resources", resource_body(tags={"env": NUL}), "tags.env"),
        ("/api/resources", resource_body(tags={NUL: "prod"}), "tags"),
        ("/api/resources/bulk", {"resources": [resource_body(region=NUL)]}, "resources.0.region"),
        ("/api/resources/bulk", {"resources": [resource_body(team=NUL)]}, "resources.0.team"),
    ],
    ids=["owner", "external-id", "tag-value", "tag-key", "bulk-region", "bulk-team"],
)
async def test_a_nul_character_in_a_body_is_a_422_naming_the_field(
    client: Client, settings: ResourcesSettings, path: str, body: dict[str, Any], field: str
) -> None:
    resp = await client.post(path, json=body)
    assert resp.status == 422, await resp.text()
    assert resp.content_type == "application/problem+json"
    errors = (await resp.json())["errors"]
    assert {"field": field, "message": errors[0]["message"]} in errors
    assert "NUL" in errors[0]["message"]
    assert await resource_rows(settings) == 0


async def test_a_nul_character_in_a_patch_is_a_422(client: Client) -> None:
    created = await client.post("/api/resources", json=resource_body())
    resource = (await created.json())["data"]["id"]
    resp = await client.patch(f"/api/resources/{resource}", json={"account": NUL})
    assert resp.status == 422
    assert [e["field"] for e in (await resp.json())["errors"]] == ["account"]
    stored = await (await client.get(f"/api/resources/{resource}")).json()
    assert stored["data"]["account"] == resource_body()["account"]
