"""Alertmanager formats: the webhook (version 4) and ``POST /api/v2/alerts``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from alerts.settings import AlertsSettings

from .conftest import Client, feed, load_fixture, v2_alert, wait_for


async def counts(url: str) -> tuple[int, int, int, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM alerts.alerts) AS alerts,
                      (SELECT count(*) FROM alerts.alert_history) AS history,
                      (SELECT count(*) FROM alerts.outbox) AS events,
                      (SELECT coalesce(sum(extract(epoch FROM updated_at)), 0)::bigint
                         FROM alerts.alerts) AS stamps"""
        )
        assert row is not None
        return row["alerts"], row["history"], row["events"], row["stamps"]
    finally:
        await conn.close()


async def test_webhook_payload_from_the_docs_is_ingested(client: Client) -> None:
    payload = load_fixture("alertmanager_webhook_v4.json")
    resp = await client.post("/api/alerts/webhook", json=payload)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["meta"] == {"received": 2, "changed": 2}
    body = await feed(client)
    by_instance = {a["labels"]["instance"]: a for a in body["data"]}
    firing = by_instance["api-1.example.com:9100"]
    resolved = by_instance["api-2.example.com:9100"]
    assert firing["status"] == "firing"
    assert firing["ends_at"] is None
    assert firing["source"] == "alertmanager:cloudops-webhook"
    assert firing["annotations"]["summary"] == "High request latency on api-1"
    assert firing["starts_at"] == "2026-11-27T02:55:13.592000Z"
    assert firing["generator_url"].startswith("http://prometheus.example.com:9090/graph")
    assert resolved["status"] == "resolved"
    assert resolved["resolved_at"] == "2026-11-27T02:50:13.592000Z"


async def test_replaying_a_webhook_payload_is_a_no_op(
    client: Client, settings: AlertsSettings
) -> None:
    payload = load_fixture("alertmanager_webhook_v4.json")
    assert (await client.post("/api/alerts/webhook", json=payload)).status == 200
    before = await counts(settings.database_url)
    for _ in range(2):
        resp = await client.post("/api/alerts/webhook", json=payload)
        assert resp.status == 200
        assert (await resp.json())["meta"] == {"received": 2, "changed": 0}
    assert await counts(settings.database_url) == before


async def test_a_later_resolved_notification_resolves_the_firing_alert(client: Client) -> None:
    payload = load_fixture("alertmanager_webhook_v4.json")
    await client.post("/api/alerts/webhook", json=payload)
    resolved: dict[str, Any] = payload | {"status": "resolved"}
    resolved["alerts"] = [
        a | {"status": "resolved", "endsAt": datetime.now(UTC).isoformat()}
        for a in payload["alerts"]
    ]
    resp = await client.post("/api/alerts/webhook", json=resolved)
    assert (await resp.json())["meta"]["changed"] == 1
    assert (await feed(client, status="firing"))["meta"]["total"] == 0


async def test_v2_alert_resolves_itself_when_its_ends_at_passes(client: Client) -> None:
    ends = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    resp = await client.post("/api/alerts/v2/alerts", json=[v2_alert() | {"endsAt": ends}])
    [alert] = (await resp.json())["data"]

    async def resolved() -> Any:
        detail = (await (await client.get(f"/api/alerts/{alert['id']}")).json())["data"]
        return detail if detail["status"] == "resolved" else None

    detail = await wait_for(resolved, timeout=3)
    assert detail["resolved_by"] == "system:expired"
    assert detail["history"][-1]["comment"] == "endsAt passed"


async def test_v2_alert_without_ends_at_gets_the_resolve_timeout(
    client: Client, settings: AlertsSettings
) -> None:
    resp = await client.post("/api/alerts/v2/alerts", json=[v2_alert()])
    [alert] = (await resp.json())["data"]
    ends_at = datetime.fromisoformat(alert["ends_at"])
    expected = datetime.now(UTC) + timedelta(seconds=settings.resolve_timeout_seconds)
    assert abs((ends_at - expected).total_seconds()) < 5


async def test_v2_alert_sent_again_extends_it_and_keeps_one_row(client: Client) -> None:
    first = await (await client.post("/api/alerts/v2/alerts", json=[v2_alert()])).json()
    await asyncio.sleep(0.01)
    again = v2_alert() | {
        "annotations": {"summary": "disk at 99%"},
        "generatorURL": "http://prometheus.example.com/graph",
    }
    second = await (await client.post("/api/alerts/v2/alerts", json=[again])).json()
    assert first["data"][0]["id"] == second["data"][0]["id"]
    assert second["data"][0]["annotations"] == {"summary": "disk at 99%"}
    assert second["data"][0]["generator_url"] == "http://prometheus.example.com/graph"
    assert second["data"][0]["ends_at"] > first["data"][0]["ends_at"]
    assert (await feed(client))["meta"]["total"] == 1


async def test_a_firing_webhook_alert_with_a_past_ends_at_stays_firing(client: Client) -> None:
    payload = load_fixture("alertmanager_webhook_v4.json")
    payload["alerts"] = [payload["alerts"][0] | {"endsAt": "2026-11-27T02:58:13.592Z"}]
    resp = await client.post("/api/alerts/webhook", json=payload)
    [alert] = (await resp.json())["data"]
    assert (alert["status"], alert["ends_at"]) == ("firing", None)
