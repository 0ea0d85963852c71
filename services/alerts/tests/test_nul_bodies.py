"""A NUL character anywhere in a JSON body is a 422 problem naming the field, and nothing is
stored: PostgreSQL's text and jsonb refuse it, which was a 500 for each of these bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.settings import AlertsSettings

from .conftest import Client, load_fixture, v2_alert
from .test_alertmanager import counts

NUL = "we\x00b"
LATER = (datetime.now(UTC) + timedelta(days=1)).isoformat()


def silence(*, value: str = "web", name: str = "team", comment: str = "c") -> dict[str, Any]:
    return {"matchers": [{"name": name, "value": value}], "endsAt": LATER, "comment": comment}


def webhook_alert(**labels: str) -> dict[str, Any]:
    payload: dict[str, Any] = load_fixture("alertmanager_webhook_v4.json")
    alert = payload["alerts"][0] | {"labels": {**payload["alerts"][0]["labels"], **labels}}
    return payload | {"alerts": [alert]}


CASES: list[tuple[str, Any, str]] = [
    ("/api/alerts/silences", silence(comment=NUL), "comment"),
    ("/api/alerts/silences", silence(value=NUL), "matchers.0.value"),
    ("/api/alerts/silences", silence(name=NUL), "matchers.0.name"),
    ("/api/alerts/v2/alerts", [v2_alert(team=NUL)], "0.labels.team"),
    ("/api/alerts/v2/alerts", [v2_alert() | {"annotations": {"summary": NUL}}],
     "0.annotations.summary"),
    ("/api/alerts/v2/alerts", [{"labels": {"alertname": "x", NUL: "v"}}], "0.labels"),
    ("/api/alerts/webhook", webhook_alert(team=NUL), "alerts.0.labels.team"),
    ("/api/alerts/webhook", load_fixture("alertmanager_webhook_v4.json") | {"receiver": NUL},
     "receiver"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "field"),
    CASES,
    ids=[
        "silence-comment",
        "matcher-value",
        "matcher-name",
        "alert-label",
        "alert-annotation",
        "alert-label-name",
        "webhook-label",
        "webhook-receiver",
    ],
)
async def test_a_nul_character_in_a_body_is_a_422_naming_the_field(
    client: Client, settings: AlertsSettings, path: str, body: Any, field: str
) -> None:
    resp = await client.post(path, json=body)
    assert resp.status == 422, await resp.text()
    assert resp.content_type == "application/problem+json"
    errors = (await resp.json())["errors"]
    assert [e["field"] for e in errors] == [field]
    assert "NUL" in errors[0]["message"]
    assert await counts(settings.database_url) == (0, 0, 0, 0)
    assert (await (await client.get("/api/alerts/silences")).json())["data"] == []


async def test_a_nul_character_in_a_comment_note_or_silence_update_is_a_422(
    client: Client, settings: AlertsSettings
) -> None:
    ingested = await client.post("/api/alerts/v2/alerts", json=[v2_alert(team="web")])
    assert ingested.status == 200, await ingested.text()
    alert = (await ingested.json())["data"][0]["id"]
    before = await counts(settings.database_url)
    for path, body, field in [
        (f"/api/alerts/{alert}/comments", {"text": NUL}, "text"),
        (f"/api/alerts/{alert}/ack", {"note": NUL}, "note"),
        (f"/api/alerts/{alert}/resolve", {"note": NUL}, "note"),
    ]:
        resp = await client.post(path, json=body)
        assert resp.status == 422, (path, await resp.text())
        assert [e["field"] for e in (await resp.json())["errors"]] == [field], path
    assert await counts(settings.database_url) == before
    created = await client.post("/api/alerts/silences", json=silence())
    assert created.status == 201, await created.text()
    silence_id = (await created.json())["data"]["id"]
    replaced = await client.put(f"/api/alerts/silences/{silence_id}", json=silence(comment=NUL))
    assert replaced.status == 422
    assert [e["field"] for e in (await replaced.json())["errors"]] == ["comment"]
