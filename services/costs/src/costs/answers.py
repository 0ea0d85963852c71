"""The shapes of the cost reports' answers, as the API document describes them.

The reports are built as plain data (rows of exact sums, cached as such); these models say what
that data is, field by field. The route table names them as the operations' ``data``, and every
response the tests receive is checked against them, so a report whose fields drift from its model
fails there. Money and other exact amounts are :data:`~common.encoding.PlainDecimal` (strings of
every digit), as everywhere else.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from common.encoding import PlainDecimal
from costs.domain import Basis, Budget, Threshold


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


class ImportProblem(_Answer):
    field: str
    message: str


class ImportFailure(_Answer):
    """Why a failed import failed: nothing of it was kept."""

    detail: str
    errors: list[ImportProblem]


class FindingExample(_Answer):
    line: int
    column: str | None
    value: str | None
    stored: str | None


class FindingCount(_Answer):
    """A rule broken on rows that were kept: how often, and the first few examples."""

    count: int
    examples: list[FindingExample]


class Sums(_Answer):
    file: PlainDecimal
    stored: PlainDecimal
    rejected: PlainDecimal


class Rejection(_Answer):
    line: int
    field: str | None
    message: str


class Import(_Answer):
    """An import's outcome, or its progress while it runs.

    ``findings`` is per rule; ``reconciliation`` per currency and cost basis, the file's sums
    against the stored and the rejected ones. ``rejections`` lists the first rejected rows.
    """

    id: str
    filename: str
    status: Literal["running", "succeeded", "failed"]
    focus_version: str | None
    sha256: str | None
    rows_read: int
    rows_accepted: int
    rows_with_findings: int
    rows_rejected: int
    rows_replaced: int
    findings: dict[str, FindingCount]
    reconciliation: dict[str, dict[str, Sums]]
    error: ImportFailure | None
    created_by: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    rejections: list[Rejection]


class Usage(_Answer):
    """Requests served and what they cost (USD); seconds as exact amounts."""

    requests: int
    cost: PlainDecimal
    cpu_seconds: PlainDecimal
    wall_seconds: PlainDecimal
    bytes_out: int


class ServiceUsage(Usage):
    service: str


class RouteUsage(Usage):
    service: str
    route: str


class PrincipalUsage(Usage):
    principal: str


class PlatformBreakdown(_Answer):
    requests: PlainDecimal
    compute: PlainDecimal
    network: PlainDecimal
    storage: PlainDecimal


class UnitPrices(_Answer):
    per_request: PlainDecimal
    compute_per_cpu_second: PlainDecimal
    network_per_gb: PlainDecimal
    storage_per_gb_month: PlainDecimal


class PlatformCost(_Answer):
    """What the platform itself cost on one day, and who used it.

    ``per_route`` is empty and ``per_user`` holds only the caller unless the caller is an admin.
    """

    date: dt.date
    currency: str
    total: PlainDecimal
    requests: int
    breakdown: PlatformBreakdown
    per_service: list[ServiceUsage]
    per_route: list[RouteUsage]
    per_user: list[PrincipalUsage]
    unit_prices: UnitPrices


class BudgetCrossing(_Answer):
    """A threshold a budget crossed for the first time in ``period`` (``YYYY-MM``), as announced."""

    budget: Budget
    threshold: Threshold
    period: str
    #: The month's spend (``actual``) or its projection to month end (``forecast``).
    value: PlainDecimal
    amount: PlainDecimal
    currency: str
