"""Dashboard users: argon2 password hashes, credential checks, login-failure limits (with device
cookies), and the per-address throttle on failed key and token checks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from loguru import logger
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.db import DB_POOL
from common.errors import Conflict, ServiceUnavailable, TooManyRequests, ValidationFailed
from common.redis import REDIS
from gateway import storage
from gateway.domain import User, UserRequest, utcnow
from gateway.keys import BriefCache
from gateway.network import CLIENT
from gateway.principal import Principal
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings
from gateway.tokens import TOKEN_ISSUER

_HASHER = PasswordHasher()
# Checked when the user does not exist, so an unknown name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("cloudops-dummy-password")
MAX_BLOCKED_ADDRESSES = 10_000


class UserDirectory:
    def __init__(self, pool: asyncpg.Pool, min_password_length: int, cache_seconds: float) -> None:
        self._pool = pool
        self._min_password_length = min_password_length
        self._enabled: BriefCache[str, bool] = BriefCache(cache_seconds)

    async def enabled(self, username: str) -> bool:
        """Whether ``username`` exists and is not disabled (for its tokens); cached briefly."""
        cached = self._enabled.get(username)
        if cached is not None:
            return cached[0]
        async with self._pool.acquire() as conn:
            user = await storage.user_by_name(conn, username)
        enabled = user is not None and user.disabled_at is None
        self._enabled.put(username, enabled)
        return enabled

    async def create(self, request: UserRequest) -> User:
        if len(request.password) < self._min_password_length:
            raise ValidationFailed(
                "The password is too short.",
                errors=[
                    {
                        "field": "password",
                        "message": f"at least {self._min_password_length} characters",
                    }
                ],
            )
        password_hash = await asyncio.to_thread(_HASHER.hash, request.password)
        user = User(
            username=request.username,
            password_hash=password_hash,
            permissions=frozenset(request.permissions),
            created_at=utcnow(),
        )
        async with self._pool.acquire() as conn:
            stored = await storage.insert_user(conn, user)
        if stored is None:
            raise Conflict(f"The user {request.username!r} exists already.")
        return stored

    async def list(self) -> list[User]:
        async with self._pool.acquire() as conn:
            return await storage.list_users(conn)

    async def verify(self, username: str, password: str) -> Principal | None:
        async with self._pool.acquire() as conn:
            user = await storage.user_by_name(conn, username)
        stored_hash = user.password_hash if user is not None else _DUMMY_HASH
        try:
            await asyncio.to_thread(_HASHER.verify, stored_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or user.disabled_at is not None:
            return None
        return Principal(kind="user", name=user.username, permissions=user.permissions)


class LoginGuard:
    """Failed logins per client IP and per account, in Redis, shared by every replica.

    Per IP: past ``login_max_failures_per_ip`` in the window, 429. Per account: past
    ``login_max_failures_per_account``, the account is locked for a time that doubles with each
    further failure (``login_lockout_base_seconds`` up to ``login_lockout_max_seconds``). Such a
    lock must not let someone who knows only a user name keep its owner out: a browser that has
    logged in to the account before carries a device cookie (an HMAC of the user name and a
    random nonce) and is not held back by the account's lock, unless that device itself failed
    too often. Tokens exchanged for a password obey the same rules.
    """

    def __init__(self, redis: Redis, settings: GatewaySettings, device_secret: bytes) -> None:
        self._redis = redis
        self._settings = settings
        self._device_secret = device_secret
        self._prefix = f"{settings.redis_prefix}gateway:login-failures:"

    def _account(self, username: str) -> str:
        return self._prefix + "user:" + username

    def _lock(self, username: str) -> str:
        return self._prefix + "lock:" + username

    def _address(self, ip: str) -> str:
        return self._prefix + "ip:" + ip

    def _device(self, nonce: str) -> str:
        return self._prefix + "device:" + nonce

    def _mac(self, username: str, nonce: str) -> str:
        message = f"{username}\x00{nonce}".encode()
        return hmac.new(self._device_secret, message, hashlib.sha256).hexdigest()

    def new_device(self, username: str) -> str:
        """A device cookie's value for ``username``."""
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._mac(username, nonce)}"

    def device(self, request: web.Request, username: str) -> str | None:
        """The nonce of the request's device cookie, when it was issued for ``username``."""
        value = request.cookies.get(self._settings.device_cookie, "")
        nonce, _, mac = value.partition(".")
        if not nonce or len(value) > 128:
            return None
        return nonce if hmac.compare_digest(mac, self._mac(username, nonce)) else None

    def remember_device(
        self, request: web.Request, response: web.StreamResponse, username: str
    ) -> None:
        client = request.get(CLIENT)
        response.set_cookie(
            self._settings.device_cookie,
            self.new_device(username),
            max_age=self._settings.device_cookie_days * 86400,
            path="/api/auth",
            httponly=True,
            samesite="Strict",
            secure=client is not None and client.secure,
        )

    def _too_many(self, wait: int) -> TooManyRequests:
        return TooManyRequests(
            "Too many failed logins; try again later.", headers={"Retry-After": str(max(wait, 1))}
        )

    async def check(self, username: str, ip: str, device: str | None) -> bool:
        """429 when this address, or this account from an unknown device, must wait.

        Returns whether the account is locked (a known device got through all the same).
        """
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._address(ip))
                pipe.ttl(self._address(ip))
                pipe.ttl(self._lock(username))
                pipe.get(self._device(device or "-"))
                by_ip, ip_ttl, lock_ttl, by_device = await pipe.execute()
        except RedisError:
            raise ServiceUnavailable(
                "Login is unavailable right now.", headers={"Retry-After": "5"}
            ) from None
        settings = self._settings
        if int(by_ip or 0) >= settings.login_max_failures_per_ip:
            raise self._too_many(ip_ttl)
        locked = int(lock_ttl) > 0
        known_device = (
            device is not None and int(by_device or 0) < settings.login_max_failures_per_account
        )
        if locked and not known_device:
            raise self._too_many(lock_ttl)
        return locked

    async def failed(self, username: str, ip: str, device: str | None) -> None:
        settings = self._settings
        window = settings.login_failure_window_seconds
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(self._account(username))
            # The account's count lives as long as failures keep coming, so the lock keeps growing.
            pipe.expire(self._account(username), max(window, settings.login_lockout_max_seconds))
            pipe.incr(self._address(ip))
            pipe.expire(self._address(ip), window, nx=True)
            if device is not None:
                pipe.incr(self._device(device))
                pipe.expire(self._device(device), window, nx=True)
            by_account = (await pipe.execute())[0]
        beyond = by_account - settings.login_max_failures_per_account
        if beyond >= 0:
            lock = min(
                settings.login_lockout_base_seconds * 2 ** min(beyond, 32),
                settings.login_lockout_max_seconds,
            )
            await self._redis.set(self._lock(username), b"1", ex=lock)

    async def succeeded(self, username: str, *, locked: bool) -> None:
        # A known device getting through a lock does not lift it for everyone else.
        if not locked:
            await self._redis.delete(self._account(username))


