"""Odd query input is a 400 problem, not a 500: NUL characters, huge offsets, calendar ends."""

from __future__ import annotations

from typing import Any

from .conftest import Client

CASES: list[tuple[str, str, str]] = [
    ("/api/alerts", "source", "we\x00b"),
    ("/api/alerts", "matcher", 'team="we\x00b"'),
    ("/api/alerts", "matcher", 'team=~"we\x00b"'),
    ("/api/alerts", "severity", "critical\x00"),
    ("/api/alerts", "offset", str(2**64)),
    ("/api/alerts", "limit", str(2**64)),
    ("/api/alerts", "since", "0001-01-01T00:30:00+01:00"),
    ("/api/alerts", "until", "9999-12-31T23:30:00-01:00"),
    ("/api/alerts/notifications", "receiver", "we\x00b"),
    ("/api/alerts/notifications", "offset", str(2**64)),
]


async def refusal(resp: Any, field: str) -> str | None:
    """Why ``resp`` is not a 400 problem naming ``field``; None if it is one."""
    if resp.status != 400 or resp.content_type != "application/problem+json":
        return f"{resp.status} {resp.content_type}"
    fields = {e["field"] for e in (await resp.json())["errors"]}
    return None if field in fields else f"errors name {fields}"


async def test_odd_query_values_are_a_400_problem(client: Client) -> None:
    wrong = {}
    for path, name, value in CASES:
        wrong[path, name, value] = await refusal(await client.get(path, params={name: value}), name)
    assert {case: why for case, why in wrong.items() if why} == {}
