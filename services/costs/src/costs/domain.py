"""Cost queries and budgets: what a valid request looks like and the plain calculations on them.

No aiohttp and no SQL here.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from common.encoding import PlainDecimal
from common.paging import Page
from common.validation import Day, Instant, NoNul

Basis = Literal["billed", "effective", "list", "contracted"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), NoNul]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
GROUPS = {
    "none": None,
    "service_category": "service_category",
    "service": "service_name",
    "provider": "provider_name",
    "region": "region_id",
    "account": "billing_account_id",
    "resource": "resource_id",
    "charge_category": "charge_category",
    "invoice": "invoice_id",
}
TAG_PREFIX = "tag:"


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CostFilter(_Query):
    """Filters shared by every cost query; ``tag`` is ``key:value``."""

    basis: Basis = "billed"
    provider: str | None = None
    service_category: str | None = None
    service: str | None = None
    region: str | None = None
    account: str | None = None
    #: A FOCUS ResourceId (the inventory's external id), for one resource's cost.
    resource: str | None = Field(default=None, min_length=1, max_length=2048)
    currency: Currency | None = None
    tag: str | None = Field(default=None, pattern=r"^[^:]+:.*$")

    def dimension(self) -> str:
        """What the filters select, as a stable label: ``all`` or ``provider=AWS,tag=team:web``."""
        names = ("provider", "service_category", "service", "region", "account", "resource", "tag")
        chosen = [f"{n}={getattr(self, n)}" for n in names if getattr(self, n) is not None]
        return ",".join(chosen) or "all"

    def tag_filter(self) -> tuple[str, str] | None:
        if self.tag is None:
            return None
        key, _, value = self.tag.partition(":")
        return key, value


class DailyQuery(CostFilter):
    start: Day | None = None
    end: Day | None = None
    group_by: str = "service_category"

    @field_validator("group_by")
    @classmethod
    def _known_group(cls, value: str) -> str:
        if value in GROUPS or (value.startswith(TAG_PREFIX) and len(value) > len(TAG_PREFIX)):
            return value
        raise ValueError(f"must be one of {', '.join(GROUPS)} or tag:<key>")

    @model_validator(mode="after")
    def _window(self) -> DailyQuery:
        if self.start and self.end and self.start > self.end:
            raise ValueError("start must not be after end")
        if self.start and self.end and (self.end - self.start).days > 3660:
            raise ValueError("the window may span at most ten years")
        return self

    def window(self, today: date) -> tuple[date, date]:
        """``[start, end]`` inclusive; defaults to the 30 days ending today."""
        end = self.end or today
        return self.start or end - timedelta(days=29), end


class InvoiceQuery(Page):
    """Invoices whose billing period starts in ``[start, end]`` (days, inclusive), paged."""

    start: Day | None = None
    end: Day | None = None
    billing_account_id: str | None = None

    @model_validator(mode="after")
    def _window(self) -> InvoiceQuery:
        if self.start and self.end and self.start > self.end:
            raise ValueError("start must not be after end")
        return self


class ForecastQuery(CostFilter):
    horizon: int | None = Field(default=None, ge=1, le=366)
    lookback: int = Field(default=90, ge=7, le=3660)
    end: Day | None = None


class RealtimeQuery(_Query):
    group_by: Literal["provider", "team"] = "provider"
    basis: Basis = "billed"
    at: Instant | None = None


class AtQuery(_Query):
    at: Instant | None = None


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    percent: Annotated[PlainDecimal, Field(gt=0, le=1000, max_digits=6, decimal_places=2)]
    kind: Literal["actual", "forecast"] = "actual"


DEFAULT_THRESHOLDS = [
    Threshold(percent=Decimal(p), kind="actual") for p in ("50", "75", "90", "100")
] + [Threshold(percent=Decimal("100"), kind="forecast")]


class BudgetFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name
    scope: Literal["all", "provider", "team", "tag"] = "all"
    scope_key: Name | None = None
    scope_value: Name | None = None
    amount: Annotated[PlainDecimal, Field(gt=0, max_digits=20, decimal_places=10)]
    currency: Currency = "USD"
    basis: Basis = "billed"
    thresholds: list[Threshold] = Field(
        default_factory=lambda: list(DEFAULT_THRESHOLDS), min_length=1, max_length=20
    )

    @model_validator(mode="after")
    def _scope_complete(self) -> BudgetFields:
        if self.scope == "all" and (self.scope_key or self.scope_value):
            raise ValueError("scope 'all' takes no scope_key or scope_value")
        if self.scope != "all" and not self.scope_value:
            raise ValueError(f"scope {self.scope!r} needs a scope_value")
        if (self.scope == "tag") != bool(self.scope_key):
            raise ValueError("scope_key is required for scope 'tag' and only for it")
        if len(set(self.thresholds)) != len(self.thresholds):
            raise ValueError("thresholds must be distinct")
        return self


class BudgetPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name | None = None
    amount: Annotated[PlainDecimal, Field(gt=0, max_digits=20, decimal_places=10)] | None = None
    thresholds: list[Threshold] | None = Field(default=None, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _no_nulls(self) -> BudgetPatch:
        nulls = sorted(n for n in self.model_fields_set if getattr(self, n) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self


class Budget(BudgetFields):
    id: str
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime


class PlatformQuery(_Query):
    day: Day | None = None


class ImportQuery(_Query):
    #: The uploaded file's name, as the uploader gave it.
    filename: str = "upload.csv"


class ListQuery(Page):
    """A list without filters."""


def month_bounds(at: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar month containing ``at``: ``[start, end)``."""
    start = datetime(at.year, at.month, 1, tzinfo=UTC)
    days = calendar.monthrange(at.year, at.month)[1]
    return start, start + timedelta(days=days)


def projected_month_end(actual: Decimal, at: datetime) -> Decimal:
    """Month-end spend if the month so far continues at its average daily rate (run rate)."""
    start, end = month_bounds(at)
    elapsed = Decimal((at - start).total_seconds())
    if elapsed <= 0:
        return actual
    return actual * Decimal((end - start).total_seconds()) / elapsed


def crossed(
    thresholds: list[Threshold], amount: Decimal, actual: Decimal, projected: Decimal
) -> list[Threshold]:
    """The thresholds that the month's actual (or projected) spend has reached."""
    out = []
    for threshold in thresholds:
        value = actual if threshold.kind == "actual" else projected
        if value * 100 >= amount * threshold.percent:
            out.append(threshold)
    return out


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def hours_left_in_month(at: datetime) -> Decimal:
    _, end = month_bounds(at)
    return Decimal((end - at).total_seconds()) / 3600
