"""The aiohttp skeleton every service shares: middlewares, JSON in/out, health and metrics routes.

Every request goes first through the request frame (:class:`RequestFrame`), one middleware
doing, in this order:

- admission: a request beyond the worker's in-flight bound is turned away before any other
  work is spent on it, since under overload a rejection must cost far less than a request (no
  log line, no histogram; it counts itself in ``http_requests_rejected_total``);
- request context: an id and a trace before anything can log or fail;
- errors: every exception below becomes a problem response (:func:`problem_for`) that the
  frame still observes;
- the body guard (:mod:`common.json_guard`), for a request with a body or a method that may
  have one: it refuses a body on a method that has none and a JSON body declared too large
  before anything reads it, and closes the connection after a body cut off while being read;
- afterwards, with the final status: request metrics, the platform usage meter
  (:mod:`common.costtracker`) and the one access-log line.

The service's own middlewares come after it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar, get_origin

import orjson
from aiohttp import web
from loguru import logger
from pydantic import BaseModel, ValidationError

from common.admission import ADMISSION, Admission
from common.caller import ANONYMOUS, PRINCIPAL_HEADER, parse_principal
from common.config import ServiceSettings
from common.context import REQUEST_ID, TRACE
from common.costtracker import (
    USAGE_METER,
    USAGE_PRINCIPAL,
    PrincipalOf,
    UsageMeter,
    usage_ctx,
)
from common.encoding import dumps
from common.errors import (
    BadRequest,
    ProblemError,
    problem_from,
    problem_response,
    validation_errors,
)
from common.json_guard import BodyPolicy, json_guard, needs_guard, read_guarded_json
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
T = TypeVar("T")
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


class QueryMemo(Generic[T]):
    """What a handler makes of a query string, remembered for the ``size`` query strings used last.

    ``build`` reads the query with :func:`parse_query` and derives what the handler needs from it
    (a cache key, say); it may depend on the query string alone. A repeated query string then
    costs a dictionary lookup instead of validation. Only results are kept: a query refused with
    a 400 is refused again every time. One value serves every request with that query string, so
    it must be immutable (a frozen model).
    """

    def __init__(self, build: Callable[[web.Request], T], size: int = 1024) -> None:
        self._build = build
        self._size = size
        self._made: OrderedDict[str, T] = OrderedDict()

    def __call__(self, request: web.Request) -> T:
        raw = request.rel_url.raw_query_string  # as sent: two spellings are two entries
        made = self._made.get(raw)
        if made is not None:
            self._made.move_to_end(raw)
            return made
        made = self._made[raw] = self._build(request)
        if len(self._made) > self._size:
            self._made.popitem(last=False)
        return made


def route_template(request: web.Request) -> str:
    """The matched route's template (``/api/resources/{id}``): bounded label cardinality."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def stamp(request: web.Request, response: web.StreamResponse | web.HTTPException) -> None:
    """Echo the request's id and trace context on its response (the frame does it for every
    answer a handler returns; a stream goes through :func:`prepare_stream`)."""
    request_id = request.get(REQUEST_ID)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    trace = request.get(TRACE)
    if trace is not None:
        response.headers["traceparent"] = trace.traceparent


async def prepare_stream(request: web.Request, response: web.StreamResponse) -> None:
    """Send a streamed response's status line and headers, with the request's id and trace.

    The frame stamps the responses handlers return, but a stream's headers leave before its
    handler returns, so a streaming handler prepares its response here, never with
    ``response.prepare`` (a static check holds every handler to it). No ``on_response_prepare``
    signal does it instead: a signal costs every response a coroutine call or two.
    """
    stamp(request, response)
    await response.prepare(request)


class _RequestMetrics:
    """The label children of one (method, route, status), looked up once and then reused."""

    __slots__ = ("duration", "total")

    def __init__(self, labels: tuple[str, str, str, str]) -> None:
        self.duration = HTTP_REQUEST_DURATION.labels(*labels)
        self.total = HTTP_REQUESTS.labels(*labels)


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


def problem_for(request: web.Request, exc: Exception) -> web.Response:
    """The problem response for an exception a handler raised; a redirect is raised again.

    A :class:`~common.errors.ProblemError` renders itself, invalid values are a 422 listing the
    fields, aiohttp's HTTP errors keep their status, a dependency that cannot be reached is a 503
    with ``Retry-After``, and anything else is a 500 that says only to quote the request id (the
    traceback is logged, without variable values).
    """
    if isinstance(exc, ProblemError):
        return problem_from(request, exc)
    if isinstance(exc, ValidationError):
        return problem_response(
            request,
            422,
            "The request has invalid values.",
            slug="validation-failed",
            errors=validation_errors(exc),
            total_errors=exc.error_count(),
        )
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        headers = {h: exc.headers[h] for h in _KEPT_HEADERS if h in exc.headers}
        return problem_response(request, exc.status, exc.reason, headers=headers)
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


