"""The platform's own running cost: a per-request estimate from configured unit prices.

Each request costs its CPU time times the compute price plus its response bytes times the network
price; storage is the schema's size times the storage price, spread per day. Requests are counted
in memory and flushed to PostgreSQL (so every worker and replica adds to one daily report).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import Counter

from costs import storage

PLATFORM_COST = Counter(
    "platform_cost_usd_total",
    "Estimated cost of serving requests, from configured unit prices.",
    ["service", "component"],
)
GB = Decimal(1024**3)
ANONYMOUS = "anonymous"


class CostTracker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        service: str,
        compute_per_cpu_second: Decimal,
        network_per_gb: Decimal,
        storage_per_gb_month: Decimal,
    ) -> None:
        self.pool = pool
        self.service = service
        self.compute_per_cpu_second = compute_per_cpu_second
        self.network_per_gb = network_per_gb
        self.storage_per_gb_month = storage_per_gb_month
        self._pending: dict[tuple[date, str], list[Any]] = defaultdict(lambda: [0, Decimal(0), 0])

    def record(self, principal: str, cpu_seconds: Decimal, bytes_out: int) -> None:
        entry = self._pending[(datetime.now(UTC).date(), principal)]
        entry[0] += 1
        entry[1] += cpu_seconds
        entry[2] += bytes_out
        PLATFORM_COST.labels(self.service, "compute").inc(
            float(cpu_seconds * self.compute_per_cpu_second)
        )
        PLATFORM_COST.labels(self.service, "network").inc(
            float(Decimal(bytes_out) / GB * self.network_per_gb)
        )

    async def flush(self) -> None:
        pending, self._pending = self._pending, defaultdict(lambda: [0, Decimal(0), 0])
        rows = [(day, who, n, cpu, out) for (day, who), (n, cpu, out) in pending.items()]
        if rows:
            async with self.pool.acquire() as conn:
                await storage.add_platform_usage(conn, rows)

    async def report(self, day: date, *, only: str | None = None) -> dict[str, Any]:
        """The day's cost; ``per_user`` lists every principal, or only the one named by ``only``.

        Totals and the breakdown always cover the whole platform: they name nobody.
        """
        await self.flush()
        async with self.pool.acquire() as conn:
            rows = await storage.platform_usage(conn, day)
            size = await storage.schema_bytes(conn)
        per_user = []
        compute = network = Decimal(0)
        for r in rows:
            c = r["cpu_seconds"] * self.compute_per_cpu_second
            n = Decimal(r["bytes_out"]) / GB * self.network_per_gb
            compute += c
            network += n
            if only is None or r["principal"] == only:
                per_user.append(
                    {"principal": r["principal"], "requests": r["requests"], "cost": _usd(c + n)}
                )
        breakdown = {
            "compute": _usd(compute),
            "network": _usd(network),
            "storage": _usd(Decimal(size) / GB * self.storage_per_gb_month / 30),
        }
        return {
            "date": day,
            "currency": "USD",
            "total": sum(breakdown.values()),
            "requests": sum(r["requests"] for r in rows),
            "breakdown": breakdown,
            "per_user": per_user,
            "unit_prices": {
                "compute_per_cpu_second": self.compute_per_cpu_second,
                "network_per_gb": self.network_per_gb,
                "storage_per_gb_month": self.storage_per_gb_month,
            },
        }


def _usd(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0000000001"))


TRACKER = web.AppKey("cost_tracker", CostTracker)


@web.middleware
async def cost_tracking_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Charge each request's CPU time and response size to the principal the gateway named."""
    started = time.process_time()
    response: web.StreamResponse = await handler(request)
    tracker = request.config_dict.get(TRACKER)
    if tracker is not None:
        principal = request.headers.get("X-CloudOps-Principal") or ANONYMOUS
        cpu = Decimal(repr(time.process_time() - started))
        tracker.record(principal[:128], cpu, response.content_length or 0)
    return response
