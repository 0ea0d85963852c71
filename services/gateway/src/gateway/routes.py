"""The route table: the single source of truth for what the gateway serves and who may call it.

Every public path is one :class:`RouteSpec` (template, methods, permission, upstream or local
handler, body rules). Paths not in the table are 404; a known path with another method is 405
with ``Allow`` (aiohttp's router does both once the table is registered).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

from aiohttp import web

from common.limits import UPLOAD_MAX_BYTES, UPLOAD_READ_TIMEOUT_SECONDS
from gateway.principal import Permission

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READ = Permission.READ
WRITE = Permission.WRITE
ADMIN = Permission.ADMIN
JSON_TYPES = ("application/json",)
UPLOAD_TYPES = ("text/csv", "application/csv", "application/gzip", "application/x-gzip")


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

    @property
    def policy(self) -> str:
        """The rate-limit policy name: a route with its own limit has its own bucket."""
        return self.template if self.rate_limit is not None else "default"


def proxied(
    prefix: str, upstream: str, subpaths: Iterable[tuple[str, str, Permission]]
) -> list[RouteSpec]:
    """Rows for an upstream: ``(suffix, methods, permission)`` under ``prefix``."""
    return [
        RouteSpec(
            template=prefix + suffix,
            methods=tuple(methods.split(",")),
            permission=permission,
            upstream=upstream,
            name=f"{upstream}:{suffix or '/'}:{methods}",
        )
        for suffix, methods, permission in subpaths
    ]


def upstream_routes() -> list[RouteSpec]:
    """The public API of the services behind the gateway."""
    # costs and alerts are still being built: their sub-paths are matched by prefix, with the
    # permission decided by the method (reads need ``read``, changes need ``write``).
    tail = "/{tail:.+}"
    return [
        *proxied(
            "/api/resources",
            "resources",
            [
                ("", "GET", READ),
                ("", "POST", WRITE),
                ("/bulk", "POST", WRITE),
                ("/utilization", "POST", WRITE),
                ("/{id}", "GET", READ),
                ("/{id}", "PATCH,DELETE", WRITE),
                ("/{id}/utilization", "GET", READ),
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
            for spec in proxied("/api/costs", "costs", [("/imports", "POST", WRITE)])
        ),
        *proxied(
            "/api/costs",
            "costs",
            [("", "GET", READ), (tail, "GET", READ), (tail, "POST,PUT,PATCH,DELETE", WRITE)],
        ),
        *proxied(
            "/api/alerts",
            "alerts",
            [
                ("", "GET", READ),
                ("", "POST", WRITE),
                (tail, "GET", READ),
                (tail, "POST,PUT,PATCH,DELETE", WRITE),
            ],
        ),
    ]


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
    """Add every row to the router and remember which spec each aiohttp route serves."""
    specs = RouteIndex()
    for spec in table:
        handler = spec.handler or proxy
        for method in spec.methods:
            route = app.router.add_route(method, spec.template, handler)
            specs[route] = spec
    app[ROUTES] = specs


def route_spec(request: web.Request) -> RouteSpec | None:
    """The spec of the matched route; None for unmatched paths and the operator routes."""
    spec: RouteSpec | None = request.app[ROUTES].get(request.match_info.route)
    return spec
