"""Rules from configuration: which events raise or resolve which alerts, and inhibition rules.

The rules file is JSON (path in settings; a default ships with the package). An event rule names an
event type, conditions on the event's ``data`` that fire or resolve it, and label/annotation
templates where ``${path.to.field}`` is replaced by that field of the event data. A removal rule
names an event saying a thing is gone (``resource.deleted``) and the label that names the thing.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from alerts.domain import AlertIn, InhibitRule, LabelName, Severity

DEFAULT_RULES_FILE = Path(__file__).with_name("rules.json")
_PLACEHOLDER = re.compile(r"\$\{([a-zA-Z0-9_.]+)\}")


def lookup(data: Any, path: str) -> Any:
    """``data["a"]["b"]`` for ``"a.b"``; None when any step is missing."""
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def render(template: str, data: Any) -> str:
    def value(found: re.Match[str]) -> str:
        got = lookup(data, found.group(1))
        return "" if got is None else str(got)

    return _PLACEHOLDER.sub(value, template)


class Condition(BaseModel):
    """``path op value``; numeric comparisons use Decimal, a missing field never matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte"]
    value: str | int | float | bool

    def holds(self, data: Any) -> bool:
        got = lookup(data, self.path)
        if got is None:
            return False
        if self.op == "eq":
            return str(got) == str(self.value)
        if self.op == "ne":
            return str(got) != str(self.value)
        try:
            left, right = Decimal(str(got)), Decimal(str(self.value))
        except InvalidOperation:
            return False
        return {
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
        }[self.op]


class EventRule(BaseModel):
    """Maps one event type to one alert: fire when all ``fire_when`` hold, resolve on
    ``resolve_when``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    event: str
    severity: Severity
    title: str
    description: str = ""
    fire_when: list[Condition] = Field(default_factory=list)
    resolve_when: list[Condition] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    ends_after_seconds: int | None = Field(default=None, ge=1)

    def alert(self, data: Any) -> AlertIn:
        labels = {"alertname": self.name, **{k: render(v, data) for k, v in self.labels.items()}}
        labels["severity"] = self.severity.value
        annotations = {
            "title": render(self.title, data),
            **({"description": render(self.description, data)} if self.description else {}),
            **{k: render(v, data) for k, v in self.annotations.items()},
        }
        return AlertIn(labels=labels, annotations={k: v for k, v in annotations.items() if v})

    def fires(self, data: Any) -> bool:
        return all(c.holds(data) for c in self.fire_when)

    def resolves(self, data: Any) -> bool:
        return self.resolve_when is not None and all(c.holds(data) for c in self.resolve_when)


class RemovalRule(BaseModel):
    """``event`` says a thing is gone: every open alert whose ``label`` is the thing's ``value``
    (a template over the event data) resolves.

    Nothing would resolve them otherwise: no later event about the thing can clear a condition,
    so they would stay open for ever, and every full upkeep pass would load more of them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: str
    label: LabelName
    value: str
    reason: str = "its subject was removed"

    def subject(self, data: Any) -> str:
        """The label value naming the removed thing; empty when the event data lacks it."""
        return render(self.value, data)


class RuleBook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_rules: list[EventRule] = Field(default_factory=list)
    removal_rules: list[RemovalRule] = Field(default_factory=list)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)

    @property
    def event_types(self) -> list[str]:
        return sorted({r.event for r in self.event_rules} | {r.event for r in self.removal_rules})

    def for_event(self, event_type: str) -> list[EventRule]:
        return [r for r in self.event_rules if r.event == event_type]

    def removals_for(self, event_type: str) -> list[RemovalRule]:
        return [r for r in self.removal_rules if r.event == event_type]


def load_rules(path: Path) -> RuleBook:
    """Read and validate the rules file; a broken file stops start-up with a clear message."""
    return RuleBook.model_validate(orjson.loads(path.read_bytes()))
