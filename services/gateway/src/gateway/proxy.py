"""The reverse proxy: one keep-alive client session and one circuit breaker per upstream.

Requests are forwarded with hop-by-hop headers removed (RFC 9110 section 7.6.1), client
credentials and client-sent identity headers stripped, and the gateway's own identity headers
added. Request bodies that need no inspection (billing files) and responses stream through
chunk by chunk; neither is ever buffered whole.

Live streams (``/api/alerts/stream``) last as long as their viewer: they use a session and pool
of their own, so open streams never take the connections ordinary requests need, and they never
touch the breaker. A request that runs out of time waiting for a free connection of the gateway's
own pool is a 503 of the gateway's: it says nothing about the upstream, so the breaker is not told.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
from aiohttp import web
from loguru import logger
from multidict import CIMultiDict

from common.caller import PERMISSIONS_HEADER, PRINCIPAL_HEADER
from common.context import REQUEST_ID, TRACE
from common.errors import BadRequest, PayloadTooLarge, ProblemError, ServiceUnavailable
from common.web import prepare_stream
from gateway.breaker import CircuitBreaker, Guard, Unguarded
from gateway.hardening import StreamedBody, request_body
from gateway.network import CLIENT, Client
from gateway.principal import PRINCIPAL
from gateway.routes import RouteSpec, route_spec
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Never forwarded upstream: the host is the upstream's, credentials stay at the door, and
# forwarding/identity headers are rebuilt by the gateway from what it verified itself.
_REQUEST_DROPPED = frozenset(
    {
        "host",
        "content-length",
        "expect",
        "x-api-key",
        "authorization",
        "cookie",
        "x-csrf-token",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-real-ip",
        "x-request-id",
        "traceparent",
        "tracestate",
    }
)
# The gateway decides these for the public response (security headers, its own Date/Server).
_RESPONSE_DROPPED = frozenset({"server", "date", "set-cookie", "x-request-id", "traceparent"})
IDENTITY_PREFIX = "x-cloudops-"
# Bodies up to this size, with a declared length, are read whole and sent in one write: the
# profile showed per-chunk writes dominating small JSON answers. Larger ones stream.
BUFFERED_BODY_BYTES = 256 * 1024
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Paths whose answer is a live stream, held open as long as its viewer stays.
LIVE_STREAMS = frozenset({"/api/alerts/stream"})
#: Connections per upstream for live streams, apart from the pool of ordinary requests (the
#: alerts service caps streams per principal and in total, and answers 429 beyond).
STREAM_POOL_SIZE = 1024
UNGUARDED = Unguarded()


class BadGateway(ProblemError):
    status, slug = 502, "bad-gateway"


class GatewayTimeout(ProblemError):
    status, slug = 504, "upstream-timeout"


@dataclass
class Upstream:
    name: str
    base_url: str
    session: aiohttp.ClientSession
    breaker: CircuitBreaker
    #: Live streams only: a pool of its own, outside the breaker.
    streams: aiohttp.ClientSession


class PoolWait:
    """Whether a request is still waiting for a free connection of the gateway's own pool."""

    __slots__ = ("waiting",)

    def __init__(self) -> None:
        self.waiting = False


async def _queued(
    _: aiohttp.ClientSession, ctx: SimpleNamespace, __: aiohttp.TraceConnectionQueuedStartParams
) -> None:
    if isinstance(ctx.trace_request_ctx, PoolWait):
        ctx.trace_request_ctx.waiting = True


async def _dequeued(
    _: aiohttp.ClientSession, ctx: SimpleNamespace, __: aiohttp.TraceConnectionQueuedEndParams
) -> None:
    if isinstance(ctx.trace_request_ctx, PoolWait):
        ctx.trace_request_ctx.waiting = False


def _pool_tracing() -> aiohttp.TraceConfig:
    """aiohttp raises the same ConnectionTimeoutError when ``connect`` runs out waiting for a
    free pooled connection (our own saturation) as when connecting to the service (its fault);
    its connection-queued trace signals tell the two apart."""
    tracing = aiohttp.TraceConfig()
    tracing.on_connection_queued_start.append(_queued)
    tracing.on_connection_queued_end.append(_dequeued)
    return tracing


def _session(pool_size: int, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=pool_size, keepalive_timeout=30, ttl_dns_cache=300),
        timeout=timeout,
        auto_decompress=False,  # pass encoded bodies through untouched
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        trace_configs=[_pool_tracing()],
    )
    # aiohttp silently re-sends idempotent requests once when a pooled connection drops;
    # the gateway does its own single retry (and counts it in the breaker), so that one is
    # switched off to keep "at most one retry" true. No public switch exists in 3.14.
    session._retry_connection = False
    return session


