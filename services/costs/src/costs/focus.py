"""Reading FOCUS cost-and-usage files: the header, and one validator for every value.

No I/O here. :class:`RowParser` turns blocks of CSV records into rows in :data:`ROW_COLUMNS`
order (every value as text or None), data-quality findings (a value that breaks the spec, kept
as null or in normalised form) and rejections (rows that cannot be costed or placed in time).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, InvalidOperation, localcontext
from operator import lt
from typing import Any, NamedTuple

import orjson

from common.csvsafe import NEUTRALISING_QUOTE, restore
from common.validation import in_day_range
from costs.focus_spec import (
    BY_FOCUS,
    COLUMNS,
    COST_BASES,
    COSTING,
    DB_COLUMNS,
    MANDATORY,
    OTHER_DATASETS,
    ROW_COLUMNS,
    STAND_INS,
    STORED,
    SUCCESSORS,
    VERSION_MARKS,
    Column,
    Kind,
)

__all__ = [
    "BY_FOCUS", "COLUMNS", "COST_BASES", "DB_COLUMNS", "EXACT", "MANDATORY", "ROW_COLUMNS",
    "STORED", "Block", "Finding", "HeaderError", "Kind", "Rejection", "RowParser", "check_value",
    "parse_timestamp", "read_header", "utc_text",
]  # fmt: skip

# Sums of money must never round: additions in this context are exact (or raise).
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation])
NO_CURRENCY = "XXX"  # ISO 4217's code for "no currency": the key of sums on rows without one

# Finding rules: a value kept as null or in normalised form.
MANDATORY_NULL = "mandatory_null"
INVALID_DECIMAL = "invalid_decimal"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_JSON = "invalid_json"
ENUM_CASE = "enum_case"
UNKNOWN_VALUE = "unknown_value"
CURRENCY_CASE = "currency_case"
INVALID_CURRENCY = "invalid_currency"
PERIOD_ORDER = "billing_period_order"
EXTRA_FIELDS = "extra_empty_fields"
MISSING_COLUMN = "missing_column"
NUL_CHARACTER = "nul_character"
# What a rule means for a column whose bad value rejects the row (BilledCost, ChargePeriod*).
_REJECTION_MESSAGES = {
    MANDATORY_NULL: "must not be null",
    INVALID_DECIMAL: "not a valid decimal",
    INVALID_TIMESTAMP: "not a valid timestamp",
}
_REJECTING = ("billed_cost", "charge_period_start", "charge_period_end")
_COSTS = tuple(COST_BASES.values())

_CURRENCY = re.compile(r"[A-Z]{3}")
# In a decimal, anything but a sign, digits, a point and blanks: NaN, Infinity, an exponent, "_".
_UNUSUAL = re.compile(r"[^-+.0-9 |]")
# A plain decimal this short has at most 16,383 digits after the point and before it, which
# PostgreSQL's NUMERIC holds; a longer one is checked value by value.
_PLAIN_MAX_LEN = 16383
_FRACTION = re.compile(r"\.(\d{6})\d+")
# ``_NULLS.get(v, v)`` is the field, or None for the two spellings of null; map() runs it in C.
_NULLS: dict[str, None] = {"": None, "NULL": None}
_NULL_SPELLINGS = frozenset(_NULLS)
_CACHE_LIMIT = 100_000
_SHOWN_CHARS = 200  # of a bad value, in a finding
_CANONICAL = {c.focus: {v.casefold(): v for v in c.values} for c in COLUMNS if c.values}
_ZERO = Decimal(0)


class HeaderError(ValueError):
    """The header row cannot be read as FOCUS cost and usage; ``errors`` lists each problem."""

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.errors = errors


@dataclass(frozen=True)
class Rejection:
    line: int
    field: str | None
    message: str


class Finding(NamedTuple):
    """A value that breaks the spec on a row that was kept: as written (bounded) and as stored."""

    line: int
    column: str | None
    rule: str
    value: str | None
    stored: str | None


class Block(NamedTuple):
    """What one block of records became.

    ``totals`` sums each cost basis per ``(currency, basis)`` over every row of the right width,
    kept or rejected; ``rejected_totals`` over the rejected ones alone.
    """

    rows: list[tuple[Any, ...]]
    rejections: list[Rejection]
    findings: list[Finding]
    totals: dict[tuple[str, str], Decimal]
    rejected_totals: dict[tuple[str, str], Decimal]

    @property
    def rows_with_findings(self) -> int:
        return len({f.line for f in self.findings})


def parse_timestamp(raw: str) -> datetime:
    """The instant in the ISO 8601 forms providers write; a value without offset is UTC.

    AWS ``2024-01-01T00:00:00Z``, Azure ``2024-01-01T00:00:00.0000000Z`` (7 fraction digits),
    GCP ``2024-01-01 00:00:00 UTC``, OCI ``2024-01-01T00:00Z``, and bare dates.
    """
    text = raw.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    text = _FRACTION.sub(r".\1", text)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_text(raw: str) -> str:
    """The instant as fixed-width UTC ISO 8601 text: it sorts as instants compare."""
    return parse_timestamp(raw).isoformat(timespec="microseconds")


def read_header(names: Sequence[str]) -> tuple[dict[str, int], str]:
    """The index of each known FOCUS column by name, and the FOCUS version the header implies.

    Refused: another FOCUS dataset (contract commitments, billing periods), a header naming no
    FOCUS column, one without the columns that cost a row and place it in time, duplicates.
    """
    cleaned = [n.strip() for n in names]
    lowered = {n.casefold() for n in cleaned}
    for dataset, marks in OTHER_DATASETS:
        if marks & lowered and "chargeperiodstart" not in lowered:
            raise HeaderError(
                f"This is a FOCUS {dataset} dataset, not a cost and usage dataset; "
                "only cost and usage data can be imported.",
                [{"field": "header", "message": f"FOCUS {dataset} dataset"}],
            )
    if not any(n in BY_FOCUS for n in cleaned):
        raise HeaderError(
            "The first line is not a FOCUS header: it names none of the FOCUS columns.",
            [{"field": "header", "message": "no FOCUS column names found"}],
        )
    duplicates = sorted({n for n in cleaned if n and cleaned.count(n) > 1})
    missing = [m for m in COSTING if m not in cleaned]
    errors = [{"field": m, "message": "mandatory FOCUS column missing"} for m in missing]
    errors += [{"field": d, "message": "column appears more than once"} for d in duplicates]
    if errors:
        raise HeaderError("The FOCUS header is incomplete or ambiguous.", errors)
    index = {n: i for i, n in enumerate(cleaned) if n in BY_FOCUS}
    present = set(cleaned)
    version = next((v for v, marks in VERSION_MARKS if marks & present), "1.0")
    return index, version


def check_value(column: Column, raw: str) -> tuple[str | None, str | None]:
    """The one rule of a column: what is stored for a value as written, and the finding, if any.

    Every path of :class:`RowParser` gives what this gives; the column-wise shortcuts only skip
    calling it for values it is known to accept as they are.
    """
    if raw == "" or raw == "NULL":
        return None, MANDATORY_NULL if column.non_null else None
    kind = column.kind
    if kind is Kind.TEXT:
        # A cell a CSV writer neutralised against formula injection ('=SUM...) is its text.
        text = restore(raw)
        # PostgreSQL text cannot hold the NUL character; every other kind refuses it anyway.
        return (text.replace("\x00", ""), NUL_CHARACTER) if "\x00" in text else (text, None)
    if kind is Kind.DECIMAL:
        return _decimal(raw)
    if kind is Kind.TIMESTAMP:
        try:
            instant = parse_timestamp(raw)
        except (ValueError, OverflowError):
            return None, INVALID_TIMESTAMP
        # A charge in year 1 or 9999 is no bill's, and the reports' date arithmetic needs room.
        if not in_day_range(instant):
            return None, INVALID_TIMESTAMP
        return instant.isoformat(timespec="microseconds"), None
    if kind is Kind.ENUM:
        if raw in column.values:
            return raw, None
        canonical = _CANONICAL[column.focus].get(raw.strip().casefold())
        return (canonical, ENUM_CASE) if canonical else (None, UNKNOWN_VALUE)
    if kind is Kind.CURRENCY:
        if _CURRENCY.fullmatch(raw):
            return raw, None
        code = raw.strip().upper()
        return (code, CURRENCY_CASE) if _CURRENCY.fullmatch(code) else (None, INVALID_CURRENCY)
    # JSON: kept as the provider wrote it (exported back unchanged) if it is an object that
    # PostgreSQL's jsonb also reads (it refuses the NUL character).
    try:
        valid = isinstance(orjson.loads(raw), dict) and "\\u0000" not in raw
    except orjson.JSONDecodeError:
        valid = False
    return (raw, None) if valid else (None, INVALID_JSON)


def _decimal(raw: str) -> tuple[str | None, str | None]:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None, INVALID_DECIMAL
    # Finite, and within what PostgreSQL's NUMERIC holds: 16,383 digits after the point and
    # 131,072 before it.
    if not value.is_finite() or int(value.as_tuple().exponent) < -16383:
        return None, INVALID_DECIMAL
    if value.adjusted() >= 131072:
        return None, INVALID_DECIMAL
    return (raw if raw.isascii() and not _UNUSUAL.search(raw) else str(value)), None


class _Checked(NamedTuple):
    values: Sequence[Any]
    issues: list[tuple[int, str]]  # (index in the block, rule)
    total: Decimal | None  # a decimal column's sum of stored values


class RowParser:
    """Checks records of one file, given its header, and turns them into rows to load.

    A row is ``(line, *values)`` in :data:`ROW_COLUMNS` order, every value as text or None:
    decimals exactly as written (or their canonical form), instants as UTC ISO 8601. PostgreSQL
    turns them into ``NUMERIC`` and ``timestamptz`` while it loads them (see ``storage``), so
    every value has already been checked here and the database never sees a bad one.
    """

    def __init__(self, index: dict[str, int], width: int) -> None:
        self.width = width
        # A column the file lacks reads position ``width``: a column of nulls.
        self.slots = [(c, self._position(index, c.focus)) for c in STORED]
        self.missing = [
            m for m in MANDATORY if m not in index and SUCCESSORS.get(m, "") not in index
        ]
        self._at = {c.db: n for n, (c, _) in enumerate(self.slots)}
        # Billing files repeat the same few values (instants, currencies, enum values, tag
        # objects) on most rows: each distinct one is checked once per column, and remembered
        # as what is stored and, if the value breaks the spec, the rule it breaks.
        self._stored: dict[str, dict[str, str | None]] = defaultdict(dict)
        self._rules: dict[str, dict[str, str]] = defaultdict(dict)
        self._changed: dict[str, set[str]] = defaultdict(set)  # stored otherwise than written

    def _position(self, index: dict[str, int], focus: str) -> int:
        if focus in index:
            return index[focus]
        return index.get(STAND_INS.get(focus, ""), self.width)

    def header_findings(self, line: int) -> list[Finding]:
        """A mandatory column the header lacks: every row keeps null there."""
        return [Finding(line, m, MISSING_COLUMN, None, None) for m in self.missing]

    def parse(self, line: int, record: list[str]) -> tuple[Any, ...] | Rejection:
        """One record's row, or why it was rejected: the record checked as a block of its own."""
        block = self.parse_block([line], [record])
        return block.rows[0] if block.rows else block.rejections[0]

    def parse_block(
        self, lines: Sequence[int], records: Sequence[list[str]], *, fast: bool = True
    ) -> Block:
        """Rows, rejections, findings and cost sums, for records and the lines they start on.

        Column by column: transposing the block and checking each column with ``map`` and set
        operations keeps the per-value work in C, which is most of the import's cost otherwise.
        A column with anything doubtful is checked value by value with :func:`check_value`
        (every column is, with ``fast=False``), so a row's outcome never depends on its
        neighbours.
        """
        findings: list[Finding] = []
        rejections: list[Rejection] = []
        if set(map(len, records)) != {self.width}:
            lines, records = self._fit(lines, records, findings, rejections)
        if not records:
            return Block([], rejections, findings, {}, {})
        with localcontext(EXACT):
            return self._checked_block(lines, records, fast, findings, rejections)

    def _fit(
        self,
        lines: Sequence[int],
        records: Sequence[list[str]],
        findings: list[Finding],
        rejections: list[Rejection],
    ) -> tuple[list[int], list[list[str]]]:
        """Records of the header's width: trailing empty fields are dropped with a finding."""
        kept_lines: list[int] = []
        kept: list[list[str]] = []
        for line, record in zip(lines, records, strict=True):
            extra = record[self.width :]
            if len(record) < self.width or any(extra):
                message = f"expected {self.width} fields, found {len(record)}"
                rejections.append(Rejection(line, None, message))
                continue
            if extra:
                findings.append(Finding(line, None, EXTRA_FIELDS, "," * len(extra), None))
            kept_lines.append(line)
            kept.append(record[: self.width])
        return kept_lines, kept

    def _checked_block(
        self,
        lines: Sequence[int],
        records: Sequence[list[str]],
        fast: bool,
        findings: list[Finding],
        rejections: list[Rejection],
    ) -> Block:
        columns: list[Sequence[str]] = list(zip(*records, strict=True))
        nulls: tuple[None, ...] = (None,) * len(records)
        checked = [
            _Checked(nulls, [], _ZERO) if at == self.width else self._column(c, columns[at], fast)
            for c, at in self.slots
        ]
        rejected = self._rejected(lines, checked)
        values = [c.values for c in checked]
        issues = [(n, i, rule) for n, c in enumerate(checked) for i, rule in c.issues]
        issues += self._billing_period_order(values)
        for n, i, rule in issues:
            if i not in rejected:
                column, at = self.slots[n]
                raw = columns[at][i]
                shown = raw if len(raw) <= _SHOWN_CHARS else raw[:_SHOWN_CHARS] + "…"
                shown = shown.replace("\x00", "\ufffd")  # jsonb, where findings go, refuses NUL
                findings.append(Finding(lines[i], column.focus, rule, shown, values[n][i]))
        totals, rejected_totals = self._totals(checked, values, rejected)
        rows = list(zip(lines, *values, strict=True))
        if rejected:
            rows = [row for i, row in enumerate(rows) if i not in rejected]
            rejections += rejected.values()
            rejections.sort(key=lambda r: r.line)
        if findings:
            findings.sort(key=lambda f: (f.line, f.column or "", f.rule))
        return Block(rows, rejections, findings, totals, rejected_totals)

    def _column(self, column: Column, raw: Sequence[str], fast: bool) -> _Checked:
        if not fast:
            return _by_value(column, raw)
        if column.kind is Kind.TEXT:
            return _texts(column, raw)
        if column.kind is Kind.DECIMAL:
            return _decimals(column, raw)
        return self._memoised(column, raw)

    def _memoised(self, column: Column, raw: Sequence[str]) -> _Checked:
        """A column of repeating values: each distinct one checked once, the rest looked up."""
        focus = column.focus
        stored, rules, changed = self._stored[focus], self._rules[focus], self._changed[focus]
        distinct = set(raw)
        unseen = distinct.difference(stored)
        if unseen:
            if len(stored) + len(unseen) > _CACHE_LIMIT:
                stored.clear()
                rules.clear()
                changed.clear()
                unseen = distinct
            for value in unseen:
                stored[value], rule = check_value(column, value)
                if rule is not None:
                    rules[value] = rule
                if stored[value] != value:
                    changed.add(value)
        values: Sequence[str | None]
        if len(distinct) == 1:
            values = (stored[raw[0]],) * len(raw)
        elif changed.isdisjoint(distinct):
            values = raw
        else:
            values = list(map(stored.__getitem__, raw))
        bad = rules.keys() & distinct
        issues = [(i, rules[v]) for i, v in enumerate(raw) if v in bad] if bad else []
        return _Checked(values, issues, None)

    def _rejected(self, lines: Sequence[int], checked: list[_Checked]) -> dict[int, Rejection]:
        """Rows that cannot be costed or placed in time, by index, with the first reason."""
        rejected: dict[int, Rejection] = {}
        for db in _REJECTING:
            n = self._at[db]
            for i, rule in checked[n].issues:
                message = _REJECTION_MESSAGES[rule]
                rejected.setdefault(i, Rejection(lines[i], self.slots[n][0].focus, message))
        start, end = (
            checked[self._at["charge_period_start"]],
            checked[self._at["charge_period_end"]],
        )
        if start.issues or end.issues or not all(map(lt, start.values, end.values)):
            for i, (s, e) in enumerate(zip(start.values, end.values, strict=True)):
                if s is not None and e is not None and not s < e:
                    reason = Rejection(
                        lines[i], "ChargePeriodEnd", "must be after ChargePeriodStart"
                    )
                    rejected.setdefault(i, reason)
        currency = checked[self._at["billing_currency"]]
        costs = [checked[self._at[db]].values for db in _COSTS]
        for i, _ in currency.issues:
            if currency.values[i] is not None or i in rejected:
                continue
            if any(c[i] is not None and Decimal(c[i]) != 0 for c in costs):
                message = "no currency on a row with a cost"
                rejected[i] = Rejection(lines[i], "BillingCurrency", message)
        return rejected

    def _billing_period_order(self, values: list[Sequence[Any]]) -> list[tuple[int, int, str]]:
        """A billing period that ends before it starts keeps no end (the start is kept)."""
        n_start, n_end = self._at["billing_period_start"], self._at["billing_period_end"]
        starts, ends = values[n_start], values[n_end]
        if None not in starts and None not in ends and all(map(lt, starts, ends)):
            return []
        bad = [
            i
            for i, (s, e) in enumerate(zip(starts, ends, strict=True))
            if s is not None and e is not None and not s < e
        ]
        if bad:
            kept = list(ends)
            for i in bad:
                kept[i] = None
            values[n_end] = kept
        return [(n_end, i, PERIOD_ORDER) for i in bad]

    def _totals(
        self, checked: list[_Checked], values: list[Sequence[Any]], rejected: dict[int, Rejection]
    ) -> tuple[dict[tuple[str, str], Decimal], dict[tuple[str, str], Decimal]]:
        """Each cost basis summed per currency, over all rows and over the rejected ones."""
        currencies = values[self._at["billing_currency"]]
        bases = [(basis, self._at[db]) for basis, db in COST_BASES.items()]
        if not rejected and len(set(currencies)) == 1:
            key = currencies[0] or NO_CURRENCY
            return {(key, basis): checked[n].total or _ZERO for basis, n in bases}, {}
        totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        rejected_totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for i, currency in enumerate(currencies):
            key = currency or NO_CURRENCY
            for basis, n in bases:
                value = values[n][i]
                amount = _ZERO if value is None else Decimal(value)
                totals[key, basis] += amount
                if i in rejected:
                    rejected_totals[key, basis] += amount
        return dict(totals), dict(rejected_totals)


