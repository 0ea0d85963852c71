"""Notifications: Alertmanager grouping and timing, webhook formats, signatures and retries.

The receiver is a real aiohttp server on loopback that fails as told.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from alerts.settings import AlertsSettings, Receiver
from common.testing import free_port, truncate_schema

from .conftest import Client, ClientFactory, start_app, v2_alert, wait_for

ReceiverFactory = Callable[..., Any]


@dataclass
class Hook:
    """A webhook receiver that answers ``failures`` requests with ``fail_status`` (or hangs)."""

    failures: int = 0
    fail_status: int = 503
    hang_seconds: float = 0.0
    received: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((time.monotonic(), dict(request.headers), await request.read()))
        if len(self.received) <= self.failures:
            if self.hang_seconds:
                await asyncio.sleep(self.hang_seconds)
            return web.Response(status=self.fail_status)
        return web.Response(status=200)

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, _, body in self.received]


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Hook, str]]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield receiver, f"http://127.0.0.1:{server.port}/hook"
    await server.close()


def receiver(url: str, **fields: Any) -> Receiver:
    values: dict[str, Any] = {
        "name": "team-web",
        "url": url,
        "group_by": ["alertname"],
        "group_wait_seconds": 0.3,
        "group_interval_seconds": 1.0,
        "repeat_interval_seconds": 60.0,
    }
    return Receiver.model_validate(values | fields)


async def app_with(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str, *receivers: Receiver
) -> Client:
    await truncate_schema(pg_url, "alerts")
    fast = {
        "receivers": list(receivers),
        "notify_backoff_seconds": 0.2,
        "notify_timeout_seconds": 0.3,
        "notify_max_attempts": 4,
    }
    return await start_app(aiohttp_client, settings.model_copy(update=fast))


async def post(client: Client, *alerts: dict[str, Any]) -> None:
    resp = await client.post("/api/alerts/v2/alerts", json=list(alerts))
    assert resp.status == 200, await resp.text()


async def attempts(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(
            "SELECT attempt, status_code, outcome, error FROM alerts.notification_attempts "
            "ORDER BY id"
        )
    finally:
        await conn.close()


async def received(hook: Hook, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    await wait_for(lambda: _at_least(hook, n), timeout=timeout)
    return hook.bodies()


async def _at_least(hook: Hook, n: int) -> bool:
    return len(hook.received) >= n


async def test_group_wait_batches_alerts_of_a_group_and_separates_other_groups(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str, hook: tuple[Hook, str]
) -> None:
    sink, url = hook
    # A wait long enough that the three posts end well inside it however busy the machine is.
    wait = 2.0
    waiting = receiver(url, group_wait_seconds=wait)
    client = await app_with(aiohttp_client, settings, pg_url, waiting)
    started = time.monotonic()
    await post(client, v2_alert(instance="a"))
    await post(client, v2_alert(instance="b"))
    await post(client, {"labels": {"alertname": "CpuHot", "instance": "c"}})
    assert time.monotonic() - started < wait
    assert sink.received == []  # still inside group_wait
    bodies = await received(sink, 2, timeout=wait + 5)
    assert sink.received[0][0] - started >= wait
    by_group = {b["groupLabels"]["alertname"]: b for b in bodies}
    disk = by_group["DiskFull"]
    assert sorted(a["labels"]["instance"] for a in disk["alerts"]) == ["a", "b"]
    assert disk["version"] == "4"
    assert disk["status"] == "firing"
    assert disk["receiver"] == "team-web"
    assert disk["groupKey"] == 'team-web:{alertname="DiskFull"}'
    assert disk["commonLabels"] == {"alertname": "DiskFull", "severity": "warning"}
    assert [a["labels"]["instance"] for a in by_group["CpuHot"]["alerts"]] == ["c"]
    await asyncio.sleep(0.3)
    assert len(sink.received) == 2


async def test_a_change_after_a_notification_waits_for_group_interval(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str, hook: tuple[Hook, str]
) -> None:
    sink, url = hook
    client = await app_with(aiohttp_client, settings, pg_url, receiver(url))
    await post(client, v2_alert(instance="a"))
    await received(sink, 1)
    first_at = sink.received[0][0]
    await post(client, v2_alert(instance="b"))
    bodies = await received(sink, 2)
    # Measured at the receiver, so allow for delivery jitter between the two notifications.
    assert sink.received[1][0] - first_at >= 0.8
    assert sorted(a["labels"]["instance"] for a in bodies[1]["alerts"]) == ["a", "b"]


async def test_an_unchanged_firing_group_repeats_after_repeat_interval_and_resolution_is_sent(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str, hook: tuple[Hook, str]
) -> None:
    sink, url = hook
    fast_repeat = receiver(url, group_interval_seconds=0.3, repeat_interval_seconds=0.8)
    client = await app_with(aiohttp_client, settings, pg_url, fast_repeat)
    await post(client, v2_alert(instance="a"))
    bodies = await received(sink, 2)
    assert sink.received[1][0] - sink.received[0][0] >= 0.6
    assert bodies[0]["alerts"] == bodies[1]["alerts"]
    alert_id = (await (await client.get("/api/alerts")).json())["data"][0]["id"]
    await client.post(f"/api/alerts/{alert_id}/resolve")
    bodies = await received(sink, 3)
    assert bodies[2]["status"] == "resolved"
    assert bodies[2]["alerts"][0]["status"] == "resolved"


async def test_suppressed_and_unmatched_alerts_are_not_notified(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str, hook: tuple[Hook, str]
) -> None:
    sink, url = hook
    only_web = receiver(url, matchers=[{"name": "team", "value": "web"}], group_by=["team"])
    client = await app_with(aiohttp_client, settings, pg_url, only_web)
    silence = {
        "matchers": [{"name": "instance", "value": "muted"}],
        "endsAt": "2999-01-01T00:00:00Z",
        "comment": "quiet",
    }
    assert (await client.post("/api/alerts/silences", json=silence)).status == 201
    await post(
        client,
        v2_alert(instance="loud", team="web"),
        v2_alert(instance="muted", team="web"),
        v2_alert(instance="other", team="data"),
    )
    [body] = await received(sink, 1)
    assert [a["labels"]["instance"] for a in body["alerts"]] == ["loud"]
    await asyncio.sleep(0.5)
    assert len(sink.received) == 1


@pytest.mark.parametrize(
    ("fail_status", "hang"), [(503, 0.0), (500, 0.0), (200, 1.0)], ids=["503", "500", "timeout"]
)
async def test_receiver_failures_are_retried_with_growing_gaps_and_recorded(
    aiohttp_client: ClientFactory,
    settings: AlertsSettings,
    pg_url: str,
    hook: tuple[Hook, str],
    fail_status: int,
    hang: float,
) -> None:
    sink, url = hook
    sink.failures, sink.fail_status, sink.hang_seconds = 2, fail_status, hang
    client = await app_with(aiohttp_client, settings, pg_url, receiver(url, group_wait_seconds=0))
    await post(client, v2_alert())
    await received(sink, 3)
    rows = await wait_for(lambda: _rows(settings.database_url, 3))
    expected_failure = ("retry", None if hang else fail_status)
    assert [(r["outcome"], r["status_code"]) for r in rows] == [
        expected_failure,
        expected_failure,
        ("success", 200),
    ]
    if hang:
        assert rows[0]["error"] == "TimeoutError"
    listed = await (await client.get("/api/alerts/notifications?receiver=team-web")).json()
    assert listed["meta"]["total"] == 3
    assert [a["attempt"] for a in listed["data"]] == [3, 2, 1]  # newest first
    assert len({a["delivery_id"] for a in listed["data"]}) == 1
    assert all(a["duration_ms"] >= 0 for a in listed["data"])
    other = await (await client.get("/api/alerts/notifications?receiver=nobody")).json()
    assert other["meta"]["total"] == 0
    times = [t for t, _, _ in sink.received]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[1] > gaps[0]
    assert gaps[0] >= 0.2
    await asyncio.sleep(0.3)
    assert len(sink.received) == 3


async def _rows(url: str, n: int) -> list[asyncpg.Record] | None:
    rows = await attempts(url)
    return rows if len(rows) >= n else None


@pytest.mark.parametrize("status", [400, 404, 410])
async def test_a_4xx_answer_is_not_retried(
    aiohttp_client: ClientFactory,
    settings: AlertsSettings,
    pg_url: str,
    hook: tuple[Hook, str],
    status: int,
) -> None:
    sink, url = hook
    sink.failures, sink.fail_status = 100, status
    client = await app_with(aiohttp_client, settings, pg_url, receiver(url, group_wait_seconds=0))
    await post(client, v2_alert())
    await received(sink, 1)
    [row] = await wait_for(lambda: _rows(settings.database_url, 1))
    assert (row["outcome"], row["status_code"]) == ("rejected", status)
    await asyncio.sleep(0.5)
    assert len(sink.received) == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'alert_notifications_total{outcome="failure",receiver="team-web"}' in metrics


async def test_a_receiver_that_is_down_is_tried_until_attempts_run_out(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    client = await app_with(aiohttp_client, settings, pg_url, receiver(url, group_wait_seconds=0))
    await post(client, v2_alert())
    rows = await wait_for(lambda: _rows(settings.database_url, 4), timeout=5)
    assert [r["outcome"] for r in rows] == ["retry", "retry", "retry", "failed"]
    assert all(r["status_code"] is None and r["error"] for r in rows)


async def test_generic_bodies_are_signed_and_slack_bodies_have_slack_shape(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str, hook: tuple[Hook, str]
) -> None:
    sink, url = hook
    signed = receiver(url, name="signed", secret="s3cret", group_wait_seconds=0)
    slack = receiver(url, name="slack", format="slack", group_wait_seconds=0)
    client = await app_with(aiohttp_client, settings, pg_url, signed, slack)
    await post(client, v2_alert(severity="critical"))
    await received(sink, 2)
    by_kind = {
        "slack" if b"attachments" in body else "generic": (h, body) for _, h, body in sink.received
    }
    headers, body = by_kind["generic"]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-CloudOps-Signature"] == expected
    slack_headers, slack_body = by_kind["slack"]
    assert "X-CloudOps-Signature" not in slack_headers
    message = orjson.loads(slack_body)
    assert message["text"] == "[FIRING:1] alertname=DiskFull"
    assert message["attachments"][0]["color"] == "#d50200"
    assert message["attachments"][0]["text"] == "[FIRING] DiskFull"


async def test_acknowledged_alerts_are_not_repeated(
    aiohttp_client: ClientFactory, settings: AlertsSettings, pg_url: str, hook: tuple[Hook, str]
) -> None:
    sink, url = hook
    fast_repeat = receiver(url, group_interval_seconds=0.2, repeat_interval_seconds=0.4)
    client = await app_with(aiohttp_client, settings, pg_url, fast_repeat)
    await post(client, v2_alert(instance="a"))
    await received(sink, 1)
    alert_id = (await (await client.get("/api/alerts")).json())["data"][0]["id"]
    assert (await client.post(f"/api/alerts/{alert_id}/ack")).status == 200
    await asyncio.sleep(0.3)
    count = len(sink.received)
    await asyncio.sleep(1.0)
    assert len(sink.received) == count
    metrics = await (await client.get("/metrics")).text()
    assert 'alert_notifications_total{outcome="success",receiver="team-web"}' in metrics
