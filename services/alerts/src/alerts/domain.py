"""Alerts: identity, validation, matchers, silences, inhibition and notification payloads.

No aiohttp and no SQL here. Semantics follow Prometheus Alertmanager where it documents them:
the fingerprint is a hash of the sorted label set, regex matchers are fully anchored and run on
RE2 (the engine of Alertmanager's Go, linear in the text: no pattern can make matching backtrack),
an inhibition rule mutes targets whose ``equal`` labels have the same values (absent equals absent)
as a firing source alert.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
import re2  # type: ignore[import-untyped]
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from common.paging import Page

MAX_LABELS = 64
MAX_ANNOTATIONS = 64
MAX_LABEL_NAME = 128
MAX_LABEL_VALUE = 1024
#: A matcher's value or regular expression, in characters.
MAX_MATCHER_VALUE = 1024
#: A matcher written as text (``name=~"value"``), spaces included.
MAX_MATCHER_TEXT = 2 * MAX_MATCHER_VALUE
MAX_SILENCE_MATCHERS = 32
MAX_QUERY_MATCHERS = 16

LabelName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_LABEL_NAME, pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$"),
]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_VALUE)]
AnnotationValue = Annotated[str, StringConstraints(max_length=8192)]
Labels = Annotated[dict[LabelName, LabelValue], Field(max_length=MAX_LABELS)]
Annotations = Annotated[dict[LabelName, AnnotationValue], Field(max_length=MAX_ANNOTATIONS)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)]


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class Status(StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable hash of the sorted label set: the alert's identity."""
    canonical = orjson.dumps(sorted(labels.items()))
    return hashlib.sha256(canonical).hexdigest()[:32]


def _drop_empty(labels: Mapping[str, str]) -> dict[str, str]:
    # As in Prometheus, a label with an empty value is the same as no label.
    return {k: v for k, v in labels.items() if v != ""}


class AlertIn(BaseModel):
    """An alert as a source reports it (our events, Alertmanager v2 or webhook payloads)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    labels: Labels = Field(min_length=1)
    annotations: Annotations = Field(default_factory=dict)
    starts_at: AwareDatetime | None = Field(default=None, alias="startsAt")
    ends_at: AwareDatetime | None = Field(default=None, alias="endsAt")
    generator_url: Annotated[str, StringConstraints(max_length=2048)] | None = Field(
        default=None, alias="generatorURL"
    )

    @model_validator(mode="after")
    def _known_severity(self) -> AlertIn:
        self.labels = _drop_empty(self.labels)
        if not self.labels:
            raise ValueError("labels must not be empty")
        severity = self.labels.setdefault("severity", Severity.WARNING.value)
        if severity not in Severity.__members__.values():
            allowed = ", ".join(s.value for s in Severity)
            raise ValueError(f"unknown severity {severity[:64]!r}; use one of {allowed}")
        return self

    @property
    def severity(self) -> Severity:
        return Severity(self.labels["severity"])

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)


class Alert(BaseModel):
    """A stored alert."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    fingerprint: str
    source: str
    severity: Severity
    status: Status
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None
    observed_at: datetime
    suppressed: bool
    silenced_by: list[UUID]
    inhibited_by: list[str]
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: str
    action: str
    from_status: Status | None
    to_status: Status | None
    comment: str | None


class DeliveryAttempt(BaseModel):
    """One HTTP attempt to deliver a notification."""

    model_config = ConfigDict(frozen=True)

    receiver: str
    group_key: str
    delivery_id: UUID
    attempt: int
    at: datetime
    status_code: int | None
    outcome: str
    error: str | None
    duration_ms: float


# -- matchers -----------------------------------------------------------------------------------

MatchOp = Literal["=", "!=", "=~", "!~"]
# Longest first: "=~" must not be read as "=" followed by a value starting with "~".
_OPS: tuple[MatchOp, ...] = ("=~", "!~", "!=", "=")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: Set on validation context when a matcher is read back from storage rather than from a client.
STORED = "stored"


