"""CSV that a spreadsheet opens as data: every CSV the platform writes goes through :func:`writer`.

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
as a formula (CSV or formula injection), and cost data holds text that anyone who can tag a
resource or upload a billing file chose. As OWASP advises, such a text cell is written with a
single quote in front, which spreadsheets show as text and do not evaluate. Numbers (``int``,
``Decimal``) are written as plain decimal numbers and stay numbers: ``-40.5`` is an amount, not a
formula.

Neutralising is reversible: a text that already starts with quotes followed by a trigger gets one
more quote, so :func:`restore` (which removes exactly one) gives every original text back, and a
file the platform wrote can be imported again unchanged.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import IO, Any

from common.encoding import plain_decimal

#: The first characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_TRIGGERS = "=+-@\t\r"
NEUTRALISING_QUOTE = "'"
# Any number of quotes, then a trigger: the texts that get (or, written, carry) one more quote.
_ESCAPED = re.compile("'*[" + re.escape(FORMULA_TRIGGERS) + "]")


def neutralise(text: str) -> str:
    """``text`` as a cell no spreadsheet evaluates: ``=SUM(A1)`` -> ``'=SUM(A1)``."""
    return NEUTRALISING_QUOTE + text if _ESCAPED.match(text) else text


def restore(text: str) -> str:
    """The text a neutralised cell stood for: the inverse of :func:`neutralise`."""
    if text.startswith(NEUTRALISING_QUOTE) and _ESCAPED.match(text, 1):
        return text[1:]
    return text


def cell(value: Any) -> str:
    """One value as CSV cell text: numbers in plain decimal notation, any other text neutralised.

    ``None`` is the empty cell; a ``date`` (or ``datetime``) is ISO 8601, which starts with a digit.
    """
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    return neutralise(str(value))


class SafeWriter:
    """A ``csv.writer`` whose every cell goes through :func:`cell`.

    Lines end in CRLF as RFC 4180 has it. This also makes the writer quote a cell holding a lone
    CR: Python's writer quotes only the characters of its line terminator, and a bare CR in an
    unquoted cell ends the record for most readers (ours included).
    """

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, values: Iterable[Any]) -> None:
        self._writer.writerow([cell(v) for v in values])


def writer(out: IO[str]) -> SafeWriter:
    """The one way the platform writes CSV (cells through :func:`cell`, CRLF line ends)."""
    return SafeWriter(out)
