"""A realistic, deterministic demo fleet: the same call always yields the same resources.

Because external ids are stable, seeding through the bulk upsert endpoint is idempotent.
"""

from __future__ import annotations

import random
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


def demo_fleet(size: int = 400, seed: int = 20261127) -> list[dict[str, Any]]:
    """``size`` resources spread over providers, regions, teams and states."""
    rng = random.Random(seed)
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    fleet = []
    for n in range(size):
        provider = rng.choice(["aws"] * 5 + ["azure"] * 2 + ["gcp"] * 2 + ["oci"])
        type_, sku, price = rng.choice(CATALOGUE[provider])
        region = rng.choice(REGIONS[provider])
        team = rng.choice(TEAMS)
        env = rng.choice(ENVIRONMENTS)
        status = rng.choices(statuses, weights)[0]
        account = {"aws": "4821-0937-1184", "azure": "sub-7f3a", "gcp": "proj-cloudops-demo"}.get(
            provider, "tenancy-eu"
        )
        busy = status == "running" and rng.random() > 0.2
        cpu = Decimal(rng.uniform(35, 92) if busy else rng.uniform(0.5, 9)).quantize(
            Decimal("0.01")
        )
        memory = Decimal(rng.uniform(30, 85)).quantize(Decimal("0.01"))
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
            }
        )
    return fleet
