"""HTTP handlers of ``/api/costs``: parse, call the use case, render. Nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from common.caller import caller, path_uuid
from common.costtracker import flush_now
from common.db import DB_POOL
from common.errors import UnsupportedMediaType
from common.limits import UPLOAD_TYPES
from common.web import json_response, parse_query, prepare_stream, read_json
from costs import savings
from costs.cache import INVENTORY, LINE_ITEMS, UTILIZATION, months_of
from costs.context import BUDGETS, COST_CACHE, IMPORTER, REPORTS, SETTINGS_KEY, THRESHOLDS
from costs.domain import (
    AtQuery,
    BudgetFields,
    BudgetPatch,
    DailyQuery,
    ForecastQuery,
    ImportQuery,
    InvoiceQuery,
    ListQuery,
    PlatformQuery,
    RealtimeQuery,
)
from costs.platform import LEDGER


def _at(request: web.Request) -> datetime:
    return parse_query(request, AtQuery).at or datetime.now(UTC)


async def create_import(request: web.Request) -> web.Response:
    """Stream the request body (a FOCUS CSV, optionally gzip) into an import."""
    if request.content_type not in UPLOAD_TYPES:
        raise UnsupportedMediaType(
            f"Send the FOCUS file as text/csv or application/gzip, not {request.content_type!r}."
        )
    settings = request.config_dict[SETTINGS_KEY]
    filename = parse_query(request, ImportQuery).filename[:255]

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(settings.import_chunk_bytes):
            yield chunk

    result = await request.config_dict[IMPORTER].run(
        chunks(), filename=filename, created_by=caller(request).principal
    )
    return json_response(
        result, status=201, headers={"Location": f"/api/costs/imports/{result['id']}"}
    )


async def get_import(request: web.Request) -> web.Response:
    return json_response(await request.config_dict[IMPORTER].get(path_uuid(request)))


async def daily(request: web.Request) -> web.Response:
    query = parse_query(request, DailyQuery)
    today = datetime.now(UTC).date()
    sources = months_of(*query.window(today))
    if query.group_by == "resource":
        sources.append(INVENTORY)
    report = await request.config_dict[COST_CACHE].get_or_compute(
        "costs_daily",
        (query.model_dump(mode="json"), today),
        sources,
        lambda: request.config_dict[REPORTS].daily(query, today),
    )
    return json_response(report["items"], meta=report["meta"])


async def invoices(request: web.Request) -> web.Response:
    query = parse_query(request, InvoiceQuery)
    items, total = await request.config_dict[REPORTS].invoices(query)
    return json_response(items, meta={"total": total, "limit": query.limit, "offset": query.offset})


async def export_daily(request: web.Request) -> web.Response:
    body = await request.config_dict[REPORTS].daily_csv(parse_query(request, DailyQuery))
    return web.Response(
        text=body,
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="costs-daily.csv"'},
    )


async def export_focus(request: web.Request) -> web.StreamResponse:
    query = parse_query(request, DailyQuery)
    async with contextlib.aclosing(request.config_dict[REPORTS].focus_csv(query)) as chunks:
        # The first chunk (the header, after the first query) before the status line: a failure
        # until then is still a problem response, not a 200 cut short.
        first = await anext(chunks)
        response = web.StreamResponse(
            headers={"Content-Type": "text/csv; charset=utf-8",
                     "Content-Disposition": 'attachment; filename="focus-line-items.csv"'}
        )  # fmt: skip
        await prepare_stream(request, response)
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response


async def realtime(request: web.Request) -> web.Response:
    return json_response(
        await request.config_dict[REPORTS].realtime(parse_query(request, RealtimeQuery))
    )


async def forecast(request: web.Request) -> web.Response:
    query = parse_query(request, ForecastQuery)
    return json_response(
        await request.config_dict[COST_CACHE].get_or_compute(
            "costs_forecast",
            (query.model_dump(mode="json"), datetime.now(UTC).date()),
            (LINE_ITEMS,),
            lambda: request.config_dict[REPORTS].forecast(query),
        )
    )


async def detect_anomalies(request: web.Request) -> web.Response:
    found = await request.config_dict[REPORTS].detect_anomalies(parse_query(request, ForecastQuery))
    return json_response(found, meta={"total": len(found)})


async def list_anomalies(request: web.Request) -> web.Response:
    page = parse_query(request, ListQuery)
    items, total = await request.config_dict[REPORTS].anomalies(page.limit, page.offset)
    return json_response(items, meta={"total": total, "limit": page.limit, "offset": page.offset})


async def optimization(request: web.Request) -> web.Response:
    asked = parse_query(request, AtQuery).at
    pool, thresholds = request.config_dict[DB_POOL], request.config_dict[THRESHOLDS]

    async def compute() -> dict[str, Any]:
        at = asked or datetime.now(UTC)
        found = await savings.recommendations(pool, thresholds, at)
        totals: dict[str, Any] = {}
        for rec in found:
            totals[rec.currency] = totals.get(rec.currency, 0) + rec.monthly_savings
        return {
            "items": [asdict(rec) for rec in found],
            "meta": {"total": len(found), "monthly_savings": totals, "at": at},
        }

    # Without ``at``, "now": a cached answer says in ``meta.at`` when it was computed.
    result = await request.config_dict[COST_CACHE].get_or_compute(
        "costs_optimization", (asked,), (LINE_ITEMS, INVENTORY, UTILIZATION), compute
    )
    return json_response(result["items"], meta=result["meta"])


async def create_budget(request: web.Request) -> web.Response:
    fields = await read_json(request, BudgetFields)
    budget = await request.config_dict[BUDGETS].create(fields, caller(request).principal)
    return json_response(
        budget, status=201, headers={"Location": f"/api/costs/budgets/{budget.id}"}
    )


async def list_budgets(request: web.Request) -> web.Response:
    page = parse_query(request, ListQuery)
    items, total = await request.config_dict[BUDGETS].page(page.limit, page.offset)
    return json_response(items, meta={"total": total, "limit": page.limit, "offset": page.offset})


async def get_budget(request: web.Request) -> web.Response:
    return json_response(await request.config_dict[BUDGETS].get(path_uuid(request)))


async def update_budget(request: web.Request) -> web.Response:
    budget_id = path_uuid(request)
    patch = await read_json(request, BudgetPatch)
    return json_response(await request.config_dict[BUDGETS].update(budget_id, patch))


async def delete_budget(request: web.Request) -> web.Response:
    await request.config_dict[BUDGETS].delete(path_uuid(request))
    return web.Response(status=204)


async def evaluate_budgets(request: web.Request) -> web.Response:
    crossed = await request.config_dict[BUDGETS].evaluate(_at(request))
    return json_response(crossed, meta={"total": len(crossed)})


async def platform(request: web.Request) -> web.Response:
    """The platform's own cost; who else uses it (``per_user``) only an admin sees."""
    day = parse_query(request, PlatformQuery).day or datetime.now(UTC).date()
    who = caller(request)
    only = None if who.is_admin else who.actor
    await flush_now(request.app)  # this worker's latest requests count too
    return json_response(await request.config_dict[LEDGER].report(day, only=only))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/costs/imports", create_import)
    app.router.add_get("/api/costs/imports/{id}", get_import)
    app.router.add_get("/api/costs/daily", daily)
    app.router.add_get("/api/costs/invoices", invoices)
    app.router.add_get("/api/costs/export/daily.csv", export_daily)
    app.router.add_get("/api/costs/export/focus.csv", export_focus)
    app.router.add_get("/api/costs/realtime", realtime)
    app.router.add_get("/api/costs/forecast", forecast)
    app.router.add_get("/api/costs/anomalies", list_anomalies)
    app.router.add_post("/api/costs/anomalies/detect", detect_anomalies)
    app.router.add_get("/api/costs/optimization", optimization)
    app.router.add_get("/api/costs/budgets", list_budgets)
    app.router.add_post("/api/costs/budgets", create_budget)
    app.router.add_post("/api/costs/budgets/evaluate", evaluate_budgets)
    app.router.add_get("/api/costs/budgets/{id}", get_budget)
    app.router.add_patch("/api/costs/budgets/{id}", update_budget)
    app.router.add_delete("/api/costs/budgets/{id}", delete_budget)
    app.router.add_get("/api/costs/platform", platform)
