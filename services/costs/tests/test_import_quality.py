"""Rows with money are kept, every import reconciles, FOCUS 1.2/1.3 files and their invoices.

The files here reproduce defects seen in real provider exports, and FOCUS 1.2 and 1.3 files
written from the specification's column definitions.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from common.db import DB_POOL
from costs import storage
from costs.importer import Importer, ImportFailed
from costs.settings import CostsSettings

from .conftest import Client, focus_rows, imported, to_csv, upload

WINDOW = {"start": "2024-01-01", "end": "2024-01-31"}


async def fetch(settings: CostsSettings, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def provider_export_with_defects() -> tuple[bytes, list[dict[str, str]]]:
    """An AWS-like export as one public sample looked: BOM, CRLF, every field quoted, and

    an empty ContractedCost on seven rows that carry cost, enum values in the wrong case, a tag
    column that is not JSON, and trailing empty fields on two rows.
    """
    rows = focus_rows("aws_focus_1_0.csv")
    for row in rows[:7]:
        row["ContractedCost"] = ""
    rows[7]["ChargeCategory"] = "usage"
    rows[8]["ServiceCategory"] = "COMPUTE"
    rows[9]["ChargeFrequency"] = "usage-based"
    rows[10]["Tags"] = "team=web;env=prod"
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(rows[0]), lineterminator="\r\n", quoting=csv.QUOTE_ALL
    )
    writer.writeheader()
    for n, row in enumerate(rows):
        line = io.StringIO()
        csv.DictWriter(
            line, fieldnames=list(rows[0]), lineterminator="", quoting=csv.QUOTE_ALL
        ).writerow(row)
        out.write(line.getvalue() + (",," if n in (11, 12) else "") + "\r\n")
    return "\ufeff".encode() + out.getvalue().encode(), rows


def decimal_sums(body: bytes, column: str) -> dict[str, Decimal]:
    """An independent sum of ``column`` per currency, straight from the file's text."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")):
        if row[column]:
            sums[row["BillingCurrency"]] += Decimal(row[column])
    return dict(sums)


async def test_a_provider_export_with_defects_keeps_every_row_with_money(
    client: Client, settings: CostsSettings
) -> None:
    body, _ = provider_export_with_defects()
    result = await imported(client, body)
    assert (result["rows_read"], result["rows_accepted"], result["rows_rejected"]) == (22, 22, 0)
    assert result["rows_with_findings"] == 13
    lines = {
        rule: [(e["line"], e["column"]) for e in f["examples"]]
        for rule, f in result["findings"].items()
    }
    assert lines == {
        "mandatory_null": [(n, "ContractedCost") for n in range(2, 9)],
        "enum_case": [(9, "ChargeCategory"), (10, "ServiceCategory"), (11, "ChargeFrequency")],
        "invalid_json": [(12, "Tags")],
        "extra_empty_fields": [(13, None), (14, None)],
    }
    assert result["findings"]["enum_case"]["examples"][1] == {
        "line": 10, "column": "ServiceCategory", "value": "COMPUTE", "stored": "Compute"
    }  # fmt: skip
    billed = decimal_sums(body, "BilledCost")
    contracted = decimal_sums(body, "ContractedCost")
    assert result["reconciliation"]["USD"]["billed"] == {
        "file": str(billed["USD"]), "stored": str(billed["USD"]), "rejected": "0"
    }  # fmt: skip
    assert Decimal(result["reconciliation"]["USD"]["contracted"]["stored"]) == contracted["USD"]
    daily = await (
        await client.get("/api/costs/daily", params={**WINDOW, "group_by": "none"})
    ).json()
    assert {k: Decimal(v) for k, v in daily["meta"]["totals"].items()} == billed
    stored = await fetch(
        settings,
        "SELECT charge_category, tags FROM costs.line_items WHERE line IN (9, 12) ORDER BY line",
    )
    assert [tuple(r) for r in stored] == [
        ("Usage", stored[0]["tags"]),
        (stored[1]["charge_category"], None),
    ]