def _by_value(column: Column, raw: Sequence[str]) -> _Checked:
    pairs = [check_value(column, value) for value in raw]
    values = [stored for stored, _ in pairs]
    issues = [(i, rule) for i, (_, rule) in enumerate(pairs) if rule is not None]
    total = sum(map(Decimal, filter(None, values)), _ZERO) if column.kind is Kind.DECIMAL else None
    return _Checked(values, issues, total)


def _texts(column: Column, raw: Sequence[str]) -> _Checked:
    # By value when some text holds a NUL or may start with a neutralising quote.
    joined = "\n".join(raw)
    if "\x00" in joined or joined.startswith(NEUTRALISING_QUOTE) or "\n'" in joined:
        return _by_value(column, raw)
    if "" not in raw and "NULL" not in raw:
        return _Checked(raw, [], None)
    values = _nulls_read(raw)
    if not column.non_null:
        return _Checked(values, [], None)
    return _Checked(values, [(i, MANDATORY_NULL) for i, v in enumerate(values) if v is None], None)


def _decimals(column: Column, raw: Sequence[str]) -> _Checked:
    """Plain ASCII numbers, short enough to be storable, summed in C; anything else by value."""
    values: Sequence[str | None] = raw
    if "" in raw or "NULL" in raw:
        if column.non_null:
            return _by_value(column, raw)
        values = _nulls_read(raw)
    present = list(filter(None, values))
    if not present:
        return _Checked(values, [], _ZERO)
    joined = "|".join(present)
    if not joined.isascii() or _UNUSUAL.search(joined) or max(map(len, present)) > _PLAIN_MAX_LEN:
        return _by_value(column, raw)
    try:
        total = sum(map(Decimal, present), _ZERO)
    except InvalidOperation:
        return _by_value(column, raw)
    return _Checked(values, [], total)


def _nulls_read(raw: Sequence[str]) -> Sequence[str | None]:
    """The column with None for each spelling of null (a column of only nulls is common)."""
    if _NULL_SPELLINGS.issuperset(raw):
        return (None,) * len(raw)
    return list(map(_NULLS.get, raw, raw))
