"""The savings use case: load the inventory mirror and the billing window, run every rule.

No aiohttp here; the optimisation handler calls this and renders the result.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from costs import storage
from costs.optimization import Billing, Recommendation, Thresholds, recommend


async def recommendations(
    pool: asyncpg.Pool, thresholds: Thresholds, at: datetime
) -> list[Recommendation]:
    """Savings as of ``at``: utilisation of the idle window, billing of the last billing window."""
    since = at - timedelta(days=thresholds.idle_window_days)
    start = at - timedelta(days=thresholds.billing_window_days)
    async with pool.acquire() as conn:
        resources = await storage.inventory_with_samples(conn, since, at)
        billing = Billing(
            window_days=thresholds.billing_window_days,
            billed=await storage.billed_by_resource(conn, start, at),
            daily=await storage.daily_consumption(conn, start, at),
            on_demand=await storage.on_demand_compute(conn, start, at),
        )
    return recommend(resources, thresholds, at, billing)
