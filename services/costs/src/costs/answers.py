"""The shapes of the cost reports' answers, as the API document describes them.

The reports are built as plain data (rows of exact sums, cached as such); these models say what
that data is, field by field. The route table names them as the operations' ``data``, and every
response the tests receive is checked against them, so a report whose fields drift from its model
fails there. Money and other exact amounts are :data:`~common.encoding.PlainDecimal` (strings of
every digit), as everywhere else.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from common.encoding import PlainDecimal
from costs.domain import Basis


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DailyResource(_Answer):
    """The inventory's resource a ``group_by=resource`` row's ResourceId names."""

    id: str
    external_id: str
    name: str
    team: str | None
    type: str
    status: str


class DailyCost(_Answer):
    """One day, group and currency of ``GET /api/costs/daily``; ``group`` null is "no value"."""

    date: dt.date
    group: str | None
    currency: str
    cost: PlainDecimal
    line_items: int
    #: Only with ``group_by=resource``: the resource, or null when the inventory does not know it.
    resource: DailyResource | None = None


class Invoice(_Answer):
    """One InvoiceId of one billing account and currency, with its exact billed total."""

    invoice_id: str
    billing_account_id: str
    billing_account_name: str | None
    billing_period_start: dt.datetime
    billing_period_end: dt.datetime
    currency: str
    billed_total: PlainDecimal


class RealtimeGroup(_Answer):
    group: str | None
    currency: str
    hourly_cost: PlainDecimal
    running_resources: int


class Realtime(_Answer):
    """The running inventory's cost per hour and the month it leads to, per currency."""

    at: dt.datetime
    group_by: str
    groups: list[RealtimeGroup]
    hourly_cost: dict[str, PlainDecimal]
    month_to_date: dict[str, PlainDecimal]
    projected_month_end: dict[str, PlainDecimal]
    month: str
    hours_left_in_month: PlainDecimal


class ForecastHistory(_Answer):
    first: dt.date | None
    last: dt.date
    days: int


class ForecastPoint(_Answer):
    date: dt.date
    point: PlainDecimal
    lower: PlainDecimal
    upper: PlainDecimal


class Forecast(_Answer):
    """Per currency, one point and its 80% interval per day of the horizon."""

    basis: Basis
    history: ForecastHistory
    horizon_days: int
    model: str
    currencies: dict[str, list[ForecastPoint]]
    #: Why a currency (or everything) has no forecast; null when all could be forecast.
    message: str | None


class Anomaly(_Answer):
    """A day whose cost is far from the model fitted to its window."""

    date: dt.date
    #: What the filters selected and the currency: ``all:USD``, ``provider=AWS:EUR``.
    dimension: str
    basis: Basis
    currency: str
    actual: PlainDecimal
    expected: PlainDecimal
    score: PlainDecimal


class DetectedAnomaly(Anomaly):
    #: False when an earlier detection already recorded (and announced) it.
    new: bool


class RecordedAnomaly(Anomaly):
    detected_at: dt.datetime


class Recommendation(_Answer):
    """One saving; ``evidence`` holds the rule's own figures (utilisation, days, prices)."""

    rule: str
    resource_id: str | None
    external_id: str
    name: str
    evidence: dict[str, Any]
    monthly_savings: PlainDecimal
    currency: str