async def test_import_record_shows_findings_and_reconciliation_by_id(client: Client) -> None:
    body, _ = provider_export_with_defects()
    result = await imported(client, body)
    again = (await (await client.get(f"/api/costs/imports/{result['id']}")).json())["data"]
    for key in (
        "rows_accepted",
        "rows_with_findings",
        "rows_rejected",
        "findings",
        "reconciliation",
    ):
        assert again[key] == result[key]
    assert again["focus_version"] == "1.0"


async def test_a_mandatory_column_the_header_lacks_is_one_finding(client: Client) -> None:
    rows = focus_rows("oci_focus_1_0.csv")
    for row in rows:
        del row["InvoiceIssuerName"]
    result = await imported(client, to_csv(rows))
    assert (result["rows_accepted"], result["rows_with_findings"]) == (len(rows), 0)
    example = {"line": 1, "column": "InvoiceIssuerName", "value": None, "stored": None}
    assert result["findings"] == {"missing_column": {"count": 1, "examples": [example]}}


async def test_a_nul_character_in_a_text_value_keeps_the_row_without_it(
    client: Client, settings: CostsSettings
) -> None:
    rows = focus_rows("gcp_focus_1_0.csv")
    rows[3]["ResourceName"] = "web\x00-1"
    result = await imported(client, to_csv(rows))
    assert (result["rows_accepted"], result["rows_with_findings"]) == (len(rows), 1)
    example = {"line": 5, "column": "ResourceName", "value": "web\ufffd-1", "stored": "web-1"}
    assert result["findings"] == {"nul_character": {"count": 1, "examples": [example]}}
    stored = await fetch(settings, "SELECT resource_name FROM costs.line_items WHERE line = 5")
    assert stored[0]["resource_name"] == "web-1"


async def test_findings_stay_bounded_however_many_rows_break_the_spec(client: Client) -> None:
    rows = focus_rows("gcp_focus_1_0.csv") * 20
    for row in rows:
        row["ChargeClass"] = "correction"
    result = await imported(client, to_csv(rows))
    assert result["rows_with_findings"] == len(rows)
    assert result["findings"]["enum_case"]["count"] == len(rows)
    assert len(result["findings"]["enum_case"]["examples"]) == 10


async def test_a_batch_lost_between_parse_and_load_fails_the_import_and_keeps_nothing(
    client: Client, settings: CostsSettings
) -> None:
    batches = 0

    async def losing_second_batch(
        conn: Any, import_id: UUID, rows: Sequence[Sequence[Any]]
    ) -> None:
        nonlocal batches
        batches += 1
        if batches != 2:
            await storage.load_rows(conn, import_id, rows)

    async def chunks() -> AsyncIterator[bytes]:
        for line in to_csv(focus_rows("aws_focus_1_0.csv")).splitlines(keepends=True):
            yield line  # a block per line: batches of seven rows go to the loader

    importer = Importer(client.app[DB_POOL], batch_rows=7, load_rows=losing_second_batch)
    with pytest.raises(ImportFailed) as failed:
        await importer.run(chunks(), filename="lossy.csv")
    assert failed.value.status == 500
    assert "differ" in failed.value.detail
    assert await fetch(settings, "SELECT 1 FROM costs.line_items") == []
    record = (
        await fetch(settings, "SELECT status, rows_accepted, reconciliation FROM costs.imports")
    )[0]
    assert (record["status"], record["rows_accepted"]) == ("failed", 0)
    billed = json.loads(record["reconciliation"])["USD"]["billed"]
    assert Decimal(billed["stored"]) < Decimal(billed["file"])
    assert batches >= 3


# ----- FOCUS 1.2 and 1.3 ------------------------------------------------------------------

INVOICES = {"123456789012": ["INV-2024-01-A", "INV-2024-01-B"], "999": ["INV-9"]}


