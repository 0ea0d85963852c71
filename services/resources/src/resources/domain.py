"""Resources: what a resource is, what a valid one looks like, and which events a change makes.

No aiohttp and no SQL here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    field_validator,
    model_validator,
)

from common.encoding import PlainDecimal
from common.paging import Page
from common.tracing import TraceContext

MAX_TAGS = 50

# Plain-text fields: no control characters, bounded length.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00-\x1f]*$")]
Money = Annotated[PlainDecimal, Field(ge=0, max_digits=20, decimal_places=10, allow_inf_nan=False)]
Percent = Annotated[PlainDecimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Provider(StrEnum):
    AWS = "aws"
    AZURE = "azure"
    GCP = "gcp"
    OCI = "oci"
    OTHER = "other"


class ResourceType(StrEnum):
    COMPUTE = "compute"
    STORAGE = "storage"
    DATABASE = "database"
    NETWORK = "network"
    CONTAINER = "container"
    SERVERLESS = "serverless"
    OTHER = "other"


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPED = "stopped"
    IDLE = "idle"
    ERROR = "error"
    TERMINATED = "terminated"


def _no_control_chars(value: str | None) -> str | None:
    if value is not None and any(ord(c) < 32 for c in value):
        raise ValueError("must not contain control characters")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResourceFields(_Strict):
    """The writable fields, as a client sends them to create or replace a resource."""

    external_id: Identifier
    name: Text
    provider: Provider
    type: ResourceType
    region: ShortText
    account: ShortText
    status: Status = Status.PENDING
    hourly_cost: Money = Decimal(0)
    currency: Currency = "USD"
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=MAX_TAGS)
    owner: ShortText | None = None
    team: ShortText | None = None
    cpu_utilization: Percent | None = None
    memory_utilization: Percent | None = None
    #: When the resource entered its current status, as the provider reports it (unknown: null).
    status_since: AwareDatetime | None = None
    #: When the provider created the resource (a discovered snapshot is older than its record).
    provisioned_at: AwareDatetime | None = None

    _text = field_validator("external_id", "name", "region", "account", "owner", "team")(
        _no_control_chars
    )


class ResourcePatch(_Strict):
    """A partial update: only the fields present change; ``external_id`` is immutable."""

    name: Text | None = None
    provider: Provider | None = None
    type: ResourceType | None = None
    region: ShortText | None = None
    account: ShortText | None = None
    status: Status | None = None
    hourly_cost: Money | None = None
    currency: Currency | None = None
    tags: dict[TagKey, TagValue] | None = Field(default=None, max_length=MAX_TAGS)
    owner: ShortText | None = None
    team: ShortText | None = None
    cpu_utilization: Percent | None = None
    memory_utilization: Percent | None = None
    status_since: AwareDatetime | None = None
    provisioned_at: AwareDatetime | None = None

    _text = field_validator("name", "region", "account", "owner", "team")(_no_control_chars)

    @model_validator(mode="after")
    def _only_clearable_fields_nulled(self) -> ResourcePatch:
        nulled = sorted(k for k in self.model_fields_set - CLEARABLE if getattr(self, k) is None)
        if nulled:
            raise ValueError(f"{', '.join(nulled)} cannot be null")
        if not self.model_fields_set:
            raise ValueError("at least one field must be given")
        return self

    def changes(self, old: Resource) -> dict[str, Any]:
        """Only the fields the client sent; a new status without its start time clears it.

        A ``status_since`` that outlived its status would say "stopped since" of a running one.
        """
        changes = self.model_dump(exclude_unset=True)
        if changes.get("status", old.status) != old.status and "status_since" not in changes:
            changes["status_since"] = None
        return changes


#: Optional fields a PATCH may set to null.
CLEARABLE = frozenset(
    {"owner", "team", "cpu_utilization", "memory_utilization", "status_since", "provisioned_at"}
)


class BulkUpsert(_Strict):
    resources: list[ResourceFields] = Field(min_length=1)


class Resource(ResourceFields):
    """A stored resource."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: UUID
    created_at: datetime
    updated_at: datetime


SORT_FIELDS = (
    "name",
    "created_at",
    "updated_at",
    "hourly_cost",
    "status",
    "type",
    "provider",
    "region",
)


