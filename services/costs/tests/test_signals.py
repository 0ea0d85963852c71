"""Cost and budget signals in /metrics: the realtime report's figures, from a cached snapshot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from common.db import DB_POOL
from common.messaging import new_event
from costs.events import on_resource_event
from costs.signals import COST_SIGNALS

from .conftest import Client, focus_bytes, imported
from .test_inventory import resource

END_OF_JANUARY = datetime(2024, 1, 31, tzinfo=UTC)


async def scrape(client: Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{metric: {sorted label pairs: value}}`` of the cost signals in one scrape."""
    resp = await client.get("/metrics")
    assert resp.status == 200
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(await resp.text()):
        if family.name.startswith("cloudops_"):
            for s in family.samples:
                found.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return found


async def add_running(client: Client, n: int, **fields: Any) -> None:
    async with client.app[DB_POOL].acquire() as conn:
        event = new_event("resource.created", source="t", data={"resource": resource(n, **fields)})
        await on_resource_event(event, conn)


async def test_signals_agree_with_the_realtime_report(client: Client) -> None:
    await imported(client, focus_bytes("aws_focus_1_0.csv"))
    await add_running(client, 1, hourly_cost="2")
    await add_running(client, 2, hourly_cost="0.5", team=None, provider="gcp")
    budget = await client.post(
        "/api/costs/budgets", json={"name": "All clouds", "amount": "100", "currency": "USD"}
    )
    assert budget.status == 201

    snapshot = await client.app[COST_SIGNALS].take(END_OF_JANUARY)
    report = await client.get("/api/costs/realtime", params={"at": "2024-01-31T00:00:00"})
    realtime = (await report.json())["data"]

    assert {c: str(v) for c, v in snapshot.month_to_date.items()} == realtime["month_to_date"]
    assert {c: str(v) for c, v in snapshot.projected_month_end.items()} == realtime[
        "projected_month_end"
    ]
    assert snapshot.hourly == [
        ("aws", "web", "USD", Decimal("2")),
        ("gcp", "unassigned", "USD", Decimal("0.5")),
    ]
    [(name, scope, ratio)] = snapshot.budgets
    assert (name, scope) == ("All clouds", "all")
    assert ratio == Decimal(realtime["month_to_date"]["USD"]) / 100


async def test_a_scrape_reads_the_snapshot_until_a_write_makes_it_stale(client: Client) -> None:
    await add_running(client, 3, hourly_cost="1.25", team="data")

    first = await scrape(client)
    assert first["cloudops_cost_hourly"] == {
        (("currency", "USD"), ("provider", "aws"), ("team", "data")): 1.25
    }
    taken = first["cloudops_cost_signals_refreshed_timestamp_seconds"]
    # Another resource arrives by event: no write through this API, so the snapshot stands.
    await add_running(client, 4, hourly_cost="1", team="data")
    again = await scrape(client)
    assert again["cloudops_cost_signals_refreshed_timestamp_seconds"] == taken
    assert again["cloudops_cost_hourly"] == first["cloudops_cost_hourly"]

    created = await client.post(
        "/api/costs/budgets",
        json={"name": "Data team", "scope": "team", "scope_value": "data", "amount": "50"},
    )
    assert created.status == 201
    after = await scrape(client)
    assert after["cloudops_cost_signals_refreshed_timestamp_seconds"] != taken
    assert after["cloudops_cost_hourly"] == {
        (("currency", "USD"), ("provider", "aws"), ("team", "data")): 2.25
    }
    # Nothing billed this month in the test data: the budget is at 0 of its amount.
    assert after["cloudops_budget_utilization_ratio"] == {
        (("budget", "Data team"), ("scope", "team:data")): 0.0
    }


async def test_anomalies_of_the_current_month_are_counted_per_currency(client: Client) -> None:
    today = datetime.now(UTC).date()
    async with client.app[DB_POOL].acquire() as conn:
        for dimension in ("provider=AWS:USD", "provider=GCP:USD", "all:EUR"):
            await conn.execute(
                """INSERT INTO anomalies (day, dimension, basis, actual, expected, score)
                   VALUES ($1, $2, 'billed', 10, 1, 9)""",
                today,
                dimension,
            )
        await conn.execute(  # last year's: not this month
            """INSERT INTO anomalies (day, dimension, basis, actual, expected, score)
               VALUES ($1, 'all:USD', 'billed', 10, 1, 9)""",
            today - timedelta(days=400),
        )

    found = await scrape(client)

    assert found["cloudops_cost_anomalies"] == {
        (("currency", "EUR"),): 1.0,
        (("currency", "USD"),): 2.0,
    }
