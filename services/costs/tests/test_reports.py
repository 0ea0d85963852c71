"""Daily breakdowns, exports and the live rate equal independent Decimal sums to the last digit."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal

import pytest

from .conftest import FOCUS_FILES, Client, focus_bytes, focus_rows, imported, to_csv

BASES = {
    "billed": "BilledCost",
    "effective": "EffectiveCost",
    "list": "ListCost",
    "contracted": "ContractedCost",
}
GROUPS = {
    "service_category": "ServiceCategory",
    "provider": "ProviderName",
    "account": "BillingAccountId",
    "region": "RegionId",
    "service": "ServiceName",
    "charge_category": "ChargeCategory",
}
WINDOW = {"start": "2024-01-01", "end": "2024-01-31"}


def all_rows() -> list[dict[str, str]]:
    return [r for name in FOCUS_FILES for r in focus_rows(name)]


def day_of(row: dict[str, str]) -> str:
    from costs.focus import parse_timestamp

    return parse_timestamp(row["ChargePeriodStart"]).date().isoformat()


@pytest.fixture
async def loaded(client: Client) -> Client:
    for name in FOCUS_FILES:
        await imported(client, focus_bytes(name), filename=name)
    return client


@pytest.mark.parametrize("basis", list(BASES))
@pytest.mark.parametrize("group_by", [*GROUPS, "tag:team", "none"])
async def test_daily_totals_equal_the_line_items_for_every_group_and_basis(
    loaded: Client, basis: str, group_by: str
) -> None:
    resp = await loaded.get(
        "/api/costs/daily", params={**WINDOW, "basis": basis, "group_by": group_by}
    )
    assert resp.status == 200
    body = await resp.json()
    expected: dict[tuple[str, str | None, str], Decimal] = defaultdict(Decimal)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in all_rows():
        if group_by == "none":
            group = None
        elif group_by == "tag:team":
            import json

            group = json.loads(r["Tags"]).get("team") if r["Tags"] not in ("", "NULL") else None
        else:
            group = r[GROUPS[group_by]]
        expected[(day_of(r), group, r["BillingCurrency"])] += Decimal(r[BASES[basis]])
        totals[r["BillingCurrency"]] += Decimal(r[BASES[basis]])
    got = {(i["date"], i["group"], i["currency"]): Decimal(i["cost"]) for i in body["data"]}
    assert got == dict(expected)
    assert {k: Decimal(v) for k, v in body["meta"]["totals"].items()} == dict(totals)


async def test_filters_narrow_the_breakdown(loaded: Client) -> None:
    params = {**WINDOW, "provider": "AWS", "tag": "team:web", "group_by": "none"}
    body = await (await loaded.get("/api/costs/daily", params=params)).json()
    expected = sum(
        Decimal(r["BilledCost"])
        for r in focus_rows("aws_focus_1_0.csv")
        if '"team": "web"' in r["Tags"]
    )
    assert sum(Decimal(i["cost"]) for i in body["data"]) == expected


async def test_resource_filter_gives_one_resources_cost(loaded: Client) -> None:
    rows = focus_rows("aws_focus_1_0.csv")
    resource = next(r["ResourceId"] for r in rows if r["ResourceId"])
    params = {**WINDOW, "resource": resource, "group_by": "none"}
    body = await (await loaded.get("/api/costs/daily", params=params)).json()
    expected = sum(
        Decimal(r["BilledCost"])
        for name in FOCUS_FILES
        for r in focus_rows(name)
        if r["ResourceId"] == resource
    )
    assert expected != 0
    assert {k: Decimal(v) for k, v in body["meta"]["totals"].items()} == {"USD": expected}


@pytest.mark.parametrize(
    "params",
    [
        {"group_by": "colour"},
        {"resource": ""},
        {"basis": "amortised"},
        {"start": "2024-02-01", "end": "2024-01-01"},
        {"start": "yesterday"},
        {"tag": "no-colon"},
        {"unknown": "1"},
    ],
)
async def test_invalid_daily_query_is_a_400(client: Client, params: dict[str, str]) -> None:
    resp = await client.get("/api/costs/daily", params=params)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"


async def test_daily_csv_export_matches_the_json_breakdown(loaded: Client) -> None:
    params = {**WINDOW, "group_by": "provider", "basis": "effective"}
    body = await (await loaded.get("/api/costs/daily", params=params)).json()
    resp = await loaded.get("/api/costs/export/daily.csv", params=params)
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [(r["date"], r["provider"], r["effective_cost"]) for r in rows] == [
        (i["date"], i["group"], i["cost"]) for i in body["data"]
    ]


async def test_focus_export_reimports_to_the_same_totals(loaded: Client) -> None:
    resp = await loaded.get("/api/costs/export/focus.csv", params=WINDOW)
    assert resp.status == 200
    exported = await resp.read()
    rows = list(csv.DictReader(io.StringIO(exported.decode())))
    assert len(rows) == len(all_rows())
    for focus in BASES.values():
        assert sum(Decimal(r[focus]) for r in rows) == sum(Decimal(r[focus]) for r in all_rows())
    again = await imported(loaded, exported)
    assert again["rows_accepted"] == len(rows)
    assert again["rows_replaced"] == len(rows)


async def test_exports_write_small_amounts_in_plain_decimal_notation(client: Client) -> None:
    rows = focus_rows(FOCUS_FILES[0])[:1]
    tiny = {**rows[0], **dict.fromkeys(BASES.values(), "0.0000000547")}
    await imported(client, to_csv([tiny], header=list(rows[0])))
    day = day_of(tiny)
    params = {"start": day, "end": day, "group_by": "none"}
    daily = await (await client.get("/api/costs/export/daily.csv", params=params)).text()
    focus = await (await client.get("/api/costs/export/focus.csv", params=params)).text()
    [daily_row] = list(csv.DictReader(io.StringIO(daily)))
    [focus_row] = list(csv.DictReader(io.StringIO(focus)))
    assert daily_row["billed_cost"] == "0.0000000547"
    assert {focus_row[column] for column in BASES.values()} == {"0.0000000547"}


async def test_resource_group_joins_the_inventory_by_external_id(
    loaded: Client,
) -> None:
    from common.db import DB_POOL
    from costs import storage

    async with loaded.app[DB_POOL].acquire() as conn:
        await storage.upsert_inventory(conn, inventory_resource("aws-res-1", name="web-1"))
    params = {**WINDOW, "group_by": "resource", "provider": "AWS"}
    body = await (await loaded.get("/api/costs/daily", params=params)).json()
    linked = {i["group"]: i["resource"] for i in body["data"]}
    assert linked["aws-res-1"]["name"] == "web-1"
    assert linked["aws-res-2"] is None


def inventory_resource(external_id: str, **fields: object) -> dict[str, object]:
    import uuid
    from datetime import UTC, datetime

    base: dict[str, object] = {
        "id": uuid.uuid4(),
        "external_id": external_id,
        "name": external_id,
        "provider": "aws",
        "type": "compute",
        "region": "eu-west-1",
        "account": "1",
        "status": "running",
        "hourly_cost": Decimal("0.0416"),
        "currency": "USD",
        "tags": {},
        "team": "web",
        "created_at": datetime(2024, 1, 1, tzinfo=UTC),
        "updated_at": datetime(2024, 1, 1, tzinfo=UTC),
    }
    base.update(fields)
    return base
