"""FOCUS import: every digit kept, bad rows reported by line, bad files leave nothing behind."""

from __future__ import annotations

import asyncio
import gzip
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from common.testing import truncate_schema
from costs.app import create_app
from costs.focus import BY_FOCUS
from costs.settings import CostsSettings

from .conftest import (
    FOCUS_FILES,
    Client,
    ClientFactory,
    dec,
    focus_bytes,
    focus_rows,
    imported,
    to_csv,
    upload,
)

BASES = {"BilledCost": "billed_cost", "EffectiveCost": "effective_cost",
         "ListCost": "list_cost", "ContractedCost": "contracted_cost"}  # fmt: skip


async def line_item_count(settings: CostsSettings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM costs.line_items"))
    finally:
        await conn.close()


async def fetch(settings: CostsSettings, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def sums_by(settings: CostsSettings, column: str) -> dict[str, Decimal]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            f"SELECT billing_account_id AS k, sum({column}) AS s FROM costs.line_items GROUP BY 1"
        )
        return {r["k"]: r["s"] for r in rows}
    finally:
        await conn.close()


def test_fixtures_cover_every_mandatory_focus_column_providers_and_currencies() -> None:
    from costs.focus import MANDATORY

    rows = [r for name in FOCUS_FILES for r in focus_rows(name)]
    for column in MANDATORY:
        assert all(column in r for r in rows), column
    assert len({r["ProviderName"] for r in rows}) >= 4
    assert len({r["BillingCurrency"] for r in rows}) >= 3
    assert any(dec(r["BilledCost"]) < 0 for r in rows)
    assert any(r["Tags"] == "NULL" for r in rows)
    assert any(r["ChargeClass"] == "" for r in rows)


@pytest.mark.parametrize("name", FOCUS_FILES)
async def test_import_keeps_every_digit_of_each_cost_basis(
    client: Client, settings: CostsSettings, name: str
) -> None:
    result = await imported(client, focus_bytes(name), filename=name)
    rows = focus_rows(name)
    assert result["status"] == "succeeded"
    assert (result["rows_accepted"], result["rows_rejected"]) == (len(rows), 0)
    assert result["focus_version"] == ("1.1" if "1_1" in name else "1.0")
    for focus, column in BASES.items():
        expected: dict[str, Decimal] = defaultdict(Decimal)
        for r in rows:
            expected[r["BillingAccountId"]] += Decimal(r[focus])
        assert await sums_by(settings, column) == expected


async def test_gzip_upload_is_imported_like_the_plain_file(
    client: Client, settings: CostsSettings
) -> None:
    body = gzip.compress(focus_bytes("aws_focus_1_0.csv"))
    result = await imported(client, body, content_type="application/gzip")
    assert result["rows_accepted"] == len(focus_rows("aws_focus_1_0.csv"))


async def test_progress_and_outcome_are_readable_by_id(client: Client) -> None:
    result = await imported(client, focus_bytes("oci_focus_1_0.csv"))
    resp = await client.get(f"/api/costs/imports/{result['id']}")
    assert resp.status == 200
    data = (await resp.json())["data"]
    assert data["status"] == "succeeded"
    assert data["rows_read"] == data["rows_accepted"] == 16
    assert data["finished_at"] is not None


@pytest.mark.parametrize(
    "path", ["/api/costs/imports/not-a-uuid", f"/api/costs/imports/{'0' * 32}"]
)
async def test_unknown_import_id_is_a_problem(client: Client, path: str) -> None:
    resp = await client.get(path)
    assert resp.status in (400, 404)
    assert resp.content_type == "application/problem+json"


async def test_rows_that_cannot_be_costed_are_rejected_by_line_and_the_rest_kept(
    client: Client, settings: CostsSettings
) -> None:
    rows = focus_rows("aws_focus_1_0.csv")[:8]
    rows[1]["ChargePeriodStart"] = "2024-13-01T00:00:00Z"
    rows[2]["ChargeCategory"] = "Refund"
    rows[3]["BillingCurrency"] = ""
    rows[4]["ChargePeriodEnd"] = rows[4]["ChargePeriodStart"]
    rows[5]["BilledCost"] = "12,5"
    rows[6]["Tags"] = "[1, 2]"
    result = await imported(client, to_csv(rows))
    assert (result["rows_accepted"], result["rows_with_findings"]) == (4, 2)
    assert result["rows_rejected"] == 4
    reasons = {(r["line"], r["field"]) for r in result["rejections"]}
    assert reasons == {
        (3, "ChargePeriodStart"),
        (5, "BillingCurrency"),
        (6, "ChargePeriodEnd"),
        (7, "BilledCost"),
    }
    found = {rule: [e["line"] for e in f["examples"]] for rule, f in result["findings"].items()}
    assert found == {"unknown_value": [4], "invalid_json": [8]}
    assert await line_item_count(settings) == 4


async def test_row_with_the_wrong_number_of_fields_is_rejected(client: Client) -> None:
    body = focus_bytes("aws_focus_1_0.csv") + b"1,2,3\n"
    result = await imported(client, body)
    assert result["rows_rejected"] == 1
    assert result["rejections"][0]["line"] == 24
    assert "fields" in result["rejections"][0]["message"]


def _without_column(column: str) -> bytes:
    rows = focus_rows("aws_focus_1_0.csv")
    for r in rows:
        del r[column]
    return to_csv(rows)


def _broken_quote() -> bytes:
    lines = focus_bytes("aws_focus_1_0.csv").split(b"\n")
    lines[3] = lines[3].replace(b'"', b"", 1) + b'x"y'
    return b"\n".join(lines)


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        pytest.param(b"", 400, "empty", id="empty-file"),
        pytest.param(b"name,size\nfoo,1\n", 422, "not a FOCUS header", id="wrong-header"),
        pytest.param(_without_column("BillingCurrency"), 422, "incomplete", id="missing-mandatory"),
        pytest.param(_broken_quote(), 422, "quoting", id="broken-quoting"),
        pytest.param(
            focus_bytes("aws_focus_1_0.csv") + b'1,"never closed\n2,3\n', 422, "never closed",
            id="unterminated-quote",
        ),
        pytest.param(
            focus_bytes("aws_focus_1_0.csv").replace(b"Acme Prod", b"Acme \xff\xfe", 1),
            400, "UTF-8", id="non-utf8",
        ),
        pytest.param(gzip.compress(focus_bytes("aws_focus_1_0.csv"))[:-20], 400, "gzip",
                     id="truncated-gzip"),
    ],
)  # fmt: skip
async def test_bad_file_is_a_problem_and_nothing_is_imported(
    client: Client, settings: CostsSettings, body: bytes, status: int, fragment: str
) -> None:
    good = await imported(client, focus_bytes("gcp_focus_1_0.csv"))
    resp = await upload(client, body)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert fragment in problem["detail"]
    import_id = resp.headers["X-Import-Id"]
    outcome = (await (await client.get(f"/api/costs/imports/{import_id}")).json())["data"]
    assert outcome["status"] == "failed"
    assert outcome["rows_accepted"] == 0
    assert await line_item_count(settings) == good["rows_accepted"]