def _header_principal(request: web.Request) -> str | None:
    return parse_principal(request.headers.get(PRINCIPAL_HEADER))


def identify(request: web.Request) -> tuple[str, TraceContext]:
    """Give ``request`` its id (the client's, when harmless) and its span in the caller's trace
    (a new trace without a valid ``traceparent``), stored under REQUEST_ID and TRACE."""
    headers = request.headers
    request_id = valid_request_id(headers.get(REQUEST_ID_HEADER)) or new_request_id()
    parent = parse_traceparent(headers.get("traceparent"))
    trace = parent.child() if parent else new_trace()
    request[REQUEST_ID] = request_id
    request[TRACE] = trace
    return request_id, trace


class RequestFrame:
    """What every request of a service goes through, as one middleware (see the module docstring).

    One layer rather than five: each middleware is a coroutine call and a ``try`` around the next,
    which a cached read, a few tens of microseconds of work, paid five times over.
    """

    def __init__(self, service: str, admission: Admission, body_policy: BodyPolicy) -> None:
        self.admission = admission
        self._guard = json_guard(body_policy)
        self._active = ACTIVE_CONNECTIONS.labels(service)
        self._children: dict[tuple[str, str, int], _RequestMetrics] = {}
        self._service = service
        self._meter: UsageMeter | None = None
        self._principal: PrincipalOf = _header_principal

    async def on_startup(self, app: web.Application) -> None:
        """Read the app's meter and principal hook once: the app cannot change after start."""
        self._meter = app.get(USAGE_METER)
        self._principal = app.get(USAGE_PRINCIPAL, _header_principal)

    def _metrics(self, method: str, route: str, status: int) -> _RequestMetrics:
        # Bounded by routes x methods x statuses, the same bound as the label sets.
        key = (method, route, status)
        metrics = self._children.get(key)
        if metrics is None:
            labels = (self._service, method, route, str(status))
            metrics = self._children[key] = _RequestMetrics(labels)
        return metrics

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        admission = self.admission
        counted = request.path not in admission.exempt
        if counted:
            if admission.in_flight >= admission.limit:
                return admission.refuse(request)
            admission.in_flight += 1
        request_id, trace = identify(request)
        token = enter_context(request_id, trace.trace_id, trace.span_id)
        self._active.inc()
        started = time.perf_counter()
        status = 500
        response: web.StreamResponse | None = None
        try:
            try:
                if needs_guard(request):
                    response = await self._guard(request, handler)
                else:
                    response = await handler(request)
            except Exception as exc:  # CancelledError is a BaseException: it passes untouched
                response = problem_for(request, exc)
            status = response.status
            if not response.prepared:
                stamp(request, response)
            return response
        except web.HTTPException as exc:  # a redirect, raised again by problem_for
            status = exc.status
            stamp(request, exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            if counted:
                admission.in_flight -= 1
            self._active.dec()
            route = route_template(request)
            metrics = self._metrics(request.method, route, status)
            metrics.duration.observe(elapsed)
            metrics.total.inc()
            if self._meter is not None:
                nbytes = 0
                if response is not None:
                    nbytes = response.content_length or response.body_length or 0
                who = self._principal(request)
                self._meter.record((who or ANONYMOUS)[:128], route, elapsed, nbytes)
            # The path only: query strings can carry things that must never reach a log.
            access_line(
                method=request.method,
                path=request.path,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
            )
            leave_context(token)


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
    frame = RequestFrame(
        settings.service_name,
        admission,
        body_policy or BodyPolicy(max_bytes=client_max_size),
    )
    app = web.Application(
        middlewares=[frame.middleware, *middlewares], client_max_size=client_max_size
    )
    app[SETTINGS] = settings
    app[READINESS] = Readiness()
    app[ADMISSION] = admission
    app[USAGE_METER] = UsageMeter(settings.service_name)
    app.cleanup_ctx.extend([memory_ctx, usage_ctx(settings.redis_url, settings.redis_prefix)])
    app.on_startup.append(frame.on_startup)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/health/live", live_handler)
    app.router.add_get("/health/ready", ready_handler)
    app.router.add_get(MEMORY_PATH, memory_handler)
    return app
