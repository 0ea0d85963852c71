"""One validator: a row's outcome depends neither on its neighbours nor on the path checking it.

Generated blocks mix valid values with every kind of defect; the column-wise path over the whole
block, the same block split in two, and each record checked alone value by value must agree on
the rows kept, the findings and the rejections.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from costs.focus import COLUMNS, Kind, RowParser, read_header

from .conftest import joined

# Hypothesis keeps its caches in the system's temporary directory, not in the working tree (set at
# import, before any strategy is built).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "cloudops-hypothesis")

HEADER = [c.focus for c in COLUMNS]
LONG_FRACTION = "0." + "1" * 16384  # one digit more than PostgreSQL's NUMERIC keeps
SAMPLES: dict[Kind, list[str]] = {
    Kind.DECIMAL: ["12.5", "-0.000001", "0", "7", " 3 ", "1.5E+3", "1_000.25", "\u0661\u0662.5",
                   "NaN", "-Infinity", "1E-20000", "12,5", "$4", "", "NULL", LONG_FRACTION,
                   "9" * 20000],
    Kind.TIMESTAMP: ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "2024-01-02 00:00:00 UTC",
                     "2024-02-01T00:00:00.0000000Z", "2024-01-01", "2024-13-01T00:00:00Z",
                     "01/02/2024", "9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "", "NULL"],
    Kind.ENUM: ["Usage", "usage", " Compute", "Compute", "Correction", "Usage-Based", "Refund",
                "", "NULL"],
    Kind.CURRENCY: ["USD", "EUR", "usd", " gbp ", "EURO", "$", "", "NULL"],
    Kind.JSON: ['{"team": "web"}', "{}", "[1, 2]", "{broken", '{"a": "\\u0000"}', "", "NULL"],
    Kind.TEXT: ["a", "Compute", "acct-1", "x,y", "", "NULL", "é", "nul\x00inside", "'=SUM(A1)",
                "''-x", "'plain", "-x"],
}  # fmt: skip
# Periods that mostly run forward, so most generated rows are kept and their findings compared.
BY_COLUMN = {
    "ChargePeriodStart": ["2024-01-01T00:00:00Z", "2024-01-01 00:00:00 UTC", "soon", ""],
    "ChargePeriodEnd": ["2024-01-01T01:00:00Z", "2024-01-02", "2024-01-01T00:00:00Z", "NULL"],
    "BillingPeriodStart": ["2024-01-01T00:00:00Z", "2024-03-01", "x", ""],
    "BillingPeriodEnd": ["2024-02-01T00:00:00.0000000Z", "2024-01-01", "NULL"],
}


def _samples(focus: str, kind: Kind) -> list[str]:
    return BY_COLUMN.get(focus, SAMPLES[kind])


def _record(width: int) -> st.SearchStrategy[list[str]]:
    fields = st.tuples(*(st.sampled_from(_samples(c.focus, c.kind)) for c in COLUMNS)).map(list)
    # Most records have the header's width; some gain empty or non-empty fields, or lose one.
    return st.one_of(
        fields,
        fields,
        fields,
        fields.map(lambda r: [*r, ""]),
        fields.map(lambda r: [*r, "x"]),
        fields.map(lambda r: r[:-1]),
    )


def _parser() -> RowParser:
    index, _ = read_header(HEADER)
    return RowParser(index, len(HEADER))


def _outcome(block: Any) -> Any:
    return block.rows, block.rejections, block.findings, block.totals, block.rejected_totals


@settings(
    max_examples=40,
    deadline=None,
    database=None,  # nothing written to the working tree; a failure prints its example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(records=st.lists(_record(len(HEADER)), min_size=1, max_size=8), cut=st.integers(0, 8))
def test_block_path_and_row_path_agree_on_every_outcome(records: list[list[str]], cut: int) -> None:
    lines = list(range(2, len(records) + 2))
    whole = _parser().parse_block(lines, records)
    alone = joined(
        [_parser().parse_block([n], [r], fast=False) for n, r in zip(lines, records, strict=True)]
    )
    split_parser = _parser()  # one parser across two blocks: its memo carries over
    split = joined(
        [
            split_parser.parse_block(lines[:cut], records[:cut]),
            split_parser.parse_block(lines[cut:], records[cut:]),
        ]
    )
    assert _outcome(whole) == _outcome(alone) == _outcome(split)
    assert len(whole.rows) + len(whole.rejections) == len(records)


def test_generated_rows_are_mostly_kept() -> None:
    """Guards the property above against a generator whose rows would all be rejected."""
    records = [[_samples(c.focus, c.kind)[0] for c in COLUMNS] for _ in range(3)]
    block = _parser().parse_block([2, 3, 4], records)
    assert len(block.rows) == 3


def test_a_decimal_longer_than_numeric_keeps_is_judged_alike_beside_plain_neighbours() -> None:
    """The review's case: 16,384 fractional digits, first alone, then among plain numbers."""
    parser = _parser()
    base = [_samples(c.focus, c.kind)[0] for c in COLUMNS]
    base[HEADER.index("ServiceCategory")] = "Compute"
    at = HEADER.index("ListCost")
    long_row = [*base[:at], LONG_FRACTION, *base[at + 1 :]]
    alone = parser.parse_block([2], [long_row], fast=False)
    among = parser.parse_block([2, 3, 4], [base, long_row, base])
    found = [(f.line, f.rule) for f in alone.findings if f.column == "ListCost"]
    assert found == [(2, "invalid_decimal")]
    found = [(f.line, f.rule) for f in among.findings if f.column == "ListCost"]
    assert found == [(3, "invalid_decimal")]
    assert len(among.rows) == 3
