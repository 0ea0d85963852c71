"""Dashboard sessions in Redis, with aiohttp-session's ``RedisStorage`` handling the cookie.

Session data lives under this deployment's Redis prefix (``<prefix>gateway:session:<ref>``, the
ref being a SHA-256 of the session id, so the keyspace holds no cookie value) so
replicas share it and tests clean it up; aiohttp-session's storage renders and reads the cookie
(HttpOnly, SameSite=Strict, Secure when the client reached us over TLS). Its middleware is not
used: it keeps state under string request keys (aiohttp 3.14 warns on those) and saves after the
handler, too late for streamed proxy responses. Login always starts a new session id.

Each session record also holds the session's CSRF token (the synchronizer-token pattern, see
:mod:`gateway.csrf`): random, made at login, returned to the dashboard in the login and session
bodies, never in a cookie.

A bearer token minted with the session names the session by its ref; :meth:`Sessions.alive`
answers whether that session still lives (cached for a few seconds), so logging out ends the
session's tokens too.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp_session.redis_storage import RedisStorage
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.errors import ServiceUnavailable
from common.redis import REDIS
from gateway.keys import BriefCache
from gateway.network import CLIENT
from gateway.principal import Principal, parse_permissions
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings

# Rewriting the session on every request would cost a Redis write each time; the idle clock is
# advanced at most once a minute instead.
TOUCH_EVERY_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Session:
    """A live dashboard session: who it belongs to and the token its changes must carry."""

    principal: Principal
    csrf_token: str = field(repr=False)
    identity: str = field(repr=False)  # the cookie's value: a credential, never logged

    @property
    def ref(self) -> str:
        """The session's name where the cookie must not appear (Redis keys, token claims)."""
        return session_ref(self.identity)

    def public(self) -> dict[str, Any]:
        """The body of login and ``GET /api/auth/session``."""
        return {
            "username": self.principal.name,
            "permissions": sorted(p.value for p in self.principal.permissions),
            "csrf_token": self.csrf_token,
        }


def session_ref(identity: str) -> str:
    return hashlib.sha256(identity.encode()).hexdigest()


class Sessions:
    def __init__(self, redis: Redis, settings: GatewaySettings) -> None:
        self._redis = redis
        self._settings = settings
        self._prefix = f"{settings.redis_prefix}gateway:session:"
        self._alive: BriefCache[str, bool] = BriefCache(settings.key_cache_seconds)
        self.cookie = settings.session_cookie
        self.storage = RedisStorage(
            redis,
            cookie_name=self.cookie,
            max_age=settings.session_idle_seconds,
            httponly=True,
            samesite="Strict",
            path="/",
        )

    async def load(self, request: web.Request) -> Session | None:
        """The session of a live cookie; None without one or when it has timed out."""
        identity = self.storage.load_cookie(request)
        if not isinstance(identity, str) or not identity or len(identity) > 128:
            return None
        key = self._prefix + session_ref(identity)
        try:
            raw = await self._redis.get(key)
            if raw is None:
                return None
            data: dict[str, Any] = orjson.loads(raw)
            now = time.time()
            if self._ended(data, now):
                await self._redis.delete(key)
                return None
            if now - data["seen_at"] > TOUCH_EVERY_SECONDS:
                data["seen_at"] = now
                await self._redis.set(
                    key, orjson.dumps(data), ex=self._settings.session_idle_seconds
                )
        except RedisError:
            raise ServiceUnavailable(
                "Sessions are unavailable right now.", headers={"Retry-After": "5"}
            ) from None
        principal = Principal(
            kind="user", name=data["user"], permissions=parse_permissions(data["perms"])
        )
        return Session(principal=principal, csrf_token=data["csrf"], identity=identity)

    def _ended(self, data: dict[str, Any], now: float) -> bool:
        return bool(
            # A record from before CSRF tokens existed cannot authorize a change: log in again.
            "csrf" not in data
            or now - data["login_at"] > self._settings.session_absolute_seconds
            or now - data["seen_at"] > self._settings.session_idle_seconds
        )

    async def alive(self, ref: str) -> bool:
        """Whether the session ``ref`` still lives (for the tokens it minted); cached briefly."""
        cached = self._alive.get(ref)
        if cached is not None:
            return cached[0]
        try:
            raw = await self._redis.get(self._prefix + ref)
        except RedisError:
            raise ServiceUnavailable(
                "Sessions are unavailable right now.", headers={"Retry-After": "5"}
            ) from None
        alive = raw is not None and not self._ended(orjson.loads(raw), time.time())
        self._alive.put(ref, alive)
        return alive

    async def start(self, request: web.Request, user: Principal) -> Session:
        """Begin a fresh session for ``user``; any session id the client had is dropped.

        The caller renders the response and hands it to :meth:`set_cookie`.
        """
        await self.end(request, None)
        now = time.time()
        session = Session(
            principal=user,
            csrf_token=secrets.token_urlsafe(32),
            identity=secrets.token_urlsafe(32),
        )
        data = {
            "user": user.name,
            "perms": sorted(p.value for p in user.permissions),
            "csrf": session.csrf_token,
            "login_at": now,
            "seen_at": now,
        }
        await self._redis.set(
            self._prefix + session.ref, orjson.dumps(data), ex=self._settings.session_idle_seconds
        )
        return session

    def set_cookie(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        self.storage.save_cookie(
            response, session.identity, max_age=self._settings.session_idle_seconds
        )
        client = request.get(CLIENT)
        if client is not None and client.secure:
            response.cookies[self.cookie]["secure"] = True

    async def end(self, request: web.Request, response: web.StreamResponse | None) -> None:
        identity = self.storage.load_cookie(request)
        if isinstance(identity, str) and identity:
            ref = session_ref(identity)
            await self._redis.delete(self._prefix + ref)
            self._alive.forget(ref)
        if response is not None:
            response.del_cookie(self.cookie, path="/", httponly=True, samesite="Strict")


SESSIONS = web.AppKey("sessions", Sessions)
# Set by authentication when the session cookie (not a key or token) identified the caller.
SESSION = web.RequestKey("session", Session)


async def sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    app[SESSIONS] = Sessions(app[REDIS], app[GATEWAY_SETTINGS])
    yield