def focus_12_rows() -> list[dict[str, str]]:
    """The AWS sample as FOCUS 1.2: two invoices on its account, a third account with one."""
    rows = focus_rows("aws_focus_1_0.csv")
    for n, row in enumerate(rows):
        if n >= 16:
            row["BillingAccountId"], row["BillingAccountName"] = "999", "Other Co"
        row["InvoiceId"] = INVOICES[row["BillingAccountId"]][n % 2 if n < 16 else 0]
        row["BillingAccountType"] = "Billing Account"
        row["SubAccountType"] = "Linked Account"
        row["PricingCurrency"] = "USD"
        row["PricingCurrencyContractedUnitPrice"] = row["ContractedUnitPrice"]
        row["PricingCurrencyEffectiveCost"] = row["EffectiveCost"]
        row["PricingCurrencyListUnitPrice"] = row["ListUnitPrice"]
    return rows


def focus_13_rows() -> list[dict[str, str]]:
    """FOCUS 1.3: ServiceProviderName and HostProviderName instead of the deprecated
    ProviderName and PublisherName, split-cost allocation and contract commitments applied."""
    rows = focus_12_rows()
    for n, row in enumerate(rows):
        row["ServiceProviderName"] = row.pop("ProviderName")
        row["HostProviderName"] = row.pop("PublisherName")
        row["AllocatedMethodId"] = "even-split" if n % 3 == 0 else ""
        row["AllocatedMethodDetails"] = (
            '{"Elements": [{"AllocatedRatio": 0.5}]}' if n % 3 == 0 else ""
        )
        row["AllocatedResourceId"] = f"pod-{n}" if n % 3 == 0 else ""
        row["AllocatedResourceName"] = f"web-{n}" if n % 3 == 0 else ""
        row["AllocatedTags"] = '{"team": "web"}' if n % 3 == 0 else ""
        row["ContractApplied"] = (
            '{"Elements": [{"ContractCommitmentId": "c-1", "ContractCommitmentAppliedCost": 1.5}]}'
            if n % 4 == 0
            else ""
        )
    return rows


def per_invoice(rows: list[dict[str, str]]) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        sums[row["InvoiceId"]] += Decimal(row["BilledCost"])
    return dict(sums)


@pytest.mark.parametrize(("version", "make_rows"), [("1.2", focus_12_rows), ("1.3", focus_13_rows)])
async def test_focus_12_and_13_are_recognised_and_invoices_total_their_rows(
    client: Client, version: str, make_rows: Any
) -> None:
    rows = make_rows()
    result = await imported(client, to_csv(rows))
    assert (result["focus_version"], result["rows_accepted"], result["rows_with_findings"]) == (
        version, len(rows), 0
    )  # fmt: skip
    assert result["findings"] == {}
    body = await (await client.get("/api/costs/invoices")).json()
    got = {i["invoice_id"]: Decimal(i["billed_total"]) for i in body["data"]}
    assert got == per_invoice(rows)
    assert body["meta"]["total"] == 3
    one = next(i for i in body["data"] if i["invoice_id"] == "INV-9")
    assert (one["billing_account_id"], one["billing_account_name"], one["currency"]) == (
        "999", "Other Co", "USD"
    )  # fmt: skip
    assert (one["billing_period_start"], one["billing_period_end"]) == (
        "2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"
    )  # fmt: skip
    daily = await (
        await client.get("/api/costs/daily", params={**WINDOW, "group_by": "invoice"})
    ).json()
    by_invoice: dict[str, Decimal] = defaultdict(Decimal)
    for item in daily["data"]:
        by_invoice[item["group"]] += Decimal(item["cost"])
    assert dict(by_invoice) == per_invoice(rows)