async def test_a_huge_line_is_refused_with_bounded_memory(
    client: Client, settings: CostsSettings
) -> None:
    """Streams 1 GB without a newline; the import stops after the line limit, not at the end."""
    sent = 0

    async def huge_line() -> AsyncIterator[bytes]:
        nonlocal sent
        yield focus_bytes("aws_focus_1_0.csv")
        piece = b"9" * (1024 * 1024)
        for _ in range(1024):
            sent += len(piece)
            yield piece

    resp = await upload(client, huge_line())
    assert resp.status == 413
    assert "longer than" in (await resp.json())["detail"]
    assert sent < 64 * 1024 * 1024  # the server stopped reading long before the gigabyte
    assert await line_item_count(settings) == 0


async def test_a_header_only_file_imports_no_rows(client: Client) -> None:
    header = focus_bytes("gcp_focus_1_0.csv").split(b"\n")[0] + b"\n"
    result = await imported(client, header)
    assert (result["status"], result["rows_read"]) == ("succeeded", 0)


async def test_reimporting_the_same_file_replaces_it(
    client: Client, settings: CostsSettings
) -> None:
    body = focus_bytes("aws_focus_1_0.csv")
    await imported(client, body)
    again = await imported(client, body)
    assert again["rows_replaced"] == len(focus_rows("aws_focus_1_0.csv"))
    assert await line_item_count(settings) == len(focus_rows("aws_focus_1_0.csv"))


