"""A realistic, deterministic demo fleet and its utilisation: the same call (on the same day)
always yields the same resources and samples.

Because external ids are stable, seeding through the bulk upsert endpoint is idempotent. The
fleet carries a case for every savings rule: quiet and oversized machines (their utilisation
history says so), machines stopped for days, detached volumes, unassociated IPs, old snapshots.
Dates such as "stopped since" count back from ``today``, so they read the same on any day.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

# Hourly on-demand prices in the ballpark of the providers' public price lists.
CATALOGUE: dict[str, list[tuple[str, str, str]]] = {
    "aws": [
        ("compute", "m6i.large", "0.0960"),
        ("compute", "c6g.xlarge", "0.1360"),
        ("compute", "t3.medium", "0.0416"),
        ("database", "db.r6g.large", "0.2250"),
        ("storage", "gp3-500GiB", "0.0548"),
        ("container", "eks-cluster", "0.1000"),
        ("serverless", "lambda-fn", "0.0021"),
        ("network", "nat-gateway", "0.0450"),
    ],
    "azure": [
        ("compute", "Standard_D4s_v5", "0.1920"),
        ("compute", "Standard_B2s", "0.0416"),
        ("database", "SQL-GP-Gen5-2", "0.5044"),
        ("storage", "P30-disk", "0.1652"),
        ("container", "aks-node-pool", "0.0960"),
    ],
    "gcp": [
        ("compute", "e2-standard-4", "0.1340"),
        ("compute", "n2-standard-8", "0.3885"),
        ("database", "cloudsql-pg-4vcpu", "0.3930"),
        ("storage", "pd-ssd-1TB", "0.2329"),
        ("serverless", "cloud-run-svc", "0.0086"),
    ],
    "oci": [
        ("compute", "VM.Standard.E4.Flex", "0.0500"),
        ("database", "autonomous-db", "0.6720"),
    ],
}
REGIONS = {
    "aws": ["us-east-1", "eu-west-1", "ap-southeast-2"],
    "azure": ["westeurope", "eastus2"],
    "gcp": ["europe-west4", "us-central1"],
    "oci": ["eu-frankfurt-1"],
}
TEAMS = ["payments", "search", "data-platform", "web", "ml", "identity", "sre"]
ENVIRONMENTS = ["prod", "staging", "dev"]
STATUS_WEIGHTS = {
    "running": 70,
    "stopped": 10,
    "idle": 8,
    "pending": 4,
    "error": 3,
    "terminated": 5,
}


def _days_ago(today: date, days: int) -> str:
    return datetime.combine(today - timedelta(days=days), time(), UTC).isoformat()


def _figures(rng: random.Random, status: str) -> tuple[Decimal, Decimal]:
    """CPU and memory now: most running machines are busy, some oversized, some quiet."""
    profile = "quiet"
    if status == "running":
        profile = rng.choices(["busy", "oversized", "quiet"], [64, 16, 20])[0]
    cpu, memory = {
        "busy": (rng.uniform(35, 92), rng.uniform(30, 85)),
        "oversized": (rng.uniform(12, 30), rng.uniform(18, 34)),
        "quiet": (rng.uniform(0.5, 9), rng.uniform(30, 85)),
    }[profile]
    return Decimal(cpu).quantize(Decimal("0.01")), Decimal(memory).quantize(Decimal("0.01"))


def demo_fleet(
    size: int = 400, seed: int = 20261127, today: date | None = None
) -> list[dict[str, Any]]:
    """``size`` resources: the :func:`forgotten_resources` that the savings rules are there to
    find, and the rest spread over providers, regions, teams and states."""
    today = today or datetime.now(UTC).date()
    rng = random.Random(seed)
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    fleet = []
    forgotten = forgotten_resources(today, seed)
    for n in range(max(size - len(forgotten), 0)):
        provider = rng.choice(["aws"] * 5 + ["azure"] * 2 + ["gcp"] * 2 + ["oci"])
        type_, sku, price = rng.choice(CATALOGUE[provider])
        region = rng.choice(REGIONS[provider])
        team = rng.choice(TEAMS)
        env = rng.choice(ENVIRONMENTS)
        status = rng.choices(statuses, weights)[0]
        account = {"aws": "4821-0937-1184", "azure": "sub-7f3a", "gcp": "proj-cloudops-demo"}.get(
            provider, "tenancy-eu"
        )
        cpu, memory = _figures(rng, status)
        # A stopped machine's stop is dated, as a provider's inventory reports it.
        since = _days_ago(today, rng.randint(2, 40)) if status == "stopped" else None
        fleet.append(
            {
                "external_id": f"{provider}:{region}:{type_}:{sku}:{n:05d}",
                "name": f"{team}-{env}-{sku.split('.')[0].lower()}-{n:03d}",
                "provider": provider,
                "type": type_,
                "region": region,
                "account": account,
                "status": status,
                "hourly_cost": price,
                "currency": "USD",
                "tags": {
                    "env": env,
                    "team": team,
                    "sku": sku,
                    "cost-center": f"cc-{TEAMS.index(team) + 100}",
                },
                "owner": f"{team}@example.com",
                "team": team,
                "cpu_utilization": str(cpu)
                if type_ in {"compute", "database", "container"}
                else None,
                "memory_utilization": str(memory) if type_ in {"compute", "database"} else None,
                "status_since": since,
            }
        )
    return fleet + forgotten


def forgotten_resources(today: date, seed: int = 20261127) -> list[dict[str, Any]]:
    """Detached volumes, unassociated IPs and snapshots, each with the near-miss beside it: a
    volume detached yesterday, an IP released an hour ago, a snapshot from last month."""
    rng = random.Random(seed + 1)
    items: list[tuple[str, str, str, str, int, int | None]] = [
        # (kind, type, sku, hourly price, status age in days, provider age in days)
        *(("volume", "storage", "gp3-100GiB", "0.0110", rng.randint(8, 60), None)
          for _ in range(5)),
        ("volume", "storage", "gp3-100GiB", "0.0110", 1, None),
        *(("ip", "network", "elastic-ip", "0.0050", rng.randint(2, 30), None) for _ in range(4)),
        ("ip", "network", "elastic-ip", "0.0050", 0, None),
        *(("snapshot", "storage", "ebs-snapshot-200GiB", "0.0137", 0, rng.randint(95, 500))
          for _ in range(5)),
        ("snapshot", "storage", "ebs-snapshot-200GiB", "0.0137", 0, 30),
    ]  # fmt: skip
    out = []
    for n, (kind, type_, sku, price, status_days, age_days) in enumerate(items):
        team = TEAMS[n % len(TEAMS)]
        region = REGIONS["aws"][n % len(REGIONS["aws"])]
        status = "running" if kind == "snapshot" else "idle"
        out.append(
            {
                "external_id": f"aws:{region}:{type_}:{kind}:{n:05d}",
                "name": f"{team}-{kind}-{n:03d}",
                "provider": "aws",
                "type": type_,
                "region": region,
                "account": "4821-0937-1184",
                "status": status,
                "hourly_cost": price,
                "currency": "USD",
                "tags": {"env": "prod", "team": team, "sku": sku, "kind": kind,
                         "cost-center": f"cc-{TEAMS.index(team) + 100}"},
                "owner": f"{team}@example.com",
                "team": team,
                "cpu_utilization": None,
                "memory_utilization": None,
                "status_since": _days_ago(today, status_days) if kind != "snapshot" else None,
                "provisioned_at": _days_ago(today, age_days) if age_days is not None else None,
            }
        )  # fmt: skip
    return out


#: Machines whose utilisation is sampled: those that run a workload and report CPU.
SAMPLED_STATUSES = frozenset({"running", "idle", "error"})


def demo_utilization(
    fleet: list[dict[str, Any]], *, end: datetime, days: int = 30, every_hours: int = 6
) -> list[dict[str, Any]]:
    """Samples every ``every_hours`` for ``days`` up to ``end``, for the fleet's machines.

    Each history ends at the resource's current figures and stays in its profile: a quiet
    machine never goes above 10% CPU, an oversized one stays under 40% CPU and memory, a busy
    one peaks well above. Network counts bytes per interval (a quiet machine moves little).
    """
    rng = random.Random(f"{end.isoformat()}-{len(fleet)}")
    samples = []
    steps = days * 24 // every_hours
    for resource in fleet:
        if resource["cpu_utilization"] is None or resource["status"] not in SAMPLED_STATUSES:
            continue
        cpu = Decimal(resource["cpu_utilization"])
        memory = Decimal(resource["memory_utilization"] or "50")
        quiet = cpu < 10
        oversized = not quiet and cpu <= 30 and memory <= 34
        for step in range(steps, -1, -1):
            at = end - timedelta(hours=every_hours * step)
            if step == 0:
                c, m = cpu, memory
            elif quiet:
                c, m = Decimal(rng.uniform(0.3, 9.6)), memory * Decimal(rng.uniform(0.9, 1.05))
            else:
                c = cpu * Decimal(rng.uniform(0.6, 1.3 if oversized else 1.25))
                m = memory * Decimal(rng.uniform(0.85, 1.15 if oversized else 1.1))
                if oversized:
                    c, m = min(c, Decimal("39.5")), min(m, Decimal("39.5"))
            network = rng.randint(10_000, 3_000_000) if quiet else rng.randint(5 * 10**7, 2 * 10**9)
            samples.append(
                {
                    "external_id": resource["external_id"],
                    "timestamp": at.isoformat(),
                    "cpu_percent": str(min(c, Decimal(100)).quantize(Decimal("0.01"))),
                    "memory_percent": str(min(m, Decimal(100)).quantize(Decimal("0.01"))),
                    "network_bytes": network,
                }
            )
    return samples
