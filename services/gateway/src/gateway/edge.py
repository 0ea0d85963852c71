"""The edge decision: the gateway decides every API request, nginx carries its bytes.

nginx (``nginx/cloudops_edge.lua``) asks ``GET /_edge/auth`` (an internal location, not in the
route table) with the original method and URI in ``X-Original-Method`` / ``X-Original-URI``, the
client's headers and no body. The gateway resolves that request against its own router, runs its
own decision chain on it (network, hardening, bots, auth with CSRF and permission, rate limit:
the very middleware functions of :mod:`gateway.app`) and always answers 204:

- ``X-CloudOps-Upstream: resources|costs|alerts``: allowed. nginx sends the request straight to
  that service with the identity headers of this answer (:func:`gateway.proxy.identity_headers`,
  the ones the gateway's proxy sends) and gives the client its RateLimit headers.
- ``X-CloudOps-Upstream: gateway``: nginx sends the whole request to the gateway, as before. That
  is the answer for every refusal (the gateway decides again and renders the exact problem), the
  gateway's own routes, unknown paths, CORS, a declared body the route refuses, a chunked body
  only the gateway can count against a smaller limit, and an upstream whose breaker is not
  closed. A refusal spends no quota here: the rate limiter records only what it allows.

``HEAD`` is decided as ``GET``, the route it reads.

An allowed read without a body that Redis counted is also marked rememberable
(``X-CloudOps-Edge-Cache``, :func:`_rememberable`): nginx then lets the same read through again for
``edge_cache_seconds`` without asking, counting each request in the same Redis window with the
same script (:data:`gateway.ratelimit.SLIDING_WINDOW`). Every answer carries the newest edge epoch
the gateway knows (``X-CloudOps-Edge-Epoch``); a key revocation, a logout and a honeypot flag move
it, and nginx then forgets everything decided before.

The decision runs for every API request, so its subrequest skips the common chain: it is answered
by the first middleware, before the access log line (nginx logs the request, and the service or
the gateway that serves it logs it too), the per-route metrics (``gateway_edge_decisions_total``
counts the decisions) and the in-flight bound (nginx bounds the API requests in progress). It
takes its request id and trace context as that chain would, and hands them on with the decision.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from functools import partial
from typing import Protocol

from aiohttp import web
from loguru import logger
from prometheus_client import Counter
from yarl import URL

from common.errors import NotFound, ProblemError, problem_from
from common.limits import API_MAX_BODY_BYTES
from common.web import Handler, identify, is_json_content_type, stamp
from gateway.breaker import BreakerState
from gateway.hardening import body_limit
from gateway.network import CLIENT, from_edge
from gateway.proxy import UPSTREAMS, identity_headers
from gateway.ratelimit import DECISION, EPOCH_HEADER, RATE_LIMITER, Decision
from gateway.routes import RouteSpec, route_spec
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings

EDGE_DECISIONS = Counter(
    "gateway_edge_decisions_total",
    "Edge decisions by the upstream named: a service, or the gateway for the whole request.",
    ["upstream"],
)


class Middleware(Protocol):
    """An aiohttp middleware, as the gateway's decision chain is written."""

    def __call__(self, request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]: ...


EDGE_PATH = "/_edge/auth"
UPSTREAM_HEADER = "X-CloudOps-Upstream"
GATEWAY = "gateway"
ORIGINAL_METHOD = "X-Original-Method"
ORIGINAL_URI = "X-Original-URI"
# The original request's body as the client declared it (the subrequest itself carries none).
ORIGINAL_LENGTH = "X-Original-Content-Length"
ORIGINAL_TRANSFER_ENCODING = "X-Original-Transfer-Encoding"
# What nginx's edge may remember of an allowed read (nginx/cloudops_edge.lua): for how many
# seconds, and how to count each request it then lets through in the same Redis window.
CACHE_HEADER = "X-CloudOps-Edge-Cache"

# What the decision chain's last link returns when every check let the request through.
_ALLOWED = web.Response(status=204)
_TO_GATEWAY = {UPSTREAM_HEADER: GATEWAY}


async def _allowed(request: web.Request) -> web.StreamResponse:
    return _ALLOWED


class EdgeDecider:
    """The gateway's decision chain composed once, ending where the proxy would begin."""

    def __init__(self, chain: Sequence[Middleware]) -> None:
        handler: Handler = _allowed
        for middleware in reversed(chain):
            handler = partial(middleware, handler=handler)
        self._chain = handler
        self._counted: dict[str, Counter] = {}

    def count(self, upstream: str) -> None:
        counter = self._counted.get(upstream)
        if counter is None:
            counter = self._counted[upstream] = EDGE_DECISIONS.labels(upstream)
        counter.inc()

    async def upstream(self, original: web.Request) -> str | None:
        """The service that may serve ``original`` directly; None sends it to the gateway."""
        spec = route_spec(original)
        if spec is None or spec.upstream is None:
            return None
        app = original.app
        if app[UPSTREAMS][spec.upstream].breaker.state is not BreakerState.CLOSED:
            return None  # the gateway answers 503 or lets its one trial call through
        if _needs_gateway(original, spec, app[GATEWAY_SETTINGS]):
            return None
        try:
            outcome = await self._chain(original)
        except (ProblemError, web.HTTPException):
            return None
        except Exception as exc:
            # Whatever broke (Redis, a bug), the gateway meets it again and renders the problem.
            logger.warning("edge decision failed", error=type(exc).__name__)
            return None
        return spec.upstream if outcome is _ALLOWED else None


EDGE = web.AppKey("edge", EdgeDecider)


