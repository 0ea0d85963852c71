"""Demo billing data: a FOCUS 1.0 file of daily charges for a fleet, ending yesterday.

Deterministic for a given fleet and end date, and each provider bills from its own account, so
importing it again (as ``make up`` does on every start) replaces the overlapping period instead of
adding to it. Costs follow each resource's hourly price, with a weekday rhythm (busier Monday to
Friday), a little noise, a monthly support charge and an occasional credit, so the breakdowns,
forecast and budgets have something real-looking to work on.

It also holds what the billing-only savings rules look for: spend on resources the inventory does
not know (:data:`UNMANAGED`), provisioned capacity nobody uses (idle functions report zero
consumed requests), and one SKU half covered by a savings plan (:data:`COMMITMENTS`), its other
half still paying list price.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson

from common import csvsafe
from costs.focus import COLUMNS, Kind

PROVIDERS = {
    "aws": ("AWS", "4821-0937-1184", "Acme AWS"),
    "azure": ("Microsoft", "sub-7f3a", "Acme Azure"),
    "gcp": ("Google Cloud", "proj-cloudops-demo", "Acme GCP"),
    "oci": ("Oracle", "tenancy-eu", "Acme OCI"),
    "other": ("Other", "other-account", "Acme Other"),
}
CATEGORIES = {
    "compute": ("Compute", "Virtual Machines"),
    "storage": ("Storage", "Block Storage"),
    "database": ("Databases", "Managed Databases"),
    "network": ("Networking", "Network"),
    "container": ("Compute", "Kubernetes"),
    "serverless": ("Compute", "Functions"),
    "other": ("Other", "Other"),
}
WEEKDAY_LOAD = (Decimal("1.08"), Decimal("1.10"), Decimal("1.10"), Decimal("1.08"),
                Decimal("1.02"), Decimal("0.82"), Decimal("0.80"))  # fmt: skip
PLACES = Decimal("0.0000000001")
QUANTITY_PLACES = Decimal("0.0001")

#: SKU -> (commitment discount id, contracted unit price): the plan covers the SKU's resources
#: whose number is even; the others run at list price (0.0960 for m6i.large).
COMMITMENTS = {
    "m6i.large": (
        "arn:aws:savingsplans::482109371184:savingsplan/sp-demo-compute-1yr",
        Decimal("0.0605"),
    ),
}
#: Billed, but never entered in the inventory.
UNMANAGED: tuple[dict[str, Any], ...] = (
    {"external_id": "arn:aws:ec2:us-east-1:482109371184:instance/i-0legacy5a9ml",
     "name": "legacy-ml-training-gpu", "provider": "aws", "type": "compute",
     "region": "us-east-1", "account": "4821-0937-1184", "status": "running",
     "hourly_cost": "1.0060", "tags": {"sku": "g5.xlarge"}},
    {"external_id": "gcp:us-central1:storage:bucket:old-exports", "name": "old-exports",
     "provider": "gcp", "type": "storage", "region": "us-central1",
     "account": "proj-cloudops-demo", "status": "running", "hourly_cost": "0.0340",
     "tags": {"sku": "standard-storage-1TB"}},
)  # fmt: skip


#: Monthly budgets for the demo, sized around the fleet's monthly bill (about 39,000 USD): the
#: whole cloud with room to spare, one provider near its line and one team over it.
DEMO_BUDGETS: tuple[dict[str, Any], ...] = (
    {"name": "Cloud total", "scope": "all", "amount": "45000"},
    {"name": "AWS", "scope": "provider", "scope_value": "AWS", "amount": "11000"},
    {"name": "Team identity", "scope": "team", "scope_value": "identity", "amount": "6000"},
)


def _stamp(day: date) -> str:
    return datetime.combine(day, time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month(day: date) -> tuple[date, date]:
    start = day.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def charge_row(
    day: date, provider: str, cost: Decimal, category: str, description: str, **extra: Any
) -> dict[str, str]:
    publisher, account, account_name = PROVIDERS.get(provider, PROVIDERS["other"])
    period_start, period_end = _month(day)
    amount = str(cost.quantize(PLACES))
    return {
        "BilledCost": amount, "EffectiveCost": amount, "ListCost": amount,
        "ContractedCost": amount, "BillingAccountId": account,
        "BillingAccountName": account_name, "BillingCurrency": "USD",
        "BillingPeriodStart": _stamp(period_start), "BillingPeriodEnd": _stamp(period_end),
        "ChargeCategory": category, "ChargeClass": "", "ChargeDescription": description,
        "ChargeFrequency": "Usage-Based" if category == "Usage" else "One-Time",
        "ChargePeriodStart": _stamp(day), "ChargePeriodEnd": _stamp(day + timedelta(days=1)),
        "PricingQuantity": "24" if category == "Usage" else "1",
        "PricingUnit": "Hours" if category == "Usage" else "Units",
        "ProviderName": publisher, "PublisherName": publisher, "InvoiceIssuerName": publisher,
        "ServiceCategory": "Other", "ServiceName": "Support", **extra,
    }  # fmt: skip


def usage_row(day: date, resource: Mapping[str, Any], quantity: Decimal) -> dict[str, str]:
    """A day's usage of ``resource``: ``quantity`` hours at its list price, or at the contracted
    price where a commitment covers it; consumption as the provider meters it."""
    list_price = Decimal(str(resource["hourly_cost"]))
    sku = (resource.get("tags") or {}).get("sku", "")
    commitment_id, price = "", list_price
    if sku in COMMITMENTS and int(resource["external_id"][-5:]) % 2 == 0:
        commitment_id, price = COMMITMENTS[sku]
    consumed, consumed_unit = quantity, "Hours"
    if resource["type"] == "serverless":
        # Provisioned capacity is billed by the hour; an idle function serves no requests.
        served = 0 if resource["status"] == "idle" else int(quantity * 1500)
        consumed, consumed_unit = Decimal(served), "Requests"
    category, service = CATEGORIES.get(resource["type"], CATEGORIES["other"])
    list_cost = str((quantity * list_price).quantize(PLACES))
    return charge_row(
        day,
        resource["provider"],
        quantity * price,
        "Usage",
        f"{resource['name']} usage",
        ListCost=list_cost,
        ListUnitPrice=str(list_price),
        ContractedUnitPrice=str(price),
        PricingQuantity=str(quantity),
        ConsumedQuantity=str(consumed),
        ConsumedUnit=consumed_unit,
        CommitmentDiscountId=commitment_id,
        SkuId=sku,
        RegionId=resource["region"],
        RegionName=resource["region"],
        ResourceId=resource["external_id"],
        ResourceName=resource["name"],
        ResourceType=resource["type"],
        ServiceCategory=category,
        ServiceName=service,
        SubAccountId=resource["account"],
        Tags=orjson.dumps(resource.get("tags") or {}).decode(),
    )


def invoice_id(row: Mapping[str, str]) -> str:
    """The invoice a closed billing period's row belongs to: one per account and month."""
    return f"INV-{row['BillingAccountId']}-{row['BillingPeriodStart'][:7]}"