def split_matcher(text: str) -> tuple[str, MatchOp, str] | None:
    """``(name, op, value)`` of ``name<op>value``, or None; one pass over ``text``, so its cost
    stays linear in its length whatever runs of spaces it holds. Values may be double-quoted."""
    text = text.strip()
    found = _LABEL_NAME.match(text)
    if found is None:
        return None
    rest = text[found.end() :].lstrip()
    op = next((op for op in _OPS if rest.startswith(op)), None)
    if op is None:
        return None
    value = rest[len(op) :].lstrip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return found.group(), op, value


class Matcher(BaseModel):
    """A label matcher in Alertmanager's v2 form; regexes are RE2, fully anchored."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    name: LabelName
    value: Annotated[str, StringConstraints(max_length=MAX_MATCHER_VALUE)]
    is_regex: bool = Field(default=False, alias="isRegex")
    is_equal: bool = Field(default=True, alias="isEqual")

    @model_validator(mode="after")
    def _compiles(self, info: ValidationInfo) -> Matcher:
        # A stored matcher was checked when it was written; one that an older engine accepted
        # and RE2 does not matches nothing (see ``matches``) rather than breaking every read.
        if self.is_regex and not (info.context or {}).get(STORED):
            error = _compile_error(self.value)
            if error is not None:
                raise ValueError(
                    f"matcher {self.name!r}: not a valid RE2 regular expression ({error})"
                )
        return self

    @property
    def op(self) -> MatchOp:
        if self.is_regex:
            return "=~" if self.is_equal else "!~"
        return "=" if self.is_equal else "!="

    def matches(self, labels: Mapping[str, str]) -> bool:
        # An absent label matches as the empty string, as in Prometheus.
        actual = labels.get(self.name, "")
        if self.is_regex:
            pattern = _compiled(self.value)
            if pattern is None:
                return False
            hit = pattern.fullmatch(actual) is not None
        else:
            hit = actual == self.value
        return hit if self.is_equal else not hit

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex``; values may be
        double-quoted."""
        if len(text) > MAX_MATCHER_TEXT:
            raise ValueError(f"a matcher is at most {MAX_MATCHER_TEXT} characters long")
        parts = split_matcher(text)
        if parts is None:
            raise ValueError(f"matcher {text[:64]!r} is not name<op>value with op =, !=, =~ or !~")
        name, op, value = parts
        return cls.model_validate(
            {"name": name, "value": value, "isRegex": "~" in op, "isEqual": op[0] == "="}
        )


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a client's bad pattern is a 422, not a line on stderr
    # Program and DFA cache per pattern; past it RE2 falls back to its (still linear) NFA.
    options.max_mem = 1 << 20
    return options


_RE2_OPTIONS = _re2_options()
_REGEX_CACHE: dict[str, Any] = {}
_REGEX_CACHE_SIZE = 1024


def _compile_error(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern`` (without echoing it), or None when it compiles."""
    try:
        re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else "invalid"
        message = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        # RE2 writes "<what>: <the offending part of the pattern>"; keep only the what.
        return message.partition(":")[0][:64]
    return None


def _compiled(pattern: str) -> Any:
    """The compiled RE2 pattern, or None when RE2 cannot compile it."""
    if pattern in _REGEX_CACHE:
        return _REGEX_CACHE[pattern]
    if len(_REGEX_CACHE) >= _REGEX_CACHE_SIZE:
        _REGEX_CACHE.clear()
    try:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error:
        compiled = None
    _REGEX_CACHE[pattern] = compiled
    return compiled


def match_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


# -- silences -----------------------------------------------------------------------------------


class SilenceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


class SilenceIn(BaseModel):
    """A silence as a client creates or replaces it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    matchers: list[Matcher] = Field(min_length=1, max_length=MAX_SILENCE_MATCHERS)
    starts_at: AwareDatetime | None = Field(default=None, alias="startsAt")
    ends_at: AwareDatetime = Field(alias="endsAt")
    comment: Text
    #: Accepted for Alertmanager clients (amtool sends it) and ignored: the creator is the caller.
    created_by: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        default=None, alias="createdBy"
    )

    @field_validator("matchers")
    @classmethod
    def _not_match_everything(cls, matchers: list[Matcher]) -> list[Matcher]:
        # Alertmanager rejects silences whose matchers all match the empty string: they'd mute all.
        if all(m.matches({}) for m in matchers):
            raise ValueError("at least one matcher must not match the empty string")
        return matchers

    @model_validator(mode="after")
    def _ends_after_start(self) -> SilenceIn:
        if self.starts_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("endsAt must be after startsAt")
        return self


