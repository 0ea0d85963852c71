"""Cost reports over the imported line items and the live inventory; anomalies emit events.

No aiohttp here: handlers call these and render the results.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import AsyncGenerator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from common import csvsafe
from costs import storage
from costs.domain import (
    CostFilter,
    DailyQuery,
    ForecastQuery,
    InvoiceQuery,
    RealtimeQuery,
    day_start,
    hours_left_in_month,
    month_bounds,
)
from costs.events import anomaly_detected, publish
from costs.focus import COLUMNS
from costs.forecast import HistoryTooShort, anomaly_scores, forecast

BY_DB = {c.db: c for c in COLUMNS}
_FOCUS_10_COLUMNS = [c.focus for c in COLUMNS].index("InvoiceId")


def now_utc() -> datetime:
    return datetime.now(UTC)


def _series(rows: list[asyncpg.Record], first: date, last: date) -> dict[str, list[Decimal]]:
    """Per currency, a gap-free daily series from ``first`` to ``last`` (missing days are 0)."""
    days = (last - first).days + 1
    out: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * days)
    for r in rows:
        out[r["currency"]][(r["day"] - first).days] += r["cost"]
    return dict(out)


class Reports:
    """Daily breakdowns, live rate, forecasts, anomaly detection and exports over one pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        horizon_days: int = 30,
        min_history_days: int = 14,
        anomaly_z: float = 3.5,
    ) -> None:
        self.pool = pool
        self.horizon_days = horizon_days
        self.min_history_days = min_history_days
        self.anomaly_z = anomaly_z

    async def daily(self, query: DailyQuery, today: date | None = None) -> dict[str, Any]:
        start, end = query.window(today or now_utc().date())
        async with self.pool.acquire() as conn:
            rows = await storage.daily_breakdown(
                conn, query, day_start(start), day_start(end + timedelta(days=1))
            )
            resources = (
                await storage.resources_by_external_id(conn, [r["grp"] for r in rows if r["grp"]])
                if query.group_by == "resource"
                else {}
            )
        totals: dict[str, Decimal] = defaultdict(Decimal)
        items = []
        for r in rows:
            totals[r["currency"]] += r["cost"]
            item = {
                "date": r["day"],
                "group": r["grp"],
                "currency": r["currency"],
                "cost": r["cost"],
                "line_items": r["items"],
            }
            if query.group_by == "resource":
                item["resource"] = resources.get(r["grp"])
            items.append(item)
        meta = {
            "start": start,
            "end": end,
            "basis": query.basis,
            "group_by": query.group_by,
            "totals": dict(totals),
        }
        return {"items": items, "meta": meta}

    async def daily_csv(self, query: DailyQuery) -> str:
        report = await self.daily(query)
        out = io.StringIO()
        writer = csvsafe.writer(out)
        writer.writerow(["date", query.group_by, "currency", f"{query.basis}_cost", "line_items"])
        for i in report["items"]:
            writer.writerow([i["date"], i["group"], i["currency"], i["cost"], i["line_items"]])
        return out.getvalue()

    async def focus_csv(self, query: DailyQuery) -> AsyncGenerator[bytes, None]:
        """The window's line items as FOCUS CSV, streamed from a server-side cursor.

        The FOCUS 1.0 columns are always written; a column a later version added only when some
        line item of the window has a value in it.
        """
        start, end = query.window(now_utc().date())
        first, last = day_start(start), day_start(end + timedelta(days=1))
        out = io.StringIO()
        writer = csvsafe.writer(out)
        async with self.pool.acquire() as conn, conn.transaction():
            newer = await storage.present_columns(
                conn, query, first, last, [c.db for c in COLUMNS[_FOCUS_10_COLUMNS:]]
            )
            columns = [*COLUMNS[:_FOCUS_10_COLUMNS], *(BY_DB[db] for db in newer)]
            writer.writerow([c.focus for c in columns])
            cursor = await storage.stream_line_items(
                conn, query, first, last, [c.db for c in columns]
            )
            async for row in cursor:
                writer.writerow([_focus_value(v) for v in row.values()])
                if out.tell() > 64 * 1024:
                    yield out.getvalue().encode()
                    out.seek(0)
                    out.truncate()
        yield out.getvalue().encode()

    async def invoices(self, query: InvoiceQuery) -> tuple[list[dict[str, Any]], int]:
        """Per InvoiceId: its account, billing period, currency and exact billed total."""
        start = day_start(query.start) if query.start else None
        end = day_start(query.end + timedelta(days=1)) if query.end else None
        async with self.pool.acquire() as conn:
            return await storage.invoices(conn, query, start, end)

    async def realtime(self, query: RealtimeQuery) -> dict[str, Any]:
        at = query.at or now_utc()
        start, _ = month_bounds(at)
        column = "provider" if query.group_by == "provider" else "team"
        async with self.pool.acquire() as conn:
            rows = await storage.running_rates(conn, column)
            mtd = await storage.month_to_date(conn, query.basis, start, at)
        hourly: dict[str, Decimal] = defaultdict(Decimal)
        for r in rows:
            hourly[r["currency"]] += r["hourly"]
        left = hours_left_in_month(at)
        currencies = sorted(set(hourly) | set(mtd))
        projected = {
            c: mtd.get(c, Decimal(0)) + hourly.get(c, Decimal(0)) * left for c in currencies
        }
        return {
            "at": at,
            "group_by": query.group_by,
            "groups": [
                {
                    "group": r["grp"],
                    "currency": r["currency"],
                    "hourly_cost": r["hourly"],
                    "running_resources": r["n"],
                }
                for r in rows
            ],
            "hourly_cost": dict(hourly),
            "month_to_date": {c: mtd.get(c, Decimal(0)) for c in currencies},
            "projected_month_end": projected,
            "month": start.strftime("%Y-%m"),
            "hours_left_in_month": left.quantize(Decimal("0.01")),
        }

    async def _history(
        self, query: CostFilter, end: date | None, lookback: int
    ) -> tuple[date, date, dict[str, list[Decimal]]]:
        async with self.pool.acquire() as conn:
            last = end or await storage.last_charge_day(conn) or now_utc().date()
            first_wanted = last - timedelta(days=lookback - 1)
            rows = await storage.daily_totals(
                conn, query, day_start(first_wanted), day_start(last + timedelta(days=1))
            )
        first = min((r["day"] for r in rows), default=last)
        return first, last, _series(rows, first, last)

    async def forecast(self, query: ForecastQuery) -> dict[str, Any]:
        horizon = query.horizon or self.horizon_days
        first, last, series = await self._history(query, query.end, query.lookback)
        history_days = (last - first).days + 1 if series else 0
        result: dict[str, Any] = {
            "basis": query.basis,
            "history": {"first": first if series else None, "last": last, "days": history_days},
            "horizon_days": horizon,
            "model": "OLS: intercept + linear trend + day-of-week, 80% prediction interval",
            "currencies": {},
        }
        messages = []
        if not series:
            messages.append("No cost history matches this query; nothing to forecast.")
        for currency, values in sorted(series.items()):
            try:
                points = forecast(values, first, horizon, min_days=self.min_history_days)
            except HistoryTooShort as exc:
                messages.append(f"{currency}: {exc}")
                continue
            result["currencies"][currency] = [
                {"date": p.day, "point": p.point, "lower": p.lower, "upper": p.upper}
                for p in points
            ]
        result["message"] = " ".join(messages) or None
        return result

    async def detect_anomalies(self, query: ForecastQuery) -> list[dict[str, Any]]:
        """Days whose cost is far from the model fitted to the window; each new one is an event."""
        first, _, series = await self._history(query, query.end, query.lookback)
        found: list[dict[str, Any]] = []
        for currency, values in sorted(series.items()):
            try:
                scores, expected = anomaly_scores(
                    values, first, threshold=self.anomaly_z, min_days=self.min_history_days
                )
            except HistoryTooShort:
                continue
            for i, score in enumerate(scores):
                if abs(score) < self.anomaly_z:
                    continue
                found.append(
                    {
                        "date": first + timedelta(days=i),
                        "dimension": f"{query.dimension()}:{currency}",
                        "basis": query.basis,
                        "currency": currency,
                        "actual": values[i],
                        "expected": expected[i],
                        "score": Decimal(repr(round(score, 3))),
                    }
                )
        async with self.pool.acquire() as conn, conn.transaction():
            for a in found:
                fresh = await storage.record_anomaly(
                    conn,
                    a["date"],
                    a["dimension"],
                    a["basis"],
                    a["actual"],
                    a["expected"],
                    a["score"],
                )
                a["new"] = fresh
                if fresh:
                    await publish(conn, anomaly_detected(a), subject=a["dimension"])
        return found

    async def anomalies(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        async with self.pool.acquire() as conn:
            return await storage.list_anomalies(conn, limit, offset)


def _focus_value(value: Any) -> Any:
    """Instants as FOCUS writes them (``2024-01-01T00:00:00Z``); the rest as the CSV writer does."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value
