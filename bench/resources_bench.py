"""``GET /api/resources?limit=20`` (a cache hit) on the resources service vs a bare aiohttp app.

The baseline is ``bench/hello_app.py``: aiohttp on its default event loop, answering a small JSON
body with no middleware. Both servers run side by side as one process each, and the rounds
alternate between them, so a neighbour's load on a shared machine falls on both alike. With two
CPUs or more each server runs on CPU 0 and wrk (one thread) on CPU 1, so the load generator never
competes with the server it measures. Each round reports requests/s, latency percentiles and the
server's CPU per request; the summary gives the median ratio and the best round's.

Usage: python -m bench.resources_bench [--seconds 10] [--connections 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import urllib.request
from pathlib import Path
from typing import Any

from bench.gateway_bench import seed
from bench.harness import (
    measured,
    pinned,
    process,
    python_module,
    rss_mb,
    scratch_database,
    scratch_names,
    show,
)
from common.testing import free_port

SERVER_CPU, LOAD_CPU = 0, 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    hello_port, port = free_port(), free_port()
    prefix, exchange = scratch_names()
    hello_argv = [sys.executable, str(Path(__file__).parent / "hello_app.py"), str(hello_port)]
    hello_url = f"http://127.0.0.1:{hello_port}/"
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/api/resources?limit=20"
    env = {
        "CLOUDOPS_REDIS_PREFIX": prefix,
        "CLOUDOPS_EVENTS_EXCHANGE": exchange,
        "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
        "CLOUDOPS_LOG_LEVEL": "WARNING",
        "CLOUDOPS_RESOURCES_PORT": str(port),
        "CLOUDOPS_RESOURCES_WORKERS": "1",
    }
    rounds: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with (
        scratch_database() as database_url,
        process(pinned(hello_argv, SERVER_CPU), {}, hello_url) as hello,
        process(
            pinned(python_module("resources"), SERVER_CPU),
            {**env, "CLOUDOPS_DATABASE_URL": database_url},
            f"{base}/health/live",
        ) as service,
    ):
        seed(base)
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - warms the cache
            body_bytes = len(answer.read())
        # wrk on a CPU of its own, one thread: it never competes with the server it measures.
        load = {
            "connections": args.connections,
            "seconds": args.seconds,
            "threads": 1,
            "cpu": LOAD_CPU,
        }
        for number in range(1, args.rounds + 1):
            baseline = measured(hello_url, {"hello": hello.pid}, **load)
            result = measured(url, {"resources": service.pid}, **load)
            rounds.append((baseline, result))
            print(f"\nround {number}")
            show("bare aiohttp hello (baseline)", baseline)
            show("GET /api/resources?limit=20", result)
            print(
                f"CPU per request: baseline {baseline['cpu_us']:.1f} us, "
                f"resources {result['cpu_us']:.1f} us; "
                f"ratio {result['rps'] / baseline['rps']:.2f}"
            )
        baseline_rss, service_rss = rss_mb(hello.pid), rss_mb(service.pid)

    ratios = [result["rps"] / baseline["rps"] for baseline, result in rounds]
    print(
        f"\nwrk: {args.connections} connections, {args.seconds}s x {args.rounds} rounds, "
        f"loopback; resources: 1 worker, cache hits of a {body_bytes}-byte body"
    )
    print(
        f"ratio resources / baseline: median {statistics.median(ratios):.2f}, "
        f"best {max(ratios):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
    )
    print(f"RSS: baseline {baseline_rss:.0f} MiB, resources {service_rss:.0f} MiB")


if __name__ == "__main__":
    main()
