"""The costs service application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiohttp import web
from loguru import logger
from redis.asyncio import Redis

from common.costtracker import PlatformPrices
from common.db import DB_POOL, postgres_ctx
from common.messaging import declare_subscriptions, messaging_ctx
from common.metrics import SCRAPE_HOOKS, ScrapeHook
from common.redis import REDIS, redis_ctx
from common.web import create_base_app
from costs.budgets import Budgets
from costs.cache import HOLDER, CostAwareCache
from costs.context import BUDGETS, COST_CACHE, IMPORTER, REPORTS, SETTINGS_KEY, THRESHOLDS
from costs.domain import ForecastQuery
from costs.events import CONSUMERS
from costs.handlers import add_routes
from costs.importer import Importer
from costs.optimization import Thresholds
from costs.platform import LEDGER, PlatformLedger
from costs.reports import Reports
from costs.settings import CostsSettings
from costs.signals import COLLECTOR, COST_SIGNALS, CostSignals, invalidate_on_write

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def make_importer(
    pool: asyncpg.Pool,
    settings: CostsSettings,
    changed: Callable[[set[str]], Awaitable[None]] | None = None,
) -> Importer:
    return Importer(
        pool,
        max_line_bytes=settings.import_max_line_bytes,
        max_upload_bytes=settings.import_max_upload_bytes,
        batch_rows=settings.import_batch_rows,
        chunk_bytes=settings.import_chunk_bytes,
        max_stored_rejections=settings.import_max_stored_rejections,
        service=settings.service_name,
        changed=changed,
    )


def cost_cache(redis: Redis, settings: CostsSettings) -> CostAwareCache:
    return CostAwareCache(
        redis,
        prefix=settings.redis_prefix,
        service=settings.service_name,
        ttl_per_miss_second=settings.cache_ttl_per_miss_second,
        min_ttl=settings.cache_min_ttl_seconds,
        max_ttl=settings.cache_max_ttl_seconds,
    )


def thresholds_from(settings: CostsSettings) -> Thresholds:
    names = Thresholds.__dataclass_fields__
    return Thresholds(**{name: getattr(settings, name) for name in names})


async def use_cases_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, pool = app[SETTINGS_KEY], app[DB_POOL]
    app[REPORTS] = Reports(
        pool,
        horizon_days=settings.forecast_horizon_days,
        min_history_days=settings.forecast_min_history_days,
        anomaly_z=settings.anomaly_z_threshold,
    )
    app[BUDGETS] = Budgets(pool, team_tag_key=settings.team_tag_key)
    app[THRESHOLDS] = thresholds_from(settings)
    cache = cost_cache(app[REDIS], settings)
    app[COST_CACHE] = HOLDER.cache = cache
    app[IMPORTER] = make_importer(pool, settings, cache.imported)
    app[LEDGER] = PlatformLedger(
        pool, app[REDIS], prefix=settings.redis_prefix, prices=PlatformPrices()
    )
    signals = CostSignals(pool, app[BUDGETS], refresh_seconds=settings.metrics_refresh_seconds)
    app[COST_SIGNALS] = signals
    hooks: list[ScrapeHook] = [signals.refresh_if_stale]
    app[SCRAPE_HOOKS] = hooks
    COLLECTOR.source = signals
    yield
    if COLLECTOR.source is signals:
        COLLECTOR.source = None
    if HOLDER.cache is cache:
        HOLDER.cache = None


async def periodic_checks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Budget thresholds and anomalies are checked on a timer (crossings are emitted once)."""
    interval = app[SETTINGS_KEY].budget_check_seconds

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await app[BUDGETS].evaluate(datetime.now(UTC))
                await app[REPORTS].detect_anomalies(ForecastQuery())
                await app[LEDGER].drain()
            except Exception:  # keep checking; the next round may succeed
                logger.exception("periodic cost checks failed")

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def declare_queues(settings: CostsSettings | None = None) -> list[str]:
    """Declare the queues and bindings of the consumers, before any instance runs (``make up``
    does at migrate time), so events published earlier wait for the service."""
    return await declare_subscriptions(settings or CostsSettings(), CONSUMERS)


def create_app(settings: CostsSettings | None = None) -> web.Application:
    settings = settings or CostsSettings()
    app = create_base_app(
        settings,
        client_max_size=settings.max_body_bytes,
        middlewares=(invalidate_on_write,),
    )
    app[SETTINGS_KEY] = settings
    # Order matters: each context may use what the ones before it opened.
    app.cleanup_ctx.extend(
        [
            postgres_ctx(MIGRATIONS),
            redis_ctx,
            messaging_ctx(CONSUMERS),
            use_cases_ctx,
            periodic_checks_ctx,
        ]
    )
    add_routes(app)
    return app
