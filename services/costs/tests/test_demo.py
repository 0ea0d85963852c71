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
