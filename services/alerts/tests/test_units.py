"""Pure rules: conditions, templates, matchers and the background loop's resilience."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alerts.domain import InhibitionIndex, InhibitRule, Matcher, fingerprint
from alerts.notify import run_every
from alerts.rules import Condition, render


@pytest.mark.parametrize(
    ("condition", "data", "holds"),
    [
        ({"path": "a.b", "op": "gte", "value": 80}, {"a": {"b": "80.00"}}, True),
        ({"path": "a.b", "op": "gt", "value": 80}, {"a": {"b": "80.00"}}, False),
        ({"path": "a.b", "op": "lt", "value": 80}, {"a": {"b": 79.5}}, True),
        ({"path": "a.b", "op": "lte", "value": 80}, {"a": {"b": "81"}}, False),
        ({"path": "a.b", "op": "lt", "value": 80}, {"a": {"b": "n/a"}}, False),
        ({"path": "a.b", "op": "lt", "value": 80}, {"a": {"b": None}}, False),
        ({"path": "a.b", "op": "eq", "value": "x"}, {"a": "not a dict"}, False),
        ({"path": "a", "op": "ne", "value": "x"}, {"a": "y"}, True),
    ],
)
def test_conditions_compare_numbers_exactly_and_never_match_missing_fields(
    condition: dict[str, Any], data: dict[str, Any], holds: bool
) -> None:
    assert Condition.model_validate(condition).holds(data) is holds


def test_templates_fill_fields_and_leave_missing_ones_empty() -> None:
    data = {"resource": {"name": "web-1", "cpu": 91.5}}
    assert render("${resource.name} at ${resource.cpu}%${resource.nope}", data) == "web-1 at 91.5%"


def test_the_fingerprint_ignores_label_order() -> None:
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "1", "b": ""})


@pytest.mark.parametrize(
    ("text", "op", "name", "value"),
    [
        ("team=web", "=", "team", "web"),
        ('team != "web"', "!=", "team", "web"),
        ("team=~we.|api", "=~", "team", "we.|api"),
        ('env!~"prod-.*"', "!~", "env", "prod-.*"),
    ],
)
def test_matchers_parse_from_text(text: str, op: str, name: str, value: str) -> None:
    matcher = Matcher.parse(text)
    assert (matcher.op, matcher.name, matcher.value) == (op, name, value)


def test_an_alert_never_inhibits_itself() -> None:
    rule = InhibitRule.model_validate(
        {"source_matchers": ["a=~.+"], "target_matchers": ["a=~.+"], "equal": []}
    )
    labels = {"a": "x"}
    assert InhibitionIndex([rule], [labels]).inhibitors(labels) == []
    assert InhibitionIndex([rule], [{"a": "y"}]).inhibitors(labels) == [fingerprint({"a": "y"})]


async def test_a_failing_background_round_is_logged_and_the_loop_goes_on() -> None:
    calls = 0
    done = asyncio.Event()

    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError("postgres away")
        done.set()

    task = asyncio.create_task(run_every(0.01, "test", work))
    async with asyncio.timeout(2):
        await done.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls >= 2
