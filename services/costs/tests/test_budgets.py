"""Budgets: CRUD, and each threshold crossing is one event per period, even across restarts."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest

from common.testing import EventTap
from costs.app import create_app
from costs.focus import parse_timestamp
from costs.settings import CostsSettings

from .conftest import Client, ClientFactory, focus_bytes, focus_rows, imported

MID_JANUARY = "2024-01-16T00:00:00+00:00"


def aws_spend(keep: Callable[[dict[str, str]], bool] = lambda r: True) -> Decimal:
    """Billed AWS spend charged before mid-January."""
    at = parse_timestamp(MID_JANUARY)
    return sum(
        (Decimal(r["BilledCost"]) for r in focus_rows("aws_focus_1_0.csv")
         if parse_timestamp(r["ChargePeriodStart"]) < at and keep(r)),
        Decimal(0),
    )  # fmt: skip


def budget_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "AWS monthly", "scope": "provider", "scope_value": "AWS",
                            "amount": "1000.00", "currency": "USD"}  # fmt: skip
    body.update(fields)
    return body


async def create(client: Client, **fields: Any) -> dict[str, Any]:
    resp = await client.post("/api/costs/budgets", json=budget_body(**fields))
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = (await resp.json())["data"]
    return data


async def evaluate(client: Client, at: str = MID_JANUARY) -> list[dict[str, Any]]:
    resp = await client.post("/api/costs/budgets/evaluate", params={"at": at})
    assert resp.status == 200
    data: list[dict[str, Any]] = (await resp.json())["data"]
    return data


async def test_budget_crud_round_trip(client: Client) -> None:
    created = await create(client)
    assert created["thresholds"][0] == {"percent": "50", "kind": "actual"}
    listed = await (await client.get("/api/costs/budgets")).json()
    assert listed["meta"] == {"total": 1, "limit": 20, "offset": 0}
    resp = await client.patch(
        f"/api/costs/budgets/{created['id']}", json={"amount": "12.5", "name": "renamed"}
    )
    assert resp.status == 200
    assert (await resp.json())["data"]["amount"] == "12.5"
    got = (await (await client.get(f"/api/costs/budgets/{created['id']}")).json())["data"]
    assert (got["name"], got["crossings"]) == ("renamed", [])
    assert (await client.delete(f"/api/costs/budgets/{created['id']}")).status == 204
    assert (await client.get(f"/api/costs/budgets/{created['id']}")).status == 404
    assert (await client.delete(f"/api/costs/budgets/{created['id']}")).status == 404
    assert (await client.patch(f"/api/costs/budgets/{created['id']}", json={})).status == 404


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": "0"},
        {"amount": "-5"},
        {"scope": "provider", "scope_value": None},
        {"scope": "all", "scope_value": "AWS"},
        {"scope": "tag", "scope_key": None, "scope_value": "x"},
        {"currency": "usd"},
        {"thresholds": []},
        {"thresholds": [{"percent": "50"}, {"percent": "50"}]},
        {"thresholds": [{"percent": "50", "kind": "maybe"}]},
        {"colour": "red"},
    ],
)
async def test_invalid_budget_is_a_422_and_nothing_is_stored(
    client: Client, fields: dict[str, Any]
) -> None:
    resp = await client.post("/api/costs/budgets", json=budget_body(**fields))
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert (await (await client.get("/api/costs/budgets")).json())["meta"]["total"] == 0


async def test_budget_body_must_be_json(client: Client) -> None:
    resp = await client.post("/api/costs/budgets", data=b"amount=1")
    assert resp.status == 415


async def test_crossing_emits_once_per_threshold_even_when_checked_twice_or_restarted(
    client: Client,
    aiohttp_client: ClientFactory,
    settings: CostsSettings,
    event_tap: EventTap,
) -> None:
    await imported(client, focus_bytes("aws_focus_1_0.csv"))
    spend = aws_spend()
    # 50% and 75% crossed; 90% and 100% not; the run-rate forecast crosses 100%.
    amount = (spend / Decimal("0.8")).quantize(Decimal("0.01"))
    budget = await create(client, amount=str(amount))
    first = await evaluate(client)
    assert sorted((c["threshold"]["kind"], c["threshold"]["percent"]) for c in first) == [
        ("actual", "50"), ("actual", "75"), ("forecast", "100"),
    ]  # fmt: skip
    assert await evaluate(client) == []
    restarted = await aiohttp_client(create_app(settings))
    assert await evaluate(restarted) == []
    events = await event_tap.take(3)
    assert {e["type"] for e in events} == {"cost.budget_threshold_crossed"}
    assert {e["subject"] for e in events} == {budget["id"]}
    assert Decimal(events[0]["data"]["amount"]) == amount
    assert await event_tap.quiet(1.0) == []
    history = (await (await client.get(f"/api/costs/budgets/{budget['id']}")).json())["data"]
    assert len(history["crossings"]) == 3
    # The next period starts afresh.
    assert len(await evaluate(client, "2024-02-16T00:00:00+00:00")) == 0


@pytest.mark.parametrize(
    ("fields", "keep"),
    [
        ({"scope": "all", "scope_value": None}, lambda r: True),
        ({"scope": "team", "scope_value": "web"}, lambda r: '"team": "web"' in r["Tags"]),
        ({"scope": "tag", "scope_key": "team", "scope_value": "data"},
         lambda r: '"team": "data"' in r["Tags"]),
        ({"scope": "provider", "scope_value": "Oracle"}, lambda r: False),
    ],
)  # fmt: skip
async def test_budget_scope_selects_its_spend(
    client: Client, fields: dict[str, Any], keep: Callable[[dict[str, str]], bool]
) -> None:
    await imported(client, focus_bytes("aws_focus_1_0.csv"))
    spend = aws_spend(keep)
    amount = spend.quantize(Decimal("1e-10"), rounding=ROUND_DOWN) or Decimal(1)
    await create(client, thresholds=[{"percent": "100"}], amount=str(amount), **fields)
    crossed = await evaluate(client)
    assert len(crossed) == (1 if spend > 0 else 0)
    if crossed:
        assert Decimal(crossed[0]["value"]) == spend


@pytest.mark.parametrize("patch", [{"amount": None}, {"thresholds": None}, {"scope": "team"}])
async def test_invalid_patch_is_a_422_and_the_budget_is_unchanged(
    client: Client, patch: dict[str, Any]
) -> None:
    budget = await create(client)
    resp = await client.patch(f"/api/costs/budgets/{budget['id']}", json=patch)
    assert resp.status == 422
    got = (await (await client.get(f"/api/costs/budgets/{budget['id']}")).json())["data"]
    assert got["amount"] == budget["amount"]


async def test_budgets_are_also_checked_on_a_timer(
    aiohttp_client: ClientFactory, settings: CostsSettings, event_tap: EventTap, pg_url: str
) -> None:
    from datetime import UTC, datetime

    from common.testing import truncate_schema

    await truncate_schema(pg_url, "costs")
    fast = settings.model_copy(update={"budget_check_seconds": 0.2})
    client = await aiohttp_client(create_app(fast))
    this_month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows = focus_rows("aws_focus_1_0.csv")[:1]
    rows[0].update(
        ChargePeriodStart=this_month.isoformat(),
        ChargePeriodEnd=(this_month.replace(hour=1)).isoformat(),
        BilledCost="10",
    )
    from .conftest import to_csv

    await imported(client, to_csv(rows))
    await create(client, amount="10", thresholds=[{"percent": "100"}])
    [event] = await event_tap.take(1, timeout=15)
    assert event["type"] == "cost.budget_threshold_crossed"


async def test_two_replicas_checking_at_once_still_emit_each_crossing_once(
    client: Client, aiohttp_client: ClientFactory, settings: CostsSettings, event_tap: EventTap
) -> None:
    import asyncio

    await imported(client, focus_bytes("aws_focus_1_0.csv"))
    await create(client, amount=str(aws_spend().quantize(Decimal("1e-10"), rounding=ROUND_DOWN)))
    replica = await aiohttp_client(create_app(settings))
    results = await asyncio.gather(*(evaluate(c) for c in (client, replica, client, replica)))
    assert sum(len(r) for r in results) == 5  # 50/75/90/100% actual and 100% forecast
    assert len(await event_tap.take(5)) == 5
    assert await event_tap.quiet(1.0) == []
