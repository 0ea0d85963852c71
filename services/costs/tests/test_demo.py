"""The demo billing file imports cleanly, its totals are exact, and re-importing replaces it."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from costs.demo import demo_billing
from resources.seed import demo_fleet

from .conftest import Client

END = date(2026, 3, 15)


def test_demo_billing_is_deterministic_and_ends_the_day_before() -> None:
    fleet = demo_fleet(50)
    raw = demo_billing(fleet, end=END, days=20)
    assert raw == demo_billing(fleet, end=END, days=20)
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    starts = {r["ChargePeriodStart"][:10] for r in rows}
    assert max(starts) == "2026-03-14"
    assert min(starts) == "2026-02-23"
    assert {"Usage", "Purchase", "Credit"} == {r["ChargeCategory"] for r in rows}
    assert any(Decimal(r["BilledCost"]) < 0 for r in rows)
    # February has closed by March 15th: its rows are invoiced, the running month's are not.
    assert {r["InvoiceId"] for r in rows if r["BillingPeriodStart"].startswith("2026-03")} == {""}
    february = [r for r in rows if r["BillingPeriodStart"].startswith("2026-02")]
    assert february
    assert {r["InvoiceId"] for r in february} == {
        f"INV-{r['BillingAccountId']}-2026-02" for r in february
    }


async def test_demo_billing_imports_without_rejections_and_replaces_on_reimport(
    client: Client,
) -> None:
    raw = demo_billing(demo_fleet(40), end=END, days=35)
    expected = sum(
        (Decimal(r["BilledCost"]) for r in csv.DictReader(io.StringIO(raw.decode()))), Decimal(0)
    )
    for _ in range(2):
        resp = await client.post(
            "/api/costs/imports?filename=demo.csv", data=raw, headers={"Content-Type": "text/csv"}
        )
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["data"]["rows_rejected"] == 0
    daily = await client.get("/api/costs/daily?start=2026-01-01&end=2026-03-31&group_by=none")
    body = await daily.json()
    assert Decimal(body["meta"]["totals"]["USD"]) == expected
    # Each closed month's invoice totals the rows of that account and month.
    invoiced: dict[str, Decimal] = {}
    for r in csv.DictReader(io.StringIO(raw.decode())):
        if r["InvoiceId"]:
            invoiced[r["InvoiceId"]] = invoiced.get(r["InvoiceId"], Decimal(0)) + Decimal(
                r["BilledCost"]
            )
    resp = await client.get("/api/costs/invoices?start=2026-01-01&end=2026-03-31&limit=100")
    invoices = (await resp.json())["data"]
    assert {i["invoice_id"]: Decimal(i["billed_total"]) for i in invoices} == invoiced