class ResourceQuery(Page):
    """Filters, sort and page of a list request (from the query string). Frozen: the handler
    shares one instance among the requests with the same query string."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status | None = None
    type: ResourceType | None = None
    provider: Provider | None = None
    region: ShortText | None = None
    team: ShortText | None = None
    account: ShortText | None = None
    tag: list[Annotated[str, StringConstraints(min_length=1, max_length=385)]] = Field(
        default_factory=list, max_length=10
    )
    q: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    sort: str = "-created_at"

    @field_validator("sort")
    @classmethod
    def _known_sort(cls, value: str) -> str:
        if value.removeprefix("-") not in SORT_FIELDS:
            raise ValueError(f"sort must be one of {', '.join(SORT_FIELDS)}, optionally with '-'")
        return value

    def tag_filters(self) -> list[tuple[str, str | None]]:
        """``key:value`` pairs (value None for ``key`` alone, meaning "has the tag")."""
        out: list[tuple[str, str | None]] = []
        for item in self.tag:
            key, sep, value = item.partition(":")
            out.append((key, value if sep else None))
        return out


@dataclass(frozen=True)
class Caller:
    """Who is asking (as the gateway vouches), and the trace the resulting events continue."""

    principal: str | None = None
    trace: TraceContext | None = None
    request_id: str | None = None


EventType = Literal[
    "resource.created",
    "resource.updated",
    "resource.status_changed",
    "resource.deleted",
    "resource.utilization_recorded",
]


def change_events(
    old: Resource | None, new: Resource | None, actor: str | None = None
) -> list[tuple[EventType, Any]]:
    """The events (type, data) a change from ``old`` to ``new`` produces, in publication order.

    ``actor`` is who made the change, as the gateway identified them (None for internal writes).
    """
    if old is None and new is not None:
        return [("resource.created", {"resource": _public(new), "actor": actor})]
    if new is None and old is not None:
        return [("resource.deleted", {"resource": _public(old), "actor": actor})]
    assert old is not None
    assert new is not None
    changed = sorted(k for k in ResourceFields.model_fields if getattr(old, k) != getattr(new, k))
    if not changed:
        return []
    events: list[tuple[EventType, Any]] = [
        ("resource.updated", {"resource": _public(new), "changed": changed, "actor": actor})
    ]
    if old.status != new.status:
        events.append(
            (
                "resource.status_changed",
                {
                    "resource": _public(new),
                    "old_status": old.status,
                    "new_status": new.status,
                    "actor": actor,
                },
            )
        )
    return events


def _public(resource: Resource) -> dict[str, Any]:
    return resource.model_dump(mode="json")


# ----- utilisation ------------------------------------------------------------------------------

#: Samples per call, as the API contract says.
MAX_UTILIZATION_SAMPLES = 5000
#: Order of the values in each sample row of a ``resource.utilization_recorded`` event.
SAMPLE_COLUMNS = ("timestamp", "cpu_percent", "memory_percent", "network_bytes")
ByteCount = Annotated[int, Strict(), Field(ge=0, le=2**63 - 1)]


class UtilizationSample(_Strict):
    """One reading as a metrics exporter sends it; the resource by id or by external id."""

    resource_id: UUID | None = None
    external_id: Identifier | None = None
    timestamp: AwareDatetime
    cpu_percent: Percent
    memory_percent: Percent
    network_bytes: ByteCount | None = None

    @model_validator(mode="after")
    def _exactly_one_reference(self) -> UtilizationSample:
        if (self.resource_id is None) == (self.external_id is None):
            raise ValueError("give exactly one of resource_id and external_id")
        return self


class UtilizationBatch(_Strict):
    samples: list[UtilizationSample] = Field(min_length=1, max_length=MAX_UTILIZATION_SAMPLES)


class UtilizationWindow(BaseModel):
    """``?start=&end=`` of a history read; either end may be left open."""

    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> UtilizationWindow:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class UtilizationRecorded(_Strict):
    """What a stored batch did: samples stored, resources they name, old samples trimmed."""

    accepted: int
    resources: int
    dropped: int


class UtilizationPoint(_Strict):
    """One stored sample of a resource's history (the answer's rows, as the store reads them)."""

    timestamp: AwareDatetime
    cpu_percent: Percent
    memory_percent: Percent
    network_bytes: ByteCount | None


@dataclass(frozen=True)
class StoredSample:
    """An accepted sample, its resource resolved."""

    resource_id: UUID
    external_id: str
    sampled_at: datetime
    cpu_percent: Decimal
    memory_percent: Decimal
    network_bytes: int | None


def utilization_recorded(samples: list[StoredSample], actor: str | None) -> dict[str, Any]:
    """The data of the one event a batch makes: samples grouped by resource, as compact rows.

    One event per call (at most ``MAX_UTILIZATION_SAMPLES`` rows), never one per sample.
    """
    by_resource: dict[UUID, dict[str, Any]] = {}
    for s in sorted(samples, key=lambda s: (str(s.resource_id), s.sampled_at)):
        entry = by_resource.setdefault(
            s.resource_id, {"id": str(s.resource_id), "external_id": s.external_id, "samples": []}
        )
        entry["samples"].append(
            [s.sampled_at.isoformat(), str(s.cpu_percent), str(s.memory_percent), s.network_bytes]
        )
    return {
        "actor": actor,
        "columns": list(SAMPLE_COLUMNS),
        "count": len(samples),
        "resources": list(by_resource.values()),
    }
