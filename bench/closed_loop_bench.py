"""Closed loop through nginx at 100, 1,000 and 10,000 connections against a running platform.

wrk keeps every connection busy (a client asks again the moment it has its answer, 503s
included), first at 100 connections to measure the capacity, then at each ``--connections``. What
each answer was and how long nginx took over it come from nginx's own access log (status and
``$request_time`` of every request of the run), so the 503s' latency is told apart from the
200s'. Goodput is the 200s per second; the goal at 1,000 connections is 80% of the capacity.

wrk ends a run by closing every connection at once, so the requests still in flight or waiting in
nginx's line at that moment end as 499 (client closed). Those are told apart by the time nginx
logged them (``$msec``): a 499 logged after wrk's deadline was cut off by the stop; one logged
before it is a client that gave up (wrk's own timeout is 5 s), and counts as a failure.

    make up   # with CLOUDOPS_GATEWAY_RATE_LIMIT=1000000000, or the admin key answers 429s
    python -m bench.closed_loop_bench --api-key "$(cat run/admin-key)"

Only loopback is a target; every run is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from bench.harness import wrk
from bench.overload_bench import percentile, raise_nofile

ROOT = Path(__file__).resolve().parents[1]
PATH = "/api/resources?limit=20"
# nginx writes its access log in batches at least once a second.
LOG_FLUSH_SECONDS = 1.5


#: The status under which the 499s that wrk's own stop caused are reported.
CUT_AT_STOP = "499 at stop"


def answers(log: Path, start: int, deadline: float) -> dict[int | str, list[float]]:
    """Request times (s) by status of the API requests logged after byte ``start``; the 499s
    logged after ``deadline`` (Unix time) come under :data:`CUT_AT_STOP`."""
    by_status: dict[int | str, list[float]] = defaultdict(list)
    with log.open("rb") as lines:
        lines.seek(start)
        for raw in lines:
            line = raw.decode(errors="replace")
            if '"GET /api/resources ' not in line:
                continue
            fields = line.split('" ', 1)[1].split()
            status: int | str = int(fields[0])
            if status == 499 and float(fields[3]) >= deadline:
                status = CUT_AT_STOP
            by_status[status].append(float(fields[2]))
    return by_status


def run(url: str, key: str, connections: int, seconds: int, log: Path) -> dict[str, object]:
    start = log.stat().st_size
    deadline = time.time() + seconds
    result = wrk(url, connections=connections, seconds=seconds, headers={"X-API-Key": key})
    time.sleep(LOG_FLUSH_SECONDS)
    by_status = answers(log, start, deadline)
    return {"wrk": result, "by_status": by_status, "seconds": seconds}


def show(name: str, outcome: dict[str, object], capacity: float | None) -> float:
    by_status = outcome["by_status"]
    assert isinstance(by_status, dict)
    seconds = outcome["seconds"]
    assert isinstance(seconds, int)
    wrk_result = outcome["wrk"]
    assert isinstance(wrk_result, dict)
    goodput = len(by_status.get(200, [])) / seconds
    share = f" = {goodput / capacity:.0%} of capacity" if capacity else ""
    print(f"{name}: {goodput:.0f} answers 200/s{share}; wrk socket errors {wrk_result['errors']}")
    for status in sorted(by_status, key=str):
        times = by_status[status]
        p50, p95, p99, top = (percentile(times, share) * 1000 for share in (0.5, 0.95, 0.99, 1))
        print(
            f"    {status}: {len(times):7d} ({len(times) / seconds:8.0f}/s)  nginx request time "
            f"p50 {p50:6.0f} ms  p95 {p95:6.0f} ms  p99 {p99:6.0f} ms  max {top:6.0f} ms"
        )
    return goodput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--connections", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--access-log", type=Path, default=ROOT / "run/nginx/access.log")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 120 or not all(1 <= c <= 10_000 for c in args.connections):
        raise SystemExit("--seconds 1..120, --connections 1..10000")
    raise_nofile(max(args.connections) * 2 + 100)
    url = args.url + PATH
    base = run(url, args.api_key, 100, args.seconds, args.access_log)
    capacity = show("100 connections (capacity)", base, None)
    for connections in args.connections:
        show(
            f"{connections} connections",
            run(url, args.api_key, connections, args.seconds, args.access_log),
            capacity,
        )


if __name__ == "__main__":
    main()