async def test_overlapping_billing_period_of_the_same_account_replaces_the_old_rows(
    client: Client, settings: CostsSettings
) -> None:
    await imported(client, focus_bytes("aws_focus_1_0.csv"))
    await imported(client, focus_bytes("gcp_focus_1_0.csv"))
    corrected = focus_rows("aws_focus_1_0.csv")[:3]
    for r in corrected:
        r["BillingPeriodStart"] = "2024-01-15T00:00:00Z"
    result = await imported(client, to_csv(corrected))
    assert result["rows_replaced"] == len(focus_rows("aws_focus_1_0.csv"))
    sums = await sums_by(settings, "billed_cost")
    assert sums["123456789012"] == sum(Decimal(r["BilledCost"]) for r in corrected)
    assert sums["01A2B3-C4D5E6-F7A8B9"] == sum(
        Decimal(r["BilledCost"]) for r in focus_rows("gcp_focus_1_0.csv")
    )


async def test_concurrent_imports_of_different_files_do_not_interfere(
    client: Client, settings: CostsSettings
) -> None:
    results = await asyncio.gather(
        *(imported(client, focus_bytes(name), filename=name) for name in FOCUS_FILES)
    )
    assert all(r["rows_replaced"] == 0 for r in results)
    expected = sum(len(focus_rows(name)) for name in FOCUS_FILES)
    assert await line_item_count(settings) == expected


async def test_concurrent_reimports_of_one_account_leave_exactly_one_copy(
    client: Client, settings: CostsSettings
) -> None:
    body = focus_bytes("azure_focus_1_1.csv")
    await asyncio.gather(*(imported(client, body) for _ in range(3)))
    assert await line_item_count(settings) == len(focus_rows("azure_focus_1_1.csv"))


async def test_upload_of_json_is_unsupported_media_type(client: Client) -> None:
    resp = await upload(client, b"{}", content_type="application/json")
    assert resp.status == 415


async def test_progress_is_visible_while_the_upload_is_still_arriving(client: Client) -> None:
    """The first half is committed to COPY batches and counted before the second half is sent."""
    lines = focus_bytes("aws_focus_1_0.csv").splitlines(keepends=True)
    half_seen = asyncio.Event()
    import_ids: list[str] = []

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"".join(lines[:12])
        yield b" " * 2048  # padding pushes the first half past the server's read chunk
        await asyncio.wait_for(half_seen.wait(), 10)
        yield b"".join(lines[12:])

    upload_task = asyncio.create_task(upload(client, slow_body()))
    async with asyncio.timeout(10):
        while not import_ids:
            from common.db import DB_POOL

            async with client.app[DB_POOL].acquire() as conn:
                import_ids = [str(r["id"]) for r in await conn.fetch("SELECT id FROM imports")]
            await asyncio.sleep(0.02)
        while True:
            data = (await (await client.get(f"/api/costs/imports/{import_ids[0]}")).json())["data"]
            if data["rows_accepted"] >= 7:
                break
            await asyncio.sleep(0.02)
    assert data["status"] == "running"
    half_seen.set()
    resp = await upload_task
    assert resp.status == 201
    assert (await resp.json())["data"]["rows_accepted"] == 22


async def test_progress_with_no_connection_free_is_written_once_one_is(
    aiohttp_client: ClientFactory, settings: CostsSettings, pg_url: str
) -> None:
    """A batch committed while no connection was free still shows, though the upload pauses."""
    from common.db import DB_POOL

    await truncate_schema(pg_url, "costs")
    client = await aiohttp_client(
        create_app(settings.model_copy(update={"db_pool_min": 2, "db_pool_max": 2}))
    )
    lines = focus_bytes("aws_focus_1_0.csv").splitlines(keepends=True)
    resume = asyncio.Event()

    async def paused_body() -> AsyncIterator[bytes]:
        yield b"".join(lines[:12])
        yield b" " * 2048
        await asyncio.wait_for(resume.wait(), 20)
        yield b"".join(lines[12:])

    pool = client.app[DB_POOL]
    held = await pool.acquire()  # the import takes the other one: none is left for progress
    upload_task = asyncio.create_task(upload(client, paused_body()))
    try:
        await asyncio.sleep(1.0)  # the first batch is committed meanwhile
    finally:
        await pool.release(held)
    async with pool.acquire() as conn:
        import_id = await conn.fetchval("SELECT id FROM imports")
    async with asyncio.timeout(10):
        while True:
            data = (await (await client.get(f"/api/costs/imports/{import_id}")).json())["data"]
            if data["rows_accepted"] >= 7:
                break
            await asyncio.sleep(0.05)
    assert data["status"] == "running"
    resume.set()
    resp = await upload_task
    assert resp.status == 201


