"""RowParser.parse_block: the column-wise path gives exactly what checking each value gives."""

from __future__ import annotations

import csv
import gc
import io

import pytest

from costs import focus
from costs.focus import Block, Finding, Rejection, RowParser, read_header
from costs.records import RecordSplitter, parse_records

from .conftest import FOCUS_FILES, focus_bytes, focus_rows, joined, to_csv


def _records(body: bytes) -> tuple[RowParser, list[int], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(body.decode())))
    index, _ = read_header(rows[0])
    return RowParser(index, len(rows[0])), list(range(2, len(rows) + 1)), rows[1:]


def _row_by_row(body: bytes) -> Block:
    """Each record checked as a block of its own, value by value; the outcomes joined."""
    parser, lines, records = _records(body)
    return joined(
        [
            parser.parse_block([n], [list(r)], fast=False)
            for n, r in zip(lines, records, strict=True)
        ]
    )


@pytest.mark.parametrize("name", FOCUS_FILES)
def test_clean_files_match_row_by_row_and_have_no_findings(name: str) -> None:
    parser, lines, records = _records(focus_bytes(name))
    block = parser.parse_block(lines, records)
    assert (block.rejections, block.findings) == ([], [])
    assert block == _row_by_row(focus_bytes(name))


def test_a_bad_billed_cost_rejects_only_its_row() -> None:
    rows = focus_rows("aws_focus_1_0.csv")
    rows[2]["BilledCost"] = "12,5"
    body = to_csv(rows)
    parser, lines, records = _records(body)
    block = parser.parse_block(lines, records)
    assert block.rejections == [Rejection(4, "BilledCost", "not a valid decimal")]
    assert len(block.rows) == len(rows) - 1
    assert block == _row_by_row(body)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("BilledCost", "NaN"),
        ("BilledCost", "NULL"),
        ("BilledCost", "1E-20000"),
        ("ChargePeriodStart", ""),
        ("ChargePeriodEnd", "2023-01-01T00:00:00Z"),
        ("ChargePeriodEnd", "yesterday"),
        ("BillingCurrency", "dollars"),
    ],
)
def test_rows_that_cannot_be_costed_or_placed_in_time_are_rejected_naming_the_column(
    column: str, value: str
) -> None:
    rows = focus_rows("aws_focus_1_0.csv")
    rows[1][column] = value
    body = to_csv(rows)
    parser, lines, records = _records(body)
    block = parser.parse_block(lines, records)
    assert [(r.line, r.field) for r in block.rejections] == [(3, column)]
    assert block.findings == []
    assert block == _row_by_row(body)


@pytest.mark.parametrize(
    ("column", "value", "rule", "stored"),
    [
        ("ListCost", "Infinity", "invalid_decimal", None),
        ("ContractedCost", "", "mandatory_null", None),
        ("BillingPeriodEnd", "2020-01-01T00:00:00Z", "billing_period_order", None),
        ("BillingPeriodStart", "soon", "invalid_timestamp", None),
        ("ChargeCategory", "Refund", "unknown_value", None),
        ("ChargeCategory", "usage", "enum_case", "Usage"),
        ("ServiceCategory", " compute", "enum_case", "Compute"),
        ("BillingCurrency", "usd", "currency_case", "USD"),
        ("ProviderName", "NULL", "mandatory_null", None),
        ("BillingAccountId", "", "mandatory_null", None),
        ("Tags", "[1]", "invalid_json", None),
        ("Tags", "{broken", "invalid_json", None),
    ],
)
def test_a_value_that_breaks_the_spec_keeps_its_row_with_a_finding(
    column: str, value: str, rule: str, stored: str | None
) -> None:
    rows = focus_rows("aws_focus_1_0.csv")
    rows[1][column] = value
    body = to_csv(rows)
    parser, lines, records = _records(body)
    block = parser.parse_block(lines, records)
    assert block.rejections == []
    assert len(block.rows) == len(rows)
    assert block.findings == [Finding(3, column, rule, value, stored)]
    assert block.rows[1][focus.ROW_COLUMNS.index(focus.BY_FOCUS[column].db)] == stored
    assert block == _row_by_row(body)


