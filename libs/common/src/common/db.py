"""PostgreSQL: an asyncpg pool bound to the service's schema, and versioned SQL migrations.

Migrations are plain ``NNNN_name.sql`` files applied in order, each in its own transaction, under a
PostgreSQL advisory lock, so N replicas starting at once apply each file exactly once. The shared
event tables (``common/migrations``) are applied before the service's own files.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import asyncpg
from aiohttp import web
from asyncpg.pool import PoolConnectionProxy
from loguru import logger

from common.config import ServiceSettings
from common.encoding import dumps, loads
from common.web import READINESS, SETTINGS, UNAVAILABLE_ERRORS

COMMON_MIGRATIONS = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

DB_POOL = web.AppKey("db_pool", asyncpg.Pool)

# PostgreSQL unreachable, gone in the middle of a statement, starting, stopping or full: a 503.
UNAVAILABLE_ERRORS.extend(
    [
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
        asyncpg.TooManyConnectionsError,
    ]
)
#: Seconds a new connection may take: a server that does not answer must fail a request, not
#: hold it for asyncpg's default of a minute.
CONNECT_TIMEOUT = 5.0

#: A connection from ``asyncpg.connect`` or borrowed from the pool; both take the same calls.
Connection = asyncpg.Connection | PoolConnectionProxy


class MigrationError(RuntimeError):
    """An applied migration file was changed, or the schema name is unusable."""


def quote_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise MigrationError(f"invalid schema name {schema!r}")
    return f'"{schema}"'


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda v: dumps(v).decode(),
            decoder=loads,
            schema="pg_catalog",
        )


async def create_pool(
    url: str, *, schema: str, min_size: int = 2, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections resolve unqualified table names in ``schema``."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        timeout=CONNECT_TIMEOUT,
        server_settings={"search_path": schema, "application_name": f"cloudops-{schema}"},
    )
    assert pool is not None
    return pool


def _migration_files(directories: Sequence[tuple[str, Path]]) -> list[tuple[str, str]]:
    files = []
    for label, directory in directories:
        for path in sorted(directory.glob("*.sql")):
            files.append((f"{label}/{path.name}", path.read_text()))
    return files


async def apply_migrations(
    conn: asyncpg.Connection, schema: str, directories: Sequence[tuple[str, Path]]
) -> list[str]:
    """Apply pending migrations to ``schema``; returns the versions applied by this call."""
    quoted = quote_schema(schema)
    lock_key = f"cloudops.migrations.{schema}"
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", lock_key)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations (
                    version text PRIMARY KEY,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch(f"SELECT version, checksum FROM {quoted}.schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        for version, sql in _migration_files(directories):
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if version in applied:
                if applied[version] != checksum:
                    raise MigrationError(f"migration {version} changed after it was applied")
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {quoted}")
                await conn.execute(sql)
                await conn.execute(
                    f"INSERT INTO {quoted}.schema_migrations (version, checksum) VALUES ($1, $2)",
                    version,
                    checksum,
                )
            applied_now.append(version)
            logger.info("migration applied", schema=schema, version=version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)
    return applied_now


async def migrate(url: str, schema: str, migrations_dir: Path | None) -> list[str]:
    """Connect once and bring ``schema`` up to date (used at start-up and by ``make migrate``)."""
    directories: list[tuple[str, Path]] = [("common", COMMON_MIGRATIONS)]
    if migrations_dir is not None:
        directories.append((schema, migrations_dir))
    conn = await asyncpg.connect(url)
    try:
        return await apply_migrations(conn, schema, directories)
    finally:
        await conn.close()


def postgres_ctx(
    migrations_dir: Path | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` that migrates the schema, opens the pool and closes it on shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings: ServiceSettings = app[SETTINGS]
        await migrate(settings.database_url, settings.db_schema, migrations_dir)
        pool = await create_pool(
            settings.database_url,
            schema=settings.db_schema,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
        app[DB_POOL] = pool

        async def check() -> None:
            await pool.fetchval("SELECT 1")

        app[READINESS].add("postgres", check)
        try:
            yield
        finally:
            await pool.close()

    return ctx