class Upstreams(dict[str, Upstream]):
    """Upstream name -> its session and breaker."""


UPSTREAMS = web.AppKey("upstreams", Upstreams)


def upstream_urls(settings: GatewaySettings) -> dict[str, str]:
    return {
        "resources": settings.resources_url,
        "costs": settings.costs_url,
        "alerts": settings.alerts_url,
    }


async def upstreams_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open two pooled keep-alive sessions per upstream (ordinary requests, live streams);
    close them all on shutdown."""
    settings = app[GATEWAY_SETTINGS]
    upstreams = Upstreams()
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=settings.upstream_connect_timeout,
        sock_read=settings.upstream_read_timeout,
    )
    for name, url in upstream_urls(settings).items():
        session = _session(settings.upstream_pool_size, timeout)
        streams = _session(STREAM_POOL_SIZE, timeout)
        breaker = CircuitBreaker(
            settings.service_name,
            name,
            failure_threshold=settings.breaker_failure_threshold,
            window_seconds=settings.breaker_window_seconds,
            window_min_requests=settings.breaker_window_min_requests,
            failure_ratio=settings.breaker_failure_ratio,
            reset_seconds=settings.breaker_reset_seconds,
        )
        upstreams[name] = Upstream(name, url.rstrip("/"), session, breaker, streams)
    app[UPSTREAMS] = upstreams
    try:
        yield
    finally:
        await asyncio.gather(
            *(s.close() for u in upstreams.values() for s in (u.session, u.streams))
        )


def _connection_tokens(headers: Mapping[str, str]) -> set[str]:
    """Header names listed in ``Connection`` are hop-by-hop too (RFC 9110 7.6.1)."""
    value = headers.get("Connection", "")
    return {t.strip().lower() for t in value.split(",") if t.strip()}


def upstream_request_headers(request: web.Request, client: Client) -> CIMultiDict[str]:
    listed = _connection_tokens(request.headers)
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        lower = name.lower()
        if (
            lower in HOP_BY_HOP
            or lower in listed
            or lower in _REQUEST_DROPPED
            or lower.startswith(IDENTITY_PREFIX)
        ):
            continue
        headers.add(name, value)
    headers.update(identity_headers(request, client))
    return headers


def identity_headers(request: web.Request, client: Client) -> dict[str, str]:
    """What a service is told about a request: who called, from where, under which ids.

    The one source of these headers, whether the gateway proxies the request itself or the
    edge decision (:mod:`gateway.edge`) hands them to nginx to send straight to the service.
    """
    headers = {"X-Forwarded-For": client.ip, "X-Forwarded-Proto": client.scheme}
    request_id = request.get(REQUEST_ID)
    if request_id:
        headers["X-Request-ID"] = request_id
    trace = request.get(TRACE)
    if trace is not None:
        headers["traceparent"] = trace.traceparent
    principal = request.get(PRINCIPAL)
    if principal is not None:
        headers[PRINCIPAL_HEADER] = principal.name
        headers[PERMISSIONS_HEADER] = principal.permissions_header
    return headers


def downstream_response_headers(upstream_headers: Mapping[str, str]) -> CIMultiDict[str]:
    listed = _connection_tokens(upstream_headers)
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream_headers.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in listed or lower in _RESPONSE_DROPPED:
            continue
        headers.add(name, value)
    return headers


def _unavailable(guard: Guard, detail: str) -> ServiceUnavailable:
    return ServiceUnavailable(detail, headers={"Retry-After": str(guard.retry_after())})


def _timeout(upstream: Upstream, spec: RouteSpec) -> aiohttp.ClientTimeout:
    """The session's timeouts, with the route's own read timeout when it has one."""
    timeout = upstream.session.timeout
    if spec.read_timeout_seconds is None:
        return timeout
    return aiohttp.ClientTimeout(
        total=None, connect=timeout.connect, sock_read=spec.read_timeout_seconds
    )


def _body_failure(body: bytes | StreamedBody | None) -> ProblemError | None:
    """The client's fault behind a failed upstream request, if it was the streamed body."""
    if not isinstance(body, StreamedBody):
        return None
    if body.exceeded:
        return PayloadTooLarge(f"The body may be at most {body.limit} bytes.")
    if body.client_failed:
        return BadRequest("The request body ended before it was complete.")
    return None


