"""Savings recommendations: each rule reads the inventory mirror or the billing and says why and
how much. No aiohttp and no SQL. Rules and their defaults (all thresholds in :class:`Thresholds`):

Inventory rules (utilisation history from ``resource.utilization_recorded``):

- ``idle_compute``: running compute whose CPU stayed at or below 10% in every sample of the last
  14 days, with at least 4 samples, and whose network stayed at or below 5 MB per sample where the
  samples count it (AWS Trusted Advisor "Low Utilization EC2 Instances": CPU <= 10% and network
  I/O <= 5 MB). Saving: its whole cost.
- ``rightsize``: running compute/database not idle, whose CPU and memory stayed at or below 40%
  (one size down halves vCPU and memory, so the load still fits under ~80%). Saving: half its cost.
- ``stopped_instance``: compute stopped for 7+ days that still costs money (attached disks).
- ``unattached_volume``: storage tagged ``kind=volume`` that is ``idle`` (not attached) for 7+ days.
- ``unused_ip``: network resource tagged ``kind=ip`` that is ``idle`` (not associated) for 1+ day.
- ``old_snapshot``: storage tagged ``kind=snapshot`` older than 90 days (Azure Advisor's default),
  aged from its creation at the provider when known.

No saving is more than the resource's monthly cost as billed (its daily cost on the days it was
billed in the window, per month), when the billing has it: an inventory rule prices a month at the
resource's hourly price, yet a stopped instance is priced as running in the inventory and billed
only for its disks.

Billing rules (any FOCUS file; ResourceId is matched to the inventory's external id), over the
last 30 days:

- ``zero_usage``: a resource billed on each of its last 7+ billed days with a ConsumedQuantity of
  zero on every one. Saving: its daily cost over those days, per month.
- ``unmanaged_spend``: a ResourceId that costs at least 1.00 a month (its daily cost on the days
  billed, per month) and is not in the inventory. Saving: that monthly cost, the figure at stake
  until someone owns or removes it.
- ``commitment_coverage``: compute usage without a commitment discount whose SKU the billing shows
  covered by a commitment at a contracted unit price below list. Saving: its quantity times the
  gap between the list price it pays and that contracted price, averaged over the window's 30
  days, per month, at least 1.00.

One resource gets one recommendation: the first rule above that fires for it speaks (waste is
removed before what is left is committed to).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

Resource = dict[str, Any]
Row = Mapping[str, Any]
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Thresholds:
    idle_cpu_percent: Decimal = Decimal("10")
    idle_window_days: int = 14
    idle_min_samples: int = 4
    idle_network_bytes: int = 5_000_000
    rightsize_cpu_percent: Decimal = Decimal("40")
    rightsize_memory_percent: Decimal = Decimal("40")
    stopped_min_days: int = 7
    unattached_volume_days: int = 7
    unused_ip_days: int = 1
    old_snapshot_days: int = 90
    hours_per_month: Decimal = Decimal("730")
    billing_window_days: int = 30
    zero_usage_days: int = 7
    unmanaged_min_monthly_cost: Decimal = Decimal("1")
    commitment_min_monthly_savings: Decimal = Decimal("1")


@dataclass(frozen=True)
class Recommendation:
    rule: str
    resource_id: str | None
    external_id: str
    name: str
    evidence: dict[str, Any]
    monthly_savings: Decimal
    currency: str


@dataclass(frozen=True)
class Billing:
    """The billing of the window, as the storage layer aggregates it per ResourceId.

    ``billed``: resource_id, currency, cost, days, resource_name. ``daily``: resource_id, currency,
    day, cost, consumed, consumed_unit. ``on_demand``: see ``storage.on_demand_compute``.
    """

    window_days: int
    billed: Sequence[Row] = ()
    daily: Sequence[Row] = ()
    on_demand: Sequence[Row] = ()


def _monthly(resource: Resource, t: Thresholds, share: Decimal = Decimal(1)) -> Decimal:
    return (Decimal(resource["hourly_cost"]) * t.hours_per_month * share).quantize(CENT)


def _per_month(amount: Decimal, days: int, t: Thresholds) -> Decimal:
    """An amount spent over ``days`` days, as a month of ``hours_per_month`` hours."""
    return (amount * t.hours_per_month / (Decimal(days) * 24)).quantize(CENT)


def _kind(resource: Resource) -> str | None:
    tags = resource.get("tags") or {}
    kind = tags.get("kind")
    return str(kind) if kind is not None else None


# ----- inventory rules --------------------------------------------------------------------------


def _is_idle(r: Resource, t: Thresholds) -> bool:
    cpu, network = r["cpu_samples"], r.get("network_samples") or []
    return (
        r["type"] == "compute"
        and r["status"] == "running"
        and len(cpu) >= t.idle_min_samples
        and max(cpu) <= t.idle_cpu_percent
        and (not network or max(network) <= t.idle_network_bytes)
    )


def idle_compute(r: Resource, t: Thresholds, at: datetime) -> Recommendation | None:
    if not _is_idle(r, t):
        return None
    network = r.get("network_samples") or []
    evidence = {
        "cpu_max_percent": max(r["cpu_samples"]),
        "samples": len(r["cpu_samples"]),
        "window_days": t.idle_window_days,
        "threshold_percent": t.idle_cpu_percent,
        "network_max_bytes": max(network) if network else None,
        "network_threshold_bytes": t.idle_network_bytes,
    }
    return _recommend("idle_compute", r, evidence, _monthly(r, t))


def rightsize(r: Resource, t: Thresholds, at: datetime) -> Recommendation | None:
    cpu, memory = r["cpu_samples"], r["memory_samples"]
    if (
        r["type"] not in ("compute", "database")
        or r["status"] != "running"
        or _is_idle(r, t)
        or len(cpu) < t.idle_min_samples
        or len(memory) < t.idle_min_samples
        or max(cpu) > t.rightsize_cpu_percent
        or max(memory) > t.rightsize_memory_percent
    ):
        return None
    evidence = {
        "cpu_max_percent": max(cpu),
        "memory_max_percent": max(memory),
        "samples": len(cpu),
        "window_days": t.idle_window_days,
        "suggestion": "one size smaller (half the vCPU and memory)",
    }
    return _recommend("rightsize", r, evidence, _monthly(r, t, Decimal("0.5")))


def _in_state_for(r: Resource, status: str, days: int, at: datetime) -> bool:
    since: datetime = r["status_since"]
    return bool(r["status"] == status and at - since >= timedelta(days=days))


def stopped_instance(r: Resource, t: Thresholds, at: datetime) -> Recommendation | None:
    if r["type"] != "compute" or Decimal(r["hourly_cost"]) <= 0:
        return None
    if not _in_state_for(r, "stopped", t.stopped_min_days, at):
        return None
    evidence = {"stopped_since": r["status_since"], "still_costs_per_hour": r["hourly_cost"]}
    return _recommend("stopped_instance", r, evidence, _monthly(r, t))


def unattached_volume(r: Resource, t: Thresholds, at: datetime) -> Recommendation | None:
    if r["type"] != "storage" or _kind(r) != "volume":
        return None
    if not _in_state_for(r, "idle", t.unattached_volume_days, at):
        return None
    return _recommend(
        "unattached_volume", r, {"unattached_since": r["status_since"]}, _monthly(r, t)
    )


def unused_ip(r: Resource, t: Thresholds, at: datetime) -> Recommendation | None:
    if r["type"] != "network" or _kind(r) != "ip":
        return None
    if not _in_state_for(r, "idle", t.unused_ip_days, at):
        return None
    return _recommend("unused_ip", r, {"unassociated_since": r["status_since"]}, _monthly(r, t))


def old_snapshot(r: Resource, t: Thresholds, at: datetime) -> Recommendation | None:
    if r["type"] != "storage" or _kind(r) != "snapshot":
        return None
    created: datetime = r.get("provisioned_at") or r["created_at"]
    age = at - created
    if age < timedelta(days=t.old_snapshot_days):
        return None
    return _recommend(
        "old_snapshot", r, {"age_days": age.days, "created_at": created}, _monthly(r, t)
    )


def _recommend(rule: str, r: Resource, evidence: dict[str, Any], saving: Decimal) -> Recommendation:
    return Recommendation(
        rule, str(r["id"]), r["external_id"], r["name"], evidence, saving, r["currency"]
    )


Rule = Callable[[Resource, Thresholds, datetime], Recommendation | None]
RULES: tuple[Rule, ...] = (
    idle_compute,
    rightsize,
    stopped_instance,
    unattached_volume,
    unused_ip,
    old_snapshot,
)


def _within_billed_cost(
    rec: Recommendation, billed_monthly: Mapping[tuple[str, str], Decimal]
) -> Recommendation:
    """No saving above what the billing says the resource costs a month."""
    billed = billed_monthly.get((rec.external_id, rec.currency))
    if billed is None:
        return rec
    evidence = {**rec.evidence, "billed_monthly_cost": billed}
    return replace(rec, evidence=evidence, monthly_savings=min(rec.monthly_savings, billed))


# ----- billing rules ----------------------------------------------------------------------------


def _name(external_id: str, inventory: Mapping[str, Resource], fallback: str | None) -> str:
    resource = inventory.get(external_id)
    return str(resource["name"]) if resource is not None else fallback or external_id


def _resource_id(external_id: str, inventory: Mapping[str, Resource]) -> str | None:
    resource = inventory.get(external_id)
    return str(resource["id"]) if resource is not None else None


def zero_usage(
    billing: Billing, inventory: Mapping[str, Resource], t: Thresholds
) -> list[Recommendation]:
    days: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in billing.daily:
        if row["cost"] > 0:
            days[(row["resource_id"], row["currency"])].append(row)
    found = []
    for (external_id, currency), billed in days.items():
        run = _trailing_zero_days(sorted(billed, key=lambda row: row["day"]))
        if len(run) < t.zero_usage_days:
            continue
        cost = sum((row["cost"] for row in run), Decimal(0))
        first: date = run[0]["day"]
        evidence = {
            "zero_usage_days": len(run),
            "since": first,
            "billed_in_those_days": cost,
            "consumed_unit": run[-1]["consumed_unit"],
            "threshold_days": t.zero_usage_days,
        }
        found.append(
            Recommendation(
                "zero_usage",
                _resource_id(external_id, inventory),
                external_id,
                _name(external_id, inventory, None),
                evidence,
                _per_month(cost, len(run), t),
                currency,
            )
        )
    return found


def _trailing_zero_days(billed_days: list[Row]) -> list[Row]:
    """The last billed days, newest backwards, on which a quantity was reported and it was 0."""
    run: list[Row] = []
    for row in reversed(billed_days):
        if row["consumed"] is None or row["consumed"] != 0:
            break
        run.append(row)
    return run[::-1]


def unmanaged_spend(
    billing: Billing, inventory: Mapping[str, Resource], t: Thresholds
) -> list[Recommendation]:
    found = []
    for row in billing.billed:
        external_id = row["resource_id"]
        if external_id in inventory:
            continue
        monthly = _per_month(row["cost"], row["days"], t)
        if monthly < t.unmanaged_min_monthly_cost:
            continue
        evidence = {
            "billed_in_window": row["cost"],
            "window_days": billing.window_days,
            "billed_days": row["days"],
            "service": row.get("service_name"),
            "note": "billed but not in the inventory: give it an owner or remove it",
        }
        found.append(
            Recommendation(
                "unmanaged_spend",
                None,
                external_id,
                row.get("resource_name") or external_id,
                evidence,
                monthly,
                row["currency"],
            )
        )
    return found


def commitment_coverage(
    billing: Billing, inventory: Mapping[str, Resource], t: Thresholds
) -> list[Recommendation]:
    found = []
    for row in billing.on_demand:
        saving = min(row["price_gap"], row["cost"])
        monthly = _per_month(saving, billing.window_days, t)
        if monthly < t.commitment_min_monthly_savings:
            continue
        external_id = row["resource_id"]
        evidence = {
            "sku": row["sku_id"],
            "on_demand_quantity": row["quantity"],
            "pricing_unit": row["pricing_unit"],
            "list_unit_price": row["list_unit_price"],
            "commitment_unit_price": row["commitment_unit_price"],
            "covered_elsewhere_by": row["commitment_discount_id"],
            "on_demand_cost_in_window": row["cost"],
            "window_days": billing.window_days,
        }
        found.append(
            Recommendation(
                "commitment_coverage",
                _resource_id(external_id, inventory),
                external_id,
                _name(external_id, inventory, None),
                evidence,
                monthly,
                row["currency"],
            )
        )
    return found


BillingRule = Callable[[Billing, Mapping[str, Resource], Thresholds], list[Recommendation]]
BILLING_RULES: tuple[BillingRule, ...] = (zero_usage, unmanaged_spend, commitment_coverage)


def recommend(
    resources: list[Resource], t: Thresholds, at: datetime, billing: Billing | None = None
) -> list[Recommendation]:
    """Every rule over the inventory and the billing, one per resource, largest saving first."""
    billing = billing or Billing(window_days=t.billing_window_days)
    billed_monthly = {
        (row["resource_id"], row["currency"]): _per_month(row["cost"], row["days"], t)
        for row in billing.billed
    }
    found = [rec for r in resources for rule in RULES if (rec := rule(r, t, at)) is not None]
    inventory = {r["external_id"]: r for r in resources}
    claimed = {rec.external_id for rec in found}
    for billing_rule in BILLING_RULES:
        fresh = _unclaimed(billing_rule(billing, inventory, t), claimed)
        claimed |= {rec.external_id for rec in fresh}
        found.extend(fresh)
    capped = [_within_billed_cost(rec, billed_monthly) for rec in found]
    return sorted(capped, key=lambda rec: (-rec.monthly_savings, rec.rule, rec.external_id))


def _unclaimed(recs: Iterable[Recommendation], claimed: set[str]) -> list[Recommendation]:
    out, seen = [], set(claimed)
    for rec in sorted(recs, key=lambda rec: -rec.monthly_savings):
        if rec.external_id not in seen and rec.monthly_savings > 0:
            seen.add(rec.external_id)
            out.append(rec)
    return out
