"""Pure rules: conditions, templates, matchers and the background loop's resilience."""

from __future__ import annotations

import asyncio
import timeit
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.domain import (
    MAX_MATCHER_TEXT,
    InhibitionIndex,
    InhibitRule,
    Matcher,
    fingerprint,
    split_matcher,
)
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


def best_time(call: Callable[[], object], number: int = 20) -> float:
    """Seconds per call, the best of a few rounds (the least disturbed by anything else)."""
    return min(timeit.repeat(call, number=number, repeat=5)) / number


def test_regex_matchers_take_linear_time_on_adversarial_labels() -> None:
    # (a+)+ backtracks exponentially in a backtracking engine: each extra "a" doubled the time
    # (1.4 s at 24 characters). RE2 is linear, so the longer label costs about the same.
    matcher = Matcher(name="team", value="(a+)+", is_regex=True)
    short, long = {"team": "a" * 10 + "b"}, {"team": "a" * 22 + "b"}
    assert not matcher.matches(long)
    ratio = best_time(lambda: matcher.matches(long), 5) / best_time(lambda: matcher.matches(short))
    assert ratio < 50, f"12 more characters cost {ratio:.0f} times as much"


@pytest.mark.parametrize(
    "text",
    [
        "team=x{}x",  # spaces inside the value: the old parser was quadratic here
        "team{}=x",
        "{}team=x",
        "team=~{}",
    ],
    ids=["inside-value", "before-op", "leading", "trailing"],
)
def test_the_matcher_parser_is_linear_in_runs_of_spaces(text: str) -> None:
    small, large = text.format(" " * 500), text.format(" " * 16_000)
    assert split_matcher(large) is not None
    ratio = best_time(lambda: split_matcher(large)) / best_time(lambda: split_matcher(small))
    # 32 times the input: linear is about 32, quadratic about 1000.
    assert ratio < 200, f"32 times the input cost {ratio:.0f} times as much"


def test_a_matcher_longer_than_the_bound_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(ValueError, match="at most"):
        Matcher.parse("team=x" + " " * MAX_MATCHER_TEXT + "x")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("(a)\\1", "invalid escape sequence"),  # backreferences: not in RE2 (nor in Go)
        ("(?=a)b", "invalid perl operator"),  # lookahead
        ("x{1001}", "invalid repetition size"),
        ("(", "missing )"),
    ],
)
def test_patterns_re2_cannot_compile_are_refused_naming_the_matcher(
    value: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        Matcher(name="team", value=value, is_regex=True)
    message = str(raised.value.errors()[0]["msg"])
    assert "'team'" in message
    assert reason in message


@pytest.mark.parametrize(
    ("value", "label", "hit"),
    [
        ("we.", "web", True),
        ("we.", "webshop", False),  # anchored at both ends, as Alertmanager does
        ("web|api", "api", True),
        ("web|api", "xapi", False),
        ("a.c", "a\nc", False),  # "." does not match a newline, as in Go
        (".*", "", True),
    ],
)
def test_regex_matchers_are_fully_anchored_re2(value: str, label: str, hit: bool) -> None:
    assert Matcher(name="team", value=value, is_regex=True).matches({"team": label}) is hit


def test_a_stored_pattern_re2_cannot_compile_matches_nothing() -> None:
    stored = Matcher.model_validate(
        {"name": "team", "value": "(?=web)", "isRegex": True, "isEqual": False},
        context={"stored": True},
    )
    assert stored.matches({"team": "web"}) is False
    assert stored.matches({"team": "data"}) is False


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
