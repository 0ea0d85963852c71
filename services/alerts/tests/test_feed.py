"""The feed API: filters, pagination, detail with history, and the operator actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import Client, feed, v2_alert, wait_for


async def post_alerts(client: Client, *alerts: dict[str, Any]) -> list[dict[str, Any]]:
    resp = await client.post("/api/alerts/v2/alerts", json=list(alerts))
    assert resp.status == 200, await resp.text()
    data: list[dict[str, Any]] = (await resp.json())["data"]
    return data


def at(minutes_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


@pytest.fixture
async def seeded(client: Client) -> dict[str, str]:
    """Four alerts with distinct severities, teams and start times (oldest first)."""
    specs = [
        ("a", "critical", "web", 40),
        ("b", "warning", "web", 30),
        ("c", "info", "data", 20),
        ("d", "warning", "data-platform", 10),
    ]
    ids = {}
    for name, severity, team, minutes in specs:
        alert = v2_alert(instance=name, severity=severity, team=team) | {"startsAt": at(minutes)}
        [stored] = await post_alerts(client, alert)
        ids[name] = stored["id"]
    return ids


def names(body: dict[str, Any]) -> list[str]:
    return [a["labels"]["instance"] for a in body["data"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["d", "c", "b", "a"]),
        ({"severity": "warning"}, ["d", "b"]),
        ({"severity": "critical,info"}, ["c", "a"]),
        ({"status": "firing"}, ["d", "c", "b", "a"]),
        ({"status": "resolved"}, []),
        ({"source": "alertmanager"}, ["d", "c", "b", "a"]),
        ({"source": "resource.status_changed"}, []),
        ({"matcher": "team=web"}, ["b", "a"]),
        ({"matcher": "team!=web"}, ["d", "c"]),
        ({"matcher": 'team=~"data"'}, ["c"]),  # anchored: not data-platform
        ({"matcher": "team=~data.*"}, ["d", "c"]),
        ({"matcher": "team!~data.*"}, ["b", "a"]),
        ({"matcher": "owner="}, ["d", "c", "b", "a"]),  # absent label equals the empty string
        ({"since": at(25)}, ["d", "c"]),
        ({"until": at(25)}, ["b", "a"]),
        ({"limit": "2"}, ["d", "c"]),
        ({"limit": "2", "offset": "2"}, ["b", "a"]),
    ],
)
async def test_feed_filters_and_pages_newest_first(
    client: Client, seeded: dict[str, str], params: dict[str, str], expected: list[str]
) -> None:
    body = await feed(client, **params)
    assert names(body) == expected
    if "limit" not in params:
        assert body["meta"]["total"] == len(expected)


async def test_repeated_matchers_all_apply(client: Client, seeded: dict[str, str]) -> None:
    resp = await client.get(
        "/api/alerts", params=[("matcher", "team=~data.*"), ("matcher", "severity=warning")]
    )
    assert names(await resp.json()) == ["d"]


async def test_acknowledge_then_resolve_records_who_and_when(
    client: Client, seeded: dict[str, str]
) -> None:
    alert_id = seeded["a"]
    who = {"X-CloudOps-Principal": "alice"}
    resp = await client.post(f"/api/alerts/{alert_id}/ack", json={"comment": "on it"}, headers=who)
    assert resp.status == 200
    acked = (await resp.json())["data"]
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "alice")
    resp = await client.post(
        f"/api/alerts/{alert_id}/comments", json={"text": "disk replaced"}, headers=who
    )
    assert resp.status == 201
    resp = await client.post(
        f"/api/alerts/{alert_id}/resolve", headers={"X-CloudOps-Principal": "bob"}
    )
    assert resp.status == 200
    detail = (await (await client.get(f"/api/alerts/{alert_id}")).json())["data"]
    assert (detail["status"], detail["resolved_by"]) == ("resolved", "bob")
    history = [
        (h["action"], h["actor"], h["from_status"], h["to_status"], h["comment"])
        for h in detail["history"]
    ]
    assert history == [
        ("raised", "anonymous", None, "firing", None),
        ("acknowledged", "alice", "firing", "acknowledged", "on it"),
        ("commented", "alice", "acknowledged", "acknowledged", "disk replaced"),
        ("resolved", "bob", "acknowledged", "resolved", None),
    ]
    stamps = [datetime.fromisoformat(h["at"]) for h in detail["history"]]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    ("first", "second"), [("ack", "ack"), ("resolve", "ack"), ("resolve", "resolve")]
)
async def test_invalid_transitions_conflict(
    client: Client, seeded: dict[str, str], first: str, second: str
) -> None:
    alert_id = seeded["b"]
    assert (await client.post(f"/api/alerts/{alert_id}/{first}")).status == 200
    resp = await client.post(f"/api/alerts/{alert_id}/{second}")
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"


async def test_a_resolved_alert_reported_again_reopens(client: Client) -> None:
    [alert] = await post_alerts(client, v2_alert(instance="x"))
    await client.post(f"/api/alerts/{alert['id']}/resolve")
    [again] = await post_alerts(client, v2_alert(instance="x"))
    assert (again["id"], again["status"], again["resolved_by"]) == (alert["id"], "firing", None)
    detail = (await (await client.get(f"/api/alerts/{alert['id']}")).json())["data"]
    assert [h["action"] for h in detail["history"]] == ["raised", "resolved", "reopened"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/alerts/00000000-0000-4000-8000-000000000000", 404),
        ("POST", "/api/alerts/00000000-0000-4000-8000-000000000000/ack", 404),
        ("POST", "/api/alerts/00000000-0000-4000-8000-000000000000/comments", 422),
        ("GET", "/api/alerts/not-a-uuid", 400),
        ("GET", "/api/alerts?severity=fatal", 400),
        ("GET", "/api/alerts?status=open", 400),
        ("GET", "/api/alerts?limit=101", 400),
        ("GET", "/api/alerts?matcher=team~web", 400),
        ("GET", "/api/alerts?matcher=team=~(", 400),
        ("GET", "/api/alerts?matcher=team=~(?P<x>a)", 400),
        ("GET", "/api/alerts?since=yesterday", 400),
        ("GET", "/api/alerts/silences/00000000-0000-4000-8000-000000000000", 404),
        ("DELETE", "/api/alerts/silences/00000000-0000-4000-8000-000000000000", 404),
        ("PUT", "/api/alerts/silences/00000000-0000-4000-8000-000000000000", 404),
        ("PUT", "/api/alerts/silences/nope", 400),
        ("GET", "/api/alerts/notifications?limit=0", 400),
        ("GET", "/api/alerts/notifications?color=red", 400),
    ],
)
async def test_unknown_or_malformed_requests_are_problems(
    client: Client, method: str, path: str, status: int
) -> None:
    silence = {
        "matchers": [{"name": "team", "value": "web"}],
        "endsAt": "2999-01-01T00:00:00Z",
        "comment": "c",
    }
    body = {"POST": {}, "PUT": silence}.get(method)
    resp = await client.request(method, path, json=body)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["status"] == status


async def raised_count(client: Client, severity: str) -> float:
    text = await (await client.get("/metrics")).text()
    prefix = f'alerts_total{{severity="{severity}"}} '
    lines = [ln for ln in text.splitlines() if ln.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


async def test_metrics_count_raised_alerts_and_gauge_the_firing_ones(client: Client) -> None:
    before = await raised_count(client, "critical")
    await post_alerts(client, v2_alert(instance="m1", severity="critical"))
    await post_alerts(client, v2_alert(instance="m2", severity="critical"))
    [acked] = await post_alerts(client, v2_alert(instance="m3", severity="critical"))
    await post_alerts(client, v2_alert(instance="m3", severity="critical"))  # same alert again
    await client.post(f"/api/alerts/{acked['id']}/ack")
    assert await raised_count(client, "critical") - before == 3

    async def firing_gauge() -> str | None:
        text = await (await client.get("/metrics")).text()
        return text if 'alerts_firing{severity="critical"} 2.0' in text else None

    metrics = await wait_for(firing_gauge, timeout=3)
    assert 'alerts_firing{severity="warning"} 0.0' in metrics
