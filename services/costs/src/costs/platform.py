"""The platform's own running cost: every service's requests, from the ledger in PostgreSQL.

Each service measures its requests with :mod:`common.costtracker` (principal, route, wall time,
bytes, a share of the process's CPU) and pushes the totals to a Redis list; :class:`PlatformLedger`
drains that list into ``platform_usage`` (every costs worker may, each batch is taken once) and
prices the day: requests x the base price, CPU x the compute price, bytes x the network price,
plus the schema's size x the storage price, spread per day.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.costtracker import GB, USAGE_LIST, PlatformPrices, request_cost
from costs import storage

#: Batches taken from the list per round trip.
DRAIN_BATCHES = 500


class PlatformLedger:
    def __init__(
        self, pool: asyncpg.Pool, redis: Redis, *, prefix: str, prices: PlatformPrices
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.key = f"{prefix}{USAGE_LIST}"
        self.prices = prices

    async def drain(self) -> int:
        """Move every waiting batch into PostgreSQL; returns the rows written. A batch that
        cannot be stored is put back for the next drain."""
        written = 0
        while True:
            try:
                batches: list[bytes] | None = await self.redis.lpop(  # type: ignore[assignment]
                    self.key, DRAIN_BATCHES
                )
            except (RedisError, OSError) as exc:
                logger.warning("platform usage drain failed", error=type(exc).__name__)
                return written
            if not batches:
                return written
            rows = []
            for raw in batches:
                batch = orjson.loads(raw)
                for day, who, route, n, cpu, wall, nbytes in batch["rows"]:
                    rows.append((date.fromisoformat(day), who, batch["service"], route, n,
                                 Decimal(cpu), Decimal(wall), nbytes))  # fmt: skip
            try:
                async with self.pool.acquire() as conn:
                    await storage.add_platform_usage(conn, rows)
            except BaseException:
                await self.redis.lpush(self.key, *reversed(batches))
                raise
            written += len(rows)

    async def report(self, day: date, *, only: str | None = None) -> dict[str, Any]:
        """The day's cost; ``per_user`` lists every principal, or only the one named by ``only``.

        Totals, the breakdown and ``per_service`` always cover the whole platform: they name nobody;
        ``per_route`` is left empty with ``only``.
        """
        await self.drain()
        async with self.pool.acquire() as conn:
            rows = await storage.platform_usage(conn, day)
            size = await storage.schema_bytes(conn)
        prices = self.prices
        users: dict[Any, list[Any]] = {}
        routes: dict[Any, list[Any]] = {}
        services: dict[Any, list[Any]] = {}
        compute = network = base = Decimal(0)
        for r in rows:
            cost = request_cost(prices, r["requests"], r["cpu_seconds"], r["bytes_out"])
            compute += r["cpu_seconds"] * prices.compute_per_cpu_second
            network += Decimal(r["bytes_out"]) / GB * prices.network_per_gb
            base += r["requests"] * prices.per_request
            for table, key in ((users, r["principal"]), (routes, (r["service"], r["route"])),
                               (services, r["service"])):  # fmt: skip
                entry = table.setdefault(key, [0, Decimal(0), Decimal(0), Decimal(0), 0])
                entry[0] += r["requests"]
                entry[1] += cost
                entry[2] += r["cpu_seconds"]
                entry[3] += r["wall_seconds"]
                entry[4] += r["bytes_out"]

        def usage(entry: list[Any]) -> dict[str, Any]:
            n, cost, cpu, wall, nbytes = entry
            return {"requests": n, "cost": _usd(cost), "cpu_seconds": _usd(cpu),
                    "wall_seconds": _usd(wall), "bytes_out": nbytes}  # fmt: skip

        breakdown = {
            "requests": _usd(base),
            "compute": _usd(compute),
            "network": _usd(network),
            "storage": _usd(Decimal(size) / GB * prices.storage_per_gb_month / 30),
        }
        return {
            "date": day,
            "currency": "USD",
            "total": sum(breakdown.values()),
            "requests": sum(r["requests"] for r in rows),
            "breakdown": breakdown,
            "per_service": [{"service": s, **usage(e)} for s, e in sorted(services.items())],
            # Which routes were called, and how often, only an admin sees (as the gateway's stats).
            "per_route": [
                {"service": s, "route": route, **usage(e)}
                for (s, route), e in sorted(routes.items(), key=lambda kv: -kv[1][1])
                if only is None
            ],
            "per_user": [
                {"principal": who, **usage(e)}
                for who, e in sorted(users.items())
                if only is None or who == only
            ],
            "unit_prices": {
                "per_request": prices.per_request,
                "compute_per_cpu_second": prices.compute_per_cpu_second,
                "network_per_gb": prices.network_per_gb,
                "storage_per_gb_month": prices.storage_per_gb_month,
            },
        }


def _usd(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0000000001"))


LEDGER = web.AppKey("platform_ledger", PlatformLedger)
