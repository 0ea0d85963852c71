"""A batch of events applied in one transaction: new alerts set-based, the rest one by one.

These call the alert book directly, on the app's pool, to control what one batch holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from alerts.alertbook import ALERT_BOOK, AlertBook, Changes
from alerts.handlers import ALERT_FEED
from alerts.settings import Receiver
from common.db import DB_POOL
from common.messaging import CloudEvent

from .conftest import Client, resource, resource_updated, status_changed


def silence_on(name: str, value: str) -> dict[str, Any]:
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    matcher = {"name": name, "value": value, "isRegex": False, "isEqual": True}
    return {"matchers": [matcher], "endsAt": ends, "comment": "maintenance"}


async def apply(book: AlertBook, events: Sequence[CloudEvent]) -> Changes:
    async with book.pool.acquire() as conn, conn.transaction():
        return await book.apply_events(events, conn)


async def stored(client: Client, n: int) -> list[dict[str, Any]]:
    """The alerts of resource ``n`` with their history actions, by alert name and severity."""
    pool: asyncpg.Pool = client.app[DB_POOL]
    rows = await pool.fetch(
        """SELECT a.labels, a.status, a.suppressed, a.silenced_by, a.inhibited_by,
                  array_agg(h.action ORDER BY h.id) AS history
           FROM alerts a JOIN alert_history h ON h.alert_id = a.id
           WHERE a.labels ->> 'resource_id' = $1
           GROUP BY a.id ORDER BY a.labels ->> 'alertname', a.severity""",
        resource(n)["id"],
    )
    return [dict(r) for r in rows]


async def outbox(client: Client) -> list[tuple[str, str]]:
    rows = await client.app[DB_POOL].fetch(
        "SELECT type, payload -> 'data' -> 'alert' ->> 'fingerprint' AS fp FROM outbox "
        "ORDER BY created_at, seq"
    )
    return [(r["type"], r["fp"]) for r in rows]


async def test_a_batch_of_new_alerts_is_stored_evented_and_fed_in_event_order(
    client: Client,
) -> None:
    book = client.app[ALERT_BOOK]
    events = [status_changed(n, "running", "error") for n in (3, 1, 2)]

    changes = await apply(book, events)

    fed = [(kind, alert.labels["resource_id"]) for kind, alert in changes.feed]
    assert fed == [("alert.raised", resource(n)["id"]) for n in (3, 1, 2)]
    assert [a.fingerprint for _, a in changes.feed] == [fp for _, fp in await outbox(client)]
    for n in (1, 2, 3):
        [alert] = await stored(client, n)
        assert (alert["status"], alert["suppressed"], alert["history"]) == (
            "firing",
            False,
            ["raised"],
        )


async def test_an_alert_raised_and_cleared_in_one_batch_ends_resolved(client: Client) -> None:
    book = client.app[ALERT_BOOK]

    await apply(
        book, [status_changed(4, "running", "error"), status_changed(4, "error", "running")]
    )

    [alert] = await stored(client, 4)
    assert (alert["status"], alert["history"]) == ("resolved", ["raised", "resolved"])
    assert [t for t, _ in await outbox(client)] == ["alert.raised", "alert.resolved"]


async def test_a_new_warning_under_a_firing_critical_is_stored_inhibited_from_the_start(
    client: Client,
) -> None:
    book = client.app[ALERT_BOOK]
    critical = {"alertname": "HighCpuUtilization", "resource_id": resource(5)["id"]}
    resp = await client.post(
        "/api/alerts/v2/alerts", json=[{"labels": critical | {"severity": "critical"}}]
    )
    assert resp.status == 200
    [source] = (await resp.json())["data"]

    await apply(book, [resource_updated(5, cpu_utilization="90")])

    [warning] = [a for a in await stored(client, 5) if a["labels"]["severity"] == "warning"]
    assert warning["suppressed"] is True
    assert warning["inhibited_by"] == [source["fingerprint"]]
    assert warning["history"] == ["raised"]  # suppressed when stored, not changed afterwards


async def test_a_critical_and_its_warning_in_one_batch_end_with_the_warning_inhibited(
    client: Client,
) -> None:
    book = client.app[ALERT_BOOK]

    await apply(book, [resource_updated(6, cpu_utilization="96")])

    alerts = {a["labels"]["severity"]: a for a in await stored(client, 6)}
    assert alerts["critical"]["suppressed"] is False
    assert alerts["warning"]["suppressed"] is True
    assert alerts["warning"]["history"] == ["raised", "suppressed"]


async def test_an_unrelated_critical_in_the_batch_inhibits_nothing(client: Client) -> None:
    book = client.app[ALERT_BOOK]

    await apply(
        book, [resource_updated(7, cpu_utilization="90"), resource_updated(8, cpu_utilization="96")]
    )

    [warning] = await stored(client, 7)
    assert warning["suppressed"] is False


async def test_active_silences_apply_to_alerts_created_in_a_batch(client: Client) -> None:
    book = client.app[ALERT_BOOK]
    resp = await client.post(
        "/api/alerts/silences",
        json=silence_on("resource_id", resource(9)["id"]),
        headers={"X-CloudOps-Principal": "carol"},
    )
    silence = (await resp.json())["data"]

    await apply(
        book, [status_changed(9, "running", "error"), status_changed(10, "running", "error")]
    )

    [silenced] = await stored(client, 9)
    [loud] = await stored(client, 10)
    assert (silenced["suppressed"], [str(i) for i in silenced["silenced_by"]]) == (
        True,
        [silence["id"]],
    )
    assert (loud["suppressed"], loud["silenced_by"]) == (False, [])


async def test_new_alerts_of_a_batch_open_their_notification_groups(client: Client) -> None:
    base = client.app[ALERT_BOOK]
    receiver = Receiver(name="ops", url="http://127.0.0.1:9/hook", group_by=["team"])
    book = AlertBook(base.pool, client.app[ALERT_FEED], base.rules, [receiver])

    await apply(
        book, [status_changed(11, "running", "error"), status_changed(12, "running", "error")]
    )

    groups = await client.app[DB_POOL].fetch("SELECT receiver, group_key FROM notification_groups")
    assert [(g["receiver"], g["group_key"]) for g in groups] == [("ops", 'ops:{team="web"}')]


async def test_an_alert_a_concurrent_batch_created_first_is_updated_instead(
    client: Client,
) -> None:
    book = client.app[ALERT_BOOK]
    pool: asyncpg.Pool = client.app[DB_POOL]
    first, second = (
        resource_updated(13, cpu_utilization="86"),
        resource_updated(13, cpu_utilization="88"),
    )
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await book.apply_events([first], conn)
        # The second batch does not see the uncommitted alert, so it tries to create it too,
        # and waits on the unique fingerprint until the first commits.
        racing = asyncio.create_task(apply(book, [second]))
        await asyncio.sleep(0.3)
        assert not racing.done()
        await transaction.commit()
    changes = await racing

    [(kind, alert)] = changes.feed
    assert kind == "alert.updated"
    assert "88" in alert.annotations["title"]
    [row] = await stored(client, 13)
    assert row["history"] == ["raised"]
