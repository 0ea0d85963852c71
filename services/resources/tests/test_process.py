"""The service as operators run it: its own OS process with two workers, JSON logs on stdout."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.testing import ServiceProcess, free_port, truncate_schema

from .conftest import resource_body

SECRET_KEY = "ck_live_DO_NOT_LOG_4f9a8b7c"
SECRET_PASSWORD = "hunter2-DO-NOT-LOG"


@pytest.fixture
async def service(
    pg_url: str, redis_prefix: str, events_exchange: str, tmp_path: Path
) -> AsyncIterator[ServiceProcess]:
    await truncate_schema(pg_url, "resources")
    port = free_port()
    process = ServiceProcess(
        "resources",
        {
            "CLOUDOPS_RESOURCES_PORT": str(port),
            "CLOUDOPS_RESOURCES_WORKERS": "2",
            "CLOUDOPS_DATABASE_URL": pg_url,
            "CLOUDOPS_REDIS_PREFIX": redis_prefix,
            "CLOUDOPS_EVENTS_EXCHANGE": events_exchange,
            "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        },
        port,
    )
    process.start()
    yield process
    process.close()


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


async def test_two_workers_report_exact_counts_and_buckets(
    service: ServiceProcess, tmp_path: Path
) -> None:
    requests = 60
    # A new connection per request lets the kernel hand requests to both workers.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        resp = await http.post(f"{service.url}/api/resources", json=resource_body())
        resource_id = (await resp.json())["data"]["id"]
        for _ in range(requests):
            async with http.get(f"{service.url}/api/resources/{resource_id}") as r:
                assert r.status == 200
        text = await (await http.get(f"{service.url}/metrics")).text()

    pids = {p.stem.rsplit("_", 1)[-1] for p in (tmp_path / "metrics").glob("counter_*.db")}
    assert len(pids) == 2, "both workers should have served requests"
    route = {"route": "/api/resources/{id}", "method": "GET", "status": "200"}

    def matching(name: str) -> list[tuple[dict[str, str], float]]:
        return [(lbl, v) for lbl, v in samples(text, name) if route.items() <= lbl.items()]

    assert sum(v for _, v in matching("http_requests_total")) == requests
    assert sum(v for _, v in matching("http_request_duration_seconds_count")) == requests
    inf_bucket = [
        v for lbl, v in matching("http_request_duration_seconds_bucket") if lbl["le"] == "+Inf"
    ]
    assert sum(inf_bucket) == requests
    assert all(lbl["service"] == "resources" for lbl, _ in matching("http_requests_total"))
    concrete = [
        lbl for lbl, _ in samples(text, "http_requests_total") if resource_id in lbl["route"]
    ]
    assert concrete == [], "route labels must be templates, never concrete ids"


async def test_a_write_is_seen_by_every_worker_on_its_next_read(service: ServiceProcess) -> None:
    """Each worker keeps the pages it served in its own memory; after a write, the next read on
    either worker is the new page, whichever worker took the write."""
    url = f"{service.url}/api/resources?limit=5&sort=name"
    # A new connection per request lets the kernel hand requests to both workers.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:

        async def names() -> list[str]:
            async with http.get(url) as r:
                assert r.status == 200
                return [item["name"] for item in (await r.json())["data"]]

        async def served_by_both() -> set[str]:
            workers: set[str] = set()
            for _ in range(40):
                async with http.get(f"{service.url}/health/memory") as r:
                    workers.add(str((await r.json())["data"]["pid"]))
            return workers

        await http.post(f"{service.url}/api/resources", json=resource_body(99, name="b-web"))
        for _ in range(20):  # both workers now hold the page
            assert await names() == ["b-web"]
        assert len(await served_by_both()) == 2

        for round_ in range(5):
            body = resource_body(round_, name=f"a-{round_}")
            async with http.post(f"{service.url}/api/resources", json=body) as r:
                assert r.status == 201
            expected = [f"a-{n}" for n in range(round_ + 1)] + ["b-web"]
            for _ in range(10):
                assert await names() == expected[:5]


async def test_a_serving_worker_rarely_runs_the_cycle_collector(service: ServiceProcess) -> None:
    """Its objects are freed by reference counting; with Python's default thresholds a hundred
    requests in flight made the collector run every few dozen requests for nothing."""
    url = f"{service.url}/api/resources?limit=20"

    async def workers() -> dict[int, dict[str, Any]]:
        """Each worker's collector report (a new connection per ask reaches both)."""
        seen: dict[int, dict[str, Any]] = {}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as h:
            for _ in range(100):
                async with h.get(f"{service.url}/health/memory") as r:
                    data = (await r.json())["data"]
                seen[data["pid"]] = data["gc"]
                if len(seen) == 2:
                    return seen
        raise AssertionError("both workers should answer")

    before = await workers()
    for gc in before.values():
        assert gc["thresholds"] == [10_000, 20, 50]
        assert gc["frozen_objects"] > 10_000  # start-up objects are out of its sight
    async with aiohttp.ClientSession() as http:

        async def read() -> None:
            for _ in range(20):
                async with http.get(url) as r:
                    assert r.status == 200
                    await r.read()

        await asyncio.gather(*(read() for _ in range(100)))  # 2,000 reads, 100 at a time
    after = await workers()

    young = sum(after[pid]["collections"][0] - before[pid]["collections"][0] for pid in before)
    assert young <= 5


