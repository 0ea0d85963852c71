"""SQL for API keys and users; returns domain objects."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from common.db import Connection
from gateway.domain import ApiKey, User
from gateway.principal import parse_permissions

_KEY_COLUMNS = (
    "id, name, owner, key_hash, permissions, rate_limit, rate_window_seconds, "
    "created_at, expires_at, revoked_at"
)


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        owner=row["owner"],
        key_hash=bytes(row["key_hash"]),
        permissions=parse_permissions(row["permissions"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        rate_limit=row["rate_limit"],
        rate_window_seconds=row["rate_window_seconds"],
    )


async def insert_key(conn: Connection, key: ApiKey, *, if_absent: bool = False) -> ApiKey | None:
    conflict = "ON CONFLICT (key_hash) DO NOTHING" if if_absent else ""
    row = await conn.fetchrow(
        f"""INSERT INTO api_keys (id, name, owner, key_hash, permissions, rate_limit,
                                  rate_window_seconds, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) {conflict}
            RETURNING {_KEY_COLUMNS}""",
        key.id,
        key.name,
        key.owner,
        key.key_hash,
        sorted(p.value for p in key.permissions),
        key.rate_limit,
        key.rate_window_seconds,
        key.expires_at,
    )
    return _key(row) if row is not None else None


async def key_by_hash(conn: Connection, key_hash: bytes) -> ApiKey | None:
    row = await conn.fetchrow(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash)
    return _key(row) if row is not None else None


async def key_by_id(conn: Connection, key_id: str) -> ApiKey | None:
    row = await conn.fetchrow(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id)
    return _key(row) if row is not None else None


async def list_keys(conn: Connection, limit: int, offset: int) -> tuple[list[ApiKey], int]:
    rows = await conn.fetch(
        f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    total: int = await conn.fetchval("SELECT count(*) FROM api_keys")
    return [_key(r) for r in rows], total


async def revoke_key(conn: Connection, key_id: str, now: datetime) -> ApiKey | None:
    row = await conn.fetchrow(
        f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1
            RETURNING {_KEY_COLUMNS}""",
        key_id,
        now,
    )
    return _key(row) if row is not None else None


def _user(row: asyncpg.Record) -> User:
    return User(
        username=row["username"],
        password_hash=row["password_hash"],
        permissions=parse_permissions(row["permissions"]),
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
    )


async def insert_user(conn: Connection, user: User) -> User | None:
    row = await conn.fetchrow(
        """INSERT INTO users (username, password_hash, permissions) VALUES ($1, $2, $3)
           ON CONFLICT (username) DO NOTHING
           RETURNING username, password_hash, permissions, created_at, disabled_at""",
        user.username,
        user.password_hash,
        sorted(p.value for p in user.permissions),
    )
    return _user(row) if row is not None else None


async def user_by_name(conn: Connection, username: str) -> User | None:
    row = await conn.fetchrow(
        """SELECT username, password_hash, permissions, created_at, disabled_at
           FROM users WHERE username = $1""",
        username,
    )
    return _user(row) if row is not None else None


async def list_users(conn: Connection) -> list[User]:
    rows = await conn.fetch(
        """SELECT username, password_hash, permissions, created_at, disabled_at
           FROM users ORDER BY username"""
    )
    return [_user(r) for r in rows]
