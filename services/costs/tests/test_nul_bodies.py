"""A NUL character anywhere in a JSON body is a 422 problem naming the field, refused by the body
guard before any model or statement sees it (PostgreSQL's text and jsonb refuse it)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Client

NUL = "we\x00b"
NUL_REFUSED = "must not contain the NUL character"
NUL_KEY_REFUSED = "keys must not contain the NUL character"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": NUL, "amount": "10"}, "name", NUL_REFUSED),
        ({"name": "x", "amount": NUL}, "amount", NUL_REFUSED),
        ({"name": "x", "amount": "10", "currency": NUL}, "currency", NUL_REFUSED),
        ({"name": "x", "amount": "10", NUL: "x"}, "body", NUL_KEY_REFUSED),
        (
            {"name": "x", "amount": "10", "scope": "tag", "scope_key": "team", "scope_value": NUL},
            "scope_value",
            NUL_REFUSED,
        ),
    ],
    ids=["name", "amount", "currency", "key", "scope-value"],
)
async def test_a_nul_character_in_a_budget_is_a_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str, message: str
) -> None:
    resp = await client.post("/api/costs/budgets", json=body)
    assert resp.status == 422, await resp.text()
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["errors"] == [{"field": field, "message": message}]
    listed = await (await client.get("/api/costs/budgets")).json()
    assert listed["data"] == []


async def test_a_nul_character_in_a_budget_patch_is_a_422_naming_the_field(client: Client) -> None:
    created = await client.post("/api/costs/budgets", json={"name": "ok", "amount": "10"})
    budget = (await created.json())["data"]["id"]
    resp = await client.patch(f"/api/costs/budgets/{budget}", json={"name": "a\x00"})
    assert resp.status == 422
    assert (await resp.json())["errors"] == [{"field": "name", "message": NUL_REFUSED}]
