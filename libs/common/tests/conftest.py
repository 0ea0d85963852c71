"""Fixtures shared by the libs/common tests: an isolated schema, a pool on it, loguru restored."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from loguru import logger

from common.db import create_pool, migrate
from common.logging import setup_logging


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
    lines: list[str] = []
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    access = logging.getLogger("aiohttp.access")
    saved_access_disabled = access.disabled
    setup_logging("svc-under-test", "DEBUG", sink=lambda message: lines.append(str(message)))
    yield lines
    logger.remove()
    logger.configure(patcher=None, extra={})
    logger.add(sys.stderr)
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    access.disabled = saved_access_disabled
