"""Request hardening and response security headers.

Cheap refusals first, before anything reads the body or touches Redis: TRACE-like methods,
credentials in the query string, bodies declared too large or of the wrong media type.
JSON bodies are small and must be inspected: they are read in bounded chunks (a chunked body
over the limit is cut off, never buffered past it) and checked for depth and executable markup
before going upstream. Every other body (billing files) is never held: it is forwarded as it
arrives and counted, and the upstream request is broken off at the limit.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from common.errors import (
    BadRequest,
    PayloadTooLarge,
    ProblemError,
    UnsupportedMediaType,
    ValidationFailed,
    problem_response,
)
from common.web import Handler, is_json_content_type
from gateway.network import CLIENT
from gateway.routes import RouteSpec, route_spec
from gateway.security_log import security_event
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings

REFUSED_METHODS = frozenset({"TRACE", "TRACK", "CONNECT"})
QUERY_CREDENTIALS = frozenset(
    {"api_key", "apikey", "api-key", "key", "x-api-key", "token", "access_token", "jwt", "session"}
)
# Tags, comments, processing instructions, script URLs and inline handlers: what a browser could
# execute if a plain-text field were ever rendered as HTML.
MARKUP = re.compile(r"<\s*[a-zA-Z!/?]|javascript\s*:|\bon[a-z]+\s*=", re.IGNORECASE)
CHUNK = 64 * 1024
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


def _check_declared_body(request: web.Request, spec: RouteSpec, limit: int) -> None:
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
    if not request.body_exists:
        return
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
        try:
            _check_declared_body(request, spec, body_limit(spec, settings))
        except PayloadTooLarge as exc:
            return _close_after(problem_response(request, exc.status, exc.detail, slug=exc.slug))
    try:
        return await handler(request)
    except PayloadTooLarge as exc:
        return _close_after(problem_response(request, exc.status, exc.detail, slug=exc.slug))


def _ambiguous_path(request: web.Request) -> bool:
    """Dot segments would be forwarded verbatim and could climb out of the routed prefix."""
    raw = request.raw_path.split("?", 1)[0].lower()
    if any(marker in raw for marker in AMBIGUOUS_IN_RAW_PATH):
        return True
    return any(segment in (".", "..") for segment in request.path.split("/"))


def _close_after(response: web.Response) -> web.Response:
    # The unread rest of the body must not be parsed as the next request on this connection.
    response.force_close()
    return response


class StreamedBody:
    """A request body passed on chunk by chunk as it arrives, counted against the route's limit.

    Nothing is kept: each chunk goes upstream and is dropped. Past the limit the stream fails, so
    the upstream sees a broken body and keeps nothing; ``exceeded`` then tells the proxy to
    answer 413. A stream that has ``started`` cannot be sent again.
    """

    def __init__(self, request: web.Request, limit: int) -> None:
        self._content = request.content
        self.limit = limit
        self.length = request.content_length  # as the client declared it, if it did
        self.sent = 0
        self.started = False
        self.exceeded = False
        self.client_failed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        while True:
            try:
                chunk = await self._content.readany()
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
    """The body to forward: JSON read whole and checked, anything else streamed."""
    if not request.body_exists:
        return None
    if is_json_content_type(request.content_type):
        return await read_bounded_body(request, spec)
    return StreamedBody(request, body_limit(spec, request.app[GATEWAY_SETTINGS]))


async def read_bounded_body(request: web.Request, spec: RouteSpec) -> bytes | None:
    """The request body, read in chunks and cut off (413) as soon as it passes the limit."""
    if not request.body_exists:
        return None
    settings = request.app[GATEWAY_SETTINGS]
    limit = body_limit(spec, settings)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body may be at most {limit} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    if is_json_content_type(request.content_type):
        check_json(body, settings.max_json_depth)
    return body


def check_json(body: bytes, max_depth: int) -> None:
    """400 unless ``body`` is JSON no deeper than ``max_depth``; 422 for markup in strings."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("The body is not valid JSON.") from None
    errors: list[dict[str, str]] = []
    stack: list[tuple[Any, str, int]] = [(value, "body", 1)]
    while stack:
        node, path, depth = stack.pop()
        if depth > max_depth:
            raise BadRequest(f"The JSON body is nested deeper than {max_depth} levels.")
        if isinstance(node, dict):
            stack.extend((v, f"{path}.{k}", depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}.{i}", depth + 1) for i, v in enumerate(node))
        elif isinstance(node, str) and MARKUP.search(node):
            errors.append({"field": path, "message": "must not contain HTML or script markup"})
    if errors:
        raise ValidationFailed("Plain-text fields may not contain markup.", errors=errors)