async def test_an_interrupted_upload_is_recorded_as_failed_and_keeps_nothing(
    client: Client, settings: CostsSettings
) -> None:
    from common.db import DB_POOL

    body = focus_bytes("aws_focus_1_0.csv")
    # A raw socket that promises more bytes than it sends, then hangs up mid-body.
    _, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"POST /api/costs/imports HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\n"
        + f"Content-Length: {len(body) * 2}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    async with asyncio.timeout(10):
        while True:
            async with client.app[DB_POOL].acquire() as conn:
                if await conn.fetchval("SELECT status FROM imports") == "running":
                    break
            await asyncio.sleep(0.02)
    writer.close()
    await writer.wait_closed()
    async with asyncio.timeout(10):
        while True:
            async with client.app[DB_POOL].acquire() as conn:
                status = await conn.fetchval("SELECT status FROM imports")
            if status == "failed":
                break
            await asyncio.sleep(0.05)
    assert await line_item_count(settings) == 0


async def test_an_upload_over_the_size_limit_is_refused(
    aiohttp_client: Any, settings: CostsSettings, pg_url: str
) -> None:
    from common.testing import truncate_schema
    from costs.app import create_app

    await truncate_schema(pg_url, "costs")
    small = settings.model_copy(update={"import_max_upload_bytes": 4096})
    client = await aiohttp_client(create_app(small))
    resp = await upload(client, focus_bytes("aws_focus_1_0.csv"))
    assert resp.status == 413
    assert await line_item_count(settings) == 0


async def test_concatenated_gzip_members_are_one_file(client: Client) -> None:
    lines = focus_bytes("aws_focus_1_0.csv").splitlines(keepends=True)
    body = gzip.compress(b"".join(lines[:10])) + gzip.compress(b"".join(lines[10:]))
    assert (await imported(client, body))["rows_accepted"] == 22


async def test_corrupt_gzip_is_a_400(client: Client, settings: CostsSettings) -> None:
    body = bytearray(gzip.compress(focus_bytes("aws_focus_1_0.csv")))
    body[40:60] = b"\xff" * 20
    resp = await upload(client, bytes(body))
    assert resp.status == 400
    assert "gzip" in (await resp.json())["detail"]
    assert await line_item_count(settings) == 0


async def test_blank_lines_before_the_header_are_skipped(client: Client) -> None:
    result = await imported(client, b"\n\r\n" + focus_bytes("gcp_focus_1_0.csv"))
    assert result["rows_rejected"] == 0
    assert result["rows_accepted"] == len(focus_rows("gcp_focus_1_0.csv"))


