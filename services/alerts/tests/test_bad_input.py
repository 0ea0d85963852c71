"""Bad input is refused with problem+json, and nothing of it is stored."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.settings import AlertsSettings

from .conftest import Client, load_fixture, v2_alert
from .test_alertmanager import counts

LATER = (datetime.now(UTC) + timedelta(days=1)).isoformat()
HUGE_LABELS = {f"label_{i}": "x" for i in range(65)}


def silence(*matchers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"matchers": list(matchers), "endsAt": LATER, "comment": "c"} | fields


def webhook(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = load_fixture("alertmanager_webhook_v4.json")
    return payload | changes


CASES: list[tuple[str, Any, int]] = [
    ("/api/alerts/v2/alerts", [v2_alert(), v2_alert(instance="b", severity="fatal")], 422),
    ("/api/alerts/v2/alerts", [{"labels": HUGE_LABELS}], 422),
    ("/api/alerts/v2/alerts", [{"labels": {"bad-name": "x"}}], 422),
    ("/api/alerts/v2/alerts", [{"labels": {"alertname": "x" * 1025}}], 422),
    ("/api/alerts/v2/alerts", [{"labels": {}}], 422),
    ("/api/alerts/v2/alerts", [{"labels": {"alertname": ""}}], 422),
    ("/api/alerts/v2/alerts", [v2_alert() | {"startsAt": "2026-11-27T10:00:00"}], 422),
    ("/api/alerts/v2/alerts", {"labels": {"alertname": "x"}}, 400),
    ("/api/alerts/v2/alerts", [v2_alert(instance=str(i)) for i in range(1001)], 413),
    ("/api/alerts/webhook", webhook(version="3"), 422),
    ("/api/alerts/webhook", webhook(alerts=[{"status": "firing", "labels": HUGE_LABELS}]), 422),
    (
        "/api/alerts/webhook",
        webhook(alerts=[{"status": "firing", "labels": {"severity": "urgent"}}]),
        422,
    ),
    ("/api/alerts/silences", silence({"name": "team", "value": "(", "isRegex": True}), 422),
    ("/api/alerts/silences", silence({"name": "team", "value": ".*", "isRegex": True}), 422),
    ("/api/alerts/silences", silence(), 422),
    ("/api/alerts/silences", silence({"name": "team", "value": "web"}, comment=""), 422),
    (
        "/api/alerts/silences",
        silence({"name": "team", "value": "web"}, startsAt=LATER, endsAt=LATER),
        422,
    ),
    ("/api/alerts/silences", silence({"name": "team", "value": "web", "op": "=="}), 422),
    ("/api/alerts/silences", silence({"name": "team", "value": "(?=x)", "isRegex": True}), 422),
    ("/api/alerts/silences", silence({"name": "team", "value": "x" * 1025}), 422),
    ("/api/alerts/silences", silence({"name": "t" * 129, "value": "x"}), 422),
    ("/api/alerts/silences", silence(*[{"name": f"l{i}", "value": "x"} for i in range(33)]), 422),
]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    CASES,
    ids=[
        "unknown-severity-in-batch",
        "huge-label-set",
        "invalid-label-name",
        "label-value-too-long",
        "no-labels",
        "only-empty-labels",
        "naive-timestamp",
        "not-an-array",
        "too-many-alerts",
        "webhook-wrong-version",
        "webhook-huge-label-set",
        "webhook-unknown-severity",
        "silence-invalid-regex",
        "silence-matches-everything",
        "silence-without-matchers",
        "silence-without-comment",
        "silence-ends-before-start",
        "silence-unknown-matcher-field",
        "silence-regex-not-re2",
        "silence-matcher-value-too-long",
        "silence-matcher-name-too-long",
        "silence-too-many-matchers",
    ],
)
async def test_bad_input_is_a_problem_and_nothing_is_stored(
    client: Client, settings: AlertsSettings, path: str, body: Any, status: int
) -> None:
    resp = await client.post(path, json=body)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["status"] == status
    assert problem["success"] is False
    assert await counts(settings.database_url) == (0, 0, 0, 0)
    listed = await (await client.get("/api/alerts/silences")).json()
    assert listed["data"] == []


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[]", "text/plain", 415),
        (b"[" + b" " * (1024 * 1024) + b"]", "application/json", 413),
    ],
    ids=["malformed", "wrong-media-type", "too-large"],
)
async def test_unreadable_bodies_are_problems(
    client: Client, body: bytes, content_type: str, status: int
) -> None:
    resp = await client.post(
        "/api/alerts/v2/alerts", data=io.BytesIO(body), headers={"Content-Type": content_type}
    )
    assert resp.status == status
    assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize(
    "params",
    [
        [("matcher", f"l{i}=x") for i in range(17)],
        [("matcher", "team=x" + " " * 4096 + "x")],
        [("matcher", "team=~(a)\\1")],
        [("matcher", "t" * 129 + "=x")],
    ],
    ids=["too-many-matchers", "matcher-too-long", "regex-not-re2", "label-name-too-long"],
)
async def test_feed_matchers_out_of_bounds_are_problems(
    client: Client, params: list[tuple[str, str]]
) -> None:
    resp = await client.get("/api/alerts", params=params)
    assert resp.status == 400, await resp.text()
    assert resp.content_type == "application/problem+json"
