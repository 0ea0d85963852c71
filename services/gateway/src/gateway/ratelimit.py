"""Rate limiting shared by every gateway replica: a sliding-window log in Redis.

One Lua script per request does the whole decision atomically with the server's clock
(``TIME``), so N replicas agree exactly. Rejected requests are not recorded, so they do not
consume quota. The same script first checks the honeypot flag of the client, saving a round
trip. If Redis is unreachable the gateway keeps serving under an in-process window (per
replica, so looser) and counts every such decision; the limiter never turns into a 500.

Policies, each its own bucket per subject: ``key`` (a key with its own limit), ``session`` (the
dashboard: one page view makes several calls, so a user gets a quota sized for a UI), a route's
own limit, else ``default`` (keys without their own limit, tokens, anonymous callers by IP).
"""

from __future__ import annotations

import itertools
import math
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from loguru import logger
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import Forbidden, TooManyRequests
from common.redis import REDIS, ScriptPipe
from common.web import READINESS, Handler
from gateway.network import CLIENT
from gateway.principal import PRINCIPAL
from gateway.routes import RouteSpec, route_spec
from gateway.security_log import security_event
from gateway.sessions import SESSION
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings

RATE_LIMIT_DECISIONS = Counter(
    "rate_limit_decisions_total",
    "Rate-limit decisions by outcome and by where they were made (redis or fallback).",
    ["service", "outcome", "source"],
)
# By who was refused, for the alert on one key hammering its limit: a key id or user name (never
# a credential), or "anonymous" for clients without one, so the label set stays bounded.
RATE_LIMIT_REJECTIONS = Counter(
    "gateway_rate_limit_rejections_total",
    "Requests refused by the rate limit, by principal and policy.",
    ["principal", "policy"],
)

# KEYS[1] window log (sorted set, scores in microseconds), KEYS[2] honeypot flag, KEYS[3] the
# edge's epoch (bumped by every revocation and flag). ARGV[1] limit, ARGV[2] window in
# milliseconds, ARGV[3] unique member suffix; nginx's edge (nginx/cloudops_edge.lua) adds ARGV[4],
# the epoch its remembered decision was made under, and ARGV[5], how many slots to take at once (a
# lease it hands out one per request). Returns {slots taken (0 when refused, -1 when flagged, -2
# when the edge's decision is older than the last revocation), remaining after them,
# microseconds until a slot frees, the current epoch}. The gateway takes one slot per request;
# both count in the same window.
SLIDING_WINDOW = """
local epoch = redis.call('GET', KEYS[3]) or '0'
if ARGV[4] and ARGV[4] ~= epoch then return {-2, 0, 0, epoch} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, 0, 0, epoch} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local take = math.min(tonumber(ARGV[5] or '1'), limit - count)
if take > 0 then
  local members = {}
  for i = 1, take do
    members[2 * i - 1] = now
    members[2 * i] = now .. '-' .. ARGV[3] .. '-' .. i
  end
  redis.call('ZADD', KEYS[1], unpack(members))
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  count = count + take
else
  take = 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = window
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {take, limit - count, reset, epoch}
"""
# After a Redis failure, go straight to the fallback for this long instead of paying a
# connection attempt on every request.
REDIS_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    policy: str
    limit: int
    window_seconds: int
    remaining: int
    reset_seconds: int
    flagged: bool = False
    # Where Redis counted it (the window's key and the edge epoch it was decided under); None
    # when the in-process fallback did, which nginx's edge cannot share.
    bucket: str | None = None
    epoch: str | None = None

    def headers(self) -> dict[str, str]:
        """IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers) plus the X-less trio."""
        return {
            "RateLimit-Policy": f'"{self.policy}";q={self.limit};w={self.window_seconds}',
            "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset_seconds}',
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class LocalWindows:
    """The in-process fallback: the same sliding window, per replica, bounded in size."""

    MAX_SUBJECTS = 50_000

    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}
        self.flagged: dict[str, float] = {}

    def decide(self, bucket: str, limit: int, window: int) -> tuple[bool, int, float]:
        now = time.monotonic()
        log = self._windows.get(bucket)
        if log is None:
            if len(self._windows) >= self.MAX_SUBJECTS:
                self._windows.clear()
            log = self._windows[bucket] = deque()
        while log and log[0] <= now - window:
            log.popleft()
        allowed = len(log) < limit
        if allowed:
            log.append(now)
        reset = log[0] + window - now if log else float(window)
        return allowed, limit - len(log), reset

    def is_flagged(self, ip: str) -> bool:
        until = self.flagged.get(ip)
        return until is not None and until > time.monotonic()