async def _send(
    request: web.Request,
    upstream: Upstream,
    spec: RouteSpec,
    body: bytes | StreamedBody | None,
    headers: CIMultiDict[str],
    *,
    live: bool = False,
) -> aiohttp.ClientResponse:
    """Send once, or twice for idempotent methods when the connection itself failed.

    A streamed body that has started cannot be replayed: its bytes are gone. Such a request is
    never retried, and when the stream itself failed (over the limit, client gone) the error is
    the client's, not the upstream's, so the breaker does not count it. A ``live`` stream goes
    through the streams' own session and is neither refused nor counted by the breaker.
    """
    attempts = 2 if request.method in IDEMPOTENT else 1
    url = upstream.base_url + request.raw_path
    timeout = _timeout(upstream, spec)
    session, guard = (upstream.streams, UNGUARDED) if live else (upstream.session, upstream.breaker)
    if isinstance(body, StreamedBody) and body.length is not None:
        # A sized body stays sized: the service sees the client's Content-Length.
        headers["Content-Length"] = str(body.length)
    for attempt in range(1, attempts + 1):
        if not guard.allow():
            raise _unavailable(guard, f"The {upstream.name} service is unavailable.")
        data = body.chunks() if isinstance(body, StreamedBody) else body
        pool = PoolWait()
        try:
            return await session.request(
                request.method,
                url,
                headers=headers,
                data=data,
                allow_redirects=False,
                timeout=timeout,
                trace_request_ctx=pool,
            )
        except TimeoutError:
            # Before ClientConnectionError: aiohttp's timeouts are both. A slow service is not
            # retried; that would only double the wait.
            if pool.waiting:
                # All the time went waiting for our own pool: the service was never asked.
                logger.warning("upstream pool busy", upstream=upstream.name)
                raise ServiceUnavailable(
                    f"The gateway has no free connection to the {upstream.name} service; "
                    "try again shortly.",
                    headers={"Retry-After": "1"},
                ) from None
            guard.record_failure()
            raise GatewayTimeout(f"The {upstream.name} service did not answer in time.") from None
        except aiohttp.ClientConnectionError as exc:
            client_fault = _body_failure(body)
            if client_fault is not None:
                raise client_fault from None
            guard.record_failure()
            logger.warning(
                "upstream connection failed",
                upstream=upstream.name,
                attempt=attempt,
                error=type(exc).__name__,
            )
            if isinstance(body, StreamedBody) and body.started:
                break
    raise _unavailable(guard, f"The {upstream.name} service is unavailable.")


async def _buffered(
    upstream: Upstream,
    guard: Guard,
    upstream_response: aiohttp.ClientResponse,
    headers: CIMultiDict[str],
) -> web.Response:
    """A small body of known length, sent in one write instead of header + chunk + eof."""
    try:
        body = await upstream_response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        guard.record_failure()
        logger.warning("upstream body failed", upstream=upstream.name, error=type(exc).__name__)
        raise BadGateway(f"The {upstream.name} service sent an incomplete answer.") from None
    headers.popall("Content-Length", None)
    return web.Response(
        body=body, status=upstream_response.status, reason=upstream_response.reason, headers=headers
    )


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Forward the request to its upstream and stream the answer back."""
    spec = route_spec(request)
    assert spec is not None
    assert spec.upstream is not None
    upstream = request.app[UPSTREAMS][spec.upstream]
    body = await request_body(request, spec)
    headers = upstream_request_headers(request, request[CLIENT])
    live = request.path in LIVE_STREAMS
    guard: Guard = UNGUARDED if live else upstream.breaker
    upstream_response = await _send(request, upstream, spec, body, headers, live=live)
    try:
        if upstream_response.status in (502, 503, 504):
            guard.record_failure()
        else:
            guard.record_success()
        headers = downstream_response_headers(upstream_response.headers)
        length = upstream_response.content_length
        if length is not None and length <= BUFFERED_BODY_BYTES:
            return await _buffered(upstream, guard, upstream_response, headers)
        response = web.StreamResponse(
            status=upstream_response.status, reason=upstream_response.reason, headers=headers
        )
        await prepare_stream(request, response)
        try:
            async for chunk in upstream_response.content.iter_any():
                try:
                    await response.write(chunk)
                except ConnectionResetError:
                    return response  # the client left: nothing wrong with the upstream
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Headers are already sent: all we can do is cut the connection so the client
            # sees a truncated response rather than a silently short one.
            guard.record_failure()
            logger.warning("upstream body failed", upstream=upstream.name, error=type(exc).__name__)
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response
    finally:
        upstream_response.release()
