"""``GET /api/resources?limit=20`` with a valid API key through the full gateway versus a naive
forwarder (one Redis INCR+EXPIRE pipeline + shared ClientSession), same upstream, same run.

Every process is started here on loopback and stopped by its PID. Goal: gateway >= 0.8x the
forwarder's requests/s, p99 <= 50 ms at 100 connections. ``--profile SECONDS`` also samples the
gateway with py-spy during an extra wrk run and prints where the time goes.

Usage: python -m bench.gateway_bench [--seconds 10] [--connections 100] [--profile 10]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bench.harness import (
    measured,
    process,
    python_module,
    scratch_database,
    scratch_names,
    show,
    wrk,
)
from common.testing import free_port
from resources.seed import demo_fleet

ADMIN_KEY = f"ck_bench_{uuid.uuid4().hex}"


def seed(base: str) -> None:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{base}/api/resources/bulk",
        data=json.dumps({"resources": demo_fleet(400)}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=60).close()  # noqa: S310


def profile(pid: int, seconds: int, url: str, connections: int) -> None:
    """Sample the gateway with py-spy while wrk drives it; print the hottest functions."""
    if shutil.which("py-spy") is None:
        print("py-spy not installed: no profile")
        return
    out = Path(f"/tmp/gateway-profile-{pid}.txt")
    spy = subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--duration", str(seconds), "--format", "raw",
         "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    driver = threading.Thread(
        target=wrk,
        args=(url,),
        kwargs={
            "connections": connections,
            "seconds": seconds,
            "headers": {"X-API-Key": ADMIN_KEY},
        },
    )
    driver.start()
    spy.wait(timeout=seconds + 60)
    driver.join(timeout=seconds + 60)
    if not out.exists():
        print("py-spy produced no profile (needs ptrace permission)")
        return
    totals: dict[str, int] = {}
    samples = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples += int(count)
        # Self time of the leaf frame, and inclusive time of every gateway/common frame.
        frames = stack.split(";")
        seen = set()
        for frame in frames:
            name = frame.split(" (")[0] + " " + frame.split("/")[-1].rstrip(")")
            if ("gateway/" in frame or "common/" in frame) and name not in seen:
                seen.add(name)
                totals[name] = totals.get(name, 0) + int(count)
        leaf = "self: " + frames[-1]
        totals[leaf] = totals.get(leaf, 0) + int(count)
    print(f"\npy-spy: {samples} samples; inclusive share of gateway/common frames, top self:")
    for name, hits in sorted(totals.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {100 * hits / samples:5.1f}%  {name[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--profile", type=int, default=0, help="py-spy seconds (0: none)")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 60 or not 1 <= args.connections <= 1000:
        raise SystemExit("--seconds 1..60, --connections 1..1000")

    prefix, exchange = scratch_names()
    with scratch_database() as database_url:
        shared = {
            "CLOUDOPS_DATABASE_URL": database_url,
            "CLOUDOPS_REDIS_PREFIX": prefix,
            "CLOUDOPS_EVENTS_EXCHANGE": exchange,
            "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
            "CLOUDOPS_LOG_LEVEL": "WARNING",
        }
        resources_port, gateway_port, naive_port = free_port(), free_port(), free_port()
        resources = f"http://127.0.0.1:{resources_port}"
        with process(
            python_module("resources"),
            {**shared, "CLOUDOPS_RESOURCES_PORT": str(resources_port)},
            f"{resources}/health/live",
        ):
            seed(resources)

            def measure(url: str, pids: dict[str, int]) -> dict[str, Any]:
                return measured(
                    url,
                    pids,
                    connections=args.connections,
                    seconds=args.seconds,
                    headers={"X-API-Key": ADMIN_KEY},
                )

            naive = f"http://127.0.0.1:{naive_port}"
            with process(
                [sys.executable, str(Path(__file__).parent / "gateway_naive_forwarder.py"),
                 str(naive_port), resources, prefix],
                {},
                f"{naive}/health/live",
            ) as forwarder:  # fmt: skip
                url = f"{naive}/api/resources?limit=20"
                wrk(url, connections=args.connections, seconds=2)
                baseline = measure(url, {"forwarder": forwarder.pid})
                # Paced at about half of what the forwarder sustains, for latency without a queue.
                pause_ms = max(1, round(1000 * args.connections / (baseline["rps"] / 2)))
                paced_baseline = wrk(
                    url, connections=args.connections, seconds=args.seconds, pause_ms=pause_ms
                )
            gateway = f"http://127.0.0.1:{gateway_port}"
            gateway_env = {
                **shared,
                "CLOUDOPS_GATEWAY_PORT": str(gateway_port),
                "CLOUDOPS_GATEWAY_RESOURCES_URL": resources,
                "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
                "CLOUDOPS_GATEWAY_RATE_LIMIT": "1000000000",
            }
            with process(python_module("gateway"), gateway_env, f"{gateway}/health/live") as gw:
                url = f"{gateway}/api/resources?limit=20"
                wrk(url, connections=args.connections, seconds=2, headers={"X-API-Key": ADMIN_KEY})
                full = measure(url, {"gateway": gw.pid})
                paced = wrk(
                    url,
                    connections=args.connections,
                    seconds=args.seconds,
                    headers={"X-API-Key": ADMIN_KEY},
                    pause_ms=pause_ms,
                )
                if args.profile:
                    profile(gw.pid, args.profile, url, args.connections)

    print(f"\nGET /api/resources?limit=20, {args.connections} connections, {args.seconds} s")
    show("naive forwarder (baseline)", baseline)
    show("gateway (all middleware)", full)
    print(f"CPU per request: naive {baseline['cpu_us']:.0f} us, gateway {full['cpu_us']:.0f} us")
    ratio = full["rps"] / baseline["rps"]
    print(f"gateway / naive = {ratio:.2f}x (goal >= 0.80x); gateway p99 {full['p99_ms']:.1f} ms "
          f"(goal <= 50 ms)")  # fmt: skip
    print(
        f"\nSaturated, latency is mostly queue: {args.connections} connections / "
        f"{full['rps']:.0f} req/s = {1000 * args.connections / full['rps']:.0f} ms on average."
        f"\nPaced: {args.connections} connections, each pausing {pause_ms} ms between requests"
    )
    show("naive forwarder (paced)", paced_baseline)
    show("gateway (paced)", paced)


if __name__ == "__main__":
    main()