class AuthThrottle:
    """Failed key and token checks per client IP, counted in Redis across replicas.

    Past ``auth_max_failures_per_ip`` in the window, a credential that would need a database
    lookup is refused with 429 before the lookup: guessing keys costs the guesser, not us. An
    address over the limit is also remembered in this process, so its refusals cost no Redis
    call. Redis being down never blocks authentication: the throttle then lets lookups through.
    """

    def __init__(self, redis: Redis, settings: GatewaySettings) -> None:
        self._redis = redis
        self._settings = settings
        self._prefix = f"{settings.redis_prefix}gateway:auth-failures:"
        self._blocked: dict[str, float] = {}

    def _refusal(self, wait: float) -> TooManyRequests:
        return TooManyRequests(
            "Too many failed authentication attempts from this address; try again later.",
            headers={"Retry-After": str(max(math.ceil(wait), 1))},
        )

    def _block(self, ip: str, seconds: int) -> None:
        if len(self._blocked) >= MAX_BLOCKED_ADDRESSES:
            self._blocked.clear()
        self._blocked[ip] = time.monotonic() + max(seconds, 1)

    async def check(self, ip: str) -> None:
        """429 when ``ip`` is over its limit of failures."""
        until = self._blocked.get(ip)
        if until is not None:
            wait = until - time.monotonic()
            if wait > 0:
                raise self._refusal(wait)
            del self._blocked[ip]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._prefix + ip)
                pipe.ttl(self._prefix + ip)
                count, ttl = await pipe.execute()
        except RedisError:
            logger.warning("auth throttle unavailable: lookups are not throttled")
            return
        if int(count or 0) >= self._settings.auth_max_failures_per_ip:
            self._block(ip, ttl)
            raise self._refusal(ttl)

    async def failed(self, ip: str) -> None:
        key = self._prefix + ip
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, self._settings.auth_failure_window_seconds, nx=True)
                pipe.ttl(key)
                count, _, ttl = await pipe.execute()
        except RedisError:
            return
        if count >= self._settings.auth_max_failures_per_ip:
            self._block(ip, ttl)


USERS = web.AppKey("users", UserDirectory)
LOGIN_GUARD = web.AppKey("login_guard", LoginGuard)
AUTH_THROTTLE = web.AppKey("auth_throttle", AuthThrottle)


async def users_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[GATEWAY_SETTINGS]
    app[USERS] = UserDirectory(
        app[DB_POOL], settings.password_min_length, settings.key_cache_seconds
    )
    # Device cookies are signed with a key derived from the token secret, never the secret itself.
    device_secret = hmac.new(
        app[TOKEN_ISSUER].secret.encode(), b"cloudops device cookie", hashlib.sha256
    ).digest()
    app[LOGIN_GUARD] = LoginGuard(app[REDIS], settings, device_secret)
    app[AUTH_THROTTLE] = AuthThrottle(app[REDIS], settings)
    yield
