"""Cost and budget signals for Prometheus, from a cached snapshot of a few cheap aggregates.

A scrape never runs the aggregates itself unless the snapshot is older than the refresh interval
(``CLOUDOPS_COSTS_METRICS_REFRESH_SECONDS``) or a write through this worker (an import, a budget
change) made it stale; rendering then only reads the snapshot. Exported:

- ``cloudops_cost_hourly{provider,team,currency}``: the hourly rate of the running resources;
- ``cloudops_cost_month_to_date{currency}`` and ``cloudops_cost_projected_month_end{currency}``
  (month to date plus the current hourly rate until the month ends, as ``/api/costs/realtime``);
- ``cloudops_budget_utilization_ratio{budget,scope}``: each budget's spend this month / amount;
- ``cloudops_cost_anomalies{currency}``: anomalous days recorded for the current month;
- ``cloudops_cost_signals_refreshed_timestamp_seconds``: when the snapshot was taken.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
from aiohttp import web
from loguru import logger
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from common.db import Connection
from common.metrics import register_collector
from common.web import Handler
from costs.budgets import Budgets
from costs.domain import Budget, hours_left_in_month, month_bounds

UNASSIGNED = "unassigned"
#: A refresh that takes longer than this is abandoned; the scrape shows the previous snapshot.
REFRESH_TIMEOUT = 5.0


@dataclass(frozen=True)
class CostSnapshot:
    """What the collector exports; ``hourly`` rows are (provider, team, currency, rate)."""

    taken_at: float
    hourly: list[tuple[str, str, str, Decimal]] = field(default_factory=list)
    month_to_date: dict[str, Decimal] = field(default_factory=dict)
    projected_month_end: dict[str, Decimal] = field(default_factory=dict)
    budgets: list[tuple[str, str, Decimal]] = field(default_factory=list)
    anomalies: dict[str, int] = field(default_factory=dict)


def budget_scope(budget: Budget) -> str:
    """``all``, ``provider:aws``, ``team:platform`` or ``tag:env=prod``: short and bounded."""
    if budget.scope == "all":
        return "all"
    if budget.scope == "tag":
        return f"tag:{budget.scope_key}={budget.scope_value}"
    return f"{budget.scope}:{budget.scope_value}"


async def _hourly(conn: Connection) -> list[tuple[str, str, str, Decimal]]:
    rows = await conn.fetch(
        """SELECT provider, coalesce(team, $1) AS team, currency, sum(hourly_cost) AS hourly
            FROM inventory WHERE status = 'running' AND NOT deleted
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
        UNASSIGNED,
    )
    return [(r["provider"], r["team"], r["currency"], r["hourly"]) for r in rows]


async def _month_to_date(conn: Connection, start: datetime, at: datetime) -> dict[str, Decimal]:
    # The billed basis, as the default of /api/costs/realtime; the charge-start index bounds it.
    rows = await conn.fetch(
        """SELECT billing_currency AS currency, coalesce(sum(billed_cost), 0) AS cost
            FROM line_items WHERE charge_period_start >= $1 AND charge_period_start < $2
              AND billing_currency IS NOT NULL GROUP BY 1""",
        start,
        at,
    )
    return {r["currency"]: r["cost"] for r in rows}


async def _anomalies(conn: Connection, start: datetime) -> dict[str, int]:
    # A dimension ends in ":<currency>" (Reports.detect_anomalies).
    rows = await conn.fetch(
        """SELECT substring(dimension from '[^:]*$') AS currency, count(*) AS n
            FROM anomalies WHERE day >= $1 GROUP BY 1""",
        start.date(),
    )
    return {r["currency"]: r["n"] for r in rows}


