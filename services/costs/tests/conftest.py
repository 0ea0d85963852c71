"""Fixtures: the real costs app against the test database and exchange, plus FOCUS file helpers."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from common.testing import make_settings, truncate_schema
from costs.app import create_app
from costs.focus import EXACT, Block
from costs.settings import CostsSettings

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]

DATA = Path(__file__).parent / "data"
FOCUS_FILES = sorted(p.name for p in DATA.glob("*_focus_*.csv"))


@pytest.fixture
def settings(pg_url: str, redis_prefix: str, events_exchange: str) -> CostsSettings:
    return make_settings(
        CostsSettings,
        database_url=pg_url,
        redis_prefix=redis_prefix,
        events_exchange=events_exchange,
        import_batch_rows=7,
        import_chunk_bytes=1024,
        import_max_line_bytes=64 * 1024,
        budget_check_seconds=3600,
    )


@pytest.fixture
async def client(aiohttp_client: ClientFactory, settings: CostsSettings, pg_url: str) -> Client:
    await truncate_schema(pg_url, "costs")
    return await aiohttp_client(create_app(settings))


def focus_rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="") as f:
        return list(csv.DictReader(f))


def focus_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


def to_csv(rows: list[dict[str, str]], header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header or list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def dec(value: Any) -> Decimal:
    return Decimal(str(value))


async def upload(
    client: Client, body: bytes | AsyncIterator[bytes], *, filename: str = "bill.csv", **kw: Any
) -> Any:
    return await client.post(
        "/api/costs/imports",
        data=body,
        params={"filename": filename},
        headers={"Content-Type": kw.pop("content_type", "text/csv"), **kw.pop("headers", {})},
    )


async def imported(client: Client, body: bytes, **kw: Any) -> dict[str, Any]:
    resp = await upload(client, body, **kw)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = (await resp.json())["data"]
    return data


def joined(blocks: list[Block]) -> Block:
    """The outcome of consecutive blocks as if they had been one."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    rejected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    with localcontext(EXACT):
        for block in blocks:
            for key, amount in block.totals.items():
                totals[key] += amount
            for key, amount in block.rejected_totals.items():
                rejected[key] += amount
    return Block(
        [row for b in blocks for row in b.rows],
        [r for b in blocks for r in b.rejections],
        [f for b in blocks for f in b.findings],
        dict(totals),
        dict(rejected),
    )
