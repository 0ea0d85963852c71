"""Shared benchmark plumbing: throwaway database, processes stopped by PID, wrk runs, RSS."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from common.testing import delete_exchanges, delete_redis_keys

BENCH = Path(__file__).resolve().parent
ADMIN_URL = os.environ.get(
    "CLOUDOPS_BENCH_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_PREFIXES: list[str] = []
_EXCHANGES: list[str] = []


def scratch_names() -> tuple[str, str]:
    """A Redis key prefix and an events exchange of this run's own, removed when it exits."""
    prefix = f"cloudopsbench:{uuid.uuid4().hex[:8]}:"
    exchange = f"cloudops.bench.{uuid.uuid4().hex[:8]}"
    _PREFIXES.append(prefix)
    _EXCHANGES.append(exchange)
    return prefix, exchange


@atexit.register
def _leave_servers_as_found() -> None:
    for prefix in _PREFIXES:
        asyncio.run(delete_redis_keys(f"{prefix}*"))
    if _EXCHANGES:
        asyncio.run(delete_exchanges(_EXCHANGES))


@contextmanager
def scratch_database() -> Iterator[str]:
    """A database that exists for one benchmark run only."""
    name = f"cloudops_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback only
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


@contextmanager
def process(
    argv: list[str], env: Mapping[str, str], ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; stopped by its PID (process group), never left behind."""
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(ready_url)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def python_module(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def wrk(
    url: str,
    *,
    connections: int = 100,
    seconds: int = 10,
    threads: int = 2,
    headers: Mapping[str, str] | None = None,
    pause_ms: int | None = None,
    cpu: int | None = None,
) -> dict[str, Any]:
    """One bounded wrk run against a loopback URL; returns rps and p50/p95/p99 in ms.

    ``pause_ms``: each connection waits this long between requests (paced, not saturating).
    ``cpu``: run wrk on that CPU alone (see :func:`pinned`).
    """
    if not url.startswith(("http://127.0.0.1", "http://[::1]", "http://localhost")):
        raise ValueError("benchmarks target loopback only")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv += ["-s", str(BENCH / "wrk_report.lua"), url]
    if cpu is not None:
        argv = pinned(argv, cpu)
    env = {**os.environ, "WRK_PAUSE_MS": str(pause_ms)} if pause_ms else None
    out = subprocess.run(
        argv, capture_output=True, text=True, check=True, timeout=seconds + 30, env=env
    )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1]
    result: dict[str, Any] = json.loads(line)
    return result


def _tree(pid: int) -> Iterator[int]:
    yield pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            yield from _tree(int(child))


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and their children (nginx's workers) so far."""
    total = 0
    for pid in {p for root in pids for p in _tree(root)}:
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists():
            fields = stat.read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measured(
    url: str, pids: Mapping[str, int], *, connections: int, seconds: int, **options: Any
) -> dict[str, Any]:
    """One :func:`wrk` run (``options`` as it takes them), with the CPU microseconds per request
    of each named process, its children included (``cpu``), and of all of them (``cpu_us``): on
    a shared machine requests/s move with the neighbours' load, CPU per request much less."""
    before = {name: cpu_seconds([pid]) for name, pid in pids.items()}
    result = wrk(url, connections=connections, seconds=seconds, **options)
    requests = max(1, result["requests"])
    result["cpu"] = {
        name: (cpu_seconds([pid]) - before[name]) * 1e6 / requests for name, pid in pids.items()
    }
    result["cpu_us"] = sum(result["cpu"].values())
    return result


def pinned(argv: list[str], cpu: int) -> list[str]:
    """``argv`` run on CPU ``cpu`` alone (taskset), when the machine has a CPU to spare for it."""
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", str(cpu), *argv]


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` and its children, in MiB (from /proc)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        status = Path(f"/proc/{p}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def show(label: str, result: Mapping[str, Any]) -> None:
    print(
        f"{label:<34} {result['rps']:>10.0f} req/s   p50 {result['p50_ms']:7.2f} ms   "
        f"p95 {result['p95_ms']:7.2f} ms   p99 {result['p99_ms']:7.2f} ms   "
        f"errors {result['errors']}  non-2xx {result['non2xx']}"
    )
