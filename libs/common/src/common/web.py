"""The aiohttp skeleton every service shares: middlewares, JSON in/out, health and metrics routes.

Middleware order (outermost first) and why:
1. ``admission`` turns away requests beyond the worker's bound before any other work is spent on
   them: under overload a rejection must cost far less than a request, so it writes no log line
   and observes no histogram (it counts itself in ``http_requests_rejected_total``);
2. ``request_context`` gives the request an id and trace before anything can log or fail, and
   writes the one access-log line per request after everything else has finished;
3. ``metrics`` sees the final status, including problems rendered by the error middleware;
   ``usage`` (:mod:`common.costtracker`) then charges the request to its principal and route;
4. ``errors`` turns every exception below it into a problem response that the middlewares above
   can still observe;
5. ``json_guard`` (:mod:`common.json_guard`) refuses a body on a method that has none and a JSON
   body declared too large before anything reads it, and closes the connection after a body cut
   off while being read; the service's own middlewares come after it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar, get_origin

import orjson
from aiohttp import web
from loguru import logger
from pydantic import BaseModel, ValidationError

from common.admission import ADMISSION, Admission
from common.config import ServiceSettings
from common.context import REQUEST_ID, TRACE
from common.costtracker import USAGE_METER, UsageMeter, usage_ctx, usage_middleware
from common.encoding import dumps
from common.errors import (
    BadRequest,
    ProblemError,
    problem_from,
    problem_response,
    validation_errors,
)
from common.json_guard import BodyPolicy, json_guard, read_guarded_json
from common.json_guard import is_json_content_type as is_json_content_type  # re-exported
from common.logging import access_line, enter_context, leave_context
from common.memory import MEMORY_PATH, memory_ctx, memory_handler
from common.metrics import (
    ACTIVE_CONNECTIONS,
    APPLICATION_ERRORS,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    metrics_handler,
)
from common.tracing import (
    TraceContext,
    new_request_id,
    new_trace,
    parse_traceparent,
    valid_request_id,
)
from common.validation import loggable, refuse_nul, refuse_unstorable

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ReadinessCheck = Callable[[], Awaitable[None]]

REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED_ROUTE = "<unmatched>"


@dataclass
class Readiness:
    """Named dependency checks run by ``/health/ready``; each raises when its dependency is down."""

    checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    #: Checks reported but not required: the service still serves, degraded, without them.
    optional: set[str] = field(default_factory=set)

    def add(self, name: str, check: ReadinessCheck) -> None:
        self.checks[name] = check

    def relax(self, name: str) -> None:
        """Keep reporting ``name`` but stay ready when it is down (the service has a fallback)."""
        self.optional.add(name)

    def ready(self, results: Mapping[str, str]) -> bool:
        return all(state == "ok" for name, state in results.items() if name not in self.optional)

    async def run(self, timeout: float = 2.0) -> dict[str, str]:
        async def one(check: ReadinessCheck) -> str:
            try:
                await asyncio.wait_for(check(), timeout)
            except Exception as exc:
                return f"down: {type(exc).__name__}"
            return "ok"

        names = list(self.checks)
        results = await asyncio.gather(*(one(self.checks[n]) for n in names))
        return dict(zip(names, results, strict=True))


SETTINGS = web.AppKey("settings", ServiceSettings)
READINESS = web.AppKey("readiness", Readiness)


def json_response(
    data: Any,
    *,
    meta: Mapping[str, Any] | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The success envelope ``{"success": true, "data": ..., "meta": ...}``."""
    body: dict[str, Any] = {"success": True, "data": data}
    if meta is not None:
        body["meta"] = dict(meta)
    return web.Response(
        body=dumps(body), status=status, content_type="application/json", headers=headers
    )


async def read_json_value(request: web.Request) -> Any:
    """The parsed JSON body under the request's :class:`~common.json_guard.BodyPolicy`: 415
    unless declared JSON, 413/408 while reading, 400 if it does not parse or nests too deep,
    422 for markup in a string."""
    return (await read_guarded_json(request, orjson.loads))[1]


def _decimal_json(raw: bytes) -> Any:
    return json.loads(raw, parse_float=Decimal)


async def read_json(request: web.Request, model: type[M]) -> M:
    """Parse and validate the body as ``model``: as :func:`read_json_value`, then 422 if invalid.

    Non-integer numbers are parsed as ``Decimal`` from their text, so money keeps every digit
    (orjson and pydantic's own parser would go through ``float``).
    """
    return model.model_validate((await read_guarded_json(request, _decimal_json))[1])


def parse_query(request: web.Request, model: type[M]) -> M:
    """Validate query parameters as ``model``; a malformed query is a 400 with per-field errors.

    A parameter may repeat (``?tag=a&tag=b``) where the model's field is a list. A value the
    database cannot take (a NUL character, an integer beyond ``bigint``) is a 400 as well.
    """
    values: dict[str, Any] = {}
    for name in request.query:
        field = model.model_fields.get(name)
        is_list = field is not None and get_origin(field.annotation) is list
        values[name] = request.query.getall(name) if is_list else request.query[name]
    refuse_nul(values)
    try:
        return refuse_unstorable(model.model_validate(values))
    except ValidationError as exc:
        raise BadRequest(
            "Invalid query parameters.",
            errors=validation_errors(exc),
            total_errors=exc.error_count(),
        ) from None


