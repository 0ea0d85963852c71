"""Request hardening and response security headers.

Cheap refusals first, before anything reads the body or touches Redis: TRACE-like methods,
credentials in the query string, bodies declared too large or of the wrong media type.
Each route's body limit becomes the request's :class:`~common.json_guard.BodyPolicy`, so the
gateway's own handlers and the proxy read JSON through the same guard every service runs
(:mod:`common.json_guard`): counted on the bytes actually read (a chunked body over the limit is
cut off, never buffered past it), within a deadline, and checked for depth and executable markup
before going upstream. Every other body (billing files) is never held: it is forwarded as it
arrives and counted, and the upstream request is broken off at the limit or when the client
stops sending for longer than the idle timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from common.errors import (
    BadRequest,
    PayloadTooLarge,
    ProblemError,
    RequestTimeout,
    UnsupportedMediaType,
    problem_from,
)
from common.json_guard import (
    BODILESS_METHODS,
    BODY_POLICY,
    BodyPolicy,
    close_after,
    is_json_content_type,
    read_guarded_json,
)
from common.web import Handler
from gateway.network import CLIENT
from gateway.routes import RouteSpec, route_spec
from gateway.security_log import security_event
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings

REFUSED_METHODS = frozenset({"TRACE", "TRACK", "CONNECT"})
QUERY_CREDENTIALS = frozenset(
    {"api_key", "apikey", "api-key", "key", "x-api-key", "token", "access_token", "jwt", "session"}
)
# Encoded separators and NULs let a path mean one thing to the router and another upstream.
AMBIGUOUS_IN_RAW_PATH = ("%2f", "%5c", "%00", "\\")

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": API_CSP,
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "no-store",
    "X-XSS-Protection": "0",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Server": "cloudops-gateway",
}
HSTS = "max-age=63072000; includeSubDomains"


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: runs for every response, errors and streams included."""
    response.headers.update(_STATIC_HEADERS)
    client = request.get(CLIENT)
    if client.secure if client is not None else request.scheme == "https":
        response.headers["Strict-Transport-Security"] = HSTS
    settings = request.app[GATEWAY_SETTINGS]
    origin = request.headers.get("Origin")
    if origin and origin in settings.cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = (
            "X-Request-ID, RateLimit, RateLimit-Policy, Retry-After"
        )
        response.headers.add("Vary", "Origin")


def _preflight(request: web.Request, settings: GatewaySettings) -> web.Response:
    origin = request.headers.get("Origin", "")
    if origin not in settings.cors_origins:
        raise ProblemError("This origin may not call the API.", status=403, slug="cors-denied")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
            "Access-Control-Allow-Headers": "Content-Type, X-API-Key, Authorization, X-Request-ID",
            "Access-Control-Max-Age": "600",
        },
    )


def body_limit(spec: RouteSpec | None, settings: GatewaySettings) -> int:
    if spec is not None and spec.max_body_bytes is not None:
        return spec.max_body_bytes
    return settings.max_body_bytes


def body_policy(spec: RouteSpec, settings: GatewaySettings) -> BodyPolicy:
    """The JSON body policy of ``spec``'s route: its own limit, the gateway's depth and deadline.

    The markup policy guards what services store and show; the gateway's own routes validate
    every field with their models instead, and a password may hold any character.
    """
    return BodyPolicy(
        max_bytes=body_limit(spec, settings),
        max_depth=settings.max_json_depth,
        read_timeout_seconds=settings.body_read_timeout_seconds,
        reject_markup=spec.upstream is not None,
    )


def _check_declared_body(request: web.Request, spec: RouteSpec, limit: int) -> None:
    if not request.body_exists or request.method in BODILESS_METHODS:
        return  # a GET/HEAD/DELETE body is ignored, never read: common.json_guard
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
    if request.content_type not in spec.body_types and not (
        "application/json" in spec.body_types and is_json_content_type(request.content_type)
    ):
        raise UnsupportedMediaType(
            f"Expected Content-Type {', '.join(spec.body_types)}, got {request.content_type!r}."
        )


