"""Cross-service and end-to-end tests: the platform as an operator runs it.

The launcher here starts ``platformctl.py up`` exactly as ``make up`` does, isolated on the test
servers (own database, Redis prefix, exchange, ports and run directory), and stops it by its PID.
"""

from __future__ import annotations

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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from common.testing import (
    TEST_AMQP_URL,
    TEST_REDIS_URL,
    ServiceProcess,
    free_port,
    free_port_block,
    scratch_database,
    scratch_exchange,
    scratch_redis_prefix,
)

ROOT = Path(__file__).resolve().parents[1]
PLATFORMCTL = ROOT / "scripts" / "platformctl.py"
ADMIN_KEY = "co_test_admin_key_0123456789abcdefghijklmnop"
ADMIN_PASSWORD = "test-dashboard-password-0123456789"


def launch_up(
    database_url: str, run_dir: Path, public_port: int, *, port_block: int, **extra_env: str
) -> subprocess.Popen[str]:
    """``platformctl.py up`` as ``make up`` runs it, isolated on the test servers."""
    env = {
        **os.environ,
        "CLOUDOPS_PUBLIC_PORT": str(public_port),
        "CLOUDOPS_PORT_BASE": str(free_port_block(port_block)),
        "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CLOUDOPS_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "CLOUDOPS_DATABASE_URL": database_url,
        "CLOUDOPS_REDIS_URL": TEST_REDIS_URL,
        "CLOUDOPS_AMQP_URL": TEST_AMQP_URL,
        "CLOUDOPS_REDIS_PREFIX": scratch_redis_prefix(),
        "CLOUDOPS_EVENTS_EXCHANGE": scratch_exchange(),
        "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
        "CLOUDOPS_RUN_DIR": str(run_dir),
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, str(PLATFORMCTL), "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@dataclass
class Platform:
    api: str
    run_dir: Path
    process: subprocess.Popen[str]
    output: list[str]


@contextmanager
def running_platform(
    database_url: str,
    run_dir: Path,
    *,
    port_block: int = 4,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Platform]:
    """The platform, up and seeded (its ``up`` printed "press Ctrl-C"), stopped afterwards."""
    public_port = free_port_block(1)
    process = launch_up(
        database_url, run_dir, public_port, port_block=port_block, **(extra_env or {})
    )
    output: list[str] = []
    assert process.stdout is not None
    # The first run in a checkout also installs and builds the dashboard.
    deadline = time.monotonic() + 420
    try:
        for line in process.stdout:
            output.append(line)
            if "press Ctrl-C" in line or time.monotonic() > deadline:
                break
        assert any("CloudOps is running at" in ln for ln in output), "".join(output)
        yield Platform(f"http://127.0.0.1:{public_port}", run_dir, process, output)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        process.stdout.close()


def request(
    url: str,
    *,
    key: str | None = None,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    sent = {"X-API-Key": key} if key else {}
    if body is not None:
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    req = urllib.request.Request(url, data=body, method=method, headers=sent)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def traced_request(
    url: str, *, key: str | None = ADMIN_KEY, **kw: Any
) -> tuple[int, dict[str, str], bytes, str]:
    """``request`` with a fresh ``X-Request-ID``, returned last (to find it in a log)."""
    request_id = f"req-{uuid.uuid4().hex}"
    headers = {"X-Request-ID": request_id, **kw.pop("headers", {})}
    status, got, body = request(url, key=key, headers=headers, **kw)
    return status, got, body, request_id


def new_api_key(api: str, permissions: list[str], **fields: Any) -> tuple[str, str]:
    """A new API key made by the admin key through ``api`` (a base URL), and its id."""
    body = {"name": f"k{uuid.uuid4().hex[:8]}", "owner": "tests", "permissions": permissions}
    status, _, raw, _ = traced_request(
        f"{api}/api/admin/keys", method="POST", body=json.dumps(body | fields).encode()
    )
    assert status == 201, raw
    data = json.loads(raw)["data"]
    return data["key"], data["id"]


@contextmanager
def nginx_in_front(
    run_dir: Path,
    processes: list[ServiceProcess],
    gateway: ServiceProcess,
    service_ports: dict[str, int],
    **render: Any,
) -> Iterator[str]:
    """``processes`` started (the gateway among them), nginx rendered by :func:`render_nginx` in
    front of them; its public URL once it serves ``/api/health``. Everything is stopped after,
    by its PID."""
    try:
        for process in processes:
            process.start(timeout=60)
        public_port = free_port()
        conf = render_nginx(run_dir, public_port, gateway.port, service_ports, **render)
        with running_nginx(conf, public_port) as nginx:
            url = f"http://127.0.0.1:{public_port}"
            wait_until_served(f"{url}/api/health", nginx)
            yield url
    finally:
        for process in reversed(processes):
            process.close()


def load_platformctl() -> ModuleType:
    """``scripts/platformctl.py`` as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("platformctl", PLATFORMCTL)
    assert spec is not None
    assert spec.loader is not None
    module = sys.modules.get("platformctl")
    if module is None:
        module = importlib.util.module_from_spec(spec)
        # dataclasses look their module up in sys.modules while the module runs.
        sys.modules["platformctl"] = module
        spec.loader.exec_module(module)
    return module


# --- the public path, process by process --------------------------------------------------------
# nginx from the repository's template in front of ``python -m gateway`` in front of
# ``python -m costs``: for tests of what crosses the edge (uploads, overload) without the rest of
# ``make up``. Every process is stopped by its PID.


@dataclass
class PublicPath:
    url: str
    gateway: ServiceProcess
    database_url: str


@pytest.fixture(scope="module")
def costs_database() -> Iterator[str]:
    with scratch_database() as url:
        yield url


@pytest.fixture(scope="module")
def costs_service(costs_database: str) -> Iterator[ServiceProcess]:
    port = free_port()
    service = ServiceProcess(
        "costs",
        {
            "CLOUDOPS_DATABASE_URL": costs_database,
            "CLOUDOPS_COSTS_PORT": str(port),
            "CLOUDOPS_LOG_LEVEL": "WARNING",
        },
        port,
    )
    service.start(timeout=60)
    yield service
    service.close()


def render_nginx(
    run_dir: Path,
    public_port: int,
    gateway_port: int,
    service_ports: dict[str, int] | None = None,
    edge_secret: str = "",
    redis_url: str | None = None,
    redis_prefix: str | None = None,
) -> Path:
    """The repository's nginx template, rendered by the code ``make up`` renders it with.

    Without ``service_ports`` every API request goes through the gateway. ``redis_url`` is where
    the edge counts the reads it lets through (the gateway's Redis by default), ``redis_prefix``
    the prefix it meters the reads it answers under (a scratch one by default).
    """
    dashboard = run_dir / "dashboard"
    dashboard.mkdir(exist_ok=True)
    conf: Path = load_platformctl().render_nginx(
        run_dir,
        gateway_port,
        public_port,
        dashboard,
        service_ports=service_ports,
        edge_secret=edge_secret,
        redis_url=redis_url,
        redis_prefix=redis_prefix or scratch_redis_prefix(),
    )
    assert "${" not in conf.read_text(), "the nginx template has a variable make up does not set"
    return conf


def wait_until_served(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(url)


@contextmanager
def running_nginx(conf: Path, port: int, seconds: float = 30) -> Iterator[subprocess.Popen[bytes]]:
    """nginx with ``conf``, once it accepts connections on ``port``; stopped by its PID after."""
    assert shutil.which("nginx"), "nginx is needed (apt-get install nginx-light)"
    nginx = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(conf.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + seconds
        while True:
            assert nginx.poll() is None, f"nginx exited with {nginx.returncode}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx never listened"
                time.sleep(0.05)
        yield nginx
    finally:
        if nginx.poll() is None:
            nginx.send_signal(signal.SIGTERM)
            try:
                nginx.wait(timeout=15)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()


@contextmanager
def public_path(
    costs: ServiceProcess, database_url: str, run_dir: Path, **gateway_env: str
) -> Iterator[PublicPath]:
    """nginx in front of a gateway in front of ``costs``, serving once the gateway answers.

    Allowed requests to costs go from nginx straight to it, as in ``make up``.
    """
    gateway_port = free_port()
    edge_secret = secrets.token_urlsafe(32)
    gateway = ServiceProcess(
        "gateway",
        {
            "CLOUDOPS_DATABASE_URL": database_url,
            "CLOUDOPS_GATEWAY_PORT": str(gateway_port),
            "CLOUDOPS_GATEWAY_COSTS_URL": costs.url,
            "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            "CLOUDOPS_LOG_LEVEL": "WARNING",
            "CLOUDOPS_GATEWAY_EDGE_SECRET": edge_secret,
            **gateway_env,
        },
        gateway_port,
    )
    public_port = free_port()
    conf = render_nginx(
        run_dir, public_port, gateway_port, {"costs": costs.port}, edge_secret=edge_secret
    )
    gateway.start(timeout=60)
    try:
        with running_nginx(conf, public_port) as nginx:
            url = f"http://127.0.0.1:{public_port}"
            wait_until_served(f"{url}/api/health", nginx)
            yield PublicPath(url, gateway, database_url)
    finally:
        gateway.close()


@pytest.fixture(scope="session")
def api_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform for the API contract tests (the document, fuzzing, the client), its admin
    key's quota big enough for a fuzzing run."""
    with (
        scratch_database() as database_url,
        running_platform(
            database_url,
            tmp_path_factory.mktemp("api-run"),
            extra_env={"CLOUDOPS_GATEWAY_RATE_LIMIT": "1000000"},
        ) as running,
    ):
        yield running
