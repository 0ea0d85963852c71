"""`make up` end to end: nginx -> gateway -> resources on loopback, seeded, then `make down`."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from common.testing import free_port_block, scratch_database

from .conftest import (
    ADMIN_KEY,
    ADMIN_PASSWORD,
    ROOT,
    Platform,
    launch_up,
    request,
    running_platform,
)


@pytest.fixture(scope="module")
def platform_database() -> Iterator[str]:
    """The platform's own database: its services run for the whole module."""
    with scratch_database() as url:
        yield url


@pytest.fixture(scope="module")
def platform(
    platform_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    with running_platform(
        platform_database,
        tmp_path_factory.mktemp("run"),
        port_block=14,  # blue +0..3, green +10..13
        extra_env={
            "CLOUDOPS_DRAIN_SECONDS": "1",
            # The switch test reads continuously; the default of 100 per 15 min would reject it.
            "CLOUDOPS_GATEWAY_RATE_LIMIT": "100000",
        },
    ) as running:
        yield running


def test_up_prints_url_and_the_given_admin_key(platform: Platform) -> None:
    text = "".join(platform.output)
    assert f"CloudOps is running at {platform.api}" in text
    assert f"admin API key: {ADMIN_KEY}" in text


def test_up_creates_the_dashboard_admin_who_can_log_in(platform: Platform) -> None:
    assert f"[cloudops] dashboard login: user admin, password {ADMIN_PASSWORD}\n" in platform.output
    credentials = json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode()
    status, headers, body = request(
        f"{platform.api}/api/auth/login", method="POST", body=credentials
    )
    assert status == 200, body
    data = json.loads(body)["data"]
    assert data["permissions"] == ["admin", "read", "write"]
    assert data["csrf_token"]
    assert "cloudops_session=" in headers["Set-Cookie"]


def test_up_keeps_a_generated_admin_password_private_and_reuses_it(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Without CLOUDOPS_BOOTSTRAP_ADMIN_PASSWORD one is generated once, kept 0600, printed."""
    run_dir = tmp_path_factory.mktemp("generated")
    env = {"CLOUDOPS_BOOTSTRAP_ADMIN_PASSWORD": "", "CLOUDOPS_BOOTSTRAP_ADMIN_USER": "ops"}
    with running_platform(pg_url, run_dir, extra_env=env) as first:
        stored = run_dir / "admin-password"
        password = stored.read_text()
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert len(password) >= 32
        assert f"[cloudops] dashboard login: user ops, password {password}\n" in first.output
        seeded = _demo_state(first.api)
    with running_platform(pg_url, run_dir, extra_env=env) as second:
        text = "".join(second.output)
        assert f"user ops, password {password} (the user already existed" in text
        # Seeding again replaces what the first run seeded: nothing is counted twice.
        assert "created 0 demo budgets" in text
        again = _demo_state(second.api)
    assert again["resources"] == seeded["resources"]
    assert again["billed"] == seeded["billed"]
    assert again["budgets"] == seeded["budgets"] == 3
    for times in (seeded["samples"], again["samples"]):
        assert len(times) == len(set(times)) > 100
        assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(hours=6)}


def _demo_state(api: str) -> dict[str, Any]:
    """What the demo seed left: counts and sums that a second seed must not change."""

    def data(path: str) -> dict[str, Any]:
        status, _, body = request(f"{api}{path}", key=ADMIN_KEY)
        assert status == 200, body
        parsed: dict[str, Any] = json.loads(body)
        return parsed

    ninety_days_ago = (datetime.now(UTC) - timedelta(days=90)).date().isoformat()
    listed = data("/api/resources?status=running&type=compute&limit=1&sort=name")
    samples = data(f"/api/resources/{listed['data'][0]['id']}/utilization")["data"]
    return {
        "resources": data("/api/resources?limit=1")["meta"]["total"],
        "billed": data(f"/api/costs/daily?group_by=none&start={ninety_days_ago}")["meta"]["totals"],
        "budgets": data("/api/costs/budgets?limit=1")["meta"]["total"],
        "samples": [datetime.fromisoformat(s["timestamp"]) for s in samples],
    }


def test_demo_billing_gives_a_forecast(platform: Platform) -> None:
    assert any("imported demo billing" in ln for ln in platform.output)
    status, _, body = request(f"{platform.api}/api/costs/forecast", key=ADMIN_KEY)
    assert status == 200, body
    forecast = json.loads(body)["data"]
    assert "USD" in json.dumps(forecast)
    assert "too short" not in json.dumps(forecast).lower()


SAVINGS_RULES = {
    "idle_compute", "rightsize", "stopped_instance", "unattached_volume", "unused_ip",
    "old_snapshot", "unmanaged_spend", "commitment_coverage", "zero_usage",
}  # fmt: skip


def test_demo_gives_recommendations_from_every_savings_rule(platform: Platform) -> None:
    assert any("sent 30 days of utilisation" in ln for ln in platform.output)
    deadline = time.monotonic() + 60
    while True:  # the samples reach the costs service as events, a moment after the seed
        status, _, body = request(f"{platform.api}/api/costs/optimization", key=ADMIN_KEY)
        assert status == 200, body
        found = json.loads(body)
        rules = {r["rule"] for r in found["data"]}
        if rules >= SAVINGS_RULES or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert rules == SAVINGS_RULES
    savings = [Decimal(r["monthly_savings"]) for r in found["data"]]
    assert savings == sorted(savings, reverse=True)
    assert Decimal(found["meta"]["monthly_savings"]["USD"]) == sum(savings)
    # In proportion to the fleet's bill: a share of the month to date's projection, not all of it.
    status, _, body = request(f"{platform.api}/api/costs/realtime", key=ADMIN_KEY)
    monthly_rate = Decimal(json.loads(body)["data"]["hourly_cost"]["USD"]) * 730
    assert Decimal("0.03") * monthly_rate < sum(savings) < Decimal("0.30") * monthly_rate


def test_demo_has_budgets_and_last_months_invoices(platform: Platform) -> None:
    assert any("created 3 demo budgets" in ln for ln in platform.output)
    status, _, body = request(f"{platform.api}/api/costs/budgets", key=ADMIN_KEY)
    assert status == 200, body
    assert {b["name"] for b in json.loads(body)["data"]} == {
        "Cloud total",
        "AWS",
        "Team identity",
    }
    status, _, body = request(f"{platform.api}/api/costs/invoices?limit=100", key=ADMIN_KEY)
    assert status == 200, body
    invoices = json.loads(body)["data"]
    assert invoices, "the demo's closed month is invoiced"
    assert all(Decimal(i["billed_total"]) > 0 for i in invoices)


def test_health_through_nginx(platform: Platform) -> None:
    status, headers, _ = request(f"{platform.api}/api/health")
    assert status == 200
    assert "X-Request-ID" in headers


def test_seeded_inventory_through_the_full_path(platform: Platform) -> None:
    status, headers, body = request(f"{platform.api}/api/resources?limit=5", key=ADMIN_KEY)
    assert status == 200
    page = json.loads(body)
    assert page["meta"]["total"] == 400
    assert len(page["data"]) == 5
    assert headers["Content-Type"].startswith("application/json")


def test_no_key_is_refused(platform: Platform) -> None:
    status, _, body = request(f"{platform.api}/api/resources")
    assert status == 401
    assert json.loads(body)["status"] == 401


def test_write_through_nginx_then_read_back(platform: Platform) -> None:
    resource = {
        "external_id": "e2e-1",
        "name": "e2e",
        "provider": "aws",
        "type": "compute",
        "region": "eu-west-1",
        "account": "1",
    }
    status, _, body = request(
        f"{platform.api}/api/resources",
        key=ADMIN_KEY,
        method="POST",
        body=json.dumps(resource).encode(),
    )
    assert status == 201
    created = json.loads(body)["data"]
    status, _, body = request(f"{platform.api}/api/resources/{created['id']}", key=ADMIN_KEY)
    assert status == 200
    assert json.loads(body)["data"]["name"] == "e2e"


def test_resource_error_reaches_the_live_alert_feed_through_nginx(platform: Platform) -> None:
    """resources -> outbox -> RabbitMQ -> alerts -> Redis stream -> gateway -> nginx -> SSE."""
    stream = urllib.request.urlopen(  # noqa: S310 - loopback
        urllib.request.Request(  # noqa: S310
            f"{platform.api}/api/alerts/stream",
            headers={"X-API-Key": ADMIN_KEY, "Accept": "text/event-stream"},
        ),
        timeout=15,
    )
    try:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        resource = {
            "external_id": "e2e-broken-vm",
            "name": "broken-vm",
            "provider": "aws",
            "type": "compute",
            "region": "eu-west-1",
            "account": "1",
            "status": "running",
        }
        status, _, body = request(
            f"{platform.api}/api/resources",
            key=ADMIN_KEY,
            method="POST",
            body=json.dumps(resource).encode(),
        )
        assert status == 201
        resource_id = json.loads(body)["data"]["id"]
        status, _, _ = request(
            f"{platform.api}/api/resources/{resource_id}",
            key=ADMIN_KEY,
            method="PATCH",
            body=b'{"status": "error"}',
        )
        assert status == 200
        deadline = time.monotonic() + 15
        event, data = "", ""
        while time.monotonic() < deadline:
            line = stream.readline().decode().rstrip("\n")
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:") and event == "alert.raised":
                data = line.partition(":")[2].strip()
                if resource_id in data:
                    break
        assert resource_id in data, "no alert.raised for the broken resource on the stream"
    finally:
        stream.close()


def test_focus_billing_file_imports_through_nginx_and_the_gateway(platform: Platform) -> None:
    """A gzip FOCUS upload streams through nginx and the gateway; its grand total matches."""
    raw = (ROOT / "services" / "costs" / "tests" / "data" / "aws_focus_1_0.csv").read_bytes()
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    expected = sum((Decimal(r["BilledCost"]) for r in rows), Decimal(0))
    req = urllib.request.Request(  # noqa: S310 - loopback
        f"{platform.api}/api/costs/imports?filename=aws.csv.gz",
        data=gzip.compress(raw),
        method="POST",
        headers={"X-API-Key": ADMIN_KEY, "Content-Type": "application/gzip"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
        assert resp.status == 201
        result = json.loads(resp.read())["data"]
    assert result["rows_rejected"] == 0, result
    assert result["rows_accepted"] == len(rows)
    status, _, body = request(
        f"{platform.api}/api/costs/daily?start=2023-01-01&end=2025-12-31&group_by=none",
        key=ADMIN_KEY,
    )
    assert status == 200, body
    report = json.loads(body)
    assert sum((Decimal(i["cost"]) for i in report["data"]), Decimal(0)) == expected
    assert Decimal(report["meta"]["totals"]["USD"]) == expected


@pytest.mark.parametrize("path", ["/metrics", "/health/live", "/health/ready"])
def test_internal_endpoints_are_not_public(platform: Platform, path: str) -> None:
    assert request(f"{platform.api}{path}")[0] == 404


def test_dashboard_is_served(platform: Platform) -> None:
    status, _, body = request(f"{platform.api}/")
    assert status == 200
    assert b"CloudOps" in body


def _state(platform: Platform) -> tuple[str, dict[str, int]]:
    state = json.loads((platform.run_dir / "pids.json").read_text())
    return state["color"], state["pids"]


def test_blue_green_redeploy_keeps_serving(platform: Platform) -> None:
    color, before = _state(platform)
    assert color == "blue"
    statuses: list[int] = []
    stop = threading.Event()

    def keep_reading() -> None:
        while not stop.is_set() and len(statuses) < 5000:
            statuses.append(request(f"{platform.api}/api/resources?limit=1", key=ADMIN_KEY)[0])

    reader = threading.Thread(target=keep_reading)
    reader.start()
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "platformctl.py"), "deploy"],
            env={**os.environ, "CLOUDOPS_RUN_DIR": str(platform.run_dir)},
            check=True,
            timeout=200,
            capture_output=True,
        )
    finally:
        stop.set()
        reader.join(timeout=60)
    color, after = _state(platform)
    assert color == "green"
    assert after["nginx"] == before["nginx"], "a switch is a reload, not a restart"
    for name in ("resources", "gateway"):
        assert after[name] != before[name]
        with pytest.raises(ProcessLookupError):
            os.kill(before[name], 0)
    assert len(statuses) > 10
    assert set(statuses) == {200}, f"requests failed during the switch: {set(statuses)}"


def test_down_stops_everything_it_started(platform: Platform) -> None:
    _, pids = _state(platform)
    assert {"platform", "resources", "gateway", "nginx"} <= set(pids)
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "platformctl.py"), "down"],
        env={**os.environ, "CLOUDOPS_RUN_DIR": str(platform.run_dir)},
        check=True,
        timeout=90,
        capture_output=True,
    )
    platform.process.wait(timeout=30)
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (platform.run_dir / "pids.json").exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(platform.api.rsplit(":", 1)[1])), timeout=1)


def test_services_do_not_outlive_a_killed_platform(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Even SIGKILL, which the platform cannot handle, must not leave services running."""
    run_dir = tmp_path_factory.mktemp("killed")
    process = launch_up(pg_url, run_dir, free_port_block(1), port_block=4)
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if "press Ctrl-C" in line:
                break
        pids = json.loads((run_dir / "pids.json").read_text())["pids"]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        deadline = time.monotonic() + 30
        alive = set(pids) - {"platform"}
        while alive and time.monotonic() < deadline:
            for name in list(alive):
                try:
                    os.kill(pids[name], 0)
                except ProcessLookupError:
                    alive.discard(name)
            time.sleep(0.2)
        assert alive == set(), f"still running after the platform was killed: {alive}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()
