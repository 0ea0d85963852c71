"""RowParser.parse_block: the column-wise fast path gives exactly what row-by-row parsing gives."""

from __future__ import annotations

import csv
import gc
import io
from typing import Any

import pytest

from costs import focus
from costs.focus import Rejection, RowParser, read_header
from costs.records import RecordSplitter, parse_records

from .conftest import FOCUS_FILES, focus_bytes, focus_rows, to_csv


def _records(body: bytes) -> tuple[RowParser, list[int], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(body.decode())))
    index, _ = read_header(rows[0])
    return RowParser(index, len(rows[0])), list(range(2, len(rows) + 1)), rows[1:]


def _row_by_row(body: bytes) -> tuple[list[Any], list[Rejection]]:
    parser, lines, records = _records(body)
    rows = [parser.parse(n, list(r)) for n, r in zip(lines, records, strict=True)]
    return (
        [r for r in rows if not isinstance(r, Rejection)],
        [r for r in rows if isinstance(r, Rejection)],
    )


@pytest.mark.parametrize("name", FOCUS_FILES)
def test_clean_files_take_the_column_path_and_match_row_by_row(name: str) -> None:
    parser, lines, records = _records(focus_bytes(name))
    assert parser._columns(lines, [list(r) for r in records]) is not None
    assert parser.parse_block(lines, records) == _row_by_row(focus_bytes(name))


def test_a_bad_row_sends_its_block_row_by_row_and_only_it_is_rejected() -> None:
    rows = focus_rows("aws_focus_1_0.csv")
    rows[2]["BilledCost"] = "12,5"
    body = to_csv(rows)
    parser, lines, records = _records(body)
    accepted, rejected = parser.parse_block(lines, records)
    assert rejected == [Rejection(4, "BilledCost", "not a valid decimal")]
    assert len(accepted) == len(rows) - 1
    assert (accepted, rejected) == _row_by_row(body)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("BilledCost", "NaN"),
        ("ListCost", "Infinity"),
        ("BilledCost", "NULL"),
        ("ChargePeriodStart", ""),
        ("ChargePeriodEnd", "2023-01-01T00:00:00Z"),
        ("BillingPeriodEnd", "2020-01-01T00:00:00Z"),
        ("ChargeCategory", "Refund"),
        ("BillingCurrency", "usd"),
        ("ProviderName", "NULL"),
        ("Tags", "[1]"),
        ("Tags", "{broken"),
    ],
)
def test_every_column_check_of_the_fast_path_falls_back_to_a_named_rejection(
    column: str, value: str
) -> None:
    rows = focus_rows("aws_focus_1_0.csv")
    rows[1][column] = value
    body = to_csv(rows)
    parser, lines, records = _records(body)
    accepted, rejected = parser.parse_block(lines, records)
    assert [(r.line, r.field) for r in rejected] == [(3, column)]
    assert (accepted, rejected) == _row_by_row(body)


def test_a_record_of_the_wrong_width_is_rejected_and_the_rest_kept() -> None:
    parser, lines, records = _records(focus_bytes("gcp_focus_1_0.csv"))
    records[0] = records[0][:-1]
    accepted, rejected = parser.parse_block(lines, records)
    assert [r.line for r in rejected] == [2]
    assert "fields" in rejected[0].message
    assert len(accepted) == len(records) - 1


def test_nulls_in_optional_columns_and_absent_columns_stay_on_the_fast_path() -> None:
    rows = focus_rows("aws_focus_1_0.csv")
    header = [h for h in rows[0] if h not in ("Tags", "ContractedUnitPrice")]
    for i, row in enumerate(rows):
        del row["Tags"], row["ContractedUnitPrice"]
        row["ResourceId"] = "" if i % 2 else "NULL"
        row["ListUnitPrice"] = "NULL" if i % 2 else ""
    body = to_csv(rows, header)
    parser, lines, records = _records(body)
    fast = parser._columns(lines, [list(r) for r in records])
    assert fast is not None
    at = {name: i for i, name in enumerate(focus.ROW_COLUMNS)}
    for column in ("resource_id", "list_unit_price", "contracted_unit_price", "tags"):
        assert {row[at[column]] for row in fast} == {None}
    assert (fast, []) == _row_by_row(body)


def test_caches_stay_bounded_and_a_value_seen_valid_is_not_trusted_blindly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(focus, "_CACHE_LIMIT", 3)
    parser, lines, records = _records(focus_bytes("azure_focus_1_1.csv"))
    for n, record in enumerate(records):
        record[parser.tags] = f'{{"n": "{n}"}}'
    for start in range(len(records)):  # one record per block: each block meets new values
        rows, rejected = parser.parse_block(lines[start : start + 1], records[start : start + 1])
        assert (len(rows), rejected) == (1, [])
    assert len(parser._instants) <= 3
    assert len(parser._tags) <= 3
    bad = [list(records[0])]
    bad[0][parser._currency_at] = "EURO"
    rows, rejected = parser.parse_block([99], bad)
    assert (rows, [(r.line, r.field) for r in rejected]) == ([], [(99, "BillingCurrency")])


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
    rows, _ = parser.parse_block(lines, records)
    gc.collect()
    assert rows
    assert not any(gc.is_tracked(row) for row in rows)
