"""The alerts service application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from alerts.alertbook import ALERT_BOOK, AlertBook
from alerts.events import rule_consumer, rule_subscription
from alerts.handlers import ALERT_FEED, ALERTS_SETTINGS, CLOSING, add_routes
from alerts.notify import Notifier, run_every
from alerts.rules import load_rules
from alerts.settings import AlertsSettings
from alerts.stream import AlertFeed
from common.admission import ADMISSION
from common.db import DB_POOL, postgres_ctx
from common.messaging import declare_subscriptions, messaging_ctx
from common.redis import REDIS, redis_ctx
from common.web import create_base_app

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


async def alert_book_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[ALERTS_SETTINGS]
    feed = AlertFeed(
        app[REDIS], f"{settings.redis_prefix}alerts:feed", max_len=settings.stream_max_len
    )
    app[ALERT_FEED] = feed
    app[ALERT_BOOK] = AlertBook(
        app[DB_POOL],
        feed,
        load_rules(settings.rules_file),
        settings.receivers,
        resolve_timeout=timedelta(seconds=settings.resolve_timeout_seconds),
    )
    yield


async def consumers_ctx(app: web.Application) -> AsyncIterator[None]:
    """The shared messaging context, with the consumer the rules define."""
    settings = app[ALERTS_SETTINGS]
    consumer = rule_consumer(
        app[ALERT_BOOK],
        prefetch=settings.consumer_prefetch,
        batch_size=settings.consumer_batch_size,
    )
    async for _ in messaging_ctx([consumer])(app):
        yield


async def declare_queues(settings: AlertsSettings | None = None) -> list[str]:
    """Declare the queue and bindings the rules define, before any instance runs (``make up``
    does at migrate time), so events published earlier wait for the service."""
    settings = settings or AlertsSettings()
    subscription = rule_subscription(load_rules(settings.rules_file))
    return await declare_subscriptions(settings, [subscription])


async def background_ctx(app: web.Application) -> AsyncIterator[None]:
    """Upkeep (expiry, silences, gauges) and the notification dispatcher, in every process."""
    settings = app[ALERTS_SETTINGS]
    session = aiohttp.ClientSession()
    notifier = Notifier(app[DB_POOL], session, settings)
    tasks = [
        asyncio.create_task(
            run_every(settings.maintenance_interval_seconds, "upkeep", app[ALERT_BOOK].upkeep)
        ),
        asyncio.create_task(
            run_every(settings.dispatch_interval_seconds, "dispatch", notifier.dispatch_once)
        ),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await notifier.close()
        await session.close()


async def _stop_streams(app: web.Application) -> None:
    app[CLOSING].set()


def create_app(settings: AlertsSettings | None = None) -> web.Application:
    settings = settings or AlertsSettings()
    app = create_base_app(settings, client_max_size=settings.max_body_bytes)
    app[ALERTS_SETTINGS] = settings
    # A live stream lasts as long as its viewer: it must not hold an in-flight slot meanwhile.
    app[ADMISSION].exempt.add("/api/alerts/stream")
    app[CLOSING] = asyncio.Event()
    # Order matters: each context may use what the ones before it opened.
    app.cleanup_ctx.extend(
        [postgres_ctx(MIGRATIONS), redis_ctx, alert_book_ctx, consumers_ctx, background_ctx]
    )
    app.on_shutdown.append(_stop_streams)
    add_routes(app)
    return app