def route_template(request: web.Request) -> str:
    """The matched route's template (``/api/resources/{id}``): bounded label cardinality."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = valid_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
    parent = parse_traceparent(request.headers.get("traceparent"))
    trace: TraceContext = parent.child() if parent else new_trace()
    request[REQUEST_ID] = request_id
    request[TRACE] = trace
    started = time.perf_counter()
    status = 500
    token = enter_context(request_id, trace.trace_id, trace.span_id)
    try:
        response: web.StreamResponse = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # a redirect the error middleware let through
        status = exc.status
        raise
    finally:
        # The path only: query strings can carry things that must never reach a log.
        access_line(
            method=request.method,
            path=request.path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        leave_context(token)


async def _echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Runs on every response, streaming ones included, just before headers are sent."""
    request_id = request.get(REQUEST_ID)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    trace = request.get(TRACE)
    if trace is not None:
        response.headers["traceparent"] = trace.traceparent


class _RequestMetrics:
    """The label children of one (method, route, status), looked up once and then reused."""

    __slots__ = ("duration", "total")

    def __init__(self, labels: tuple[str, str, str, str]) -> None:
        self.duration = HTTP_REQUEST_DURATION.labels(*labels)
        self.total = HTTP_REQUESTS.labels(*labels)


def metrics_middleware_for(service: str) -> Any:
    """Request metrics for ``service``; label children are cached, as this runs on every request.

    The cache is bounded by routes x methods x statuses, the same bound as the label sets.
    """
    active = ACTIVE_CONNECTIONS.labels(service)
    children: dict[tuple[str, str, str], _RequestMetrics] = {}

    @web.middleware
    async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        active.inc()
        try:
            response: web.StreamResponse = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # a redirect the error middleware let through
            status = exc.status
            raise
        finally:
            active.dec()
            key = (request.method, route_template(request), str(status))
            metrics = children.get(key)
            if metrics is None:
                metrics = children[key] = _RequestMetrics((service, *key))
            metrics.duration.observe(time.perf_counter() - started)
            metrics.total.inc()

    return metrics_middleware


# Headers of aiohttp's own HTTP errors that the problem response must keep.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")

#: Exceptions meaning that a server this service depends on cannot be reached right now. They are
#: answered 503 with Retry-After, not 500: the request was fine and may be sent again. The module
#: owning a client adds its library's classes (``common.db`` adds asyncpg's).
UNAVAILABLE_ERRORS: list[type[Exception]] = [ConnectionError, TimeoutError]


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it was raised while handling, is in UNAVAILABLE_ERRORS
    (a lost connection often surfaces as a second error from cleaning up after the first)."""
    for _ in range(5):
        if exc is None:
            return False
        if isinstance(exc, tuple(UNAVAILABLE_ERRORS)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ProblemError as exc:
        return problem_from(request, exc)
    except ValidationError as exc:
        return problem_response(
            request,
            422,
            "The request has invalid values.",
            slug="validation-failed",
            errors=validation_errors(exc),
            total_errors=exc.error_count(),
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {h: exc.headers[h] for h in _KEPT_HEADERS if h in exc.headers}
        return problem_response(request, exc.status, exc.reason, headers=headers)
    except Exception as exc:  # CancelledError is a BaseException: it passes through untouched
        if is_unavailable(exc):
            logger.warning("dependency unavailable", error=type(exc).__name__)
            return problem_response(
                request,
                503,
                "A server this service depends on is unavailable. Try again shortly.",
                slug="service-unavailable",
                headers={"Retry-After": "2"},
            )
        service = request.config_dict[SETTINGS].service_name
        APPLICATION_ERRORS.labels(service, type(exc).__name__).inc()
        logger.opt(exception=loggable(exc)).error("unhandled error", error=type(exc).__name__)
        return problem_response(
            request,
            500,
            "An unexpected error occurred. Quote the request id when reporting it.",
            slug="internal-error",
        )


async def live_handler(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "service": request.config_dict[SETTINGS].service_name})


async def ready_handler(request: web.Request) -> web.Response:
    readiness = request.config_dict[READINESS]
    results = await readiness.run()
    ready = readiness.ready(results)
    status = (
        "not ready" if not ready else "ready" if set(results.values()) == {"ok"} else "degraded"
    )
    return json_response(
        {"status": status, "checks": results},
        status=200 if ready else 503,
        headers=None if ready else {"Retry-After": "5"},
    )


def create_base_app(
    settings: ServiceSettings,
    *,
    middlewares: tuple[Any, ...] = (),
    client_max_size: int = 10 * 1024 * 1024,
    body_policy: BodyPolicy | None = None,
) -> web.Application:
    """An application with the shared middlewares, ``/metrics`` and ``/health/*`` routes
    (``/health/memory``: this worker's :mod:`common.memory` leak detector), and the worker's
    platform usage meter (:mod:`common.costtracker`).

    JSON bodies are guarded by ``body_policy`` (default: at most ``client_max_size`` bytes,
    :mod:`common.json_guard`'s depth, deadline and markup policy).

    ``app[ADMISSION].exempt`` lists the paths served beyond the in-flight bound; a service adds
    its long-lived streams there.

    No I/O here: clients are opened by the ``cleanup_ctx`` entries the service adds.
    """
    admission = Admission(settings.service_name, settings.max_in_flight)
    app = web.Application(
        middlewares=[
            admission.middleware,
            request_context_middleware,
            metrics_middleware_for(settings.service_name),
            usage_middleware(route_template),
            error_middleware,
            json_guard(body_policy or BodyPolicy(max_bytes=client_max_size)),
            *middlewares,
        ],
        client_max_size=client_max_size,
    )
    app[SETTINGS] = settings
    app[READINESS] = Readiness()
    app[ADMISSION] = admission
    app[USAGE_METER] = UsageMeter(settings.service_name)
    app.cleanup_ctx.extend([memory_ctx, usage_ctx(settings.redis_url, settings.redis_prefix)])
    app.on_response_prepare.append(_echo_request_id)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/health/live", live_handler)
    app.router.add_get("/health/ready", ready_handler)
    app.router.add_get(MEMORY_PATH, memory_handler)
    return app
