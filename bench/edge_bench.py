"""The price of the secured path: ``GET /api/resources?limit=20`` with an API key, seven ways.

1. the resources service alone (no proxy), answering from its read cache;
2. a naive forwarder (one Redis call, then forward) in front of it;
3. the gateway alone in front of it (decides and copies every body);
4. nginx in front of the gateway proxying everything (the path before the edge decision);
5. nginx's edge (``nginx/cloudops_edge.lua``): the gateway decides the first request of a kind,
   nginx remembers the decision for a few seconds, counting every request in the gateway's
   rate-limit window in Redis, and answers the read itself with the body the service tagged,
   after asking Redis (once per batch of reads) that its generation is still the current one;
6. a bare nginx ``proxy_pass`` to the service, with no check at all: not a secured path, but the
   ceiling of any design in which nginx hands every read to the service;
7. the edge of 5 with no room for bodies: every read let through to the service, as a read the
   service does not tag (or one just after a write) goes.

Every process is started here on loopback and stopped by its PID; nginx is rendered from the
repository's template by platformctl's own code. The rounds alternate the paths, so a neighbour's
burst of load on a shared machine is spread over all of them, and the best round of each is
reported with the CPU each path spends per request (summed over its processes), which moves much
less with the neighbours than req/s does. Goal: path 5 >= 0.9x path 1 (path 7: what a read the
edge cannot answer costs).

Usage: python -m bench.edge_bench [--seconds 10] [--connections 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.gateway_bench import ADMIN_KEY, seed
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

ROOT = Path(__file__).resolve().parents[1]
PATH = "/api/resources?limit=20"


def platformctl() -> ModuleType:
    spec = importlib.util.spec_from_file_location("platformctl", ROOT / "scripts/platformctl.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["platformctl"] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def nginx(
    run_dir: Path,
    gateway_port: int,
    services: dict[str, int],
    prefix: str,
    bodies_mb: int | None = None,
) -> tuple[list[str], str]:
    """argv of an nginx for the template, and its public URL."""
    public_port = free_port()
    dashboard = run_dir / "dashboard"
    dashboard.mkdir(parents=True, exist_ok=True)
    conf = platformctl().render_nginx(
        run_dir,
        gateway_port,
        public_port,
        dashboard,
        service_ports=services,
        redis_prefix=prefix,
        edge_bodies_mb=bodies_mb,
    )
    return ["nginx", "-c", str(conf), "-p", str(conf.parent)], f"http://127.0.0.1:{public_port}"


# The path before the edge decision: nginx proxies every API request to the gateway, which decides
# and copies the body both ways (the directives of that path in nginx/nginx.conf.template then).
# Pointed at the service instead, the same configuration is the bare proxy of path 6.
PROXY_ONLY = """
pid {run}/nginx.pid;
error_log {run}/error.log warn;
daemon off;
worker_processes auto;
events {{ worker_connections 4096; }}
http {{
    access_log {run}/access.log;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    proxy_request_buffering off;
    upstream cloudops_upstream {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_connect_timeout 1s;
        location /api/ {{ proxy_pass http://cloudops_upstream; }}
    }}
}}
"""


def proxy_only_nginx(run_dir: Path, upstream_port: int) -> tuple[list[str], str]:
    """argv of an nginx that proxies everything to one upstream, and its public URL."""
    run_dir.mkdir(parents=True)
    public_port = free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(PROXY_ONLY.format(run=run_dir, upstream=upstream_port, port=public_port))
    return ["nginx", "-c", str(conf), "-p", str(run_dir)], f"http://127.0.0.1:{public_port}"


def redis_pid() -> int | None:
    """The local redis-server's PID, if one runs here."""
    for stat in Path("/proc").glob("[0-9]*/comm"):
        try:
            if stat.read_text().strip() == "redis-server":
                return int(stat.parent.name)
        except OSError:
            continue
    return None


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if (
        not 1 <= args.seconds <= 60
        or not 1 <= args.connections <= 1000
        or not 1 <= args.rounds <= 5
    ):
        raise SystemExit("--seconds 1..60, --connections 1..1000, --rounds 1..5")

    prefix, exchange = scratch_names()
    loads = [load_average()]
    with scratch_database() as database_url, ExitStack() as stack:
        shared = {
            "CLOUDOPS_DATABASE_URL": database_url,
            "CLOUDOPS_REDIS_PREFIX": prefix,
            "CLOUDOPS_EVENTS_EXCHANGE": exchange,
            "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
            "CLOUDOPS_LOG_LEVEL": "WARNING",
        }
        ports = {name: free_port() for name in ("resources", "naive", "gateway")}
        resources = f"http://127.0.0.1:{ports['resources']}"
        service = stack.enter_context(
            process(
                python_module("resources"),
                {**shared, "CLOUDOPS_RESOURCES_PORT": str(ports["resources"])},
                f"{resources}/health/live",
            )
        )
        seed(resources)
        naive = f"http://127.0.0.1:{ports['naive']}"
        forwarder = stack.enter_context(
            process(
                [sys.executable, str(ROOT / "bench" / "gateway_naive_forwarder.py"),
                 str(ports["naive"]), resources, prefix],
                {},
                f"{naive}/health/live",
            )
        )  # fmt: skip
        gateway = f"http://127.0.0.1:{ports['gateway']}"
        gw = stack.enter_context(
            process(
                python_module("gateway"),
                {
                    **shared,
                    "CLOUDOPS_GATEWAY_PORT": str(ports["gateway"]),
                    "CLOUDOPS_GATEWAY_RESOURCES_URL": resources,
                    "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
                    # Counted on every request, never refused; a minute's window keeps the
                    # sliding log in Redis the size a busy key's would be.
                    "CLOUDOPS_GATEWAY_RATE_LIMIT": "1000000000",
                    "CLOUDOPS_GATEWAY_RATE_WINDOW_SECONDS": "60",
                },
                f"{gateway}/health/live",
            )
        )
        run = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cloudops-edge-")))
        old_argv, old_url = proxy_only_nginx(run / "old", ports["gateway"])
        old = stack.enter_context(process(old_argv, {}, f"{old_url}/api/health"))
        new_argv, new_url = nginx(
            run / "new", ports["gateway"], {"resources": ports["resources"]}, prefix
        )
        new = stack.enter_context(process(new_argv, {}, f"{new_url}/api/health"))
        through_argv, through_url = nginx(
            run / "through", ports["gateway"], {"resources": ports["resources"]}, prefix, 0
        )
        through = stack.enter_context(process(through_argv, {}, f"{through_url}/api/health"))
        bare_argv, bare_url = proxy_only_nginx(run / "bare", ports["resources"])
        bare = stack.enter_context(process(bare_argv, {}, f"{bare_url}/api/resources?limit=1"))

        # Redis serves the cached read, the rate limit and the edge's count: its CPU is the path's
        # too (shared with anything else using it on this machine).
        found = redis_pid()
        redis = {"redis": found} if found else {}
        paths = {
            "1 service alone": (resources + PATH, {"service": service.pid, **redis}),
            "2 naive forwarder": (
                naive + PATH,
                {"forwarder": forwarder.pid, "service": service.pid, **redis},
            ),
            "3 gateway proxy alone": (
                gateway + PATH,
                {"gateway": gw.pid, "service": service.pid, **redis},
            ),
            "4 nginx + gateway proxy (old)": (
                old_url + PATH,
                {"nginx": old.pid, "gateway": gw.pid, "service": service.pid, **redis},
            ),
            "5 nginx + edge decision (new)": (
                new_url + PATH,
                {"nginx": new.pid, "gateway": gw.pid, "service": service.pid, **redis},
            ),
            "6 bare nginx proxy (no checks)": (
                bare_url + PATH,
                {"nginx": bare.pid, "service": service.pid, **redis},
            ),
            "7 edge, every read to the service": (
                through_url + PATH,
                {"nginx": through.pid, "gateway": gw.pid, "service": service.pid, **redis},
            ),
        }
        for url, _ in paths.values():  # warm every pool and cache
            wrk(url, connections=args.connections, seconds=2, headers={"X-API-Key": ADMIN_KEY})
        best: dict[str, dict[str, Any]] = {}
        for _ in range(args.rounds):
            for name, (url, pids) in paths.items():
                result = measured(
                    url,
                    pids,
                    connections=args.connections,
                    seconds=args.seconds,
                    headers={"X-API-Key": ADMIN_KEY},
                )
                if name not in best or result["rps"] > best[name]["rps"]:
                    best[name] = result
            loads.append(load_average())

    print(
        f"\nGET {PATH} with an API key, {args.connections} connections, {args.seconds} s, "
        f"best of {args.rounds} alternating rounds; load average (1/5/15 min) before and after "
        f"each round: {' | '.join(loads)} on {os.cpu_count()} CPUs shared with other work"
    )
    alone = best["1 service alone"]
    for name, result in best.items():
        show(name, result)
    print("\nratio to the service alone (req/s) and CPU per request, all processes of the path:")
    for name, result in best.items():
        parts = ", ".join(f"{proc} {us:.0f}" for proc, us in result["cpu"].items())
        print(
            f"  {name:<32} {result['rps'] / alone['rps']:5.2f}x   "
            f"{result['cpu_us']:6.0f} us CPU/request ({parts})"
        )
    new_ratio = best["5 nginx + edge decision (new)"]["rps"] / alone["rps"]
    old_ratio = best["4 nginx + gateway proxy (old)"]["rps"] / alone["rps"]
    bare_ratio = best["6 bare nginx proxy (no checks)"]["rps"] / alone["rps"]
    through_ratio = best["7 edge, every read to the service"]["rps"] / alone["rps"]
    print(f"\nnew secured path / service alone = {new_ratio:.2f}x (goal >= 0.9x)")
    print(f"old secured path / service alone = {old_ratio:.2f}x")
    print(f"bare nginx proxy / service alone = {bare_ratio:.2f}x (any read nginx hands on)")
    print(f"edge, read to the service / alone = {through_ratio:.2f}x (a read the edge can't keep)")


if __name__ == "__main__":
    main()
