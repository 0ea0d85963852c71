"""Fixtures shared by the libs/common tests: an isolated schema, a pool on it, loguru restored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from common.db import create_pool, migrate
from common.testing import captured_logs


@pytest.fixture
async def schema(pg_url: str) -> AsyncIterator[str]:
    """A schema of this test's own with the shared event tables; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    await migrate(pg_url, name, None)
    yield name
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def pool(pg_url: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(pg_url, schema=schema, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """JSON log lines written through :func:`setup_logging`; loguru and stdlib restored after."""
    with captured_logs("svc-under-test") as lines:
        yield lines
