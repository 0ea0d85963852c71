"""``GET /api/resources?limit=20`` (cache hit) on the resources service vs a bare aiohttp app.

Both run as one process on loopback; wrk drives each with the same connections and duration.
Usage: python -m bench.resources_bench [--seconds 10] [--connections 100] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

from bench.harness import process, python_module, rss_mb, scratch_database, scratch_names, show, wrk
from common.testing import free_port
from resources.seed import demo_fleet


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    hello_port = free_port()
    with process(
        [sys.executable, str(Path(__file__).parent / "hello_app.py"), str(hello_port)],
        {},
        f"http://127.0.0.1:{hello_port}/",
    ) as hello:
        baseline = wrk(
            f"http://127.0.0.1:{hello_port}/", connections=args.connections, seconds=args.seconds
        )
        baseline_rss = rss_mb(hello.pid)

    port = free_port()
    prefix, exchange = scratch_names()
    with scratch_database() as database_url:
        env = {
            "CLOUDOPS_DATABASE_URL": database_url,
            "CLOUDOPS_REDIS_PREFIX": prefix,
            "CLOUDOPS_EVENTS_EXCHANGE": exchange,
            "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
            "CLOUDOPS_LOG_LEVEL": "WARNING",
            "CLOUDOPS_RESOURCES_PORT": str(port),
            "CLOUDOPS_RESOURCES_WORKERS": str(args.workers),
        }
        base = f"http://127.0.0.1:{port}"
        with process(python_module("resources"), env, f"{base}/health/live") as service:
            request = urllib.request.Request(  # noqa: S310 - loopback
                f"{base}/api/resources/bulk",
                data=json.dumps({"resources": demo_fleet(400)}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            urllib.request.urlopen(request, timeout=60).close()  # noqa: S310
            url = f"{base}/api/resources?limit=20"
            urllib.request.urlopen(url, timeout=10).close()  # noqa: S310 - warms the cache
            result = wrk(url, connections=args.connections, seconds=args.seconds)
            service_rss = rss_mb(service.pid)

    print(
        f"\nwrk: {args.connections} connections, {args.seconds}s, loopback; "
        f"resources workers={args.workers}"
    )
    show("bare aiohttp hello (baseline)", baseline)
    show("GET /api/resources?limit=20", result)
    print(f"ratio resources / baseline: {result['rps'] / baseline['rps']:.2f}")
    print(f"RSS: baseline {baseline_rss:.0f} MiB, resources {service_rss:.0f} MiB")


if __name__ == "__main__":
    main()
