"""An open-model load generator: a fixed request rate over many keep-alive connections.

wrk is closed-loop: a slow server slows the client down and the queue never shows. Here every
request has a scheduled send time (the rate spread evenly over the connections) and its latency is
measured from that time, so a request that waited behind a slow one, or for the generator itself,
counts its wait. A connection sends its next request only after the previous answer (HTTP/1.1
without pipelining), so a server slower than the schedule shows as latency, not as extra sockets.

    python -m bench.overload_bench --url http://127.0.0.1:8080/api/resources?limit=20 \
        --api-key co_... --connections 1000 --rate 300 --duration 10

Only loopback is a target. Prints offered vs achieved rate, status counts, p50/p95/p99 latency
(all answers, and the 503s alone), the service time from the actual send (the part of the latency
that is not waiting for a connection or for the generator) and socket errors.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MAX_CONNECTIONS = 20_000
MAX_RATE = 100_000.0
MAX_DURATION = 300.0
CONNECT_BATCH = 500
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    shed_latencies: list[float] = field(default_factory=list)
    service_times: list[float] = field(default_factory=list)
    shed_without_retry_after: int = 0
    scheduled: int = 0
    last_answer: float = 0.0


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    request: bytes


def target(url: str, api_key: str | None) -> Target:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise SystemExit("only http://127.0.0.1 (or ::1) may be a target")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    port = parts.port or 80
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.hostname}:{port}", "Accept: */*"]
    if api_key:
        lines.append(f"X-API-Key: {api_key}")
    return Target(parts.hostname, port, ("\r\n".join(lines) + "\r\n\r\n").encode())


def raise_nofile(wanted: int) -> int:
    """This process's descriptor limit, raised toward ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    goal = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if goal > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (goal, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """One HTTP/1.1 response: its status and headers (lower-case); the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers


class Connection:
    def __init__(self, goal: Target) -> None:
        self.goal = goal
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, tally: Tally) -> bool:
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(self.goal.host, self.goal.port), 10
            )
            return True
        except (OSError, TimeoutError) as error:
            tally.errors[f"connect: {type(error).__name__}"] += 1
            return False

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def call(self, tally: Tally, scheduled: float) -> None:
        if self.writer is None and not await self.open(tally):
            return
        assert self.reader is not None
        assert self.writer is not None
        sent = time.monotonic()
        try:
            self.writer.write(self.goal.request)
            status, headers = await asyncio.wait_for(read_response(self.reader), 60)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            tally.errors[f"request: {type(error).__name__}"] += 1
            self.close()
            return
        now = time.monotonic()
        tally.last_answer = now
        tally.statuses[status] += 1
        tally.latencies.append(now - scheduled)
        tally.service_times.append(now - sent)
        if status == 503:
            tally.shed_latencies.append(now - scheduled)
            if "retry-after" not in headers:
                tally.shed_without_retry_after += 1
        if headers.get("connection", "").lower() == "close":
            self.close()


async def drive(
    connection: Connection, tally: Tally, first: float, interval: float, end: float
) -> None:
    scheduled = first
    while scheduled < end:
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tally.scheduled += 1
        await connection.call(tally, scheduled)
        scheduled += interval


def percentile(values: list[float], share: float, empty: float = float("nan")) -> float:
    """The value below which ``share`` of ``values`` lie; ``empty`` when there are none."""
    if not values:
        return empty
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def milliseconds(values: list[float]) -> str:
    return " ".join(
        f"p{int(share * 100)}={percentile(values, share) * 1000:.1f}ms"
        for share in (0.5, 0.95, 0.99)
    )


async def run(goal: Target, connections: int, rate: float, duration: float) -> Tally:
    tally = Tally()
    pool = [Connection(goal) for _ in range(connections)]
    # Open every connection before the clock starts, a batch at a time (the listen backlog).
    for start in range(0, connections, CONNECT_BATCH):
        await asyncio.gather(*(c.open(tally) for c in pool[start : start + CONNECT_BATCH]))
    opened = sum(1 for c in pool if c.writer is not None)
    print(f"connections open: {opened}/{connections}")
    interval = connections / rate
    began = time.monotonic() + 0.5
    end = began + duration
    await asyncio.gather(
        *(drive(c, tally, began + i / rate, interval, end) for i, c in enumerate(pool))
    )
    for c in pool:
        c.close()
    wall = max(tally.last_answer, end) - began
    answered = sum(tally.statuses.values())
    print(f"offered: {tally.scheduled / duration:.1f} req/s ({tally.scheduled} in {duration:g} s)")
    print(f"achieved: {answered / wall:.1f} req/s answered, {tally.statuses[200] / wall:.1f} 200/s")
    print(f"statuses: {dict(sorted(tally.statuses.items()))}")
    print(f"latency from scheduled send (all): {milliseconds(tally.latencies)}")
    print(f"latency from scheduled send (503): {milliseconds(tally.shed_latencies)}")
    print(f"service time from actual send (all): {milliseconds(tally.service_times)}")
    print(f"503 without Retry-After: {tally.shed_without_retry_after}")
    print(f"socket errors: {sum(tally.errors.values())} {dict(tally.errors)}")
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s over all")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds")
    args = parser.parse_args()
    if not 1 <= args.connections <= MAX_CONNECTIONS:
        parser.error(f"--connections is 1..{MAX_CONNECTIONS}")
    if not 0 < args.rate <= MAX_RATE:
        parser.error(f"--rate is (0, {MAX_RATE:g}]")
    if not 0 < args.duration <= MAX_DURATION:
        parser.error(f"--duration is (0, {MAX_DURATION:g}]")
    limit = raise_nofile(args.connections + 256)
    if limit < args.connections + 64:
        parser.error(f"descriptor limit {limit} is too low for {args.connections} connections")
    asyncio.run(run(target(args.url, args.api_key), args.connections, args.rate, args.duration))


if __name__ == "__main__":
    main()
