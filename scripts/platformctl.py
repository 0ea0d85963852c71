"""Run the whole CloudOps platform on one machine: ``up``, ``down``, ``servers``, ``seed``.

``up`` makes sure PostgreSQL, Redis and RabbitMQ answer (starting or installing local ones), creates
the database, applies every service's migrations, starts each service and nginx, seeds demo data,
prints the URL and the admin key, and then waits: Ctrl-C (or ``down``) stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

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


@dataclass(frozen=True)
class Service:
    name: str
    offset: int

    @property
    def port(self) -> int:
        return PORT_BASE + self.offset

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
    if shutil.which("nginx") is None:
        _apt_install("nginx-light")


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


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            return True
    except OSError:
        return False


def _render_nginx(gateway_port: int) -> Path:
    conf_dir = RUN / "nginx"
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (conf_dir / sub).mkdir(parents=True, exist_ok=True)
    (conf_dir / "active.conf").write_text(
        "upstream cloudops_gateway {\n"
        f"    server 127.0.0.1:{gateway_port};\n"
        "    keepalive 64;\n"
        "}\n"
    )
    template = Template((ROOT / "nginx" / "nginx.conf.template").read_text())
    conf = conf_dir / "nginx.conf"
    conf.write_text(
        template.safe_substitute(
            PUBLIC_PORT=PUBLIC_PORT,
            LISTEN_V6=f"listen [::1]:{PUBLIC_PORT};" if _has_ipv6_loopback() else "",
            RUN_DIR=str(RUN),
            DASHBOARD_DIR=str(ROOT / "dashboard"),
        )
    )
    return conf


def _admin_key() -> str:
    key = os.environ.get("CLOUDOPS_BOOTSTRAP_ADMIN_KEY")
    if key:
        return key
    stored = RUN / "admin-key"
    if stored.exists():
        return stored.read_text().strip()
    key = f"co_{secrets.token_urlsafe(32)}"
    stored.write_text(key)
    stored.chmod(0o600)
    return key


def seed(api: str, admin_key: str) -> int:
    """Upsert the demo fleet through the public API (idempotent); returns how many it created."""
    from resources.seed import demo_fleet

    body = json.dumps({"resources": demo_fleet()}).encode()
    request = urllib.request.Request(  # noqa: S310 - the platform's own loopback URL
        f"{api}/api/resources/bulk",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": admin_key},
    )
    with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
        created: int = json.load(resp)["meta"]["created"]
    return created


class Platform:
    """The processes ``up`` started, so that they can all be stopped, in reverse order."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (RUN / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.children.append((name, process))
        self._write_pids()
        return process

    def _write_pids(self) -> None:
        pids = {"platform": os.getpid(), **{n: p.pid for n, p in self.children}}
        (RUN / "pids.json").write_text(json.dumps(pids))

    def stop_all(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                say(f"stopping {name} (pid {process.pid})")
                _stop(process.pid)
        self.children.clear()
        with contextlib.suppress(FileNotFoundError):
            (RUN / "pids.json").unlink()


def up(no_wait: bool = False) -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    (RUN / "logs").mkdir(exist_ok=True)
    ensure_servers()
    services = available_services()
    asyncio.run(_create_database())
    asyncio.run(_migrate(services))
    admin_key = _admin_key()
    platform = Platform()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        env = {
            **os.environ,
            "CLOUDOPS_DATABASE_URL": DATABASE_URL,
            "CLOUDOPS_REDIS_URL": REDIS_URL,
            "CLOUDOPS_AMQP_URL": AMQP_URL,
            "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": admin_key,
            "CLOUDOPS_GATEWAY_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
        }
        for service in services:
            env[f"{service.env_prefix}PORT"] = str(service.port)
            env[f"CLOUDOPS_GATEWAY_{service.name.upper()}_URL"] = f"http://127.0.0.1:{service.port}"
        for service in services:
            process = platform.spawn(service.name, [sys.executable, "-m", service.name], env)
            if not _wait_http(f"http://127.0.0.1:{service.port}/health/live", 60, process):
                log = RUN / "logs" / f"{service.name}.log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                raise SystemExit(f"{service.name} did not start; the end of {log}:\n{tail}")
            say(f"{service.name} is up on 127.0.0.1:{service.port}")
        gateway_port = next(s.port for s in services if s.name == "gateway")
        conf = _render_nginx(gateway_port)
        nginx = platform.spawn("nginx", ["nginx", "-c", str(conf), "-p", str(RUN / "nginx")], env)
        api = f"http://127.0.0.1:{PUBLIC_PORT}"
        if not _wait_http(f"{api}/api/health", 30, nginx):
            raise SystemExit(f"nginx did not start; see {RUN}/nginx/error.log")
        created = seed(api, admin_key)
        say(f"seeded the demo fleet ({created} new resources)")
        say(f"CloudOps is running at {api}")
        say(f"admin API key: {admin_key}")
        say("press Ctrl-C (or run `make down`) to stop everything")
        if no_wait:
            return
        while all(p.poll() is None for _, p in platform.children):
            time.sleep(0.5)
        dead = [n for n, p in platform.children if p.poll() is not None]
        say(f"stopping: {', '.join(dead)} exited; see {RUN}/logs")
    except KeyboardInterrupt:
        pass
    finally:
        if not no_wait:
            platform.stop_all()
            say("stopped")


def down() -> None:
    """Stop a running ``up`` (and, should it be gone, whatever it started)."""
    pids_file = RUN / "pids.json"
    if not pids_file.exists():
        say("nothing is running")
        return
    pids: dict[str, int] = json.loads(pids_file.read_text())
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
    parser.add_argument("command", choices=["up", "down", "servers", "seed"])
    args = parser.parse_args()
    if args.command == "up":
        up()
    elif args.command == "down":
        down()
    elif args.command == "servers":
        ensure_servers()
    else:
        say(f"created {seed(f'http://127.0.0.1:{PUBLIC_PORT}', _admin_key())} resources")


if __name__ == "__main__":
    main()
