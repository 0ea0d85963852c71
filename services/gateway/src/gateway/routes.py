"""The route table: the single source of truth for what the gateway serves and who may call it.

Every public path is one :class:`RouteSpec` (template, methods, permission, upstream or local
handler, body rules). Paths not in the table are 404; a known path with another method is 405
with ``Allow`` (aiohttp's router does both once the table is registered).

Each row also lists the :class:`Operation` s it serves: the API document
(:mod:`gateway.openapi`) is built from them and the models they name, so the table is the one
place that says what the public API is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from common.limits import UPLOAD_MAX_BYTES, UPLOAD_READ_TIMEOUT_SECONDS, UPLOAD_TYPES
from gateway.principal import Permission

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READ = Permission.READ
WRITE = Permission.WRITE
ADMIN = Permission.ADMIN
JSON_TYPES = ("application/json",)


@dataclass(frozen=True, slots=True)
class Operation:
    """One documented operation served by a row: what the API document says about it.

    Models are named ``"package.module:Class"`` and imported only when the document is built, so
    the gateway does not load the services' code to route. ``data`` is the success envelope's
    ``data``: a model, ``"[model]"`` for a list of them, ``"object"``/``"[object]"`` for an
    object whose fields are not modelled, None for a response without a body (204) or one
    that is not JSON (``media``). ``paged`` lists carry ``meta.total/limit/offset``.
    ``path`` is the concrete path when the row's template matches several (a ``{tail}``);
    :func:`proxied` takes it relative to the prefix.
    """

    method: str
    summary: str
    path: str | None = None
    query: str | None = None
    body: str | None = None
    body_required: bool = True
    data: str | None = "object"
    status: int = 200
    paged: bool = False
    media: str | None = None
    errors: tuple[int, ...] = ()
    #: Statuses that may carry the success body too (a deep health check that is degraded).
    also: tuple[int, ...] = ()


def op(method: str, summary: str, **kw: Any) -> Operation:
    """Shorthand for a row's :class:`Operation`."""
    return Operation(method, summary, **kw)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One row of the route table.

    ``permission`` None means public. ``upstream`` names the service the request is proxied to;
    ``handler`` is used when the gateway answers itself. ``admin_network`` applies the admin IP
    allow list; ``rate_limited`` False exempts liveness probes, which poll forever.
    ``body_types`` are the accepted request media types when a body is sent.
    ``read_timeout_seconds`` replaces the gateway's upstream read timeout for a route whose
    answer comes only after a long body has been processed.
    """

    template: str
    methods: tuple[str, ...]
    permission: Permission | None
    upstream: str | None = None
    handler: Handler | None = None
    max_body_bytes: int | None = None
    body_types: tuple[str, ...] = JSON_TYPES
    read_timeout_seconds: float | None = None
    rate_limit: int | None = None
    rate_window_seconds: int | None = None
    admin_network: bool = False
    rate_limited: bool = True
    name: str = field(default="")
    operations: tuple[Operation, ...] = ()

    @property
    def policy(self) -> str:
        """The rate-limit policy name: a route with its own limit has its own bucket."""
        return self.template if self.rate_limit is not None else "default"


def proxied(
    prefix: str,
    upstream: str,
    subpaths: Iterable[tuple[str, str, Permission, Sequence[Operation]]],
) -> list[RouteSpec]:
    """Rows for an upstream: ``(suffix, methods, permission, operations)`` under ``prefix``."""
    return [
        RouteSpec(
            template=prefix + suffix,
            methods=tuple(methods.split(",")),
            permission=permission,
            upstream=upstream,
            name=f"{upstream}:{suffix or '/'}:{methods}",
            operations=tuple(
                o if o.path is None else replace(o, path=prefix + o.path) for o in operations
            ),
        )
        for suffix, methods, permission, operations in subpaths
    ]


RESOURCES = "resources.domain:"
COSTS = "costs.domain:"
COST_ANSWERS = "costs.answers:"
ALERTS = "alerts.domain:"
ALERT_HANDLERS = "alerts.handlers:"
RESOURCE_ERRORS = (409,)


def upstream_routes() -> list[RouteSpec]:
    """The public API of the services behind the gateway."""
    # costs and alerts sub-paths are matched by prefix, with the permission decided by the method
    # (reads need ``read``, changes need ``write``); their operations name the concrete paths.
    tail = "/{tail:.+}"
    resource = RESOURCES + "Resource"
    budget = COSTS + "Budget"
    alert = ALERTS + "Alert"
    silence = "SilenceWithState"
    return [
        *proxied(
            "/api/resources",
            "resources",
            [
                ("", "GET", READ, [op("GET", "List resources", query=RESOURCES + "ResourceQuery",
                                      data=f"[{resource}]", paged=True)]),
                ("", "POST", WRITE, [op("POST", "Create a resource",
                                        body=RESOURCES + "ResourceFields", data=resource,
                                        status=201, errors=RESOURCE_ERRORS)]),
                ("/bulk", "POST", WRITE, [op("POST", "Create or update resources by external id",
                                             body=RESOURCES + "BulkUpsert", data=f"[{resource}]")]),
                ("/utilization", "POST", WRITE, [op("POST", "Record utilisation samples",
                                                    body=RESOURCES + "UtilizationBatch",
                                                    data=RESOURCES + "UtilizationRecorded")]),
                ("/{id}", "GET", READ, [op("GET", "Get a resource", data=resource)]),
                ("/{id}", "PATCH,DELETE", WRITE, [
                    op("PATCH", "Change a resource", body=RESOURCES + "ResourcePatch",
                       data=resource, errors=RESOURCE_ERRORS),
                    op("DELETE", "Delete a resource", data=None, status=204),
                ]),
                ("/{id}/utilization", "GET", READ, [
                    op("GET", "Utilisation history of a resource",
                       query=RESOURCES + "UtilizationWindow",
                       data=f"[{RESOURCES}UtilizationPoint]"),
                ]),
            ],
        ),
        # Billing files: streamed through as CSV or gzip, with the same limits as nginx's.
        *(
            replace(
                spec,
                body_types=UPLOAD_TYPES,
                max_body_bytes=UPLOAD_MAX_BYTES,
                read_timeout_seconds=UPLOAD_READ_TIMEOUT_SECONDS,
            )
            for spec in proxied("/api/costs", "costs", [("/imports", "POST", WRITE, [
                op("POST", "Import a FOCUS billing file (CSV, optionally gzip)", body="upload",
                   data=COST_ANSWERS + "Import", status=201, errors=(409,)),
            ])])
        ),
        *proxied(
            "/api/costs",
            "costs",
            [
                (tail, "GET", READ, [
                    op("GET", "An import's outcome", path="/imports/{id}",
                       data=COST_ANSWERS + "Import"),
                    op("GET", "Daily costs, grouped", path="/daily", query=COSTS + "DailyQuery",
                       data=f"[{COST_ANSWERS}DailyCost]"),
                    op("GET", "Invoices", path="/invoices", query=COSTS + "InvoiceQuery",
                       data=f"[{COST_ANSWERS}Invoice]", paged=True),
                    op("GET", "Daily costs as CSV", path="/export/daily.csv",
                       query=COSTS + "DailyQuery", data=None, media="text/csv"),
                    op("GET", "FOCUS line items as CSV", path="/export/focus.csv",
                       query=COSTS + "DailyQuery", data=None, media="text/csv"),
                    op("GET", "Current cost per hour", path="/realtime",
                       query=COSTS + "RealtimeQuery", data=COST_ANSWERS + "Realtime"),
                    op("GET", "Cost forecast with a prediction interval", path="/forecast",
                       query=COSTS + "ForecastQuery", data=COST_ANSWERS + "Forecast"),
                    op("GET", "Detected cost anomalies", path="/anomalies",
                       query=COSTS + "ListQuery", data=f"[{COST_ANSWERS}RecordedAnomaly]",
                       paged=True),
                    op("GET", "Savings recommendations", path="/optimization",
                       query=COSTS + "AtQuery", data=f"[{COST_ANSWERS}Recommendation]"),
                    op("GET", "Budgets", path="/budgets", query=COSTS + "ListQuery",
                       data=f"[{budget}]", paged=True),
                    op("GET", "Get a budget and its threshold crossings", path="/budgets/{id}",
                       data="BudgetDetail"),
                    op("GET", "What the platform itself costs", path="/platform",
                       query=COSTS + "PlatformQuery", data=COST_ANSWERS + "PlatformCost"),
                ]),
                (tail, "POST,PATCH,DELETE", WRITE, [
                    op("POST", "Detect cost anomalies now", path="/anomalies/detect",
                       query=COSTS + "ForecastQuery", data=f"[{COST_ANSWERS}DetectedAnomaly]"),
                    op("POST", "Create a budget", path="/budgets", body=COSTS + "BudgetFields",
                       data=budget, status=201),
                    op("POST", "Evaluate budgets now", path="/budgets/evaluate",
                       query=COSTS + "AtQuery", data=f"[{COST_ANSWERS}BudgetCrossing]"),
                    op("PATCH", "Change a budget", path="/budgets/{id}",
                       body=COSTS + "BudgetPatch", data=budget),
                    op("DELETE", "Delete a budget", path="/budgets/{id}", data=None, status=204),
                ]),
            ],
        ),
        *proxied(
            "/api/alerts",
            "alerts",
            [
                ("", "GET", READ, [op("GET", "The alert feed", query=ALERTS + "AlertQuery",
                                      data=f"[{alert}]", paged=True)]),
                (tail, "GET", READ, [
                    op("GET", "Live alert changes (Server-Sent Events)", path="/stream",
                       data=None, media="text/event-stream"),
                    op("GET", "Notification delivery attempts", path="/notifications",
                       query=ALERT_HANDLERS + "AttemptQuery", data="[" + ALERTS
                       + "DeliveryAttempt]", paged=True),
                    op("GET", "Silences", path="/silences", query="SilenceStateQuery",
                       data=f"[{silence}]"),
                    op("GET", "Get a silence", path="/silences/{id}", data=silence),
                    op("GET", "Get an alert with its history", path="/{id}", data="AlertDetail"),
                ]),
                (tail, "POST,PUT,DELETE", WRITE, [
                    op("POST", "Alertmanager API v2: post alerts", path="/v2/alerts",
                       body="[" + ALERTS + "AlertIn]", data=f"[{alert}]", errors=(413,)),
                    op("POST", "Alertmanager webhook (version 4)", path="/webhook",
                       body=ALERT_HANDLERS + "WebhookPayload", data=f"[{alert}]", errors=(413,)),
                    op("POST", "Create a silence", path="/silences", body=ALERTS + "SilenceIn",
                       data=silence, status=201, errors=(409,)),
                    op("PUT", "Replace a silence", path="/silences/{id}",
                       body=ALERTS + "SilenceIn", data=silence, errors=(409,)),
                    op("DELETE", "Expire a silence", path="/silences/{id}", data=silence),
                    op("POST", "Acknowledge an alert", path="/{id}/ack",
                       body=ALERT_HANDLERS + "Note", body_required=False, data=alert,
                       errors=(409,)),
                    op("POST", "Resolve an alert", path="/{id}/resolve",
                       body=ALERT_HANDLERS + "Note", body_required=False, data=alert,
                       errors=(409,)),
                    op("POST", "Comment on an alert", path="/{id}/comments",
                       body=ALERT_HANDLERS + "CommentIn", data=alert, status=201),
                ]),
            ],
        ),
    ]  # fmt: skip


class RouteIndex(dict[web.AbstractRoute, RouteSpec]):
    """aiohttp route -> the table row it serves."""


ROUTES = web.AppKey("routes", RouteIndex)


def configure(
    table: list[RouteSpec],
    *,
    rate_limits: dict[str, tuple[int, int]],
    body_limits: dict[str, int],
) -> list[RouteSpec]:
    """Apply operator overrides by template; an unknown template is a configuration error."""
    templates = {spec.template for spec in table}
    unknown = (set(rate_limits) | set(body_limits)) - templates
    if unknown:
        raise ValueError(f"route overrides name unknown routes: {sorted(unknown)}")
    configured = []
    for spec in table:
        if spec.template in rate_limits:
            limit, window = rate_limits[spec.template]
            spec = replace(spec, rate_limit=limit, rate_window_seconds=window)
        if spec.template in body_limits:
            spec = replace(spec, max_body_bytes=body_limits[spec.template])
        configured.append(spec)
    return configured


def register(app: web.Application, table: Iterable[RouteSpec], proxy: Handler) -> None:
    """Add every row to the router and remember which spec each aiohttp route serves.

    Every ``GET`` is answered for ``HEAD`` too (RFC 9110 9.3.2), with the same permission.
    """
    specs = RouteIndex()
    for spec in table:
        handler = spec.handler or proxy
        methods = list(spec.methods)
        if "GET" in methods and "HEAD" not in methods:
            methods.append("HEAD")
        for method in methods:
            route = app.router.add_route(method, spec.template, handler)
            specs[route] = spec
    app[ROUTES] = specs


def route_spec(request: web.Request) -> RouteSpec | None:
    """The spec of the matched route; None for unmatched paths and the operator routes."""
    spec: RouteSpec | None = request.app[ROUTES].get(request.match_info.route)
    return spec
