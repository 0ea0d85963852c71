"""The gateway application factory: the route table, the middleware chain, the clients.

Middleware order (outermost first) and why. ``create_base_app`` puts its request frame first
(admission, request id, trace, the JSON body guard, access log, metrics and usage with the final
status, and errors: every exception below becomes problem+json that the frame still observes).
Then the gateway's, cheapest refusal first, so that nothing expensive runs for a request that is
refused anyway:

4. ``edge`` (installed by ``setup_edge`` ahead of all, the common ones too): answers nginx's
   ``/_edge/auth`` subrequest itself, running 6-10 below on the original request it describes
   (:mod:`gateway.edge`), never on the subrequest;
5. ``stats``: per-route latency for /api/performance/stats, seeing every status below;
6. ``network``: resolves the client IP (trusted proxy aware) that everything below logs and
   limits by, and refuses denied networks before any other work;
7. ``hardening``: TRACE, paths with dot segments or encoded separators, credentials in the
   URL, declared body too large (413 before reading) or of the wrong media type (415), CORS
   preflight: all without touching Redis or PostgreSQL;
8. ``bots``: User-Agent patterns and honeypot paths, before authentication so a trap path
   never answers 401 and so reveals nothing;
9. ``auth``: identify the caller (401), check the CSRF token of a change made with the session
   cookie (403 ``.../csrf``), then check the route's permission (403); before the rate limiter
   so that the limit counts per key or user, and refused calls consume no quota (keys and
   tokens are 256-bit secrets, so unthrottled 401s do not help guessing; password logins have
   their own per-account and per-IP failure limits). The CSRF check sits here because only
   authentication knows whether the cookie (rather than a key or token) identified the caller,
   and the session record it already loaded holds the token, so the check costs no extra Redis
   call; being before the limiter, a forged request never spends the user's quota;
10. ``rate_limit``: one atomic Redis script per request (also checks the honeypot flag); session
   callers count against their own, larger, per-user quota.

The gateway has no sub-applications, so its code reads app state from ``request.app``;
``request.config_dict`` builds a new chain map on every access and showed up in the profile.

Security and rate-limit headers are added in ``on_response_prepare``, not in a middleware,
so that they reach every response: errors from any layer, 404/405, and streamed proxy bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from common.admission import ADMISSION
from common.costtracker import USAGE_PRINCIPAL
from common.db import postgres_ctx
from common.redis import redis_ctx
from common.web import create_base_app
from gateway import handlers, openapi, performance
from gateway.auth import auth_middleware
from gateway.bots import BOT_PATTERNS, bot_middleware, compile_patterns
from gateway.edge import setup_edge
from gateway.hardening import hardening_middleware, security_headers
from gateway.keys import key_ring_ctx
from gateway.network import network_middleware
from gateway.performance import STATS, PerformanceStats, stats_middleware
from gateway.principal import PRINCIPAL, Permission
from gateway.proxy import proxy_handler, upstreams_ctx
from gateway.ratelimit import rate_limit_headers, rate_limit_middleware, rate_limiter_ctx
from gateway.routes import (
    ADMIN,
    READ,
    Operation,
    RouteSpec,
    configure,
    op,
    register,
    upstream_routes,
)
from gateway.sessions import sessions_ctx
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings
from gateway.tokens import TOKEN_ISSUER, TokenIssuer
from gateway.users import users_ctx

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
LOGIN_BODY_BYTES = 8 * 1024


def gateway_routes() -> list[RouteSpec]:
    """Routes the gateway answers itself; together with :func:`upstream_routes`, the table."""
    small = LOGIN_BODY_BYTES

    def local(
        template: str,
        permission: Permission | None,
        handler: Any,
        doc: Operation,
        **kw: Any,
    ) -> RouteSpec:
        return RouteSpec(
            template=template,
            methods=(doc.method,),
            permission=permission,
            handler=handler,
            name=f"gateway:{template}:{doc.method}",
            operations=(doc,),
            **kw,
        )

    admin = {"admin_network": True, "max_body_bytes": 64 * 1024}
    gw = "gateway.handlers:"
    key, user, session = "ApiKey", "User", "Session"
    return [
        local("/api/health", None, handlers.health,
              op("GET", "Liveness of the API", data="Liveness"), rate_limited=False),
        local("/api/openapi.json", None, openapi.document_handler,
              op("GET", "This API document (OpenAPI 3.1)", data=None,
                 media="application/json")),
        local("/api/docs", None, openapi.docs_handler,
              op("GET", "The API reference, for people", data=None, media="text/html")),
        local("/api/docs/{asset}", None, openapi.asset_handler,
              op("GET", "A file of the API reference page", data=None,
                 media="application/octet-stream", errors=(404,))),
        local("/api/auth/token", None, handlers.issue_token,
              op("POST", "A short-lived bearer token for a key, a session or a password",
                 body=gw + "Credentials", body_required=False, data="Token"),
              max_body_bytes=small),
        local("/api/auth/login", None, handlers.login,
              op("POST", "Log in: starts a dashboard session (cookie)", body=gw + "Credentials",
                 data=session), max_body_bytes=small),
        local("/api/auth/logout", None, handlers.logout,
              op("POST", "Log out: ends the session", data=None, status=204),
              max_body_bytes=small),
        local("/api/auth/session", None, handlers.current_session,
              op("GET", "The current dashboard session and its CSRF token", data=session,
                 errors=(401,))),
        local("/api/admin/keys", ADMIN, handlers.list_keys,
              op("GET", "API keys", query=gw + "Page", data=f"[{key}]", paged=True), **admin),
        local("/api/admin/keys", ADMIN, handlers.create_key,
              op("POST", "Create an API key (the key is shown once)",
                 body="gateway.domain:KeyRequest", data="NewApiKey", status=201), **admin),
        local("/api/admin/keys/{key_id}", ADMIN, handlers.revoke_key,
              op("DELETE", "Revoke an API key", data=key), **admin),
        local("/api/admin/users", ADMIN, handlers.list_users,
              op("GET", "Users", data=f"[{user}]"), **admin),
        local("/api/admin/users", ADMIN, handlers.create_user,
              op("POST", "Create a user", body="gateway.domain:UserRequest", data=user,
                 status=201, errors=(409,)), **admin),
        local("/api/performance/stats", READ, performance.stats_handler,
              op("GET", "Per-route latency of this gateway process",
                 data="gateway.performance:RouteStatsReport")),
        local("/api/performance/health", READ, performance.health_handler,
              op("GET", "Deep health: dependencies, upstreams and their breakers",
                 data="gateway.performance:DeepHealth", also=(503,))),
        local("/api/performance/loadtest", ADMIN, performance.loadtest_handler,
              op("POST", "A bounded load test of a service's liveness endpoint",
                 body="gateway.performance:LoadTestRequest",
                 data="gateway.performance:LoadTestResult"), **admin),
        local("/api/performance/gc", ADMIN, performance.gc_handler,
              op("POST", "Run the garbage collector", data="gateway.performance:GcResult"),
              **admin),
        local("/api/performance/memory", ADMIN, performance.memory_handler,
              op("GET", "Memory leak detection: this gateway's worker and one of each service's",
                 data="gateway.performance:MemoryReport"), **admin),
        local("/api/performance/scaling", ADMIN, performance.scaling_handler,
              op("GET", "Replicas per service for the next hours, forecast from request rates",
                 query="gateway.performance:ScalingQuery",
                 data="gateway.performance:ScalingAdvice"), **admin),
    ]  # fmt: skip


def create_app(settings: GatewaySettings | None = None) -> web.Application:
    settings = settings or GatewaySettings()
    decision_chain = (
        network_middleware,
        hardening_middleware,
        bot_middleware,
        auth_middleware,
        rate_limit_middleware,
    )
    app = create_base_app(
        settings,
        middlewares=(stats_middleware, *decision_chain),
        client_max_size=settings.max_body_bytes,
    )
    setup_edge(app, decision_chain)
    app[GATEWAY_SETTINGS] = settings
    # A live stream lasts as long as its viewer: it must not hold an in-flight slot meanwhile.
    app[ADMISSION].exempt.add("/api/alerts/stream")
    app[STATS] = PerformanceStats()
    app[USAGE_PRINCIPAL] = principal_name  # platform cost: the authenticated caller, not a header
    app[BOT_PATTERNS] = compile_patterns(settings)
    app[TOKEN_ISSUER] = TokenIssuer(
        secret=(settings.jwt_secret.get_secret_value() if settings.jwt_secret else _dev_secret()),
        issuer=settings.jwt_issuer,
        ttl_seconds=settings.jwt_ttl_seconds,
        leeway_seconds=settings.jwt_leeway_seconds,
    )
    app.on_response_prepare.extend([security_headers, rate_limit_headers])
    openapi.setup_api_document(app)  # after the headers above: the docs page sets its own CSP
    # Order matters: each context may use what the ones before it opened.
    app.cleanup_ctx.extend(
        [
            postgres_ctx(MIGRATIONS),
            redis_ctx,
            key_ring_ctx,
            users_ctx,
            sessions_ctx,
            rate_limiter_ctx,
            upstreams_ctx,
        ]
    )
    table = configure(
        [*gateway_routes(), *upstream_routes()],
        rate_limits=settings.route_rate_limits,
        body_limits=settings.route_body_limits,
    )
    register(app, table, proxy_handler)
    return app


def principal_name(request: web.Request) -> str | None:
    """Who a request's platform cost is charged to: its key id or user name, once authenticated."""
    principal = request.get(PRINCIPAL)
    return principal.name if principal is not None else None


def _dev_secret() -> str:
    # Outside production a missing secret is replaced per process: tokens then only work on
    # the replica that issued them, which is fine on a developer machine.
    import secrets

    return secrets.token_urlsafe(48)