def _needs_gateway(original: web.Request, spec: RouteSpec, settings: GatewaySettings) -> bool:
    """Requests only the gateway's own handling gets right, though none of them is refused yet."""
    origin = original.headers.get("Origin")
    if origin and origin in settings.cors_origins:
        return True  # the CORS response headers are the gateway's
    length = original.headers.get(ORIGINAL_LENGTH, "")
    chunked = bool(original.headers.get(ORIGINAL_TRANSFER_ENCODING))
    if not chunked and (not length.isdigit() or int(length) == 0):
        return False  # no body
    limit = body_limit(spec, settings)
    if chunked:
        # nginx cuts a chunked body at API_MAX_BODY_BYTES (2 GiB for uploads): a route with a
        # smaller limit needs the gateway to count the bytes.
        return limit < API_MAX_BODY_BYTES
    if int(length) > limit:
        return True  # 413, before a byte is read
    content_type = original.content_type
    return content_type not in spec.body_types and not (
        "application/json" in spec.body_types and is_json_content_type(content_type)
    )  # 415


async def _original_request(request: web.Request) -> web.Request | None:
    """The request nginx asks about, routed by the gateway's router; None when it cannot be."""
    method = request.headers.get(ORIGINAL_METHOD, "").upper()
    uri = request.headers.get(ORIGINAL_URI, "")
    if not method or not uri.startswith("/") or method == "OPTIONS":
        return None  # preflights are the gateway's
    path, _, query = uri.partition("?")
    try:
        # As aiohttp builds a request's URL: the raw bytes kept, so the path checks see them.
        url = URL.build(path=path, query_string=query, encoded=True)
        original = request.clone(method="GET" if method == "HEAD" else method, rel_url=url)
    except ValueError:
        return None
    app = request.app
    match_info = await app.router.resolve(original)
    match_info.add_app(app)
    match_info.freeze()
    original._match_info = match_info  # as aiohttp's own dispatch does
    return original


async def edge_auth(request: web.Request) -> web.Response:
    """``GET /_edge/auth``: 204 with the upstream that may serve the original request.

    With an edge secret configured, only nginx may ask (a decision spends the caller's quota
    and names identities): anyone else gets a plain 404, as for any path that is not served.
    """
    secret = request.app[GATEWAY_SETTINGS].edge_secret
    identify(request)
    if secret is not None and not from_edge(request, secret.get_secret_value().encode()):
        return problem_from(request, NotFound("There is nothing at this path."))
    original = await _original_request(request)
    edge = request.app[EDGE]
    upstream = None if original is None else await edge.upstream(original)
    edge.count(upstream or GATEWAY)
    epoch = request.app[RATE_LIMITER].epoch
    known = {} if epoch is None else {EPOCH_HEADER: str(epoch)}
    if original is None or upstream is None:
        return web.Response(status=204, headers={**_TO_GATEWAY, **known})
    headers = identity_headers(original, original[CLIENT])
    headers[UPSTREAM_HEADER] = upstream
    headers.update(known)
    decision = original.get(DECISION)
    if decision is not None:
        request[DECISION] = decision  # ratelimit.rate_limit_headers adds them to this answer
        remembered = _rememberable(original, decision)
        if remembered:
            headers[CACHE_HEADER] = remembered
    return web.Response(status=204, headers=headers)


def _rememberable(original: web.Request, decision: Decision) -> str | None:
    """What nginx's edge needs to let the same read through again without asking, or None.

    Only a read without a body, and only a decision Redis counted: nginx then runs the gateway's
    own rate-limit script (by its SHA1) with this window's key, the client's honeypot flag and
    the epoch the decision was made under, so every request is still counted in the same window
    (one slot per request, leased a few at a time only for limits of thousands), a flagged client
    is refused, and a revocation since (the epoch moved) voids the memory on every replica. The
    rest (key, IP lists, permissions, bots, path checks) is a function of what nginx keys its
    memory by: the URI, the credentials, the User-Agent, the Origin, the scheme and the client's
    address. Refusals are never remembered.

    Tab-separated: seconds to remember, the script's SHA1, policy, limit, window in ms, the
    epoch, the window's key, the client's flag key, the epoch's key.
    """
    settings = original.app[GATEWAY_SETTINGS]
    if (
        settings.edge_cache_seconds <= 0
        or original.method != "GET"
        or original.headers.get(ORIGINAL_TRANSFER_ENCODING)
        or original.headers.get(ORIGINAL_LENGTH, "0") not in ("", "0")
        or decision.bucket is None
        or decision.epoch is None
    ):
        return None
    limiter = original.app[RATE_LIMITER]
    fields = (
        f"{settings.edge_cache_seconds:g}",
        limiter.script.sha.decode(),
        decision.policy,
        str(decision.limit),
        str(decision.window_seconds * 1000),
        decision.epoch,
        decision.bucket,
        limiter.flag_key(original[CLIENT].ip),
        limiter.epoch_key,
    )
    return "\t".join(fields)


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers the edge decision before any chain runs on the subrequest itself.

    The gateway's chain belongs to the original request: run on the subrequest it would judge
    nginx's call instead (a denied User-Agent would make the subrequest 403, which nginx turns
    into its own error page). The common chain's work is done by the request it serves.
    """
    if request.match_info.handler is edge_auth:
        response = await edge_auth(request)
        stamp(request, response)
        return response
    return await handler(request)


def setup_edge(app: web.Application, chain: Sequence[Middleware]) -> None:
    """Serve the edge decision with ``chain``, the gateway's decision middlewares in order, from
    the outermost middleware."""
    app[EDGE] = EdgeDecider(chain)
    app.router.add_get(EDGE_PATH, edge_auth)
    app.middlewares.insert(0, edge_middleware)