async def test_one_json_log_line_per_request_and_no_secrets(service: ServiceProcess) -> None:
    async with aiohttp.ClientSession() as http:
        for n in range(3):
            await http.post(
                f"{service.url}/api/resources?api_key={SECRET_KEY}",
                json=resource_body(n, tags={"password": SECRET_PASSWORD}),
                headers={
                    "X-API-Key": SECRET_KEY,
                    "Authorization": f"Bearer {SECRET_KEY}",
                    "Cookie": f"session={SECRET_KEY}",
                    "X-Request-ID": f"log-test-{n}",
                },
            )
        await http.get(f"{service.url}/api/resources/not-a-uuid", headers={"X-Request-ID": "bad-1"})
    service.stop()
    output = service.output()
    assert SECRET_KEY not in output
    assert SECRET_PASSWORD not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert lines, "the service writes JSON lines"
    requests = [ln for ln in lines if ln["message"] == "request"]
    by_id = {r["request_id"]: r for r in requests}
    for n in range(3):
        assert by_id[f"log-test-{n}"]["status"] == 201
        assert by_id[f"log-test-{n}"]["path"] == "/api/resources"
        assert by_id[f"log-test-{n}"]["service"] == "resources"
        assert len(by_id[f"log-test-{n}"]["trace_id"]) == 32
    assert by_id["bad-1"]["status"] == 400
    assert sum(1 for r in requests if r["request_id"].startswith("log-test-")) == 3


def _worker_pids(service: ServiceProcess) -> set[int]:
    assert service.process is not None
    pid = service.process.pid
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


async def test_a_crashed_worker_is_replaced(service: ServiceProcess) -> None:
    before = _worker_pids(service)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    after: set[int] = set()
    while time.monotonic() < deadline:
        after = _worker_pids(service)
        if len(after) == 2 and victim not in after:
            break
        await asyncio.sleep(0.1)
    assert len(after) == 2
    assert victim not in after
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        for _ in range(10):
            async with http.get(f"{service.url}/health/live") as r:
                assert r.status == 200


async def test_workers_that_cannot_start_stop_the_service(
    pg_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = ServiceProcess(
            "resources",
            {
                "CLOUDOPS_RESOURCES_PORT": str(port),
                "CLOUDOPS_RESOURCES_WORKERS": "2",
                "CLOUDOPS_DATABASE_URL": pg_url,
                "CLOUDOPS_REDIS_PREFIX": redis_prefix,
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            },
            port,
        )
        with pytest.raises(RuntimeError, match="exited early"):
            process.start(timeout=30)
        assert process.process is not None
        assert process.process.returncode == 1


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_metrics_dir_is_created_and_emptied_not_replaced(
    pg_url: str, redis_prefix: str, tmp_path: Path, workers: str
) -> None:
    metrics_dir = tmp_path / "mount" / "multiproc"  # absent: must be created
    stale = tmp_path / "mount" / "stale"
    stale.mkdir(parents=True)
    (stale / "counter_999999.db").write_bytes(b"stale")
    for directory in (metrics_dir, stale):
        port = free_port()
        process = ServiceProcess(
            "resources",
            {
                "CLOUDOPS_RESOURCES_PORT": str(port),
                "CLOUDOPS_RESOURCES_WORKERS": workers,
                "CLOUDOPS_DATABASE_URL": pg_url,
                "CLOUDOPS_REDIS_PREFIX": redis_prefix,
                "PROMETHEUS_MULTIPROC_DIR": str(directory),
            },
            port,
        )
        process.start()
        try:
            async with aiohttp.ClientSession() as http:
                text = await (await http.get(f"{process.url}/metrics")).text()
            assert "http_requests_total" in text
        finally:
            process.close()
        assert directory.is_dir()
        assert not (directory / "counter_999999.db").exists()


@pytest.mark.parametrize(
    ("setting", "expected_loop"), [(None, "uvloop"), ("false", "asyncio"), ("true", "uvloop")]
)
async def test_workers_run_uvloop_unless_switched_off(
    pg_url: str,
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str | None,
    expected_loop: str,
) -> None:
    monkeypatch.delenv("CLOUDOPS_UVLOOP", raising=False)
    port = free_port()
    env = {
        "CLOUDOPS_RESOURCES_PORT": str(port),
        "CLOUDOPS_DATABASE_URL": pg_url,
        "CLOUDOPS_REDIS_PREFIX": redis_prefix,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    if setting is not None:
        env["CLOUDOPS_UVLOOP"] = setting
    process = ServiceProcess("resources", env, port)
    process.start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{process.url}/health/live") as r:
            assert r.status == 200
        process.stop()
        lines = [json.loads(ln) for ln in process.output().splitlines() if ln.startswith("{")]
    finally:
        process.close()
    started = [ln for ln in lines if ln["message"] == "worker started"]
    assert [s["event_loop"] for s in started] == [expected_loop]
