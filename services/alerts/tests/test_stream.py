"""The live feed over Server-Sent Events: fan-out through Redis and Last-Event-ID resume."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alerts.settings import AlertsSettings

from .conftest import Client, ClientFactory, SseReader, start_app, v2_alert, wait_for


async def post(client: Client, **labels: str) -> dict[str, Any]:
    resp = await client.post("/api/alerts/v2/alerts", json=[v2_alert(**labels)])
    [alert] = (await resp.json())["data"]
    return dict(alert)


async def test_changes_made_by_one_instance_reach_clients_of_another(
    client: Client, aiohttp_client: ClientFactory, settings: AlertsSettings
) -> None:
    other = await start_app(aiohttp_client, settings)
    resp = await other.get("/api/alerts/stream")
    sse = SseReader(resp)
    alert = await post(client, instance="a")
    await client.post(f"/api/alerts/{alert['id']}/ack", headers={"X-CloudOps-Principal": "dan"})
    raised = await sse.until(lambda d: d["_event"] == "alert.raised")
    acked = await sse.until(lambda d: d["_event"] == "alert.acknowledged")
    assert raised["id"] == acked["id"] == alert["id"]
    assert acked["acknowledged_by"] == "dan"
    resp.close()


async def test_a_client_resumes_after_the_last_event_id_it_saw(client: Client) -> None:
    resp = await client.get("/api/alerts/stream")
    sse = SseReader(resp)
    await post(client, instance="a")
    first = await sse.until(lambda d: d["labels"]["instance"] == "a")
    resp.close()
    await post(client, instance="b")
    await post(client, instance="c")
    resumed = await client.get("/api/alerts/stream", headers={"Last-Event-ID": first["_id"]})
    sse = SseReader(resumed)
    seen = [(await sse.until(lambda d: True))["labels"]["instance"] for _ in range(2)]
    assert seen == ["b", "c"]
    resumed.close()


async def test_a_new_client_without_last_event_id_gets_only_new_changes(client: Client) -> None:
    await post(client, instance="old")
    resp = await client.get("/api/alerts/stream")
    sse = SseReader(resp)
    await post(client, instance="new")
    assert (await sse.until(lambda d: True))["labels"]["instance"] == "new"
    resp.close()


async def test_an_idle_stream_sends_keepalive_comments(client: Client) -> None:
    resp = await client.get("/api/alerts/stream")
    async with asyncio.timeout(3):
        lines = [await resp.content.readline() for _ in range(3)]
    assert b": keepalive\n" in lines
    resp.close()


@pytest.mark.parametrize("last_id", ["abc", "1-2-3", "../../etc"])
async def test_a_malformed_last_event_id_is_a_problem(client: Client, last_id: str) -> None:
    resp = await client.get("/api/alerts/stream", headers={"Last-Event-ID": last_id})
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"


async def test_alerts_are_stored_while_redis_is_away_and_only_the_live_feed_misses_them(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str
) -> None:
    from common.testing import free_port, truncate_schema

    await truncate_schema(pg_url, "alerts")
    away = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    client = await start_app(aiohttp_client, away)
    alert = await post(client, instance="kept")
    assert alert["status"] == "firing"
    listed = await (await client.get("/api/alerts")).json()
    assert [a["id"] for a in listed["data"]] == [alert["id"]]
    resp = await client.get("/api/alerts/stream")
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.content_type == "application/problem+json"


async def test_open_streams_hold_no_in_flight_slot(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str
) -> None:
    from common.testing import truncate_schema

    await truncate_schema(pg_url, "alerts")
    client = await start_app(aiohttp_client, settings.model_copy(update={"max_in_flight": 1}))
    streams = [await client.get("/api/alerts/stream") for _ in range(3)]
    assert [s.status for s in streams] == [200] * 3

    assert (await client.get("/api/alerts")).status == 200
    for stream in streams:
        stream.close()


async def metric_values(client: Client) -> dict[str, float]:
    text = await (await client.get("/metrics")).text()
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines())
        if name.startswith("alerts_streams")
    }


def as_principal(name: str) -> dict[str, str]:
    return {"X-CloudOps-Principal": name}


async def assert_refused(resp: Any) -> None:
    assert resp.status == 429
    assert resp.content_type == "application/problem+json"
    assert int(resp.headers["Retry-After"]) >= 1


async def test_streams_are_capped_per_principal_across_instances_and_freed_on_disconnect(
    client: Client, aiohttp_client: ClientFactory, settings: AlertsSettings
) -> None:
    other = await start_app(aiohttp_client, settings)  # a second worker or replica
    assert settings.streams_per_principal == 5
    eve = [await (client, other)[i % 2].get("/api/alerts/stream", headers=as_principal("eve"))
           for i in range(5)]  # fmt: skip
    assert [s.status for s in eve] == [200] * 5
    await assert_refused(await client.get("/api/alerts/stream", headers=as_principal("eve")))
    await assert_refused(await other.get("/api/alerts/stream", headers=as_principal("eve")))
    # Someone else is not starved by eve.
    frank = await client.get("/api/alerts/stream", headers=as_principal("frank"))
    assert frank.status == 200
    assert (await client.get("/api/alerts", headers=as_principal("eve"))).status == 200

    eve.pop().close()  # a viewer goes away: its slot is freed once the server sees it

    async def reopened() -> Any:
        resp = await client.get("/api/alerts/stream", headers=as_principal("eve"))
        if resp.status == 200:
            return resp
        await assert_refused(resp)
        return None

    eve.append(await wait_for(reopened, timeout=5, interval=0.2))
    for resp in [*eve, frank]:
        resp.close()


async def test_streams_are_capped_in_total(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str
) -> None:
    from common.testing import truncate_schema

    await truncate_schema(pg_url, "alerts")
    client = await start_app(aiohttp_client, settings.model_copy(update={"streams_total": 3}))
    before = await metric_values(client)
    open_ = [
        await client.get("/api/alerts/stream", headers=as_principal(f"viewer-{i}"))
        for i in range(3)
    ]
    assert [s.status for s in open_] == [200] * 3
    await assert_refused(await client.get("/api/alerts/stream", headers=as_principal("late")))
    after = await metric_values(client)
    refused = 'alerts_streams_refused_total{cap="total"}'
    assert after[refused] - before.get(refused, 0) == 1
    assert after["alerts_streams_open"] - before["alerts_streams_open"] == 3
    for resp in open_:
        resp.close()
