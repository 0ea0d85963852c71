"""Dashboard users: argon2 password hashes, credential checks, and login-failure limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from common.db import DB_POOL
from common.errors import Conflict, ServiceUnavailable, TooManyRequests, ValidationFailed
from common.redis import REDIS
from gateway import storage
from gateway.domain import User, UserRequest, utcnow
from gateway.principal import Principal
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings

_HASHER = PasswordHasher()
# Checked when the user does not exist, so an unknown name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("cloudops-dummy-password")


class UserDirectory:
    def __init__(self, pool: asyncpg.Pool, min_password_length: int) -> None:
        self._pool = pool
        self._min_password_length = min_password_length

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
    """Counts failed logins per account and per client IP in Redis; too many -> 429."""

    def __init__(self, redis: Redis, settings: GatewaySettings) -> None:
        self._redis = redis
        self._settings = settings
        self._prefix = f"{settings.redis_prefix}gateway:login-failures:"

    def _keys(self, username: str, ip: str) -> tuple[str, str]:
        return self._prefix + "user:" + username, self._prefix + "ip:" + ip

    async def check(self, username: str, ip: str) -> None:
        account, address = self._keys(username, ip)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(account)
                pipe.get(address)
                pipe.ttl(account)
                pipe.ttl(address)
                by_account, by_ip, account_ttl, ip_ttl = await pipe.execute()
        except RedisError:
            raise ServiceUnavailable(
                "Login is unavailable right now.", headers={"Retry-After": "5"}
            ) from None
        over_account = int(by_account or 0) >= self._settings.login_max_failures_per_account
        over_ip = int(by_ip or 0) >= self._settings.login_max_failures_per_ip
        if over_account or over_ip:
            wait = max(account_ttl if over_account else 0, ip_ttl if over_ip else 0, 1)
            raise TooManyRequests(
                "Too many failed logins; try again later.", headers={"Retry-After": str(wait)}
            )

    async def failed(self, username: str, ip: str) -> None:
        window = self._settings.login_failure_window_seconds
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in self._keys(username, ip):
                pipe.incr(key)
                pipe.expire(key, window, nx=True)
            await pipe.execute()

    async def succeeded(self, username: str, ip: str) -> None:
        await self._redis.delete(self._keys(username, ip)[0])


USERS = web.AppKey("users", UserDirectory)
LOGIN_GUARD = web.AppKey("login_guard", LoginGuard)


async def users_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[GATEWAY_SETTINGS]
    app[USERS] = UserDirectory(app[DB_POOL], settings.password_min_length)
    app[LOGIN_GUARD] = LoginGuard(app[REDIS], settings)
    yield