async def test_invoices_filter_by_account_and_period_and_page(client: Client) -> None:
    await imported(client, to_csv(focus_12_rows()))
    params = {"billing_account_id": "123456789012", "limit": "1", "offset": "1"}
    body = await (await client.get("/api/costs/invoices", params=params)).json()
    assert body["meta"] == {"total": 2, "limit": 1, "offset": 1}
    assert [i["invoice_id"] for i in body["data"]] == ["INV-2024-01-B"]
    for window, expected in [(("2024-01-01", "2024-01-01"), 3), (("2024-02-01", "2024-03-01"), 0)]:
        params = {"start": window[0], "end": window[1]}
        body = await (await client.get("/api/costs/invoices", params=params)).json()
        assert body["meta"]["total"] == expected
    bad = await client.get(
        "/api/costs/invoices", params={"start": "2024-02-01", "end": "2024-01-01"}
    )
    assert (bad.status, bad.content_type) == (400, "application/problem+json")


async def test_focus_13_columns_are_stored_and_the_service_provider_stands_in(
    client: Client, settings: CostsSettings
) -> None:
    await imported(client, to_csv(focus_13_rows()))
    row = (
        await fetch(
            settings,
            """SELECT provider_name, service_provider_name, host_provider_name, allocated_method_id,
                      allocated_tags, contract_applied, invoice_id, pricing_currency,
                      pricing_currency_effective_cost
               FROM costs.line_items WHERE line = 2""",
        )
    )[0]
    first = focus_13_rows()[0]
    assert dict(row) == {
        "provider_name": "AWS",
        "service_provider_name": "AWS",
        "host_provider_name": "AWS",
        "allocated_method_id": "even-split",
        "allocated_tags": '{"team": "web"}',
        "contract_applied": first["ContractApplied"],
        "invoice_id": "INV-2024-01-A",
        "pricing_currency": "USD",
        "pricing_currency_effective_cost": Decimal(first["EffectiveCost"]),
    }


async def test_focus_export_writes_the_columns_the_data_has(client: Client) -> None:
    await imported(client, to_csv(focus_rows("aws_focus_1_0.csv")))
    plain = (await (await client.get("/api/costs/export/focus.csv", params=WINDOW)).text()).split(
        "\n"
    )[0]
    assert "InvoiceId" not in plain.split(",")
    await imported(client, to_csv(focus_12_rows()))
    header = (await (await client.get("/api/costs/export/focus.csv", params=WINDOW)).text()).split(
        "\n"
    )[0]
    names = header.split(",")
    assert {"InvoiceId", "BillingAccountType", "PricingCurrency"} <= set(names)
    assert "ContractApplied" not in names


def contract_commitment_dataset() -> bytes:
    """FOCUS 1.3's contract commitment dataset, from its column definitions."""
    header = [
        "BillingCurrency", "ContractCommitmentCost", "ContractCommitmentId",
        "ContractCommitmentCategory", "ContractCommitmentDescription",
        "ContractCommitmentPeriodEnd", "ContractCommitmentPeriodStart",
        "ContractCommitmentQuantity", "ContractCommitmentType", "ContractCommitmentUnit",
        "ContractId", "ContractPeriodEnd", "ContractPeriodStart",
    ]  # fmt: skip
    row = ["USD", "120000", "c-1", "Spend", "Annual spend", "2025-01-01T00:00:00Z",
           "2024-01-01T00:00:00Z", "", "Spend Commitment", "", "k-1", "2027-01-01T00:00:00Z",
           "2024-01-01T00:00:00Z"]  # fmt: skip
    return (",".join(header) + "\n" + ",".join(row) + "\n").encode()


async def test_a_contract_commitment_dataset_is_refused_by_name(
    client: Client, settings: CostsSettings
) -> None:
    resp = await upload(client, contract_commitment_dataset())
    assert (resp.status, resp.content_type) == (422, "application/problem+json")
    assert "contract commitment dataset" in (await resp.json())["detail"]
    import_id = resp.headers["X-Import-Id"]
    record = (await (await client.get(f"/api/costs/imports/{import_id}")).json())["data"]
    assert record["status"] == "failed"
    assert await fetch(settings, "SELECT 1 FROM costs.line_items") == []
