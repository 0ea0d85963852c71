"""`make up` supervises like a process manager: a crashed process is restarted with back-off while
everything else keeps serving, a consumer killed mid-stream loses and doubles nothing, and only a
crash loop stops the platform, naming the process and showing why.

One platform serves the whole module; the crash-loop test ends it, so it comes last.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from common.testing import scratch_database

from .conftest import ADMIN_KEY, Platform, load_platformctl, request, running_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, str]]:
    with (
        scratch_database() as database_url,
        running_platform(
            database_url,
            tmp_path_factory.mktemp("run"),
            # The tests write continuously with the admin key.
            extra_env={"CLOUDOPS_GATEWAY_RATE_LIMIT": "100000"},
        ) as running,
    ):
        yield running, database_url


def test_a_crash_report_shows_no_query_string() -> None:
    """The end of a log shown on the terminal: a key a client put in a URL's query is cut off."""
    line = '[error] connect() failed, request: "GET /api/resources?api_key=co_secret HTTP/1.1"'
    shown = load_platformctl()._without_queries([line, "Address already in use? yes"])
    assert "co_secret" not in shown
    assert shown.splitlines() == [
        '[error] connect() failed, request: "GET /api/resources?... HTTP/1.1"',
        "Address already in use? yes",
    ]


def _pids(platform: Platform) -> dict[str, int]:
    pids: dict[str, int] = json.loads((platform.run_dir / "pids.json").read_text())["pids"]
    return pids


def _new_resource(status: str = "running") -> bytes:
    name = f"sv-{uuid.uuid4().hex[:12]}"
    return json.dumps(
        {
            "external_id": name,
            "name": name,
            "provider": "aws",
            "type": "compute",
            "region": "eu-west-1",
            "account": "1",
            "status": status,
        }
    ).encode()


def _wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_killed_service_is_restarted_while_the_rest_keeps_serving(
    platform: tuple[Platform, str],
) -> None:
    running, _ = platform
    before = _pids(running)
    statuses: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def keep_writing() -> None:  # bounded: at most 1,500 writes, about 25 a second
        while not stop.is_set() and len(statuses) < 1500:
            status, headers, _ = request(
                f"{running.api}/api/resources", key=ADMIN_KEY, method="POST", body=_new_resource()
            )
            statuses.append((time.monotonic(), status, headers.get("Content-Type", "")))
            time.sleep(0.04)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        _wait_for(lambda: len(statuses) >= 20, 30, "the first writes")
        killed_at = time.monotonic()
        os.kill(before["resources"], signal.SIGKILL)
        _wait_for(lambda: _pids(running)["resources"] != before["resources"], 30, "the restart")

        def served_again() -> bool:
            after = [s for t, s, _ in statuses if t > killed_at]
            return len(after) >= 10 and after[-10:] == [201] * 10

        _wait_for(served_again, 60, "writes to succeed again")
    finally:
        stop.set()
        writer.join(timeout=60)
    after = _pids(running)
    assert running.process.poll() is None, "the platform stopped"
    for name in ("platform", "gateway", "costs", "alerts", "nginx"):
        assert after[name] == before[name], f"{name} was restarted too"
        os.kill(after[name], 0)  # still running
    restarts = json.loads((running.run_dir / "restarts.json").read_text())
    assert restarts["resources"]["restarts"] == 1
    assert restarts["resources"]["last_exit"] == "killed by SIGKILL"
    # While it was away every write was answered, and every failure was a 503 problem.
    assert {s for _, s, _ in statuses} <= {201, 503}, {s for _, s, _ in statuses}
    assert all(c.startswith("application/problem+json") for _, s, c in statuses if s == 503)


async def _exactly_once(database_url: str, resource_ids: list[str]) -> dict[str, Any]:
    """What the consumers did with the events of ``resource_ids``."""
    conn = await asyncpg.connect(database_url)
    try:
        events = await conn.fetch(
            """SELECT id::text, type FROM resources.outbox
               WHERE payload->'data'->'resource'->>'id' = ANY($1::text[])""",
            resource_ids,
        )
        costs_seen = await conn.fetchval(
            """SELECT count(*) FROM costs.processed_events
               WHERE consumer = 'inventory' AND event_id = ANY($1::text[])""",
            [e["id"] for e in events],
        )
        status_changes = [e["id"] for e in events if e["type"] == "resource.status_changed"]
        alerts_seen = await conn.fetchval(
            """SELECT count(*) FROM alerts.processed_events
               WHERE consumer = 'alert-rules' AND event_id = ANY($1::text[])""",
            status_changes,
        )
        inventory = await conn.fetch(
            "SELECT status FROM costs.inventory WHERE id::text = ANY($1::text[])", resource_ids
        )
        raised = await conn.fetch(
            """SELECT a.labels->>'resource_id' AS resource_id, count(*) AS entries
               FROM alerts.alerts a JOIN alerts.alert_history h ON h.alert_id = a.id
               WHERE a.labels->>'resource_id' = ANY($1::text[]) AND h.to_status = 'firing'
               GROUP BY 1""",
            resource_ids,
        )
    finally:
        await conn.close()
    return {
        "events": len(events),
        "status_changes": len(status_changes),
        "costs_seen": costs_seen,
        "alerts_seen": alerts_seen,
        "inventory": sorted(r["status"] for r in inventory),
        "raised": {r["resource_id"]: r["entries"] for r in raised},
    }