def test_a_zero_cost_row_without_currency_is_kept_and_a_costed_one_rejected() -> None:
    rows = focus_rows("aws_focus_1_0.csv")[:2]
    for row in rows:
        row["BillingCurrency"] = ""
    for basis in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
        rows[0][basis] = "0.000"
    parser, lines, records = _records(to_csv(rows))
    block = parser.parse_block(lines, records)
    assert [(r.line, r.field) for r in block.rejections] == [(3, "BillingCurrency")]
    assert [(f.line, f.rule) for f in block.findings] == [(2, "mandatory_null")]


def test_a_record_of_the_wrong_width_is_rejected_and_trailing_empty_fields_are_dropped() -> None:
    parser, lines, records = _records(focus_bytes("gcp_focus_1_0.csv"))
    records[0] = records[0][:-1]
    records[1] = [*records[1], "", ""]
    records[2] = [*records[2], "x"]
    block = parser.parse_block(lines, records)
    assert [r.line for r in block.rejections] == [2, 4]
    assert "fields" in block.rejections[0].message
    assert [(f.line, f.rule) for f in block.findings] == [(3, "extra_empty_fields")]
    assert len(block.rows) == len(records) - 2


def test_nulls_in_optional_columns_and_absent_columns_stay_on_the_fast_path() -> None:
    rows = focus_rows("aws_focus_1_0.csv")
    header = [h for h in rows[0] if h not in ("Tags", "ContractedUnitPrice")]
    for i, row in enumerate(rows):
        del row["Tags"], row["ContractedUnitPrice"]
        row["ResourceId"] = "" if i % 2 else "NULL"
        row["ListUnitPrice"] = "NULL" if i % 2 else ""
    body = to_csv(rows, header)
    parser, lines, records = _records(body)
    block = parser.parse_block(lines, records)
    assert (block.rejections, block.findings) == ([], [])
    at = {name: i for i, name in enumerate(focus.ROW_COLUMNS)}
    for column in ("resource_id", "list_unit_price", "contracted_unit_price", "tags"):
        assert {row[at[column]] for row in block.rows} == {None}
    assert block == _row_by_row(body)


def test_caches_stay_bounded_and_a_value_seen_valid_is_not_trusted_blindly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(focus, "_CACHE_LIMIT", 3)
    header = focus_rows("azure_focus_1_1.csv")[0]
    tags, currency = list(header).index("Tags"), list(header).index("BillingCurrency")
    parser, lines, records = _records(focus_bytes("azure_focus_1_1.csv"))
    for n, record in enumerate(records):
        record[tags] = f'{{"n": "{n}"}}'
    for start in range(len(records)):  # one record per block: each block meets new values
        block = parser.parse_block(lines[start : start + 1], records[start : start + 1])
        assert (len(block.rows), block.rejections, block.findings) == (1, [], [])
    assert all(len(memo) <= 3 for memo in parser._stored.values())
    bad = [list(records[0])]
    bad[0][currency] = "EURO"
    block = parser.parse_block([99], bad)
    assert (block.rows, [(r.line, r.field) for r in block.rejections]) == (
        [],
        [(99, "BillingCurrency")],
    )


def test_records_arrive_in_blocks_with_their_line_numbers() -> None:
    splitter = RecordSplitter(max_line_bytes=1000)
    body = b'a,b\n1,"two\nlines"\n\n3,4\n5,"x,y"\n'
    blocks = [splitter.feed(body[i : i + 7]) for i in range(0, len(body), 7)]
    blocks.append(splitter.finish())
    lines = [n for block in blocks for n in block[0]]
    texts = [t for block in blocks for t in block[1]]
    assert lines == [1, 2, 4, 5, 6]
    assert parse_records((lines, texts)) == (
        [1, 2, 5, 6],
        [["a", "b"], ["1", "two\nlines"], ["3", "4"], ["5", "x,y"]],
    )


def test_rows_hold_nothing_the_garbage_collector_must_keep_walking() -> None:
    parser, lines, records = _records(focus_bytes("aws_focus_1_0.csv"))
    rows = parser.parse_block(lines, records).rows
    gc.collect()
    assert rows
    assert not any(gc.is_tracked(row) for row in rows)
