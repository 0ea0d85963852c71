"""The FOCUS 1.0 / 1.1 billing format: its columns, header mapping and per-row validation.

No I/O here: :class:`RowParser` turns CSV records (lists of strings) into checked rows in
:data:`ROW_COLUMNS` order, every value as text, or the reason each bad record was rejected.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from operator import lt
from typing import Any

import orjson


class Kind(StrEnum):
    TEXT = "text"
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"
    JSON = "json"


@dataclass(frozen=True)
class Column:
    focus: str
    db: str
    kind: Kind
    mandatory: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("BilledCost", "billed_cost", Kind.DECIMAL, True),
    Column("EffectiveCost", "effective_cost", Kind.DECIMAL, True),
    Column("ListCost", "list_cost", Kind.DECIMAL, True),
    Column("ContractedCost", "contracted_cost", Kind.DECIMAL, True),
    Column("BillingAccountId", "billing_account_id", Kind.TEXT, True),
    Column("BillingAccountName", "billing_account_name", Kind.TEXT, True),
    Column("BillingCurrency", "billing_currency", Kind.TEXT, True),
    Column("BillingPeriodStart", "billing_period_start", Kind.TIMESTAMP, True),
    Column("BillingPeriodEnd", "billing_period_end", Kind.TIMESTAMP, True),
    Column("ChargeCategory", "charge_category", Kind.TEXT, True),
    Column("ChargeClass", "charge_class", Kind.TEXT, True),
    Column("ChargeDescription", "charge_description", Kind.TEXT, True),
    Column("ChargeFrequency", "charge_frequency", Kind.TEXT),
    Column("ChargePeriodStart", "charge_period_start", Kind.TIMESTAMP, True),
    Column("ChargePeriodEnd", "charge_period_end", Kind.TIMESTAMP, True),
    Column("PricingQuantity", "pricing_quantity", Kind.DECIMAL, True),
    Column("PricingUnit", "pricing_unit", Kind.TEXT, True),
    Column("ListUnitPrice", "list_unit_price", Kind.DECIMAL),
    Column("ContractedUnitPrice", "contracted_unit_price", Kind.DECIMAL),
    Column("ConsumedQuantity", "consumed_quantity", Kind.DECIMAL),
    Column("ConsumedUnit", "consumed_unit", Kind.TEXT),
    Column("ProviderName", "provider_name", Kind.TEXT, True),
    Column("PublisherName", "publisher_name", Kind.TEXT, True),
    Column("InvoiceIssuerName", "invoice_issuer_name", Kind.TEXT, True),
    Column("RegionId", "region_id", Kind.TEXT),
    Column("RegionName", "region_name", Kind.TEXT),
    Column("AvailabilityZone", "availability_zone", Kind.TEXT),
    Column("ResourceId", "resource_id", Kind.TEXT),
    Column("ResourceName", "resource_name", Kind.TEXT),
    Column("ResourceType", "resource_type", Kind.TEXT),
    Column("ServiceCategory", "service_category", Kind.TEXT, True),
    Column("ServiceName", "service_name", Kind.TEXT, True),
    Column("SubAccountId", "sub_account_id", Kind.TEXT),
    Column("SubAccountName", "sub_account_name", Kind.TEXT),
    Column("SkuId", "sku_id", Kind.TEXT),
    Column("SkuPriceId", "sku_price_id", Kind.TEXT),
    Column("CommitmentDiscountId", "commitment_discount_id", Kind.TEXT),
    Column("Tags", "tags", Kind.JSON),
)
BY_FOCUS = {c.focus: c for c in COLUMNS}
MANDATORY = tuple(c.focus for c in COLUMNS if c.mandatory)
_KIND_ORDER = (Kind.TEXT, Kind.DECIMAL, Kind.TIMESTAMP, Kind.JSON)
# Stored columns grouped by kind, so a row is built from one comprehension per kind (speed).
STORED = tuple(sorted(COLUMNS, key=lambda c: _KIND_ORDER.index(c.kind)))
# What RowParser produces, per row; the import id is added as the rows are loaded.
ROW_COLUMNS = ("line", *(c.db for c in STORED))
DB_COLUMNS = ("import_id", *ROW_COLUMNS)
_TIMESTAMPS = [c.db for c in STORED if c.kind is Kind.TIMESTAMP]
COST_BASES = {
    "billed": "billed_cost",
    "effective": "effective_cost",
    "list": "list_cost",
    "contracted": "contracted_cost",
}
CHARGE_CATEGORIES = frozenset({"Usage", "Purchase", "Tax", "Credit", "Adjustment"})
# Columns that only FOCUS 1.1 defines; their presence tells the version.
FOCUS_11_ONLY = frozenset(
    {"CapacityReservationId", "CommitmentDiscountQuantity", "ServiceSubcategory", "SkuMeter"}
)
_NON_NULL = frozenset(
    {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingAccountId",
     "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd", "ChargeCategory",
     "ChargePeriodStart", "ChargePeriodEnd", "ProviderName"}
)  # fmt: skip
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# In a decimal, anything but a sign, digits, a point and blanks: NaN, Infinity, an exponent, "_".
_UNUSUAL = re.compile(r"[^-+.0-9 |]")
_FRACTION = re.compile(r"\.(\d{6})\d+")
# ``_NULLS.get(v, v)`` is the field, or None for the two spellings of null; map() runs it in C.
_NULLS: dict[str, None] = {"": None, "NULL": None}
_CACHE_LIMIT = 100_000


class HeaderError(ValueError):
    """The header row cannot be read as FOCUS; ``errors`` lists each problem."""

    def __init__(self, message: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.errors = errors


@dataclass(frozen=True)
class Rejection:
    line: int
    field: str | None
    message: str


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
    """The index of each known FOCUS column by name, and the FOCUS version the header implies."""
    cleaned = [n.strip() for n in names]
    if not any(n in BY_FOCUS for n in cleaned):
        raise HeaderError(
            "The first line is not a FOCUS header: it names none of the FOCUS columns.",
            [{"field": "header", "message": "no FOCUS column names found"}],
        )
    duplicates = sorted({n for n in cleaned if n and cleaned.count(n) > 1})
    missing = [m for m in MANDATORY if m not in cleaned]
    errors = [{"field": m, "message": "mandatory FOCUS column missing"} for m in missing]
    errors += [{"field": d, "message": "column appears more than once"} for d in duplicates]
    if errors:
        raise HeaderError("The FOCUS header is incomplete or ambiguous.", errors)
    index = {n: i for i, n in enumerate(cleaned) if n in BY_FOCUS}
    version = "1.1" if FOCUS_11_ONLY & set(cleaned) else "1.0"
    return index, version


class RowParser:
    """Checks records of one file, given its header, and turns them into rows to load.

    A row is ``(line, *values)`` in :data:`ROW_COLUMNS` order, every value as text or None:
    decimals exactly as written (or their canonical form), instants as UTC ISO 8601. PostgreSQL
    turns them into ``NUMERIC`` and ``timestamptz`` while it loads them (see ``storage``), so
    every value has already been checked here and the database never sees a bad one.
    """

    def __init__(self, index: dict[str, int], width: int) -> None:
        self.width = width
        # A column the file lacks reads position ``width``: an empty field appended to each record.
        self.slots = [(c, index.get(c.focus, width)) for c in STORED]
        self.tags = index.get("Tags", width)
        # Billing files repeat the same few timestamps on every row; parse each once.
        self._instants: dict[str, str] = {}
        # Values already seen valid: tag objects and currency codes repeat on most rows too.
        self._tags: set[str] = set()
        self._currencies: set[str] = set()
        # Column positions for parse_block, in STORED order within each kind.
        self._text_at = [(p, c.focus in _NON_NULL) for c, p in self.slots if c.kind is Kind.TEXT]
        self._decimal_at = [
            (p, c.focus in _NON_NULL) for c, p in self.slots if c.kind is Kind.DECIMAL
        ]
        self._timestamp_at = [p for c, p in self.slots if c.kind is Kind.TIMESTAMP]
        stored_at = {c.db: p for c, p in self.slots}
        self._category_at = stored_at["charge_category"]
        self._currency_at = stored_at["billing_currency"]
        self._periods = [
            (_TIMESTAMPS.index("charge_period_start"), _TIMESTAMPS.index("charge_period_end")),
            (_TIMESTAMPS.index("billing_period_start"), _TIMESTAMPS.index("billing_period_end")),
        ]

    def parse_block(
        self, lines: Sequence[int], records: list[list[str]]
    ) -> tuple[list[tuple[Any, ...]], list[Rejection]]:
        """Rows and rejections, for records and the lines they start on.

        Column by column first: transposing the block and checking each column with ``map`` and
        set operations keeps the per-value work in C, which is most of the import's cost
        otherwise. A block with anything doubtful (a wrong width, a null where FOCUS forbids one,
        a value that does not convert or is unusual, a failed check) is parsed again row by row,
        which names each bad row.
        """
        try:
            rows = self._columns(lines, records)
        except (ValueError, InvalidOperation, TypeError):
            rows = None
        if rows is not None:
            return rows, []
        accepted: list[tuple[Any, ...]] = []
        rejected: list[Rejection] = []
        for line, record in zip(lines, records, strict=True):
            row = self.parse(line, record)
            if isinstance(row, Rejection):
                rejected.append(row)
            else:
                accepted.append(row)
        return accepted, rejected

    def _columns(
        self, lines: Sequence[int], records: list[list[str]]
    ) -> list[tuple[Any, ...]] | None:
        """The block's rows if every value passes, else None (or a conversion error)."""
        if not records or set(map(len, records)) != {self.width}:
            return None
        columns: list[Sequence[Any]] = list(zip(*records, strict=True))
        nulls: tuple[None, ...] = (None,) * len(records)
        columns.append(nulls)  # position ``width``: a FOCUS column this file lacks
        texts: list[Sequence[Any]] = []
        for at, mandatory in self._text_at:
            column = columns[at]
            if "" in column or "NULL" in column:
                if mandatory:
                    return None
                column = list(map(_NULLS.get, column, column))
            texts.append(column)
        decimals: list[Sequence[Any]] = []
        for at, mandatory in self._decimal_at:
            column = columns[at]
            if column is not nulls:
                if "" in column or "NULL" in column:
                    if mandatory:
                        return None
                    column = list(map(_NULLS.get, column, column))
                # Plain ASCII numbers only: an exponent, NaN, Infinity, "_" or non-ASCII digits
                # go row by row, where they are bounded and written in canonical form.
                joined = "|".join(filter(None, column))
                if not joined.isascii() or _UNUSUAL.search(joined):
                    return None
                deque(map(Decimal, filter(None, column)), maxlen=0)  # raises if one is not a number
            decimals.append(column)
        instants = self._instants
        timestamps: list[list[str]] = []
        for at in self._timestamp_at:
            column = columns[at]
            unseen = set(column).difference(instants)
            if unseen:
                if "" in unseen or "NULL" in unseen:
                    return None  # every FOCUS timestamp column we store is mandatory
                if len(instants) + len(unseen) > _CACHE_LIMIT:
                    instants.clear()
                    unseen = set(column)
                for raw in unseen:
                    instants[raw] = utc_text(raw)
            timestamps.append(list(map(instants.__getitem__, column)))
        for start, end in self._periods:
            if not all(map(lt, timestamps[start], timestamps[end])):
                return None
        if not CHARGE_CATEGORIES.issuperset(columns[self._category_at]):
            return None
        if not self._known(self._currencies, columns[self._currency_at], _valid_currency):
            return None
        tags: Sequence[Any] = columns[self.tags]
        if tags is not nulls:
            if "" in tags or "NULL" in tags:
                tags = list(map(_NULLS.get, tags, tags))
            if not self._known(self._tags, tags, _valid_tags):
                return None
        return list(zip(lines, *texts, *decimals, *timestamps, tags, strict=True))

    @staticmethod
    def _known(seen: set[Any], column: Sequence[Any], valid: Any) -> bool:
        """Whether every value of ``column`` is valid, checking each distinct new value once."""
        if seen.issuperset(column):
            return True
        unseen = set(column).difference(seen)
        if not all(map(valid, unseen)):
            return False
        if len(seen) + len(unseen) > _CACHE_LIMIT:
            seen.clear()
        seen.update(unseen)
        return True

    def parse(self, line: int, record: list[str]) -> tuple[Any, ...] | Rejection:
        """One record's row, or why it was rejected, naming the column."""
        if len(record) != self.width:
            return Rejection(line, None, f"expected {self.width} fields, found {len(record)}")
        record = [*record, ""]
        values: list[Any] = [line]
        for column, position in self.slots:
            raw = record[position]
            if raw == "" or raw == "NULL":
                if column.focus in _NON_NULL:
                    return Rejection(line, column.focus, "must not be null")
                values.append(None)
                continue
            try:
                values.append(self._convert(column.kind, raw))
            except (ValueError, InvalidOperation):
                return Rejection(line, column.focus, f"not a valid {column.kind.value}")
        return self._check(line, values)

    def _convert(self, kind: Kind, raw: str) -> str:
        if kind is Kind.TEXT:
            return raw
        if kind is Kind.DECIMAL:
            value = Decimal(raw)
            # Finite, and within what PostgreSQL's NUMERIC holds (16383 digits after the point).
            if not value.is_finite() or not -16383 <= int(value.as_tuple().exponent) <= 100_000:
                raise ValueError("not a storable number")
            return raw if raw.isascii() and not _UNUSUAL.search(raw) else str(value)
        if kind is Kind.TIMESTAMP:
            value_text = self._instants.get(raw)
            if value_text is None:
                value_text = utc_text(raw)
                if len(self._instants) < _CACHE_LIMIT:
                    self._instants[raw] = value_text
            return value_text
        # Kept as the provider wrote it (exported back unchanged); checked to be a JSON object.
        if not isinstance(orjson.loads(raw), dict):
            raise ValueError("tags must be a JSON object")
        return raw

    @staticmethod
    def _check(line: int, values: Sequence[Any]) -> tuple[Any, ...] | Rejection:
        if values[_CATEGORY] not in CHARGE_CATEGORIES:
            return Rejection(line, "ChargeCategory", f"unknown category {values[_CATEGORY]!r}")
        if not _CURRENCY.match(values[_CURRENCY_AT]):
            return Rejection(line, "BillingCurrency", "must be an ISO 4217 code")
        if values[_CHARGE_START] >= values[_CHARGE_END]:
            return Rejection(line, "ChargePeriodEnd", "must be after ChargePeriodStart")
        if values[_BILLING_START] >= values[_BILLING_END]:
            return Rejection(line, "BillingPeriodEnd", "must be after BillingPeriodStart")
        return tuple(values)


def _valid_currency(value: Any) -> bool:
    return isinstance(value, str) and _CURRENCY.match(value) is not None


def _valid_tags(value: Any) -> bool:
    if value is None:
        return True
    try:
        return isinstance(orjson.loads(value), dict)
    except orjson.JSONDecodeError:
        return False


_CATEGORY = ROW_COLUMNS.index("charge_category")
_CURRENCY_AT = ROW_COLUMNS.index("billing_currency")
_CHARGE_START = ROW_COLUMNS.index("charge_period_start")
_CHARGE_END = ROW_COLUMNS.index("charge_period_end")
_BILLING_START = ROW_COLUMNS.index("billing_period_start")
_BILLING_END = ROW_COLUMNS.index("billing_period_end")
