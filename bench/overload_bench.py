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
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import uvloop

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
    done: int = 0
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


#: The scheduler's tick: each sends every request whose time has come (a request sent up to a
#: tick late counts the delay in its latency, which is measured from its scheduled time).
TICK_SECONDS = 0.001


class Connection(asyncio.Protocol):
    """One client's keep-alive connection: requests in their scheduled order, one at a time
    (HTTP/1.1 without pipelining), an answer parsed as its bytes arrive. A protocol driven by
    one scheduler, not a coroutine per connection with streams and a sleep per request: at tens
    of thousands of requests a second the generator shares the cores with the server it
    measures, and every microsecond it spends is one the server does not get."""

    def __init__(self, goal: Target, tally: Tally) -> None:
        self.goal = goal
        self.tally = tally
        self.transport: asyncio.Transport | None = None
        self.reopening: asyncio.Future[None] | None = None
        self.buffer = bytearray()
        self.backlog: deque[float] = deque()  # scheduled times not sent yet
        self.in_flight: tuple[float, float] | None = None  # (scheduled, sent)

    async def open(self) -> bool:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: self, self.goal.host, self.goal.port), 10
            )
            return True
        except (OSError, TimeoutError) as error:
            self.tally.errors[f"connect: {type(error).__name__}"] += 1
            return False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.buffer.clear()
        self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.in_flight is not None:
            self.in_flight = None
            self.tally.errors["request: ConnectionResetError"] += 1
            self.tally.done += 1
        if self.backlog:
            self._reopen_soon()

    def _reopen_soon(self) -> None:
        # (The first open happens before any request is due: only a reopen can be under way.)
        if self.reopening is None or self.reopening.done():
            self.reopening = asyncio.ensure_future(self._reopen())

    async def _reopen(self) -> None:
        if not await self.open():
            while self.backlog:  # nothing to send them on
                self.backlog.popleft()
                self.tally.errors["request: not sent"] += 1
                self.tally.done += 1

    def submit(self, scheduled: float) -> None:
        self.tally.scheduled += 1
        self.backlog.append(scheduled)
        if self.transport is None:
            self._reopen_soon()
            return
        if self.in_flight is None:
            self._send_next()

    def _send_next(self) -> None:
        if self.backlog and self.in_flight is None and self.transport is not None:
            self.in_flight = (self.backlog.popleft(), time.monotonic())
            self.transport.write(self.goal.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self.buffer[:head_end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:  # every answer here has a length (nginx's, the services' and the gateway's)
            self.tally.errors["request: no Content-Length"] += 1
            self.close()
            return
        stop = head.find(b"\r\n", at + 2)
        whole = head_end + 4 + int(head[at + 17 : stop if stop >= 0 else len(head)])
        if len(self.buffer) < whole:
            return
        del self.buffer[:whole]
        self._answered(int(head[9:12]), b"\r\nretry-after:" in head)
        if b"\r\nconnection: close" in head:
            self.close()
        else:
            self._send_next()

    def _answered(self, status: int, retry_after: bool) -> None:
        if self.in_flight is None:
            return
        (scheduled, sent), self.in_flight = self.in_flight, None
        tally, now = self.tally, time.monotonic()
        tally.done += 1
        tally.last_answer = now
        tally.statuses[status] += 1
        tally.latencies.append(now - scheduled)
        tally.service_times.append(now - sent)
        if status == 503:
            tally.shed_latencies.append(now - scheduled)
            if not retry_after:
                tally.shed_without_retry_after += 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


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
    pool = [Connection(goal, tally) for _ in range(connections)]
    # Open every connection before the clock starts, a batch at a time (the listen backlog).
    for start in range(0, connections, CONNECT_BATCH):
        await asyncio.gather(*(c.open() for c in pool[start : start + CONNECT_BATCH]))
    opened = sum(1 for c in pool if c.transport is not None)
    print(f"connections open: {opened}/{connections}")
    # Request k is due at began + k / rate, on connection k mod connections.
    began = time.monotonic() + 0.5
    end = began + duration
    total = int(duration * rate)
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - began) * rate) + 1)
        while sent < due:
            pool[sent % connections].submit(began + sent / rate)
            sent += 1
        await asyncio.sleep(TICK_SECONDS)
    # Bounded: an answer still missing a minute after the last send counts as an error.
    deadline = time.monotonic() + 60
    while tally.done < total and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if tally.done < total:
        tally.errors["request: no answer within 60 s"] += total - tally.done
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
    uvloop.run(run(target(args.url, args.api_key), args.connections, args.rate, args.duration))


if __name__ == "__main__":
    main()
