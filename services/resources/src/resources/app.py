"""The resources service application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from common.cache import ReadCache
from common.db import DB_POOL, postgres_ctx
from common.messaging import messaging_ctx
from common.redis import REDIS, redis_ctx
from common.web import create_base_app
from resources.handlers import add_routes
from resources.inventory import INVENTORY, Inventory
from resources.settings import ResourcesSettings
from resources.utilization import UTILIZATION, UtilizationHistory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
SETTINGS_KEY = web.AppKey("resources_settings", ResourcesSettings)


async def inventory_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    cache = ReadCache(
        app[REDIS],
        prefix=settings.redis_prefix,
        namespace="resources",
        service=settings.service_name,
        ttl_seconds=settings.cache_ttl_seconds,
    )
    inventory = Inventory(app[DB_POOL], cache, bulk_max_items=settings.bulk_max_items)
    async with app[DB_POOL].acquire() as conn:
        await inventory.refresh_gauge(conn)
    app[INVENTORY] = inventory
    app[UTILIZATION] = UtilizationHistory(
        app[DB_POOL],
        cache,
        retention_days=settings.utilization_retention_days,
        max_samples_per_resource=settings.utilization_max_samples_per_resource,
    )
    yield
    await cache.aclose()


def create_app(settings: ResourcesSettings | None = None) -> web.Application:
    settings = settings or ResourcesSettings()
    app = create_base_app(settings, client_max_size=settings.max_body_bytes)
    app[SETTINGS_KEY] = settings
    # Order matters: each context may use what the ones before it opened.
    app.cleanup_ctx.extend([postgres_ctx(MIGRATIONS), redis_ctx, messaging_ctx(), inventory_ctx])
    add_routes(app)
    return app
