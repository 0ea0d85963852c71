"""Inhibition as Alertmanager documents it: a critical alert mutes warnings with equal labels."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Client


async def post(client: Client, *alerts: dict[str, Any]) -> None:
    resp = await client.post("/api/alerts/v2/alerts", json=list(alerts))
    assert resp.status == 200, await resp.text()


def alert(severity: str, **labels: str) -> dict[str, Any]:
    base = {"alertname": "HighCpuUtilization", "resource_id": "r-1", "severity": severity}
    return {"labels": base | labels}


async def by_severity(client: Client) -> dict[str, dict[str, Any]]:
    body = await (await client.get("/api/alerts", params={"limit": "100"})).json()
    return {a["labels"]["severity"] + a["labels"]["resource_id"]: a for a in body["data"]}


@pytest.mark.parametrize(
    ("target", "inhibited"),
    [
        (alert("warning"), True),
        (alert("info"), True),
        (alert("warning", resource_id="r-2"), False),  # near miss: an `equal` label differs
        (alert("warning", alertname="HighMemoryUtilization"), False),
        (alert("critical", instance="x"), False),  # target matchers do not match critical
    ],
    ids=["warning", "info", "other-resource", "other-alertname", "critical-target"],
)
async def test_a_critical_alert_inhibits_its_warnings_with_equal_labels(
    client: Client, target: dict[str, Any], inhibited: bool
) -> None:
    await post(client, alert("critical"))
    resp = await client.post("/api/alerts/v2/alerts", json=[target])
    [stored] = (await resp.json())["data"]
    assert stored["suppressed"] is inhibited
    assert bool(stored["inhibited_by"]) is inhibited
    assert (await by_severity(client))["criticalr-1"]["suppressed"] is False


async def test_equal_labels_absent_on_both_sides_count_as_equal(client: Client) -> None:
    source = {"labels": {"alertname": "HighCpuUtilization", "severity": "critical"}}
    target = {"labels": {"alertname": "HighCpuUtilization", "severity": "warning"}}
    await post(client, source, target)
    body = await (await client.get("/api/alerts", params={"severity": "warning"})).json()
    assert body["data"][0]["suppressed"] is True


async def test_inhibition_follows_the_source_alert_firing_and_resolving(client: Client) -> None:
    await post(client, alert("warning"))
    assert (await by_severity(client))["warningr-1"]["suppressed"] is False
    await post(client, alert("critical"))
    alerts = await by_severity(client)
    assert alerts["warningr-1"]["inhibited_by"] == [alerts["criticalr-1"]["fingerprint"]]
    resp = await client.post(f"/api/alerts/{alerts['criticalr-1']['id']}/resolve")
    assert resp.status == 200
    assert (await by_severity(client))["warningr-1"]["suppressed"] is False
