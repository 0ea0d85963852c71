"""Savings recommendations: each rule reads the inventory mirror and says why and how much.

No aiohttp and no SQL. Rules and their defaults (all thresholds in :class:`Thresholds`):

- ``idle_compute``: running compute whose CPU stayed at or below 10% in every sample of the last
  14 days, with at least 4 samples (AWS Trusted Advisor "Low Utilization EC2 Instances" uses
  <= 10% CPU on 4 of 14 days). Saving: its whole hourly cost.
- ``rightsize``: running compute/database not idle, whose CPU and memory stayed at or below 40%
  (one size down halves vCPU and memory, so the load still fits under ~80%). Saving: half its cost.
- ``stopped_instance``: compute stopped for 7+ days that still costs money (attached disks).
- ``unattached_volume``: storage tagged ``kind=volume`` that is ``idle`` (not attached) for 7+ days.
- ``unused_ip``: network resource tagged ``kind=ip`` that is ``idle`` (not associated) for 1+ day.
- ``old_snapshot``: storage tagged ``kind=snapshot`` older than 90 days (Azure Advisor's default).

The inventory carries no network counters, so "idle" is judged on CPU alone; the evidence says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

Resource = dict[str, Any]


@dataclass(frozen=True)
class Thresholds:
    idle_cpu_percent: Decimal = Decimal("10")
    idle_window_days: int = 14
    idle_min_samples: int = 4
    rightsize_cpu_percent: Decimal = Decimal("40")
    rightsize_memory_percent: Decimal = Decimal("40")
    stopped_min_days: int = 7
    unattached_volume_days: int = 7
    unused_ip_days: int = 1
    old_snapshot_days: int = 90
    hours_per_month: Decimal = Decimal("730")


@dataclass(frozen=True)
class Recommendation:
    rule: str
    resource_id: str
    external_id: str
    name: str
    evidence: dict[str, Any]
    monthly_savings: Decimal
    currency: str


def _monthly(resource: Resource, t: Thresholds, share: Decimal = Decimal(1)) -> Decimal:
    return (Decimal(resource["hourly_cost"]) * t.hours_per_month * share).quantize(Decimal("0.01"))


def _kind(resource: Resource) -> str | None:
    tags = resource.get("tags") or {}
    kind = tags.get("kind")
    return str(kind) if kind is not None else None


def _is_idle(r: Resource, t: Thresholds) -> bool:
    cpu = r["cpu_samples"]
    return (
        r["type"] == "compute"
        and r["status"] == "running"
        and len(cpu) >= t.idle_min_samples
        and max(cpu) <= t.idle_cpu_percent
    )


def idle_compute(r: Resource, t: Thresholds, at: datetime) -> Recommendation | None:
    if not _is_idle(r, t):
        return None
    evidence = {"cpu_max_percent": max(r["cpu_samples"]), "samples": len(r["cpu_samples"]),
                "window_days": t.idle_window_days, "threshold_percent": t.idle_cpu_percent,
                "note": "network counters are not in the inventory; judged on CPU"}  # fmt: skip
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
    return _recommend("unattached_volume", r, {"unattached_since": r["status_since"]},
                      _monthly(r, t))  # fmt: skip


def unused_ip(r: Resource, t: Thresholds, at: datetime) -> Recommendation | None:
    if r["type"] != "network" or _kind(r) != "ip":
        return None
    if not _in_state_for(r, "idle", t.unused_ip_days, at):
        return None
    return _recommend("unused_ip", r, {"unassociated_since": r["status_since"]}, _monthly(r, t))


def old_snapshot(r: Resource, t: Thresholds, at: datetime) -> Recommendation | None:
    if r["type"] != "storage" or _kind(r) != "snapshot":
        return None
    age = at - r["created_at"]
    if age < timedelta(days=t.old_snapshot_days):
        return None
    return _recommend("old_snapshot", r, {"age_days": age.days, "created_at": r["created_at"]},
                      _monthly(r, t))  # fmt: skip


def _recommend(rule: str, r: Resource, evidence: dict[str, Any], saving: Decimal) -> Recommendation:
    return Recommendation(rule, str(r["id"]), r["external_id"], r["name"], evidence, saving,
                          r["currency"])  # fmt: skip


Rule = Callable[[Resource, Thresholds, datetime], Recommendation | None]
RULES: tuple[Rule, ...] = (
    idle_compute,
    rightsize,
    stopped_instance,
    unattached_volume,
    unused_ip,
    old_snapshot,
)


def recommend(resources: list[Resource], t: Thresholds, at: datetime) -> list[Recommendation]:
    """Every rule over every resource, largest saving first."""
    found = [rec for r in resources for rule in RULES if (rec := rule(r, t, at)) is not None]
    return sorted(found, key=lambda rec: (-rec.monthly_savings, rec.rule, rec.external_id))