class RateLimiter:
    def __init__(self, redis: Redis, settings: GatewaySettings) -> None:
        self._redis = redis
        self._settings = settings
        self.script = ScriptPipe(redis, SLIDING_WINDOW)
        self._prefix = f"{settings.redis_prefix}gateway:"
        self._redis_down_until = 0.0
        # Window entries need unique members; a process token and a counter avoid reading
        # os.urandom on every request.
        self._member_prefix = secrets.token_hex(4)
        self._members = itertools.count()
        self.local = LocalWindows()
        # The newest edge epoch this process has seen (from any script reply, or its own bump);
        # the edge's answers carry it so nginx forgets what it remembered from before.
        self.epoch: int | None = None

    def flag_key(self, ip: str) -> str:
        return f"{self._prefix}flagged:{ip}"

    @property
    def epoch_key(self) -> str:
        return f"{self._prefix}edge:epoch"

    def saw_epoch(self, epoch: int) -> None:
        if self.epoch is None or epoch > self.epoch:
            self.epoch = epoch

    async def revoked(self) -> int | None:
        """A credential, session or client stopped being welcome: what nginx's edge remembers
        from before now is void (it checks the epoch it was decided under). The new epoch, which
        the answer hands the edge at once, or None when Redis is unreachable (then the edge,
        which cannot count there either, remembers nothing)."""
        try:
            epoch = int(await self._redis.incr(self.epoch_key))
        except (RedisError, OSError):
            logger.warning("could not bump the edge epoch in redis")
            return None
        self.saw_epoch(epoch)
        return epoch

    async def decide(
        self, *, subject: str, ip: str, policy: str, limit: int, window: int
    ) -> Decision:
        bucket = f"{self._prefix}rl:{policy}:{subject}"
        service = self._settings.service_name
        if time.monotonic() >= self._redis_down_until:
            try:
                allowed, remaining, reset_us, epoch = await self.script(
                    [bucket, self.flag_key(ip), self.epoch_key],
                    [limit, window * 1000, f"{self._member_prefix}{next(self._members)}"],
                )
            except (RedisError, OSError) as exc:
                self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
                logger.warning("rate limiter falling back", error=type(exc).__name__)
            else:
                epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
                self.saw_epoch(int(epoch))
                outcome = {1: "allowed", 0: "rejected", -1: "flagged"}[int(allowed)]
                RATE_LIMIT_DECISIONS.labels(service, outcome, "redis").inc()
                return Decision(
                    allowed=allowed == 1,
                    policy=policy,
                    limit=limit,
                    window_seconds=window,
                    remaining=max(0, int(remaining)),
                    reset_seconds=max(1, math.ceil(int(reset_us) / 1_000_000)),
                    flagged=allowed == -1,
                    bucket=bucket,
                    epoch=epoch,
                )
        if self.local.is_flagged(ip):
            RATE_LIMIT_DECISIONS.labels(service, "flagged", "fallback").inc()
            return Decision(False, policy, limit, window, 0, 1, flagged=True)
        local_limit = min(limit, self._settings.fallback_rate_limit)
        ok, remaining, reset = self.local.decide(bucket, local_limit, window)
        RATE_LIMIT_DECISIONS.labels(service, "allowed" if ok else "rejected", "fallback").inc()
        return Decision(
            ok, policy, local_limit, window, max(0, remaining), max(1, math.ceil(reset))
        )

    async def flag(self, ip: str, seconds: int) -> None:
        """Mark a client as a bot for ``seconds``: every later request from it is a 403."""
        self.local.flagged[ip] = time.monotonic() + seconds
        try:
            await self._redis.set(self.flag_key(ip), b"1", ex=seconds)
        except (RedisError, OSError):
            logger.warning("could not store honeypot flag in redis; kept in process only")
            return
        await self.revoked()  # what the edge remembers of this client is void


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
#: The newest edge epoch, on the edge's answers and on a revocation's: nginx forgets at once what
#: it remembered from before (nginx/cloudops_edge.lua), and strips the header.
EPOCH_HEADER = "X-CloudOps-Edge-Epoch"


async def revoked(request: web.Request, response: web.StreamResponse) -> None:
    """Void what nginx's edge remembers (see :meth:`RateLimiter.revoked`), telling the nginx
    this ``response`` goes through at once."""
    epoch = await request.app[RATE_LIMITER].revoked()
    if epoch is not None:
        response.headers[EPOCH_HEADER] = str(epoch)


DECISION = web.RequestKey("rate_decision", Decision)


async def rate_limiter_ctx(app: web.Application) -> AsyncIterator[None]:
    limiter = RateLimiter(app[REDIS], app[GATEWAY_SETTINGS])
    app[RATE_LIMITER] = limiter
    # With Redis down the gateway still serves (in-process limits, sessions refused): taking it
    # out of rotation would turn a degraded service into an outage.
    app[READINESS].relax("redis")
    try:
        yield
    finally:
        await limiter.script.aclose()


def _limits(
    request: web.Request, spec: RouteSpec, settings: GatewaySettings
) -> tuple[str, int, int]:
    principal = request.get(PRINCIPAL)
    if principal is not None and principal.rate_limit is not None:
        window = principal.rate_window_seconds or settings.rate_window_seconds
        return "key", principal.rate_limit, window
    if SESSION in request:
        return "session", settings.session_rate_limit, settings.session_rate_window_seconds
    if spec.rate_limit is not None:
        return (
            spec.policy,
            spec.rate_limit,
            spec.rate_window_seconds or settings.rate_window_seconds,
        )
    return "default", settings.rate_limit, settings.rate_window_seconds


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    spec = route_spec(request)
    if spec is None or not spec.rate_limited:
        return await handler(request)
    settings = request.app[GATEWAY_SETTINGS]
    client = request[CLIENT]
    principal = request.get(PRINCIPAL)
    subject = principal.subject if principal is not None else f"ip:{client.ip}"
    policy, limit, window = _limits(request, spec, settings)
    decision = await request.app[RATE_LIMITER].decide(
        subject=subject, ip=client.ip, policy=policy, limit=limit, window=window
    )
    if decision.flagged:
        security_event("flagged_client", request)
        raise Forbidden("This client has been blocked.")
    request[DECISION] = decision
    if not decision.allowed:
        RATE_LIMIT_REJECTIONS.labels(principal.subject if principal else "anonymous", policy).inc()
        security_event("rate_limited", request, subject=subject, policy=policy)
        raise TooManyRequests(
            "Rate limit exceeded.", headers={"Retry-After": str(decision.reset_seconds)}
        )
    return await handler(request)


async def rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the headers reach streamed and error responses too."""
    decision = request.get(DECISION)
    if decision is not None:
        response.headers.update(decision.headers())
