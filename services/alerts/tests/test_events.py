"""Events from RabbitMQ become alerts through the configured rules; alerts emit their own events."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.rules import DEFAULT_RULES_FILE, load_rules
from alerts.settings import AlertsSettings
from common.messaging import new_event
from common.testing import EventTap

from .conftest import (
    Client,
    ClientFactory,
    Publisher,
    SseReader,
    feed,
    resource,
    resource_updated,
    start_app,
    status_changed,
    wait_for,
)


async def open_alerts(client: Client, **params: Any) -> list[dict[str, Any]]:
    body = await feed(client, **params)
    return [a for a in body["data"] if a["status"] != "resolved"]


async def test_resource_error_reaches_feed_and_stream_within_two_seconds_and_recovery_resolves(
    client: Client, publisher: Publisher
) -> None:
    resp = await client.get("/api/alerts/stream")
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    sse = SseReader(resp)
    started = time.monotonic()
    await publisher.publish(status_changed(1, "running", "error"))
    raised = await sse.until(lambda d: d["_event"] == "alert.raised", timeout=2.0)
    listed = await wait_for(lambda: open_alerts(client), timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert raised["labels"]["alertname"] == "ResourceInError"
    assert raised["labels"]["resource_id"] == resource(1)["id"]
    assert raised["severity"] == "critical"
    assert [a["id"] for a in listed] == [raised["id"]]

    await publisher.publish(status_changed(1, "error", "running"))
    resolved = await sse.until(lambda d: d["_event"] == "alert.resolved", timeout=2.0)
    assert resolved["id"] == raised["id"]
    assert resolved["resolved_by"] == "event:resource.status_changed"
    resp.close()
    detail = await (await client.get(f"/api/alerts/{raised['id']}")).json()
    assert [(h["action"], h["to_status"]) for h in detail["data"]["history"]] == [
        ("raised", "firing"),
        ("resolved", "resolved"),
    ]


async def test_same_event_delivered_three_times_makes_one_alert(
    client: Client, publisher: Publisher
) -> None:
    event = status_changed(2, "running", "error")
    for _ in range(3):
        await publisher.publish(event)
    await wait_for(lambda: open_alerts(client))
    await publisher.publish(resource_updated(99, cpu_utilization="10"))  # a marker event after
    body = await feed(client)
    assert body["meta"]["total"] == 1


async def test_repeated_condition_updates_one_alert_and_latest_annotations_win(
    client: Client, publisher: Publisher
) -> None:
    for cpu in ("86.00", "88.50", "91.25"):
        await publisher.publish(resource_updated(3, cpu_utilization=cpu))

    async def latest_title() -> Any:
        alerts = await open_alerts(client)
        return alerts if alerts and "91.25" in alerts[0]["annotations"]["title"] else None

    [alert] = await wait_for(latest_title)
    assert alert["labels"] == {
        "alertname": "HighCpuUtilization",
        "metric": "cpu",
        "resource_id": resource(3)["id"],
        "severity": "warning",
        "team": "web",
    }
    detail = await (await client.get(f"/api/alerts/{alert['id']}")).json()
    assert [h["action"] for h in detail["data"]["history"]] == ["raised"]


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        ("84.99", []),
        ("85", [("warning", False)]),
        ("96", [("critical", False), ("warning", True)]),
    ],
    ids=["below-threshold", "warning-threshold", "critical-inhibits-warning"],
)
async def test_cpu_thresholds_from_rules(
    client: Client, publisher: Publisher, cpu: str, expected: list[tuple[str, bool]]
) -> None:
    await publisher.publish(resource_updated(4, cpu_utilization=cpu))
    await publisher.publish(status_changed(5, "running", "error"))  # a marker that always fires

    async def settled() -> Any:
        alerts = await open_alerts(client, matcher=f"resource_id={resource(4)['id']}")
        marker = await open_alerts(client, matcher="alertname=ResourceInError")
        return (alerts or not expected) and marker and alerts

    alerts = await wait_for(settled) if expected else []
    if not expected:
        await wait_for(lambda: open_alerts(client, matcher="alertname=ResourceInError"))
        alerts = await open_alerts(client, matcher=f"resource_id={resource(4)['id']}")

    async def both() -> Any:
        found = await open_alerts(client, matcher=f"resource_id={resource(4)['id']}")
        return (
            found
            if len(found) == len(expected)
            and all(a["suppressed"] == dict(expected)[a["severity"]] for a in found)
            else None
        )

    if expected:
        alerts = await wait_for(both)
    assert sorted((a["severity"], a["suppressed"]) for a in alerts) == expected


async def test_utilisation_recovering_resolves_threshold_alerts(
    client: Client, publisher: Publisher
) -> None:
    await publisher.publish(resource_updated(6, cpu_utilization="97", memory_utilization="93"))
    await wait_for(lambda: _count(client, 3, status="firing"))
    await publisher.publish(resource_updated(6, cpu_utilization="20", memory_utilization="40"))
    await wait_for(lambda: _count(client, 3, status="resolved"))
    assert await open_alerts(client) == []


async def _count(client: Client, n: int, **params: Any) -> bool:
    return bool((await feed(client, **params))["meta"]["total"] == n)


BUDGET = {"id": "b-1", "name": "platform", "amount": "1000.00", "currency": "USD"}


def crossing(percent: str) -> dict[str, Any]:
    """``cost.budget_threshold_crossed`` data as the costs service publishes it."""
    return {
        "budget": BUDGET,
        "threshold": {"percent": percent, "kind": "actual"},
        "period": "2026-11",
        "value": "812.50",
        "amount": "1000.00",
        "currency": "USD",
    }


@pytest.mark.parametrize(
    ("event_type", "data", "alertname", "labels"),
    [
        (
            "cost.budget_threshold_crossed",
            crossing("75.00"),
            "BudgetThresholdCrossed",
            {
                "budget_id": "b-1",
                "threshold": "75.00",
                "kind": "actual",
                "period": "2026-11",
                "severity": "warning",
            },
        ),
        (
            "cost.budget_threshold_crossed",
            crossing("100.00"),
            "BudgetThresholdCrossed",
            {
                "budget_id": "b-1",
                "threshold": "100.00",
                "kind": "actual",
                "period": "2026-11",
                "severity": "critical",
            },
        ),
        (
            "cost.anomaly_detected",
            {
                "date": "2026-11-26",
                "dimension": "provider=aws:USD",
                "basis": "billed",
                "currency": "USD",
                "actual": "410.00",
                "expected": "120.00",
                "score": "4.112",
            },
            "CostAnomaly",
            {"dimension": "provider=aws:USD", "day": "2026-11-26", "severity": "warning"},
        ),
    ],
    ids=["budget-warning", "budget-exceeded", "anomaly"],
)
async def test_cost_events_raise_alerts_that_expire_after_a_day(
    client: Client,
    publisher: Publisher,
    event_type: str,
    data: dict[str, Any],
    alertname: str,
    labels: dict[str, str],
) -> None:
    await publisher.publish(new_event(event_type, source="/cloudops/costs", data=data))
    [alert] = await wait_for(lambda: open_alerts(client))
    assert alert["labels"] == {"alertname": alertname, **labels}
    assert alert["annotations"]["title"]
    assert alert["source"] == event_type
    ends_at = datetime.fromisoformat(alert["ends_at"])
    assert timedelta(hours=23) < ends_at - datetime.now(UTC) <= timedelta(hours=24)


async def test_alerts_emit_raised_and_resolved_events(
    client: Client, publisher: Publisher, event_tap: EventTap
) -> None:
    await publisher.publish(status_changed(7, "running", "error"))
    raised = [e for e in await event_tap.take(2) if e["type"].startswith("alert.")]
    await publisher.publish(status_changed(7, "error", "stopped"))
    events = raised + [e for e in await event_tap.take(2) if e["type"].startswith("alert.")]
    assert [e["type"] for e in events] == ["alert.raised", "alert.resolved"]
    assert events[0]["source"] == "/cloudops/alerts"
    assert events[0]["data"]["alert"]["labels"]["resource_id"] == resource(7)["id"]
    assert events[1]["data"]["alert"]["status"] == "resolved"


async def test_rules_come_from_the_configured_file(
    aiohttp_client: ClientFactory,
    settings: AlertsSettings,
    publisher: Publisher,
    tmp_path: Path,
    pg_url: str,
) -> None:
    from common.testing import truncate_schema

    await truncate_schema(pg_url, "alerts")
    rules = json.loads(DEFAULT_RULES_FILE.read_text())
    rules["event_rules"] = [
        {
            "name": "ResourceStopped",
            "event": "resource.status_changed",
            "severity": "info",
            "title": "${resource.name} stopped",
            "fire_when": [{"path": "new_status", "op": "eq", "value": "stopped"}],
            "labels": {"resource_id": "${resource.id}"},
        }
    ]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    client = await start_app(aiohttp_client, settings.model_copy(update={"rules_file": path}))
    await publisher.publish(status_changed(8, "running", "error"))
    await publisher.publish(status_changed(8, "error", "stopped"))
    [alert] = await wait_for(lambda: open_alerts(client))
    assert alert["labels"]["alertname"] == "ResourceStopped"
    assert alert["annotations"]["title"] == "web-8 stopped"


@pytest.mark.parametrize(
    "broken",
    [
        {"event_rules": [{"name": "x", "event": "e", "severity": "fatal", "title": "t"}]},
        {"inhibit_rules": [{"source_matchers": ["a=~("], "target_matchers": ["b=c"]}]},
        {"unknown": []},
    ],
    ids=["unknown-severity", "bad-regex", "unknown-key"],
)
def test_a_broken_rules_file_is_refused(tmp_path: Path, broken: dict[str, Any]) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValidationError):
        load_rules(path)


async def test_an_older_report_arriving_late_does_not_overwrite_a_newer_one(
    client: Client, publisher: Publisher
) -> None:
    older = resource_updated(9, cpu_utilization="86.00")
    newer = resource_updated(9, cpu_utilization="99.00")
    await publisher.publish(newer)
    await wait_for(lambda: _count(client, 2, status="firing"))
    await publisher.publish(older)
    await publisher.publish(status_changed(10, "running", "error"))  # a marker after it
    await wait_for(lambda: open_alerts(client, matcher="alertname=ResourceInError"))
    [warning] = await open_alerts(client, severity="warning")
    assert "99.00" in warning["annotations"]["title"], str(warning)