@web.middleware
async def hardening_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[GATEWAY_SETTINGS]
    if request.method in REFUSED_METHODS:
        raise ProblemError(
            f"{request.method} is not allowed.",
            status=405,
            slug="method-not-allowed",
            headers={"Allow": "GET, HEAD, POST, PUT, PATCH, DELETE"},
        )
    if _ambiguous_path(request):
        security_event("ambiguous_path", request)
        raise BadRequest("The path contains dot segments or encoded separators.")
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return _preflight(request, settings)
    if QUERY_CREDENTIALS & {k.lower() for k in request.query}:
        security_event("query_credential", request)
        raise ProblemError(
            "Credentials are accepted only in the X-API-Key or Authorization header, "
            "never in the URL.",
            status=401,
            slug="credential-in-query",
            headers={"WWW-Authenticate": 'ApiKey realm="cloudops"'},
        )
    spec = route_spec(request)
    if spec is not None:
        policy = body_policy(spec, settings)
        try:
            _check_declared_body(request, spec, policy.max_bytes)
        except PayloadTooLarge as exc:
            return close_after(problem_from(request, exc))
        # The guard's reads (the handlers' read_json, the proxy's JSON bodies) apply it.
        request[BODY_POLICY] = policy
    # A body cut off while being read (413, 408) closes the connection: common.json_guard.
    return await handler(request)


def _ambiguous_path(request: web.Request) -> bool:
    """Dot segments would be forwarded verbatim and could climb out of the routed prefix."""
    raw = request.raw_path.split("?", 1)[0].lower()
    if any(marker in raw for marker in AMBIGUOUS_IN_RAW_PATH):
        return True
    return any(segment in (".", "..") for segment in request.path.split("/"))


class StreamedBody:
    """A request body passed on chunk by chunk as it arrives, counted against the route's limit.

    Nothing is kept: each chunk goes upstream and is dropped. Past the limit the stream fails, so
    the upstream sees a broken body and keeps nothing; ``exceeded`` then tells the proxy to
    answer 413. A client that sends nothing for ``idle_seconds`` fails the stream the same way
    (``client_failed``). A stream that has ``started`` cannot be sent again.
    """

    def __init__(self, request: web.Request, limit: int, idle_seconds: float) -> None:
        self._content = request.content
        self.limit = limit
        self.idle_seconds = idle_seconds
        self.length = request.content_length  # as the client declared it, if it did
        self.sent = 0
        self.started = False
        self.exceeded = False
        self.client_failed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        while True:
            try:
                async with asyncio.timeout(self.idle_seconds):
                    chunk = await self._content.readany()
            except TimeoutError:
                # Not a TimeoutError upward: the proxy would count a slow client as a slow service.
                self.client_failed = True
                raise RequestTimeout(
                    f"The body stalled for more than {self.idle_seconds:g} seconds."
                ) from None
            except Exception:
                self.client_failed = True
                raise
            if not chunk:
                return
            self.sent += len(chunk)
            if self.sent > self.limit:
                self.exceeded = True
                raise PayloadTooLarge(f"The body may be at most {self.limit} bytes.")
            yield chunk


async def request_body(request: web.Request, spec: RouteSpec) -> bytes | StreamedBody | None:
    """The body to forward: JSON read whole and checked, anything else streamed; none at all for
    a method without body semantics, whatever the client sent."""
    if not request.body_exists or request.method in BODILESS_METHODS:
        return None
    if is_json_content_type(request.content_type):
        # Read and checked by the guard every service runs, under the route's policy.
        raw, _ = await read_guarded_json(request, orjson.loads)
        return raw
    settings = request.app[GATEWAY_SETTINGS]
    return StreamedBody(request, body_limit(spec, settings), settings.upload_idle_seconds)