def demo_billing(
    fleet: Iterable[Mapping[str, Any]], *, end: date, days: int = 60, seed: int = 7
) -> bytes:
    """FOCUS CSV bytes with one usage row per resource per day for ``days`` days before ``end``.

    As providers do, a row carries an ``InvoiceId`` once its billing period has closed (its
    month ended by ``end``); the running month's rows have none yet.
    """
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csvsafe.writer(out)
    header = [c.focus for c in COLUMNS]
    # Amounts go to the writer as numbers: text cells that a resource's name or tags can fill
    # are neutralised, numbers are not.
    amounts = {c.focus for c in COLUMNS if c.kind is Kind.DECIMAL}
    writer.writerow(header)
    resources = [*fleet, *UNMANAGED]
    closed = _stamp(end)

    def write(row: dict[str, str]) -> None:
        if row["BillingPeriodEnd"] <= closed:
            row["InvoiceId"] = invoice_id(row)
        writer.writerow(
            [Decimal(v) if name in amounts and v else v for name in header for v in [row.get(name)]]
        )

    for offset in range(days, 0, -1):
        day = end - timedelta(days=offset)
        load = WEEKDAY_LOAD[day.weekday()]
        for resource in resources:
            if resource["status"] in {"terminated", "pending"}:
                continue
            # A stopped instance still pays for its disks: about a tenth of its running price.
            share = Decimal("1") if resource["status"] != "stopped" else Decimal("0.1")
            noise = Decimal(str(round(rng.uniform(0.95, 1.05), 4)))
            quantity = (24 * share * load * noise).quantize(QUANTITY_PLACES)
            write(usage_row(day, resource, quantity))
        if day.day == 1:
            for provider in sorted({r["provider"] for r in resources}):
                write(charge_row(day, provider, Decimal("250"), "Purchase", "Business support"))
                write(charge_row(day, provider, Decimal("-40"), "Credit", "Promotional credit"))
    return out.getvalue().encode()