async def test_quoted_fields_may_span_lines(client: Client, settings: CostsSettings) -> None:
    rows = focus_rows("aws_focus_1_0.csv")[:2]
    rows[0]["ChargeDescription"] = 'multi\nline "quoted"\ndescription'
    result = await imported(client, to_csv(rows) + b"\n\n")
    assert (result["rows_accepted"], result["rows_rejected"]) == (2, 0)
    lines = await fetch(
        settings, "SELECT line, charge_description FROM costs.line_items ORDER BY 1"
    )
    assert [(r["line"], r["charge_description"]) for r in lines] == [
        (2, 'multi\nline "quoted"\ndescription'),
        (5, rows[1]["ChargeDescription"]),
    ]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("BilledCost", "NaN"),
        ("BilledCost", ""),
        ("ChargePeriodStart", "01/02/2024"),
    ],
)
async def test_a_row_without_a_billed_cost_or_charge_period_is_rejected_naming_the_column(
    client: Client, column: str, value: str
) -> None:
    rows = focus_rows("aws_focus_1_0.csv")[:2]
    rows[1][column] = value
    result = await imported(client, to_csv(rows))
    assert (result["rows_accepted"], result["rows_rejected"]) == (1, 1)
    assert [(r["line"], r["field"]) for r in result["rejections"]] == [(3, column)]


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("ListCost", "-Infinity", "invalid_decimal"),
        ("PricingQuantity", "sNaN", "invalid_decimal"),
        ("BillingPeriodEnd", "2023-12-01T00:00:00Z", "billing_period_order"),
        ("ProviderName", "NULL", "mandatory_null"),
        ("BillingAccountId", "", "mandatory_null"),
        ("BillingPeriodStart", "", "mandatory_null"),
        ("ChargeCategory", "Refund", "unknown_value"),
        ("Tags", "{not json", "invalid_json"),
    ],
)
async def test_a_descriptive_value_that_breaks_the_spec_keeps_its_row_with_a_finding(
    client: Client, settings: CostsSettings, column: str, value: str, rule: str
) -> None:
    rows = focus_rows("aws_focus_1_0.csv")[:2]
    rows[1][column] = value
    result = await imported(client, to_csv(rows))
    assert (result["rows_accepted"], result["rows_with_findings"]) == (2, 1)
    assert result["rows_rejected"] == 0
    example = {"line": 3, "column": column, "value": value, "stored": None}
    assert result["findings"] == {rule: {"count": 1, "examples": [example]}}
    db = BY_FOCUS[column].db
    stored = await fetch(settings, f"SELECT {db} FROM costs.line_items WHERE line = 3")
    assert stored[0][db] is None


async def test_unusual_spellings_of_numbers_are_stored_exactly_and_absurd_ones_rejected(
    client: Client, settings: CostsSettings
) -> None:
    rows = focus_rows("aws_focus_1_0.csv")[:6]
    spellings = ["1.5E+3", "1_000.25", "\u0661\u0662.5", " -0.000000000001 ", "2e-3", "1E-20000"]
    for row, spelling in zip(rows, spellings, strict=True):
        row["BilledCost"] = spelling
    result = await imported(client, to_csv(rows))
    assert [(r["line"], r["field"]) for r in result["rejections"]] == [(7, "BilledCost")]
    assert result["reconciliation"]["USD"]["billed"]["rejected"] == "0"
    stored = await fetch(settings, "SELECT line, billed_cost FROM costs.line_items ORDER BY 1")
    assert [(r["line"], r["billed_cost"]) for r in stored] == [
        (n + 2, Decimal(spelling)) for n, spelling in enumerate(spellings[:5])
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00"),
        ("2024-01-01T00:00:00.1234567Z", "2024-01-01T00:00:00.123456+00:00"),
        ("2024-01-01 00:00:00 UTC", "2024-01-01T00:00:00+00:00"),
        ("2024-01-01T01:00+01:00", "2024-01-01T00:00:00+00:00"),
        ("2024-01-01", "2024-01-01T00:00:00+00:00"),
    ],
)
def test_provider_timestamp_forms_are_read_as_utc(raw: str, expected: str) -> None:
    from costs.focus import parse_timestamp

    assert parse_timestamp(raw).isoformat() == expected


async def test_more_concurrent_imports_than_pool_connections_all_finish(
    aiohttp_client: Any, settings: CostsSettings, pg_url: str
) -> None:
    from common.testing import truncate_schema
    from costs.app import create_app

    await truncate_schema(pg_url, "costs")
    tight = settings.model_copy(update={"db_pool_min": 1, "db_pool_max": 2})
    client = await aiohttp_client(create_app(tight))
    bodies = []
    for n in range(6):
        rows = focus_rows("aws_focus_1_0.csv")
        for r in rows:
            r["BillingAccountId"] = f"account-{n}"
        bodies.append(to_csv(rows))
    async with asyncio.timeout(60):
        results = await asyncio.gather(*(imported(client, body) for body in bodies))
    assert [r["rows_accepted"] for r in results] == [22] * 6
    assert await line_item_count(settings) == 22 * 6
