"""Each savings rule fires on its constructed case and stays silent on the near-miss."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from common.db import DB_POOL
from common.messaging import new_event
from costs.app import create_app
from costs.demo import charge_row, demo_billing
from costs.events import on_resource_event
from costs.focus import COLUMNS
from costs.settings import CostsSettings
from resources.seed import demo_fleet, demo_utilization

from .conftest import Client, ClientFactory, imported, to_csv
from .test_inventory import resource

AT = datetime(2024, 3, 1, tzinfo=UTC)
Sample = tuple[str, str, int | None]


def days_before(days: float) -> str:
    return (AT - timedelta(days=days)).isoformat()


def history(
    cpu: list[str], memory: list[str] | None = None, network: list[int | None] | None = None
) -> list[Sample]:
    """``(cpu, memory, network bytes)`` per sample, a day apart, the last one hour before ``AT``."""
    memory = memory or ["20"] * len(cpu)
    network = network or [None] * len(cpu)
    return list(zip(cpu, memory, network, strict=True))


def case(samples: list[Sample] | None = None, **fields: Any) -> dict[str, Any]:
    return {"fields": fields, "samples": samples or []}


INVENTORY_CASES = [
    pytest.param(
        "idle_compute",
        case(history(["2", "9.5", "10", "3"]), hourly_cost="0.1"),
        # memory above the right-size limit, so only the idle rule could speak
        case(history(["2", "9.5", "10.01", "3"], ["60"] * 4), hourly_cost="0.1"),
        id="idle_compute",
    ),
    pytest.param(
        "idle_compute",
        case(
            history(["2", "3", "4", "3"], ["60"] * 4, [10, 5_000_000, None, 0]), hourly_cost="0.1"
        ),
        case(
            history(["2", "3", "4", "3"], ["60"] * 4, [10, 5_000_001, None, 0]), hourly_cost="0.1"
        ),
        id="idle_compute-network",
    ),
    pytest.param(
        "idle_compute",
        case(history(["2", "3", "4", "3"], ["60"] * 4), hourly_cost="0.1"),
        case(history(["2", "3", "4"], ["60"] * 3), hourly_cost="0.1"),
        id="idle_compute-too-few-samples",
    ),
    pytest.param(
        "rightsize",
        case(history(["25", "40", "31", "12"], ["30", "40", "20", "22"]), hourly_cost="0.2"),
        case(history(["25", "40", "31", "12"], ["30", "40.5", "20", "22"]), hourly_cost="0.2"),
        id="rightsize",
    ),
    pytest.param(
        "stopped_instance",
        case(status="stopped", hourly_cost="0.01", updated_at=days_before(7)),
        case(status="stopped", hourly_cost="0.01", updated_at=days_before(6.9)),
        id="stopped_instance",
    ),
    pytest.param(
        "stopped_instance",
        # the provider's own date wins over the time the inventory learned of the state
        case(
            status="stopped",
            hourly_cost="0.01",
            status_since=days_before(8),
            updated_at=days_before(0.5),
        ),
        case(
            status="stopped",
            hourly_cost="0.01",
            status_since=days_before(6),
            updated_at=days_before(30),
        ),
        id="stopped_instance-status_since",
    ),
    pytest.param(
        "unattached_volume",
        case(
            type="storage",
            status="idle",
            tags={"kind": "volume"},
            hourly_cost="0.011",
            updated_at=days_before(8),
        ),
        case(
            type="storage",
            status="running",
            tags={"kind": "volume"},
            hourly_cost="0.011",
            updated_at=days_before(8),
        ),
        id="unattached_volume",
    ),
    pytest.param(
        "unused_ip",
        case(
            type="network",
            status="idle",
            tags={"kind": "ip"},
            hourly_cost="0.005",
            updated_at=days_before(2),
        ),
        case(
            type="network",
            status="idle",
            tags={"kind": "ip"},
            hourly_cost="0.005",
            updated_at=days_before(0.5),
        ),
        id="unused_ip",
    ),
    pytest.param(
        "old_snapshot",
        case(
            type="storage",
            tags={"kind": "snapshot"},
            hourly_cost="0.002",
            created_at=days_before(90),
            updated_at=days_before(90),
        ),
        case(
            type="storage",
            tags={"kind": "snapshot"},
            hourly_cost="0.002",
            created_at=days_before(89),
            updated_at=days_before(89),
        ),
        id="old_snapshot",
    ),
    pytest.param(
        "old_snapshot",
        case(
            type="storage",
            tags={"kind": "snapshot"},
            hourly_cost="0.002",
            provisioned_at=days_before(120),
            created_at=days_before(1),
            updated_at=days_before(1),
        ),
        case(
            type="storage",
            tags={"kind": "snapshot"},
            hourly_cost="0.002",
            provisioned_at=days_before(60),
            created_at=days_before(100),
            updated_at=days_before(100),
        ),
        id="old_snapshot-provisioned_at",
    ),
]


def utilization_event(n: int, samples: list[Sample]) -> Any:
    rows = [
        [days_before(len(samples) - i - 1 + 1 / 24), cpu, memory, network]
        for i, (cpu, memory, network) in enumerate(samples)
    ]
    data = {
        "columns": ["timestamp", "cpu_percent", "memory_percent", "network_bytes"],
        "count": len(rows),
        "resources": [{"id": resource(n)["id"], "external_id": f"i-{n:08x}", "samples": rows}],
    }
    return new_event("resource.utilization_recorded", source="t", data=data)


async def put_case(client: Client, n: int, spec: dict[str, Any]) -> None:
    fields = {"created_at": days_before(200), "updated_at": days_before(200), **spec["fields"]}
    async with client.app[DB_POOL].acquire() as conn:
        event = new_event("resource.updated", source="t", data={"resource": resource(n, **fields)})
        await on_resource_event(event, conn)
        if spec["samples"]:
            await on_resource_event(utilization_event(n, spec["samples"]), conn)


async def recommendations(client: Client) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    resp = await client.get("/api/costs/optimization", params={"at": AT.isoformat()})
    assert resp.status == 200
    body = await resp.json()
    return body["data"], body["meta"]


@pytest.mark.parametrize(("rule", "hit", "miss"), INVENTORY_CASES)
async def test_inventory_rule_fires_on_its_case_and_not_on_the_near_miss(
    client: Client, rule: str, hit: dict[str, Any], miss: dict[str, Any]
) -> None:
    await put_case(client, 1, hit)
    await put_case(client, 2, miss)
    found, meta = await recommendations(client)
    assert [(r["rule"], r["external_id"]) for r in found] == [(rule, "i-00000001")]
    hourly = Decimal(hit["fields"]["hourly_cost"])
    share = Decimal("0.5") if rule == "rightsize" else Decimal(1)
    saving = (hourly * 730 * share).quantize(Decimal("0.01"))
    assert Decimal(found[0]["monthly_savings"]) == saving
    assert meta["monthly_savings"] == {"USD": str(saving)}
    assert found[0]["evidence"]
    assert found[0]["resource_id"] == resource(1)["id"]


async def test_a_rule_reads_the_history_not_the_current_figure(client: Client) -> None:
    # The current figure says idle; one busy sample in the window says otherwise.
    busy_once = case(history(["2", "85", "3", "2"], ["60"] * 4), hourly_cost="0.1",
                     cpu_utilization="2", memory_utilization="60")  # fmt: skip
    await put_case(client, 1, busy_once)
    assert (await recommendations(client))[0] == []


async def test_thresholds_are_configurable(
    aiohttp_client: ClientFactory, settings: CostsSettings, pg_url: str
) -> None:
    from common.testing import truncate_schema

    await truncate_schema(pg_url, "costs")
    strict = settings.model_copy(update={"idle_cpu_percent": Decimal("5")})
    client = await aiohttp_client(create_app(strict))
    await put_case(client, 1, case(history(["2", "6", "3", "4"]), hourly_cost="0.1"))
    assert [r["rule"] for r in (await recommendations(client))[0]] == ["rightsize"]


async def test_optimization_rejects_a_bad_timestamp(client: Client) -> None:
    resp = await client.get("/api/costs/optimization", params={"at": "soon"})
    assert resp.status == 400


# ----- billing rules ----------------------------------------------------------------------------

BILLED_DAYS = [AT.date() - timedelta(days=d) for d in range(10, 0, -1)]  # the last 10 days


def usage(
    n: int,
    day: date,
    cost: str,
    *,
    consumed: str | None = "24",
    sku: str = "m6i.large",
    list_price: str = "0.096",
    contracted_price: str | None = None,
    commitment: str | None = None,
    quantity: str = "24",
) -> dict[str, str]:
    """One daily compute usage row of resource ``i-<n>`` in the FOCUS columns."""
    extra = {
        "ResourceId": f"i-{n:08x}", "ResourceName": f"web-{n}", "ServiceCategory": "Compute",
        "ServiceName": "Virtual Machines", "SkuId": sku, "ListUnitPrice": list_price,
        "ContractedUnitPrice": contracted_price or list_price, "PricingQuantity": quantity,
        "ConsumedQuantity": consumed or "", "ConsumedUnit": "Hours" if consumed else "",
        "CommitmentDiscountId": commitment or "", "RegionId": "eu-west-1",
    }  # fmt: skip
    return charge_row(day, "aws", Decimal(cost), "Usage", f"web-{n} usage", **extra)


def days_of(n: int, cost: str, consumed: Sequence[str | None], **kw: Any) -> list[dict[str, str]]:
    return [usage(n, d, cost, consumed=c, **kw) for d, c in zip(BILLED_DAYS, consumed, strict=True)]


SP = "arn:aws:savingsplans::123456789012:savingsplan/sp-1"

BILLING_CASES = [
    pytest.param(
        "zero_usage",
        days_of(1, "2", ["24", "24", "24"] + ["0"] * 7),
        days_of(2, "2", ["24"] * 4 + ["0"] * 6),
        Decimal(2) * 730 / 24,
        {1, 2},
        id="zero_usage",
    ),
    pytest.param(
        "zero_usage",
        days_of(1, "2", ["0"] * 10),
        days_of(2, "2", [None] * 10),  # no ConsumedQuantity reported is not zero usage
        Decimal(2) * 730 / 24,
        {1, 2},
        id="zero_usage-not-reported",
    ),
    pytest.param(
        "unmanaged_spend",
        days_of(1, "3", ["24"] * 10),
        days_of(2, "3", ["24"] * 10),  # the same spend, but the resource is in the inventory
        Decimal(3) * 730 / 24,
        {2},
        id="unmanaged_spend",
    ),
    pytest.param(
        "unmanaged_spend",
        days_of(1, "3", ["24"] * 10),
        days_of(2, "0.03", ["24"] * 10),  # 0.91 a month is below the minimum
        Decimal(3) * 730 / 24,
        set(),
        id="unmanaged_spend-minimum",
    ),
    pytest.param(
        "commitment_coverage",
        # i-1 runs on demand (list price); i-3 shows the same SKU under a savings plan
        days_of(1, "2.304", ["24"] * 10)
        + days_of(3, "1.44", ["24"] * 10, contracted_price="0.06", commitment=SP),
        # i-2's SKU has no commitment anywhere in the billing
        days_of(2, "3.264", ["24"] * 10, sku="c6g.xlarge", list_price="0.136"),
        Decimal(240) * (Decimal("0.096") - Decimal("0.06")) * 730 / 720,
        {1, 2, 3},
        id="commitment_coverage",
    ),
]


@pytest.mark.parametrize(("rule", "hit", "miss", "saving", "inventory"), BILLING_CASES)
async def test_billing_rule_fires_on_its_case_and_not_on_the_near_miss(
    client: Client,
    rule: str,
    hit: list[dict[str, str]],
    miss: list[dict[str, str]],
    saving: Decimal,
    inventory: set[int],
) -> None:
    for n in sorted(inventory):
        await put_case(client, n, case())
    header = [c.focus for c in COLUMNS]
    await imported(client, to_csv([{k: r.get(k, "") for k in header} for r in hit + miss], header))
    found, meta = await recommendations(client)
    assert [(r["rule"], r["external_id"]) for r in found] == [(rule, "i-00000001")]
    assert Decimal(found[0]["monthly_savings"]) == saving.quantize(Decimal("0.01"))
    assert found[0]["resource_id"] == (resource(1)["id"] if 1 in inventory else None)
    assert meta["monthly_savings"] == {"USD": found[0]["monthly_savings"]}


async def test_an_inventory_saving_is_at_most_what_the_billing_says_it_costs(
    client: Client,
) -> None:
    # Priced at 0.1/h as if running (73.00 a month), billed 0.24 a day for its disks (7.30).
    await put_case(client, 1, case(status="stopped", hourly_cost="0.1", updated_at=days_before(9)))
    header = [c.focus for c in COLUMNS]
    rows = days_of(1, "0.24", ["24"] * 10)
    await imported(client, to_csv([{k: r.get(k, "") for k in header} for r in rows], header))
    [found], _ = await recommendations(client)
    assert found["rule"] == "stopped_instance"
    assert Decimal(found["monthly_savings"]) == Decimal("7.30")
    assert found["evidence"]["billed_monthly_cost"] == found["monthly_savings"]


async def test_one_resource_gets_one_recommendation(client: Client) -> None:
    # Idle by its samples and billed with zero usage: the idle rule speaks, once.
    await put_case(client, 1, case(history(["2", "3", "4", "3"]), hourly_cost="0.2"))
    header = [c.focus for c in COLUMNS]
    rows = days_of(1, "2", ["0"] * 10)
    await imported(client, to_csv([{k: r.get(k, "") for k in header} for r in rows], header))
    found, _ = await recommendations(client)
    assert [(r["rule"], r["external_id"]) for r in found] == [("idle_compute", "i-00000001")]


async def test_the_demo_fleet_and_billing_give_every_rule_a_case(
    aiohttp_client: ClientFactory, settings: CostsSettings, pg_url: str
) -> None:
    from common.testing import truncate_schema

    await truncate_schema(pg_url, "costs")
    client = await aiohttp_client(
        create_app(settings.model_copy(update={"import_batch_rows": 5000}))
    )
    fleet = demo_fleet(400, today=AT.date())
    ids = {r["external_id"]: str(uuid.UUID(int=i + 1)) for i, r in enumerate(fleet)}
    rows: dict[str, list[list[Any]]] = {}
    for s in demo_utilization(fleet, end=AT - timedelta(hours=1)):
        rows.setdefault(s["external_id"], []).append(
            [s["timestamp"], s["cpu_percent"], s["memory_percent"], s["network_bytes"]]
        )
    utilization = {
        "columns": ["timestamp", "cpu_percent", "memory_percent", "network_bytes"],
        "resources": [{"id": ids[x], "external_id": x, "samples": r} for x, r in rows.items()],
    }
    async with client.app[DB_POOL].acquire() as conn:
        for r in fleet:
            body = {**r, "id": ids[r["external_id"]], "created_at": days_before(1),
                    "updated_at": days_before(1)}  # fmt: skip
            await on_resource_event(
                new_event("resource.created", source="t", data={"resource": body}), conn
            )
        await on_resource_event(
            new_event("resource.utilization_recorded", source="t", data=utilization), conn
        )
    raw = demo_billing(fleet, end=AT.date(), days=30)
    headers = {"Content-Type": "text/csv"}
    resp = await client.post("/api/costs/imports", data=io.BytesIO(raw), headers=headers)
    assert resp.status == 201, await resp.text()
    found, meta = await recommendations(client)
    assert {r["rule"] for r in found} == {
        "idle_compute", "rightsize", "stopped_instance", "unattached_volume", "unused_ip",
        "old_snapshot", "zero_usage", "unmanaged_spend", "commitment_coverage",
    }  # fmt: skip
    # Each forgotten-resource kind has its near-miss beside it, which stays silent.
    assert sum(r["rule"] == "unattached_volume" for r in found) == 5
    assert sum(r["rule"] == "unused_ip" for r in found) == 4
    assert sum(r["rule"] == "old_snapshot" for r in found) == 5
    # Plausible: no saving above the resource's monthly cost as billed.
    billed: dict[str, list[Decimal]] = {}
    for row in csv.DictReader(io.StringIO(raw.decode())):
        if row["ResourceId"]:
            billed.setdefault(row["ResourceId"], []).append(Decimal(row["EffectiveCost"]))
    for r in found:
        daily = billed[r["external_id"]]
        monthly = (sum(daily, Decimal(0)) / len(daily) * 730 / 24).quantize(Decimal("0.01"))
        assert Decimal(r["monthly_savings"]) <= monthly, r
    # ... and the total a fraction of the fleet's monthly bill.
    hourly = {r["external_id"]: Decimal(r["hourly_cost"]) for r in fleet}
    monthly_bill = sum(hourly[r["external_id"]] for r in fleet if r["status"] not in
                       {"terminated", "pending"}) * 730  # fmt: skip
    total = Decimal(meta["monthly_savings"]["USD"])
    assert monthly_bill * Decimal("0.05") < total < monthly_bill * Decimal("0.30")
