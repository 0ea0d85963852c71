"""CSV cells never start a formula, and neutralising is undone exactly by restoring."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from common.csvsafe import FORMULA_TRIGGERS, cell, neutralise, restore, writer

TEXTS = [
    "=1+1", "+1", "-x", "@SUM(A1)", "\tx", "\rx", "'=1", "''@x", "'", "''", "'plain", "plain",
    "", "a=b", " =1", "{\"a\": \"=1\"}", "=", "'\t",
]  # fmt: skip


@pytest.mark.parametrize("text", TEXTS)
def test_a_neutralised_text_starts_no_formula_and_restores_to_itself(text: str) -> None:
    safe = neutralise(text)
    assert not safe.startswith(tuple(FORMULA_TRIGGERS))
    assert restore(safe) == text


@pytest.mark.parametrize(
    ("text", "written"),
    [("=1+1", "'=1+1"), ("-x", "'-x"), ("'=1", "''=1"), ("'plain", "'plain"), ("a", "a")],
)
def test_only_formula_texts_get_a_quote(text: str, written: str) -> None:
    assert neutralise(text) == written


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (Decimal("-40.50"), "-40.50"),
        (Decimal("5.47E-8"), "0.0000000547"),
        (-3, "-3"),
        (None, ""),
        (date(2024, 1, 2), "2024-01-02"),
        (datetime(2024, 1, 2, tzinfo=UTC), "2024-01-02T00:00:00+00:00"),
        ("-40.50", "'-40.50"),  # text that looks like a number is still text
    ],
)
def test_numbers_stay_numbers_and_text_is_neutralised(value: object, written: str) -> None:
    assert cell(value) == written


def test_the_writer_quotes_a_carriage_return_and_ends_lines_in_crlf() -> None:
    out = io.StringIO()
    writer(out).writerow(["a\rb", "=x", Decimal("-1")])
    assert out.getvalue() == '"a\rb",\'=x,-1\r\n'
    assert list(csv.reader(io.StringIO(out.getvalue(), newline=""))) == [["a\rb", "'=x", "-1"]]
