"""Silences: matchers as Alertmanager defines them, suppressing only while active."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.settings import AlertsSettings
from common.testing import truncate_schema

from .conftest import Client, ClientFactory, feed, start_app, v2_alert, wait_for


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def matcher(name: str, value: str, op: str = "=") -> dict[str, Any]:
    return {"name": name, "value": value, "isRegex": "~" in op, "isEqual": op[0] == "="}


async def create_silence(client: Client, *matchers: dict[str, Any], **fields: Any) -> Any:
    body = {"matchers": list(matchers), "endsAt": later(3600), "comment": "maintenance"} | fields
    resp = await client.post(
        "/api/alerts/silences", json=body, headers={"X-CloudOps-Principal": "carol"}
    )
    assert resp.status == 201, await resp.text()
    return (await resp.json())["data"]


async def raise_alert(client: Client, **labels: str) -> dict[str, Any]:
    resp = await client.post("/api/alerts/v2/alerts", json=[v2_alert(**labels)])
    assert resp.status == 200
    [alert] = (await resp.json())["data"]
    return dict(alert)


async def current(client: Client, alert_id: str) -> dict[str, Any]:
    return dict((await (await client.get(f"/api/alerts/{alert_id}")).json())["data"])


@pytest.mark.parametrize(
    ("silence_matcher", "labels", "muted"),
    [
        (matcher("team", "web"), {"team": "web"}, True),
        (matcher("team", "web"), {"team": "webshop"}, False),
        (matcher("team", "web", "!="), {"team": "data"}, True),
        (matcher("team", "web", "!="), {"team": "web"}, False),
        (matcher("team", "we.", "=~"), {"team": "web"}, True),
        (matcher("team", "we.", "=~"), {"team": "webshop"}, False),  # fully anchored
        (matcher("team", "we.", "!~"), {"team": "webshop"}, True),
        (matcher("team", "we.", "!~"), {"team": "web"}, False),
    ],
    ids=["eq", "eq-near-miss", "ne", "ne-miss", "re", "re-anchored", "nre", "nre-miss"],
)
async def test_silence_matchers_suppress_exactly_the_matching_alerts(
    client: Client, silence_matcher: dict[str, Any], labels: dict[str, str], muted: bool
) -> None:
    await create_silence(client, matcher("alertname", "DiskFull"), silence_matcher)
    alert = await raise_alert(client, **labels)
    assert alert["suppressed"] is muted
    assert bool(alert["silenced_by"]) is muted
    assert alert["status"] == "firing"  # stored and visible, only suppressed


async def test_a_new_silence_suppresses_existing_alerts_and_expiring_it_releases_them(
    client: Client,
) -> None:
    hit = await raise_alert(client, team="web")
    miss = await raise_alert(client, team="data")
    silence = await create_silence(client, matcher("team", "web"))
    assert silence["created_by"] == "carol"
    assert silence["state"] == "active"
    assert (await current(client, hit["id"]))["silenced_by"] == [silence["id"]]
    assert (await current(client, miss["id"]))["suppressed"] is False
    assert (await feed(client, suppressed="true"))["meta"]["total"] == 1

    resp = await client.delete(f"/api/alerts/silences/{silence['id']}")
    assert resp.status == 200
    assert (await resp.json())["data"]["state"] == "expired"
    detail = await current(client, hit["id"])
    assert detail["suppressed"] is False
    assert [h["action"] for h in detail["history"]] == ["raised", "suppressed", "unsuppressed"]


async def test_a_pending_silence_mutes_only_once_its_window_opens_and_stops_when_it_ends(
    client: Client,
) -> None:
    await create_silence(client, matcher("team", "web"), startsAt=later(0.6), endsAt=later(1.6))
    alert = await raise_alert(client, team="web")
    assert alert["suppressed"] is False

    async def suppressed(expected: bool) -> bool:
        return (await current(client, alert["id"]))["suppressed"] is expected

    await wait_for(lambda: suppressed(True), timeout=3)
    await wait_for(lambda: suppressed(False), timeout=3)


async def test_silences_can_be_listed_read_and_replaced(client: Client) -> None:
    silence = await create_silence(client, matcher("team", "web"))
    alert = await raise_alert(client, team="data")
    assert alert["suppressed"] is False
    listed = await (await client.get("/api/alerts/silences?state=active")).json()
    assert [s["id"] for s in listed["data"]] == [silence["id"]]
    assert (await (await client.get("/api/alerts/silences?state=expired")).json())["data"] == []
    body = {"matchers": [matcher("team", "data")], "endsAt": later(600), "comment": "moved"}
    resp = await client.put(f"/api/alerts/silences/{silence['id']}", json=body)
    assert resp.status == 200
    fetched = (await (await client.get(f"/api/alerts/silences/{silence['id']}")).json())["data"]
    assert fetched["matchers"] == [matcher("team", "data")]
    assert fetched["comment"] == "moved"
    assert (await current(client, alert["id"]))["suppressed"] is True


async def test_the_creator_is_the_caller_whatever_the_body_says(client: Client) -> None:
    silence = await create_silence(client, matcher("team", "web"), createdBy="admin")
    assert silence["created_by"] == "carol"
    fetched = (await (await client.get(f"/api/alerts/silences/{silence['id']}")).json())["data"]
    assert fetched["created_by"] == "carol"


async def test_a_silence_with_a_backtracking_regex_mutes_in_linear_time(client: Client) -> None:
    # (a+)+ against "aaa...ab" took seconds per ingest in a backtracking engine, doubling with
    # each character; RE2 answers at once whatever the label's length.
    await create_silence(client, matcher("team", "(a+)+", "=~"))
    alert = await raise_alert(client, team="a" * 1000 + "b")
    assert alert["suppressed"] is False
    assert (await raise_alert(client, team="a" * 1000))["suppressed"] is True


async def test_a_regex_re2_cannot_compile_is_a_problem_naming_the_matcher(client: Client) -> None:
    body = {"matchers": [matcher("team", "(a)\\1", "=~")], "endsAt": later(60), "comment": "c"}
    resp = await client.post("/api/alerts/silences", json=body)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    [error] = (await resp.json())["errors"]
    assert error["field"] == "matchers.0"
    assert "'team'" in error["message"]
    assert "RE2" in error["message"]


async def test_silences_active_or_pending_at_once_are_bounded(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str
) -> None:
    await truncate_schema(pg_url, "alerts")
    client = await start_app(aiohttp_client, settings.model_copy(update={"max_silences": 2}))
    first = await create_silence(client, matcher("team", "a"))
    await create_silence(client, matcher("team", "b"), startsAt=later(600))  # pending counts
    body = {"matchers": [matcher("team", "c")], "endsAt": later(60), "comment": "one more"}
    resp = await client.post("/api/alerts/silences", json=body)
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    assert (await client.delete(f"/api/alerts/silences/{first['id']}")).status == 200
    await create_silence(client, matcher("team", "c"))  # an expired one no longer counts