async def _kill_while_consuming(database_url: str, prefix: str, pid: int) -> int:
    """SIGKILL ``pid`` as soon as the costs consumer has handled some of the resources named
    ``prefix``*; returns how many it had handled by then."""
    conn = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(60):
            while True:
                handled: int = await conn.fetchval(
                    "SELECT count(*) FROM costs.inventory WHERE external_id LIKE $1", f"{prefix}%"
                )
                if handled:
                    os.kill(pid, signal.SIGKILL)
                    return handled
                await asyncio.sleep(0.005)
    finally:
        await conn.close()


def test_a_consumer_killed_mid_stream_loses_and_doubles_nothing(
    platform: tuple[Platform, str],
) -> None:
    """A burst of 1,000 new resources, and the costs process (a consumer of their events) killed
    while it works through them; more changes while it is away. Once it is back, every event was
    handled once, and each side effect is there once."""
    running, database_url = platform
    before = _pids(running)
    total, broken = 1000, 60
    prefix = f"burst-{uuid.uuid4().hex[:8]}-"
    fleet = [
        {
            "external_id": f"{prefix}{i}",
            "name": f"{prefix}{i}",
            "provider": "aws",
            "type": "compute",
            "region": "eu-west-1",
            "account": "1",
            "status": "running",
        }
        for i in range(total)
    ]
    status, _, body = request(
        f"{running.api}/api/resources/bulk",
        key=ADMIN_KEY,
        method="POST",
        body=json.dumps({"resources": fleet}).encode(),
    )
    assert status == 200, body
    handled_at_kill = asyncio.run(_kill_while_consuming(database_url, prefix, before["costs"]))
    assert handled_at_kill < total, "the consumer finished before it could be killed mid-stream"
    resource_ids = asyncio.run(_resource_ids(database_url, prefix))
    assert len(resource_ids) == total
    for resource_id in resource_ids[:broken]:  # while costs is away
        status, _, _ = request(
            f"{running.api}/api/resources/{resource_id}",
            key=ADMIN_KEY,
            method="PATCH",
            body=b'{"status": "error"}',
        )
        assert status == 200
    _wait_for(lambda: _pids(running)["costs"] != before["costs"], 30, "the restart of costs")

    def all_handled() -> bool:
        state = asyncio.run(_exactly_once(database_url, resource_ids))
        return bool(
            state["costs_seen"] == state["events"]
            and state["alerts_seen"] == broken
            and len(state["raised"]) == broken
        )

    _wait_for(all_handled, 60, "every event to be handled")
    state = asyncio.run(_exactly_once(database_url, resource_ids))
    assert state["events"] >= total + broken  # created for each, status_changed for the broken
    assert state["status_changes"] == broken
    # One mirrored row per resource, in its last state, and one alert raised once per breakage.
    assert state["inventory"] == ["error"] * broken + ["running"] * (total - broken)
    assert set(state["raised"].values()) == {1}, "an alert was raised twice"
    restarts = json.loads((running.run_dir / "restarts.json").read_text())
    assert restarts["costs"]["restarts"] == 1


async def _resource_ids(database_url: str, prefix: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT id::text FROM resources.resources WHERE external_id LIKE $1
               ORDER BY external_id""",
            f"{prefix}%",
        )
    finally:
        await conn.close()
    return [r["id"] for r in rows]


def test_a_killed_nginx_is_restarted_with_the_same_configuration(
    platform: tuple[Platform, str],
) -> None:
    """Its orphaned workers go too (they would hold the port), and the new nginx serves."""
    running, _ = platform
    before = _pids(running)
    os.kill(before["nginx"], signal.SIGKILL)
    _wait_for(lambda: _pids(running)["nginx"] != before["nginx"], 30, "the restart of nginx")

    def serving() -> bool:
        try:
            return request(f"{running.api}/api/health")[0] == 200
        except OSError:  # not listening yet
            return False

    _wait_for(serving, 30, "nginx to serve")
    status, _, _ = request(f"{running.api}/api/resources?limit=1", key=ADMIN_KEY)
    assert status == 200
    restarts = json.loads((running.run_dir / "restarts.json").read_text())
    assert restarts["nginx"]["restarts"] == 1
    after = _pids(running)
    assert {n: p for n, p in after.items() if n != "nginx"} == {
        n: p for n, p in before.items() if n != "nginx"
    }


def test_a_crash_loop_stops_the_platform_naming_the_process_and_why(
    platform: tuple[Platform, str],
) -> None:
    """alerts cannot start again (its port is taken): after five crashes within the minute the
    platform stops everything and says which process and what it last printed."""
    running, _ = platform
    pids = _pids(running)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    alerts_port = _listening_port(pids["alerts"])
    os.kill(pids["alerts"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while True:
        try:
            squatter.bind(("127.0.0.1", alerts_port))
            squatter.listen()
            break
        except OSError:
            assert time.monotonic() < deadline, "the killed service's port never came free"
            time.sleep(0.01)
    try:
        running.process.wait(timeout=90)
    finally:
        squatter.close()
    assert running.process.stdout is not None
    output = running.process.stdout.read()
    assert running.process.returncode == 1, output
    assert "alerts crashed 5 times within 60 s" in output, output
    assert "address already in use" in output.lower(), output
    assert "restarting it in 0.5 s" in output
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _listening_port(pid: int) -> int:
    """The TCP port a process listens on (its one listening socket), from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                return int(fields[1].split(":")[1], 16)
    raise AssertionError(f"process {pid} listens on no IPv4 port")
