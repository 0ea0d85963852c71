"""HTTP handlers of ``/api/resources``: parse, call the inventory, render. Nothing else."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from common.cache import cached_json_response
from common.caller import caller, path_uuid
from common.web import QueryMemo, json_response, parse_query, read_json
from resources.domain import (
    BulkUpsert,
    Caller,
    ResourceFields,
    ResourcePatch,
    ResourceQuery,
    UtilizationBatch,
    UtilizationWindow,
)
from resources.inventory import INVENTORY, Inventory
from resources.utilization import UTILIZATION


def _resource_id(request: web.Request) -> UUID:
    return path_uuid(request, "id", "resource")


def _caller(request: web.Request) -> Caller:
    who = caller(request)
    return Caller(principal=who.principal, trace=who.trace, request_id=who.request_id)


def _list_query(request: web.Request) -> tuple[ResourceQuery, str]:
    query = parse_query(request, ResourceQuery)
    return query, Inventory.list_key(query)


#: The list is the hottest read: a repeated query string skips validation and key hashing.
LIST_QUERIES = QueryMemo(_list_query)


async def list_resources(request: web.Request) -> web.Response:
    query, key = LIST_QUERIES(request)
    return cached_json_response(request, await request.app[INVENTORY].list_page_json(query, key))


async def get_resource(request: web.Request) -> web.Response:
    cached = await request.app[INVENTORY].get_json(_resource_id(request))
    return cached_json_response(request, cached)


async def create_resource(request: web.Request) -> web.Response:
    fields = await read_json(request, ResourceFields)
    resource = await request.app[INVENTORY].create(fields, _caller(request))
    return json_response(
        resource, status=201, headers={"Location": f"/api/resources/{resource.id}"}
    )


async def update_resource(request: web.Request) -> web.Response:
    resource_id = _resource_id(request)
    patch = await read_json(request, ResourcePatch)
    resource = await request.app[INVENTORY].update(resource_id, patch, _caller(request))
    return json_response(resource)


async def delete_resource(request: web.Request) -> web.Response:
    await request.app[INVENTORY].delete(_resource_id(request), _caller(request))
    return web.Response(status=204)


async def bulk_upsert(request: web.Request) -> web.Response:
    payload = await read_json(request, BulkUpsert)
    result = await request.app[INVENTORY].bulk_upsert(payload, _caller(request))
    return json_response(
        result.resources,
        meta={"created": result.created, "updated": result.updated, "unchanged": result.unchanged},
    )


async def record_utilization(request: web.Request) -> web.Response:
    batch = await read_json(request, UtilizationBatch)
    result = await request.app[UTILIZATION].record(batch, _caller(request))
    return json_response(result)


async def utilization_history(request: web.Request) -> web.Response:
    resource_id = _resource_id(request)
    window = parse_query(request, UtilizationWindow)
    samples = await request.app[UTILIZATION].history(resource_id, window)
    return json_response(
        samples, meta={"total": len(samples), "start": window.start, "end": window.end}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/resources", list_resources)
    app.router.add_post("/api/resources", create_resource)
    app.router.add_post("/api/resources/bulk", bulk_upsert)
    app.router.add_post("/api/resources/utilization", record_utilization)
    app.router.add_get("/api/resources/{id}", get_resource)
    app.router.add_patch("/api/resources/{id}", update_resource)
    app.router.add_delete("/api/resources/{id}", delete_resource)
    app.router.add_get("/api/resources/{id}/utilization", utilization_history)
