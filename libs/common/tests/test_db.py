"""Versioned SQL migrations under an advisory lock, and the schema-bound pool."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from common.db import (
    COMMON_MIGRATIONS,
    MigrationError,
    apply_migrations,
    create_pool,
    migrate,
    quote_schema,
)


@pytest.fixture
async def fresh_schema(pg_url: str) -> AsyncIterator[str]:
    """A schema name no one has used yet; dropped afterwards."""
    name = f"m_{uuid.uuid4().hex[:12]}"
    yield name
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def conn(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_url)
    yield conn
    await conn.close()


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    # Named so that only a numeric sort applies them in a working order.
    (tmp_path / "0001_things.sql").write_text(
        "CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL);"
    )
    (tmp_path / "0002_seed.sql").write_text(
        "INSERT INTO things VALUES (1, 'one');\nINSERT INTO things VALUES (2, 'two');"
    )
    (tmp_path / "0010_column.sql").write_text("ALTER TABLE things ADD COLUMN note text;")
    (tmp_path / "README.md").write_text("not a migration")
    return tmp_path


async def test_migrations_create_the_schema_and_apply_in_order(
    conn: asyncpg.Connection, fresh_schema: str, migrations_dir: Path
) -> None:
    applied = await apply_migrations(conn, fresh_schema, [("svc", migrations_dir)])

    assert applied == ["svc/0001_things.sql", "svc/0002_seed.sql", "svc/0010_column.sql"]
    rows = await conn.fetch(f'SELECT id, name, note FROM "{fresh_schema}".things ORDER BY id')
    assert [tuple(r) for r in rows] == [(1, "one", None), (2, "two", None)]
    ledger = await conn.fetch(
        f'SELECT version FROM "{fresh_schema}".schema_migrations ORDER BY version'
    )
    assert [r["version"] for r in ledger] == applied


async def test_migrations_leave_the_session_search_path_alone(
    conn: asyncpg.Connection, fresh_schema: str, migrations_dir: Path
) -> None:
    before = await conn.fetchval("SHOW search_path")

    await apply_migrations(conn, fresh_schema, [("svc", migrations_dir)])

    assert await conn.fetchval("SHOW search_path") == before
    assert await conn.fetchval("SELECT to_regclass('public.things')") is None


async def test_applying_again_is_a_no_op(
    conn: asyncpg.Connection, fresh_schema: str, migrations_dir: Path
) -> None:
    await apply_migrations(conn, fresh_schema, [("svc", migrations_dir)])

    assert await apply_migrations(conn, fresh_schema, [("svc", migrations_dir)]) == []
    assert await conn.fetchval(f'SELECT count(*) FROM "{fresh_schema}".things') == 2


async def test_only_new_files_are_applied_later(
    conn: asyncpg.Connection, fresh_schema: str, migrations_dir: Path
) -> None:
    await apply_migrations(conn, fresh_schema, [("svc", migrations_dir)])
    (migrations_dir / "0011_more.sql").write_text("INSERT INTO things VALUES (3, 'three');")

    applied = await apply_migrations(conn, fresh_schema, [("svc", migrations_dir)])

    assert applied == ["svc/0011_more.sql"]
    assert await conn.fetchval(f'SELECT count(*) FROM "{fresh_schema}".things') == 3


async def test_a_changed_applied_file_is_refused(
    conn: asyncpg.Connection, fresh_schema: str, migrations_dir: Path
) -> None:
    await apply_migrations(conn, fresh_schema, [("svc", migrations_dir)])
    (migrations_dir / "0002_seed.sql").write_text("INSERT INTO things VALUES (9, 'nine');")
    (migrations_dir / "0011_more.sql").write_text("INSERT INTO things VALUES (3, 'three');")

    with pytest.raises(MigrationError, match=r"migration svc/0002_seed\.sql changed"):
        await apply_migrations(conn, fresh_schema, [("svc", migrations_dir)])

    assert await conn.fetchval(f'SELECT count(*) FROM "{fresh_schema}".things') == 2
    # The advisory lock was released: another session can take it at once.
    assert await conn.fetchval(
        "SELECT pg_try_advisory_lock(hashtext($1))", f"cloudops.migrations.{fresh_schema}"
    )


async def test_a_failing_file_rolls_back_alone_and_is_retried_next_time(
    conn: asyncpg.Connection, fresh_schema: str, migrations_dir: Path
) -> None:
    (migrations_dir / "0011_broken.sql").write_text(
        "INSERT INTO things VALUES (3, 'three');\nINSERT INTO nowhere VALUES (1);"
    )

    with pytest.raises(asyncpg.UndefinedTableError):
        await apply_migrations(conn, fresh_schema, [("svc", migrations_dir)])

    versions = await conn.fetch(f'SELECT version FROM "{fresh_schema}".schema_migrations')
    assert len(versions) == 3
    assert await conn.fetchval(f'SELECT count(*) FROM "{fresh_schema}".things') == 2

    (migrations_dir / "0011_broken.sql").write_text("INSERT INTO things VALUES (3, 'three');")
    assert await apply_migrations(conn, fresh_schema, [("svc", migrations_dir)]) == [
        "svc/0011_broken.sql"
    ]


async def test_concurrent_appliers_apply_each_file_exactly_once(
    pg_url: str, fresh_schema: str, tmp_path: Path
) -> None:
    # Not idempotent on purpose: a second application would fail or double the rows.
    (tmp_path / "0001_table.sql").write_text("CREATE TABLE runs (n int);")
    for n in range(2, 6):
        (tmp_path / f"000{n}_insert.sql").write_text(
            f"SELECT pg_sleep(0.02); INSERT INTO runs VALUES ({n});"
        )
    conns = [await asyncpg.connect(pg_url) for _ in range(5)]
    try:
        results = await asyncio.gather(
            *(apply_migrations(c, fresh_schema, [("svc", tmp_path)]) for c in conns)
        )
        rows = await conns[0].fetch(f'SELECT n FROM "{fresh_schema}".runs ORDER BY n')
    finally:
        await asyncio.gather(*(c.close() for c in conns))

    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 5]
    assert [r["n"] for r in rows] == [2, 3, 4, 5]


async def test_migrate_applies_the_shared_event_tables_before_the_services_own(
    pg_url: str, conn: asyncpg.Connection, fresh_schema: str, migrations_dir: Path
) -> None:
    applied = await migrate(pg_url, fresh_schema, migrations_dir)

    assert applied == [
        "common/0001_events.sql",
        "common/0002_outbox_notify.sql",
        f"{fresh_schema}/0001_things.sql",
        f"{fresh_schema}/0002_seed.sql",
        f"{fresh_schema}/0010_column.sql",
    ]
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", fresh_schema
    )
    assert {t["table_name"] for t in tables} == {
        "outbox",
        "processed_events",
        "schema_migrations",
        "things",
    }
    assert sorted(p.name for p in COMMON_MIGRATIONS.glob("*.sql")) == [
        "0001_events.sql",
        "0002_outbox_notify.sql",
    ]


@pytest.mark.parametrize(
    "name",
    ["", "Upper", "1starts_with_digit", "has-dash", 'quote"d', "a; DROP TABLE x", "x" * 64],
)
async def test_unusable_schema_names_are_refused(conn: asyncpg.Connection, name: str) -> None:
    with pytest.raises(MigrationError, match="invalid schema name"):
        await apply_migrations(conn, name, [])


@pytest.mark.parametrize("name", ["resources", "_private", "a" * 63, "svc_2"])
def test_plain_schema_names_are_quoted(name: str) -> None:
    assert quote_schema(name) == f'"{name}"'


async def test_pool_resolves_unqualified_names_in_the_service_schema(
    pg_url: str, fresh_schema: str, migrations_dir: Path
) -> None:
    await migrate(pg_url, fresh_schema, migrations_dir)
    pool = await create_pool(pg_url, schema=fresh_schema, min_size=1, max_size=2)
    try:
        assert await pool.fetchval("SELECT current_schema()") == fresh_schema
        assert await pool.fetchval("SELECT name FROM things WHERE id = 2") == "two"
        assert await pool.fetchval("SELECT current_setting('application_name')") == (
            f"cloudops-{fresh_schema}"
        )
    finally:
        await pool.close()


@pytest.mark.parametrize(
    "value",
    [
        {"name": "vm-1", "tags": {"env": "prod"}, "cost": "0.10", "count": 3},
        [1, "two", None, True, 2.5],
        "just text",
    ],
)
async def test_json_and_jsonb_round_trip_as_python_values(
    pg_url: str, fresh_schema: str, value: object
) -> None:
    await migrate(pg_url, fresh_schema, None)
    pool = await create_pool(pg_url, schema=fresh_schema, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE docs (j json, jb jsonb)")
            await conn.execute("INSERT INTO docs VALUES ($1, $2)", value, value)
            row = await conn.fetchrow("SELECT j, jb, jsonb_typeof(jb) AS kind FROM docs")
    finally:
        await pool.close()

    assert row is not None
    assert (row["j"], row["jb"]) == (value, value)
    expected_kind: dict[type, str] = {dict: "object", list: "array", str: "string"}
    assert row["kind"] == expected_kind[type(value)]


async def test_jsonb_parameters_take_uuids_the_database_returned(conn: asyncpg.Connection) -> None:
    from common.db import _init_connection

    await _init_connection(conn)
    # asyncpg returns its own UUID subclass, which plain orjson refuses to encode.
    read_back = await conn.fetchval("SELECT '6b8e6c7c-07b5-4b1f-9a2e-8f1f0b6a9d11'::uuid")

    assert type(read_back) is not uuid.UUID
    assert await conn.fetchval("SELECT $1::jsonb", {"ids": [read_back]}) == {
        "ids": ["6b8e6c7c-07b5-4b1f-9a2e-8f1f0b6a9d11"]
    }
