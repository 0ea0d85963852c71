"""Soak: the whole platform (``platformctl.py up``, as ``make up`` runs it) under a steady request
rate through nginx for N minutes, sampling every process's RSS, the event queues' depths and the
error ratio; writes a PNG of the curves and prints a summary.

    .venv/bin/python -m bench.soak --minutes 30 --rate 40 --plot soak.png

What a healthy run shows: RSS flat after warm-up (the summary gives each process group's growth
over the second half), queue depths back to zero after the load stops, and an error ratio of 0;
it exits non-zero when there was an error or a message is left queued.
The load mixes list reads, cost and alert reads, creations, status flips (which raise and resolve
alerts) and deletions, keeping the inventory near a fixed size so that memory has no reason to
grow with the data. Everything it creates lives in a database, Redis prefix and exchange of its
own, removed afterwards; every process is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import scratch_database, scratch_names
from bench.overload_bench import percentile
from common.testing import free_port_block

ROOT = Path(__file__).resolve().parents[1]
PLATFORMCTL = ROOT / "scripts" / "platformctl.py"
ADMIN_KEY = "co_soak_admin_key_0123456789abcdefghijklmnopq"
INVENTORY_SIZE = 300


@dataclass
class Platform:
    url: str
    run_dir: Path
    process: subprocess.Popen[bytes]
    exchange: str


def start_platform(database_url: str, run_dir: Path) -> Platform:
    """``platformctl.py up`` on free ports, its own names on the shared servers; waits for it."""
    public_port = free_port_block(1)
    prefix, exchange = scratch_names()
    env = {
        **os.environ,
        "CLOUDOPS_PUBLIC_PORT": str(public_port),
        "CLOUDOPS_PORT_BASE": str(free_port_block(8)),
        "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CLOUDOPS_DATABASE_URL": database_url,
        "CLOUDOPS_REDIS_PREFIX": prefix,
        "CLOUDOPS_EVENTS_EXCHANGE": exchange,
        # The queues under the run's own exchange vanish a minute after the platform stops.
        "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
        "CLOUDOPS_RUN_DIR": str(run_dir),
        # A soak measures steadiness, not the per-key quota.
        "CLOUDOPS_GATEWAY_RATE_LIMIT": "10000000",
        "CLOUDOPS_LOG_LEVEL": "WARNING",
    }
    log = (run_dir / "platform.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(PLATFORMCTL), "up"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{public_port}"
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"platform exited: {(run_dir / 'platform.log').read_text()[-2000:]}")
        if "press Ctrl-C" in (run_dir / "platform.log").read_text(errors="replace"):
            return Platform(url, run_dir, process, exchange)
        time.sleep(0.5)
    stop_platform(Platform(url, run_dir, process, exchange))
    raise TimeoutError("the platform did not come up")


def stop_platform(platform: Platform) -> None:
    if platform.process.poll() is None:
        os.killpg(platform.process.pid, signal.SIGINT)
        try:
            platform.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(platform.process.pid, signal.SIGKILL)
            platform.process.wait()


# --- sampling -----------------------------------------------------------------------------------


def process_groups(platform: Platform) -> dict[str, int]:
    """Name -> process-group id of every process ``up`` runs (each in a session of its own)."""
    state = json.loads((platform.run_dir / "pids.json").read_text())
    groups: dict[str, int] = state["pids"]
    return groups


def group_rss_mb() -> dict[int, float]:
    """RSS in MiB summed by process group, for every process on the machine we can read."""
    totals: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        pgrp = int(stat.rsplit(")", 1)[1].split()[2])
        match = re.search(r"^VmRSS:\s+(\d+)", status, re.MULTILINE)
        if match:
            totals[pgrp] = totals.get(pgrp, 0.0) + int(match.group(1)) / 1024
    return totals


def queue_depths(exchange: str) -> dict[str, int]:
    """Ready plus unacknowledged messages of every queue under the platform's exchange."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name", "messages"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    depths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith(f"{exchange}.") and parts[1].isdigit():
            depths[parts[0][len(exchange) + 1 :]] = int(parts[1])
    return depths


@dataclass
class Series:
    """Everything sampled, one entry per sample time."""

    times: list[float] = field(default_factory=list)
    rss: dict[str, list[float]] = field(default_factory=dict)
    queues: dict[str, list[int]] = field(default_factory=dict)
    rate: list[float] = field(default_factory=list)
    error_ratio: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    #: Answers that were not 2xx (or no answer at all), over the whole run.
    errors: int = 0