class Silence(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    updated_at: datetime

    def state(self, now: datetime) -> SilenceState:
        if now < self.starts_at:
            return SilenceState.PENDING
        if now >= self.ends_at:
            return SilenceState.EXPIRED
        return SilenceState.ACTIVE

    def public(self, now: datetime) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude={"matchers"})
        body["matchers"] = [m.model_dump(by_alias=True) for m in self.matchers]
        body["state"] = self.state(now).value
        return body


# -- inhibition ---------------------------------------------------------------------------------


class InhibitRule(BaseModel):
    """Mute alerts matching ``target_matchers`` while an alert matching ``source_matchers`` fires
    with the same values of the ``equal`` labels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source_matchers: list[Matcher] = Field(min_length=1)
    target_matchers: list[Matcher] = Field(min_length=1)
    equal: list[LabelName] = Field(default_factory=list)

    @field_validator("source_matchers", "target_matchers", mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [Matcher.parse(v) if isinstance(v, str) else v for v in value]
        return value

    def equal_values(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {name: labels.get(name, "") for name in self.equal}

    def inhibits(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        if source is target or dict(source) == dict(target):
            return False  # an alert never inhibits itself
        return (
            match_all(self.source_matchers, source)
            and match_all(self.target_matchers, target)
            and self.equal_values(source) == self.equal_values(target)
        )


class InhibitionIndex:
    """Source alerts indexed by each rule's ``equal`` values: one dict lookup per rule."""

    def __init__(self, rules: Sequence[InhibitRule], sources: Iterable[Mapping[str, str]]) -> None:
        self._rules: list[tuple[InhibitRule, dict[tuple[str, ...], list[Mapping[str, str]]]]] = []
        materialised = list(sources)
        for rule in rules:
            index: dict[tuple[str, ...], list[Mapping[str, str]]] = {}
            for source in materialised:
                if match_all(rule.source_matchers, source):
                    key = tuple(rule.equal_values(source).values())
                    index.setdefault(key, []).append(source)
            self._rules.append((rule, index))

    def inhibitors(self, target: Mapping[str, str]) -> list[str]:
        """Fingerprints of the source alerts that inhibit ``target``, sorted."""
        found: set[str] = set()
        for rule, index in self._rules:
            if not match_all(rule.target_matchers, target):
                continue
            for source in index.get(tuple(rule.equal_values(target).values()), []):
                if rule.inhibits(source, target):
                    found.add(fingerprint(source))
        return sorted(found)


# -- queries ------------------------------------------------------------------------------------


class AlertQuery(Page):
    """Filters and page of a feed request."""

    severity: list[Severity] = Field(default_factory=list, max_length=3)
    status: list[Status] = Field(default_factory=list, max_length=3)
    source: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    suppressed: bool | None = None
    matcher: list[Matcher] = Field(default_factory=list, max_length=MAX_QUERY_MATCHERS)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None

    @field_validator("matcher", mode="before")
    @classmethod
    def _parse_matchers(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > MAX_QUERY_MATCHERS:
            raise ValueError(f"at most {MAX_QUERY_MATCHERS} matchers")  # before parsing them
        return [Matcher.parse(v) if isinstance(v, str) else v for v in value]

    def equality_labels(self) -> dict[str, str]:
        """Labels the SQL can narrow by (``=`` matchers with a value)."""
        return {m.name: m.value for m in self.matcher if m.op == "=" and m.value != ""}