class CostSignals:
    """The snapshot and its refresh policy, for one worker."""

    def __init__(self, pool: asyncpg.Pool, budgets: Budgets, *, refresh_seconds: float) -> None:
        self.pool = pool
        self.budgets = budgets
        self.refresh_seconds = refresh_seconds
        self.snapshot: CostSnapshot | None = None
        self._stale = True
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """The next scrape refreshes first (called after writes that change costs or budgets)."""
        self._stale = True

    def _fresh(self) -> bool:
        return (
            not self._stale
            and self.snapshot is not None
            and time.time() - self.snapshot.taken_at < self.refresh_seconds
        )

    async def refresh_if_stale(self) -> None:
        """Scrape hook: bounded in time; on failure the previous snapshot stays."""
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():  # another scrape refreshed it while this one waited
                return
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT):
                    self.snapshot = await self.take(datetime.now(UTC))
                self._stale = False
            except Exception as exc:  # the signals are advisory: keep serving /metrics
                logger.warning("cost signals refresh failed", error=type(exc).__name__)

    async def take(self, at: datetime) -> CostSnapshot:
        start, _ = month_bounds(at)
        async with self.pool.acquire() as conn:
            hourly = await _hourly(conn)
            mtd = await _month_to_date(conn, start, at)
            anomalies = await _anomalies(conn, start)
        spent = await self.budgets.spend_this_month(at)
        rate: dict[str, Decimal] = {}
        for _, _, currency, value in hourly:
            rate[currency] = rate.get(currency, Decimal(0)) + value
        left = hours_left_in_month(at)
        currencies = set(rate) | set(mtd)
        return CostSnapshot(
            taken_at=time.time(),
            hourly=hourly,
            month_to_date={c: mtd.get(c, Decimal(0)) for c in currencies},
            projected_month_end={
                c: mtd.get(c, Decimal(0)) + rate.get(c, Decimal(0)) * left for c in currencies
            },
            budgets=[(b.name, budget_scope(b), spend / b.amount) for b, spend in spent],
            anomalies=anomalies,
        )


class CostSignalsCollector(Collector):
    """Renders the current worker's snapshot; registered once per process."""

    def __init__(self) -> None:
        self.source: CostSignals | None = None

    def collect(self) -> Iterable[Metric]:
        hourly = GaugeMetricFamily(
            "cloudops_cost_hourly",
            "Hourly cost rate of the running resources.",
            labels=["provider", "team", "currency"],
        )
        mtd = GaugeMetricFamily(
            "cloudops_cost_month_to_date",
            "Billed cost of the current UTC month so far.",
            labels=["currency"],
        )
        projected = GaugeMetricFamily(
            "cloudops_cost_projected_month_end",
            "Month to date plus the current hourly rate until the month ends.",
            labels=["currency"],
        )
        budgets = GaugeMetricFamily(
            "cloudops_budget_utilization_ratio",
            "Spend this month divided by the budget's amount (1 = the whole budget).",
            labels=["budget", "scope"],
        )
        anomalies = GaugeMetricFamily(
            "cloudops_cost_anomalies",
            "Anomalous cost days recorded for the current month.",
            labels=["currency"],
        )
        refreshed = GaugeMetricFamily(
            "cloudops_cost_signals_refreshed_timestamp_seconds",
            "When the cost signals were last computed (Unix time).",
        )
        snapshot = self.source.snapshot if self.source is not None else None
        if snapshot is not None:
            for provider, team, currency, value in snapshot.hourly:
                hourly.add_metric([provider, team, currency], float(value))
            for currency, value in sorted(snapshot.month_to_date.items()):
                mtd.add_metric([currency], float(value))
            for currency, value in sorted(snapshot.projected_month_end.items()):
                projected.add_metric([currency], float(value))
            for name, scope, ratio in snapshot.budgets:
                budgets.add_metric([name, scope], float(ratio))
            for currency, count in sorted(snapshot.anomalies.items()):
                anomalies.add_metric([currency], float(count))
            refreshed.add_metric([], snapshot.taken_at)
        return [hourly, mtd, projected, budgets, anomalies, refreshed]


COLLECTOR = CostSignalsCollector()
register_collector(COLLECTOR)
COST_SIGNALS = web.AppKey("cost_signals", CostSignals)


@web.middleware
async def invalidate_on_write(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A successful write (import, budget change) makes this worker's next scrape refresh."""
    response = await handler(request)
    if request.method not in ("GET", "HEAD", "OPTIONS") and response.status < 400:
        signals = request.config_dict.get(COST_SIGNALS)
        if signals is not None:
            signals.invalidate()
    return response
