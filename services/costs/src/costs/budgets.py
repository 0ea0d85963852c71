"""Budget use cases: CRUD, and the threshold check that emits each crossing exactly once.

Exactly once: a crossing is a row keyed by (budget, kind, threshold, period) inserted with
``ON CONFLICT DO NOTHING`` in the same transaction as its outbox event, so running the check twice,
on two replicas, or after a restart cannot publish it again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from common.errors import NotFound
from costs import storage
from costs.domain import (
    Budget,
    BudgetFields,
    BudgetPatch,
    crossed,
    month_bounds,
    projected_month_end,
)
from costs.events import budget_threshold_crossed, publish


class Budgets:
    def __init__(self, pool: asyncpg.Pool, *, team_tag_key: str = "team") -> None:
        self.pool = pool
        self.team_tag_key = team_tag_key

    async def create(self, fields: BudgetFields, created_by: str | None) -> Budget:
        async with self.pool.acquire() as conn:
            return await storage.insert_budget(conn, uuid.uuid4(), fields, created_by)

    async def get(self, budget_id: UUID) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            budget = await storage.get_budget(conn, budget_id)
            if budget is None:
                raise NotFound(f"No budget with id {budget_id}.")
            history = await storage.crossings(conn, budget_id)
        return {**budget.model_dump(), "crossings": history}

    async def page(self, limit: int, offset: int) -> tuple[list[Budget], int]:
        async with self.pool.acquire() as conn:
            return await storage.list_budgets(conn, limit, offset)

    async def update(self, budget_id: UUID, patch: BudgetPatch) -> Budget:
        async with self.pool.acquire() as conn:
            budget = await storage.update_budget(conn, budget_id, patch)
        if budget is None:
            raise NotFound(f"No budget with id {budget_id}.")
        return budget

    async def delete(self, budget_id: UUID) -> None:
        async with self.pool.acquire() as conn:
            if not await storage.delete_budget(conn, budget_id):
                raise NotFound(f"No budget with id {budget_id}.")

    async def _spend(self, conn: Any, budget: Budget, start: datetime, end: datetime) -> Any:
        scope: dict[str, Any] = {}
        if budget.scope == "provider":
            scope = {"scope_column": "provider_name", "value": budget.scope_value}
        elif budget.scope == "team":
            scope = {"tag_key": self.team_tag_key, "value": budget.scope_value}
        elif budget.scope == "tag":
            scope = {"tag_key": budget.scope_key, "value": budget.scope_value}
        return await storage.scoped_spend(
            conn, basis=budget.basis, currency=budget.currency, start=start, end=end, **scope
        )

    async def spend_this_month(self, at: datetime) -> list[tuple[Budget, Any]]:
        """Each budget with its spend in the month containing ``at``, up to ``at``."""
        start, end = month_bounds(at)
        async with self.pool.acquire() as conn:
            return [
                (budget, await self._spend(conn, budget, start, min(at, end)))
                for budget in await storage.all_budgets(conn)
            ]

    async def evaluate(self, at: datetime) -> list[dict[str, Any]]:
        """Check every budget for the month containing ``at``; returns the new crossings."""
        start, end = month_bounds(at)
        new: list[dict[str, Any]] = []
        async with self.pool.acquire() as conn:
            for budget in await storage.all_budgets(conn):
                actual = await self._spend(conn, budget, start, min(at, end))
                projected = projected_month_end(actual, at)
                async with conn.transaction():
                    for threshold in crossed(budget.thresholds, budget.amount, actual, projected):
                        value = actual if threshold.kind == "actual" else projected
                        if not await storage.record_crossing(
                            conn, UUID(budget.id), threshold.kind, threshold.percent,
                            start.date(), value,
                        ):  # fmt: skip
                            continue
                        data = {
                            "budget": budget.model_dump(mode="json"),
                            "threshold": threshold.model_dump(mode="json"),
                            "period": start.strftime("%Y-%m"),
                            "value": value,
                            "amount": budget.amount,
                            "currency": budget.currency,
                        }
                        await publish(conn, budget_threshold_crossed(data), subject=budget.id)
                        new.append(data)
        return new