@dataclass
class Tally:
    """Answers since the last sample, and in total."""

    statuses: dict[int, int] = field(default_factory=dict)
    total: int = 0
    errors: int = 0
    recent: list[tuple[bool, float]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def add(self, ok: bool, seconds: float, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.total += 1
        self.errors += not ok
        self.recent.append((ok, seconds))
        self.latencies.append(seconds)


# --- load ---------------------------------------------------------------------------------------


class Workload:
    """One operation at a time, picked at random; the inventory is kept near a fixed size."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: deque[str] = deque()
        self.deleted: set[str] = set()
        self.counter = 0
        self.headers = {"X-API-Key": ADMIN_KEY}

    def _resource(self) -> dict[str, Any]:
        self.counter += 1
        return {
            "external_id": f"soak-{self.counter}",
            "name": f"soak {self.counter}",
            "provider": random.choice(["aws", "gcp", "azure"]),
            "type": "compute",
            "region": "eu-west-1",
            "account": "soak",
            "status": "running",
            "hourly_cost": "0.25",
            "team": "soak",
            "cpu_utilization": 20,
            "memory_utilization": 30,
        }

    async def one(self, session: aiohttp.ClientSession) -> int:
        roll = random.random()
        api = f"{self.url}/api"
        if roll < 0.4 or not self.ids:
            if len(self.ids) < INVENTORY_SIZE:
                return await self._send(session, "POST", f"{api}/resources", self._resource())
            return await self._send(session, "GET", f"{api}/resources?limit=20&sort=-updated_at")
        if roll < 0.55:
            return await self._send(session, "GET", f"{api}/costs/realtime")
        if roll < 0.7:
            return await self._send(session, "GET", f"{api}/alerts?limit=20")
        if roll < 0.9:
            target = random.choice(self.ids)
            status = random.choice(["running", "error", "stopped"])
            answer = await self._send(
                session, "PATCH", f"{api}/resources/{target}", {"status": status}
            )
            # Deleted while this change was on its way: the right answer, not an error.
            return 200 if answer == 404 and target in self.deleted else answer
        target = self.ids.popleft()
        self.deleted.add(target)
        return await self._send(session, "DELETE", f"{api}/resources/{target}")

    async def _send(
        self, session: aiohttp.ClientSession, method: str, url: str, body: Any = None
    ) -> int:
        async with session.request(method, url, json=body, headers=self.headers) as resp:
            data = await resp.read()
            if method == "POST" and resp.status == 201:
                self.ids.append(json.loads(data)["data"]["id"])
            return resp.status


async def drive(url: str, rate: float, seconds: float, tally: Tally) -> None:
    """Open-model load: a request every 1/rate s whatever the answers, up to 256 in flight."""
    workload = Workload(url)
    in_flight = asyncio.Semaphore(256)
    tasks: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=256)

    async def one(session: aiohttp.ClientSession) -> None:
        async with in_flight:
            started = time.monotonic()
            try:
                status = await workload.one(session)
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            tally.add(200 <= status < 300, time.monotonic() - started, status)

    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        start = time.monotonic()
        n = 0
        while (now := time.monotonic()) - start < seconds:
            due = start + n / rate
            if due > now:
                await asyncio.sleep(due - now)
            task = asyncio.create_task(one(session))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.gather(*tasks)


async def sample_forever(
    platform: Platform, tally: Tally, series: Series, every: float, started: float
) -> None:
    groups = process_groups(platform)
    while True:
        rss = group_rss_mb()
        depths = await asyncio.to_thread(queue_depths, platform.exchange)
        series.times.append(time.monotonic() - started)
        for name, pgrp in groups.items():
            series.rss.setdefault(name, []).append(rss.get(pgrp, 0.0))
        for name in set(series.queues) | set(depths):
            values = series.queues.setdefault(name, [0] * (len(series.times) - 1))
            values.append(depths.get(name, 0))
        recent, tally.recent = tally.recent, []
        interval = series.times[-1] - (series.times[-2] if len(series.times) > 1 else 0.0)
        series.rate.append(len(recent) / interval if interval else 0.0)
        series.error_ratio.append(sum(not ok for ok, _ in recent) / len(recent) if recent else 0.0)
        series.p99_ms.append(percentile([s for _, s in recent], 0.99, 0.0) * 1000)
        await asyncio.sleep(every)


async def soak(platform: Platform, minutes: float, rate: float, every: float) -> Series:
    tally, series = Tally(), Series()
    started = time.monotonic()
    sampler = asyncio.create_task(sample_forever(platform, tally, series, every, started))
    try:
        await drive(platform.url, rate, minutes * 60, tally)
        load_ended = time.monotonic() - started
        # Let the queues drain: they should reach zero within a minute of the load stopping.
        drain_deadline = time.monotonic() + 60
        while time.monotonic() < drain_deadline:
            await asyncio.sleep(every)
            if series.queues and all(values[-1] == 0 for values in series.queues.values()):
                break
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    series_summary(series, tally, load_ended)
    series.errors = tally.errors
    return series


def series_summary(series: Series, tally: Tally, load_ended: float) -> None:
    half = next((i for i, t in enumerate(series.times) if t >= load_ended / 2), 0)
    last_loaded = max(i for i, t in enumerate(series.times) if t <= load_ended)
    print(
        f"requests {tally.total}, errors {tally.errors} "
        f"(ratio {tally.errors / max(1, tally.total):.5f})"
    )
    print(f"statuses {dict(sorted(tally.statuses.items()))}")
    print(
        f"latency p50 {percentile(tally.latencies, 0.5, 0.0) * 1000:.1f} ms, "
        f"p99 {percentile(tally.latencies, 0.99, 0.0) * 1000:.1f} ms, "
        f"max {max(tally.latencies, default=0) * 1000:.1f} ms"
    )
    print("RSS (MiB): at start / at half-time / at the end of the load / growth over the 2nd half")
    for name, values in sorted(series.rss.items()):
        growth = values[last_loaded] - values[half]
        print(
            f"  {name:<10} {values[0]:8.1f} {values[half]:8.1f} {values[last_loaded]:8.1f} "
            f"{growth:+8.1f}"
        )
    peak = {name: max(values) for name, values in series.queues.items()}
    final = {name: values[-1] for name, values in series.queues.items()}
    print(f"queue depth peak {max(peak.values(), default=0)}, at the end {sum(final.values())}")
    for name in sorted(series.queues):
        print(f"  {name:<40} peak {peak[name]:6d}  end {final[name]:6d}")


def plot(series: Series, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [t / 60 for t in series.times]
    fig, (rss, queues, load) = plt.subplots(3, 1, figsize=(11, 11), sharex=True)
    for name, values in sorted(series.rss.items()):
        rss.plot(minutes, values, label=name)
    rss.set_ylabel("RSS (MiB, process group)")
    rss.legend(loc="upper left", ncol=3, fontsize="small")
    rss.set_ylim(bottom=0)
    for name, depths in sorted(series.queues.items()):
        if max(depths, default=0) > 0 or not name.endswith(("ms", "dead")):
            queues.plot(minutes, depths, label=name)
    queues.set_ylabel("messages in queue")
    queues.legend(loc="upper left", fontsize="x-small")
    load.plot(minutes, series.rate, label="answers/s", color="tab:blue")
    load.set_ylabel("answers/s")
    load.set_xlabel("minutes")
    errors = load.twinx()
    errors.plot(minutes, series.error_ratio, label="error ratio", color="tab:red")
    errors.plot(minutes, [p / 1000 for p in series.p99_ms], label="p99 (s)", color="tab:green")
    errors.set_ylabel("error ratio / p99 seconds")
    errors.set_ylim(bottom=0)
    load.legend(loc="upper left")
    errors.legend(loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description="Soak the platform at a steady rate.")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--plot", type=Path, default=Path("soak.png"))
    args = parser.parse_args()
    if args.rate <= 0 or args.minutes <= 0:
        parser.error("--rate and --minutes must be positive")
    with scratch_database() as database_url, tempfile.TemporaryDirectory() as run:
        platform = start_platform(database_url, Path(run))
        try:
            print(f"platform up at {platform.url}; {args.minutes:g} min at {args.rate:g} req/s")
            series = asyncio.run(soak(platform, args.minutes, args.rate, args.sample_seconds))
        finally:
            stop_platform(platform)
    plot(series, args.plot, f"CloudOps soak: {args.minutes:g} min at {args.rate:g} req/s")
    print(f"plot written to {args.plot}")
    undrained = sum(depths[-1] for depths in series.queues.values() if depths)
    if series.errors or undrained:
        raise SystemExit(f"not steady: {series.errors} errors, {undrained} messages left queued")


if __name__ == "__main__":
    main()
