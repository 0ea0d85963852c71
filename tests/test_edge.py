"""The edge path: nginx asks the gateway about each API request, then carries its bytes itself.

The processes are the real ones, started as an operator starts them: nginx from the repository's
template (rendered by platformctl's own code), ``python -m gateway``, ``python -m costs`` and
``python -m alerts``. In the resources service's place runs a small echo service that answers
with every header it received, so a test sees exactly what reached a service. nginx's access log
names the upstream that served each request, which tells the direct path from the gateway path.
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.testing import ServiceProcess, free_port, scratch_database

from .conftest import (
    ADMIN_KEY,
    ROOT,
    new_api_key,
    nginx_in_front,
    render_nginx,
    request,
    running_nginx,
    traced_request,
    wait_until_served,
)

CLIENT_TIMEOUT_SECONDS = 2
PROBLEM = "application/problem+json"
# What the gateway adds to every answer it proxies; nginx must add the same on the direct path.
SECURITY_HEADERS = (
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Content-Security-Policy",
    "Referrer-Policy",
    "Cache-Control",
    "X-XSS-Protection",
    "Cross-Origin-Resource-Policy",
)
FORGED = {
    "X-CloudOps-Principal": "mallory",
    "X-CloudOps-Permissions": "admin,read,write",
    "X-CloudOps-Edge": "forged",
    "X-CloudOps-Upstream": "resources",
    "X-Forwarded-For": "203.0.113.66",
    "X-Real-IP": "203.0.113.66",
    "X-Forwarded-Host": "evil.example",
    "Forwarded": "for=203.0.113.66",
}
CREDENTIALS = ("X-API-Key", "Authorization", "Cookie", "X-CSRF-Token", "X-CloudOps-Edge")

ECHO = """
import sys
from aiohttp import web

async def echo(request):
    body = await request.read()
    return web.json_response({
        "method": request.method,
        "path": request.path_qs,
        "headers": [[k, v] for k, v in request.headers.items()],
        "body_bytes": len(body),
    })

async def live(request):
    return web.json_response({"status": "ok"})

app = web.Application()
app.router.add_get("/health/live", live)
app.router.add_route("*", "/{tail:.*}", echo)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


@dataclass
class Edge:
    url: str
    run_dir: Path
    gateway: ServiceProcess
    resources_port: int
    edge_secret: str

    @property
    def access_log(self) -> str:
        return (self.run_dir / "nginx" / "access.log").read_text()

    def upstream_of(self, request_id: str) -> str:
        """Which upstream nginx sent the request with this id to (from its access log)."""
        deadline = time.monotonic() + 5
        while True:
            for line in self.access_log.splitlines():
                if line.endswith(f" id={request_id}"):
                    return line.split(" upstream=", 1)[1].split(" ", 1)[0].removeprefix("cloudops_")
            assert time.monotonic() < deadline, f"{request_id} not in the access log"
            time.sleep(0.05)


class EchoProcess(ServiceProcess):
    def __init__(self, script: Path, port: int) -> None:
        super().__init__("echo", {}, port)
        self.script = script

    def start(self, timeout: float = 30.0) -> None:
        import subprocess

        self.process = subprocess.Popen(
            [sys.executable, str(self.script), str(self.port)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until_served(f"{self.url}/health/live", self.process, timeout)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    run_dir = tmp_path_factory.mktemp("edge")
    script = run_dir / "echo.py"
    script.write_text(ECHO)
    edge_secret = secrets.token_urlsafe(32)
    with scratch_database() as database_url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLOUDOPS_NGINX_CLIENT_TIMEOUT", str(CLIENT_TIMEOUT_SECONDS))
        common = {"CLOUDOPS_DATABASE_URL": database_url, "CLOUDOPS_LOG_LEVEL": "WARNING"}
        echo = EchoProcess(script, free_port())
        costs_port, alerts_port, gateway_port = free_port(), free_port(), free_port()
        costs = ServiceProcess(
            "costs", {**common, "CLOUDOPS_COSTS_PORT": str(costs_port)}, costs_port
        )
        alerts = ServiceProcess(
            "alerts", {**common, "CLOUDOPS_ALERTS_PORT": str(alerts_port)}, alerts_port
        )
        gateway = ServiceProcess(
            "gateway",
            {
                **common,
                "CLOUDOPS_GATEWAY_PORT": str(gateway_port),
                "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
                "CLOUDOPS_GATEWAY_EDGE_SECRET": edge_secret,
                "CLOUDOPS_GATEWAY_RESOURCES_URL": echo.url,
                "CLOUDOPS_GATEWAY_COSTS_URL": costs.url,
                "CLOUDOPS_GATEWAY_ALERTS_URL": alerts.url,
            },
            gateway_port,
        )
        with nginx_in_front(
            run_dir,
            [echo, costs, alerts, gateway],
            gateway,
            {"resources": echo.port, "costs": costs.port, "alerts": alerts.port},
            edge_secret=edge_secret,
        ) as url:
            yield Edge(url, run_dir, gateway, echo.port, edge_secret)


def new_id() -> str:
    return f"edge-{uuid.uuid4().hex}"


def echoed(body: bytes) -> dict[str, list[str]]:
    """The headers the echo service received, by lower-case name."""
    seen: dict[str, list[str]] = {}
    for name, value in json.loads(body)["headers"]:
        seen.setdefault(name.lower(), []).append(value)
    return seen


def call(
    edge: Edge, path: str, *, key: str | None = ADMIN_KEY, **kw: Any
) -> tuple[int, dict[str, str], bytes, str]:
    """``request`` with a fresh request id, returned last."""
    return traced_request(edge.url + path, key=key, **kw)


def create_key_with_id(edge: Edge, permissions: list[str], **fields: Any) -> tuple[str, str]:
    """A new API key and its id."""
    return new_api_key(edge.url, permissions, **fields)


def create_key(edge: Edge, permissions: list[str], **fields: Any) -> str:
    return create_key_with_id(edge, permissions, **fields)[0]


# --- identity: what reaches a service -------------------------------------------------------


def test_an_allowed_request_goes_from_nginx_straight_to_the_service(edge: Edge) -> None:
    status, _, body, request_id = call(edge, "/api/resources?limit=20")
    assert status == 200, body
    assert edge.upstream_of(request_id) == "resources"
    seen = echoed(body)
    assert seen["x-request-id"] == [request_id]
    assert seen["x-cloudops-permissions"] == ["admin,read,write"]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert len(seen["traceparent"]) == 1


@pytest.mark.parametrize("credential", ["key", "bearer"])
def test_identity_headers_a_client_sends_never_reach_a_service(edge: Edge, credential: str) -> None:
    headers = dict(FORGED)
    key: str | None = ADMIN_KEY
    if credential == "bearer":
        status, _, raw, _ = call(edge, "/api/auth/token", method="POST")
        assert status == 200, raw
        headers["Authorization"] = f"Bearer {json.loads(raw)['data']['access_token']}"
        key = None
    status, _, body, request_id = call(edge, "/api/resources", key=key, headers=headers)
    assert status == 200, body
    assert edge.upstream_of(request_id) == "resources"
    seen = echoed(body)
    assert seen["x-cloudops-principal"] != ["mallory"]
    assert len(seen["x-cloudops-principal"]) == 1
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    for name in ("x-real-ip", "x-forwarded-host", "forwarded", "x-cloudops-upstream"):
        assert name not in seen, name
    for name in CREDENTIALS:
        assert name.lower() not in seen, name


def test_a_read_key_reaches_a_service_with_its_own_permissions(edge: Edge) -> None:
    key = create_key(edge, ["read"])
    status, _, body, _ = call(edge, "/api/resources", key=key, headers=FORGED)
    assert status == 200, body
    assert echoed(body)["x-cloudops-permissions"] == ["read"]


def test_a_silence_is_created_by_the_caller_not_by_a_forged_principal(edge: Edge) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    silence = {"matchers": [{"name": "team", "value": "edge"}], "endsAt": later, "comment": "c"}
    created = []
    for headers in ({}, FORGED):
        status, _, raw, request_id = call(
            edge,
            "/api/alerts/silences",
            method="POST",
            body=json.dumps(silence).encode(),
            headers=headers,
        )
        assert status == 201, raw
        assert edge.upstream_of(request_id) == "alerts"
        created.append(json.loads(raw)["data"]["created_by"])
    assert created[1] == created[0] != "mallory"


def test_without_a_direct_route_to_a_service_the_gateway_serves_it_as_before(
    edge: Edge, tmp_path: Path
) -> None:
    public_port = free_port()
    conf = render_nginx(  # no service ports
        tmp_path, public_port, edge.gateway.port, edge_secret=edge.edge_secret
    )
    with running_nginx(conf, public_port):
        status, _, body = request(f"http://127.0.0.1:{public_port}/api/resources", key=ADMIN_KEY)
    log = (tmp_path / "nginx" / "access.log").read_text()  # flushed as nginx stopped
    assert status == 200, body
    assert "upstream=cloudops_gateway" in log
    assert echoed(body)["x-forwarded-for"] == ["127.0.0.1"]


def test_head_is_decided_as_the_get_it_reads(edge: Edge) -> None:
    status, _, body, request_id = call(edge, "/api/resources?limit=1", method="HEAD")
    assert status == 200
    assert body == b""
    assert edge.upstream_of(request_id) == "resources"


# --- what nginx remembers: reads without a Python process on their path ----------------------


def edge_decisions(edge: Edge) -> float:
    """How many edge decisions the gateway has made (its gateway_edge_decisions_total)."""
    with urllib.request.urlopen(f"{edge.gateway.url}/metrics", timeout=30) as resp:  # noqa: S310
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gateway_edge_decisions_total{")
    )


def test_a_repeated_read_is_let_through_by_nginx_and_still_counted_exactly(edge: Edge) -> None:
    key = create_key(edge, ["read"], rate_limit=500, rate_window_seconds=600)
    before = edge_decisions(edge)
    remaining = []
    for _ in range(40):
        status, headers, body, request_id = call(edge, "/api/resources?limit=3", key=key)
        assert status == 200, body
        assert echoed(body)["x-request-id"] == [request_id]  # a request id of its own each time
        assert headers["RateLimit-Policy"] == '"key";q=500;w=600'
        remaining.append(int(headers["RateLimit-Remaining"]))
    # Every request took one slot of the key's window, whichever path decided it.
    assert remaining == list(range(499, 459, -1))
    # The gateway was asked about the first of them in each nginx worker, not about each one.
    assert edge_decisions(edge) - before < 20


def test_a_busy_read_is_decided_again_before_its_memory_runs_out(edge: Edge) -> None:
    """Past three quarters of the 2 s a decision is remembered, one read asks the gateway again
    while the others go on: a steady read never finds its memory gone all at once."""
    key = create_key(edge, ["read"])
    host, port = edge.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)  # one nginx worker
    try:
        before = edge_decisions(edge)
        started = time.monotonic()
        while time.monotonic() - started < 1.9:  # within the memory's 2 s
            connection.request("GET", "/api/resources", headers={"X-API-Key": key})
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            time.sleep(0.05)
    finally:
        connection.close()
    # The first read, then one past 1.5 s: never the memory left to run out.
    assert edge_decisions(edge) - before == 2


def test_a_write_is_decided_by_the_gateway_every_time(edge: Edge) -> None:
    before = edge_decisions(edge)
    for _ in range(3):
        status, _, body, _ = call(edge, "/api/resources", method="POST", body=b'{"name": "w"}')
        assert status == 200, body
    assert edge_decisions(edge) - before == 3


def test_a_revoked_key_is_refused_at_its_next_request_through_nginx(edge: Edge) -> None:
    key, key_id = create_key_with_id(edge, ["read"])
    for _ in range(4):
        assert call(edge, "/api/resources", key=key)[0] == 200
    status, headers, body, _ = call(edge, f"/api/admin/keys/{key_id}", method="DELETE")
    assert status == 200, body
    assert "X-CloudOps-Edge-Epoch" not in headers  # for nginx only
    for _ in range(4):
        status, headers, body, request_id = call(edge, "/api/resources", key=key)
        assert_problem(status, headers, body, 401)
        assert edge.upstream_of(request_id) == "gateway"


def test_a_revocation_made_past_nginx_reaches_it_within_a_second_or_so(edge: Edge) -> None:
    key, key_id = create_key_with_id(edge, ["read"])
    for _ in range(4):
        assert call(edge, "/api/resources", key=key)[0] == 200
    status, _, body = request(
        f"{edge.gateway.url}/api/admin/keys/{key_id}", key=ADMIN_KEY, method="DELETE"
    )  # at the gateway's own port: nginx does not see the answer
    assert status == 200, body
    deadline = time.monotonic() + 10
    while call(edge, "/api/resources", key=key)[0] == 200:
        assert time.monotonic() < deadline, "nginx still lets a revoked key through"
        time.sleep(0.1)
    assert call(edge, "/api/resources", key=key)[0] == 401


def test_after_logout_the_session_cookie_is_refused_at_once(edge: Edge) -> None:
    cookie, token = login(edge)
    for _ in range(3):
        status, _, body, _ = call(edge, "/api/resources", key=None, headers={"Cookie": cookie})
        assert status == 200, body
    status, _, body, _ = call(
        edge,
        "/api/auth/logout",
        key=None,
        method="POST",
        headers={"Cookie": cookie, "X-CSRF-Token": token},
    )
    assert status == 204, body
    status, headers, body, _ = call(edge, "/api/resources", key=None, headers={"Cookie": cookie})
    assert_problem(status, headers, body, 401)


def test_without_redis_at_the_edge_the_gateway_decides_every_request(
    edge: Edge, tmp_path: Path
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nothing = closed.getsockname()[1]
    public_port = free_port()
    conf = render_nginx(
        tmp_path,
        public_port,
        edge.gateway.port,
        {"resources": edge.resources_port},
        edge_secret=edge.edge_secret,
        redis_url=f"redis://127.0.0.1:{nothing}/0",
    )
    with running_nginx(conf, public_port):
        before = edge_decisions(edge)
        for _ in range(5):
            status, _, body = request(
                f"http://127.0.0.1:{public_port}/api/resources", key=ADMIN_KEY
            )
            assert status == 200, body
        assert edge_decisions(edge) - before == 5


# --- refusals: the gateway's problems, through nginx -----------------------------------------


def assert_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> Any:
    assert status == expected, body
    assert headers["Content-Type"].startswith(PROBLEM), headers
    problem = json.loads(body)
    assert problem["status"] == expected
    return problem


def test_no_key_is_the_gateways_401(edge: Edge) -> None:
    status, headers, body, request_id = call(edge, "/api/resources", key=None)
    assert_problem(status, headers, body, 401)
    assert "ApiKey" in headers["WWW-Authenticate"]
    assert edge.upstream_of(request_id) == "gateway"


def test_a_read_key_may_not_write(edge: Edge) -> None:
    key = create_key(edge, ["read"])
    status, headers, body, request_id = call(
        edge, "/api/resources", key=key, method="POST", body=b'{"name": "x"}'
    )
    assert_problem(status, headers, body, 403)
    assert edge.upstream_of(request_id) == "gateway"


def test_rate_limits_have_exact_headers_on_both_paths(edge: Edge) -> None:
    key = create_key(edge, ["read"], rate_limit=2, rate_window_seconds=60)
    answers = [call(edge, "/api/resources", key=key) for _ in range(3)]
    for remaining, (status, headers, body, request_id) in zip((1, 0), answers, strict=False):
        assert status == 200, body
        assert edge.upstream_of(request_id) == "resources"
        assert headers["RateLimit-Policy"] == '"key";q=2;w=60'
        assert headers["RateLimit"].startswith(f'"key";r={remaining};t=')
        assert headers["RateLimit-Limit"] == "2"
        assert headers["RateLimit-Remaining"] == str(remaining)
        assert 1 <= int(headers["RateLimit-Reset"]) <= 60
    status, headers, body, request_id = answers[2]
    assert_problem(status, headers, body, 429)
    assert edge.upstream_of(request_id) == "gateway"
    assert headers["RateLimit-Policy"] == '"key";q=2;w=60'
    assert headers["RateLimit"].startswith('"key";r=0;t=')
    assert 1 <= int(headers["Retry-After"]) <= 60
    # One set of each, never the gateway's and nginx's both.
    assert answers[0][1]["RateLimit"].count('"key"') == 1


def login(edge: Edge) -> tuple[str, str]:
    """A dashboard session: its cookie and CSRF token."""
    user = {
        "username": f"u{uuid.uuid4().hex[:10]}",
        "password": "edge-test-password-0123",
        "permissions": ["write"],
    }
    status, _, raw, _ = call(
        edge, "/api/admin/users", method="POST", body=json.dumps(user).encode()
    )
    assert status == 201, raw
    credentials = {"username": user["username"], "password": user["password"]}
    req = urllib.request.Request(  # noqa: S310 - loopback
        f"{edge.url}/api/auth/login",
        data=json.dumps(credentials).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        cookie = resp.headers["Set-Cookie"].split(";", 1)[0]
        token: str = json.loads(resp.read())["data"]["csrf_token"]
    return cookie, token


def test_a_cookie_change_needs_the_csrf_token_and_the_service_sees_neither(edge: Edge) -> None:
    cookie, token = login(edge)
    body = b'{"name": "web-1"}'
    status, headers, raw, request_id = call(
        edge, "/api/resources", key=None, method="POST", body=body, headers={"Cookie": cookie}
    )
    problem = assert_problem(status, headers, raw, 403)
    assert problem["type"].endswith("/csrf")
    assert edge.upstream_of(request_id) == "gateway"

    with_token = {"Cookie": cookie, "X-CSRF-Token": token}
    status, _, raw, request_id = call(
        edge, "/api/resources", key=None, method="POST", body=body, headers=with_token
    )
    assert status == 200, raw
    assert edge.upstream_of(request_id) == "resources"
    seen = echoed(raw)
    assert "cookie" not in seen
    assert "x-csrf-token" not in seen
    assert seen["x-cloudops-permissions"] == ["write"]


# --- response headers ---------------------------------------------------------------------


def test_the_direct_path_carries_the_gateways_security_headers(edge: Edge) -> None:
    _, direct, _, direct_id = call(edge, "/api/resources")
    _, gateway, _, gateway_id = call(edge, "/api/health")
    assert edge.upstream_of(direct_id) == "resources"
    assert edge.upstream_of(gateway_id) == "gateway"
    for name in SECURITY_HEADERS:
        assert direct[name] == gateway[name], name
    assert direct["X-Request-ID"] == direct_id
    assert direct["Server"] == gateway["Server"] == "nginx"  # not the service's own


# --- streams and uploads --------------------------------------------------------------------


def test_the_live_stream_goes_straight_to_alerts_unbuffered(edge: Edge) -> None:
    request_id = new_id()
    req = urllib.request.Request(  # noqa: S310 - loopback
        f"{edge.url}/api/alerts/stream",
        headers={"X-API-Key": ADMIN_KEY, "X-Request-ID": request_id},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.read1(64)  # the stream's first bytes arrive while it stays open
    assert edge.upstream_of(request_id) == "alerts"


def test_a_billing_file_streams_straight_to_costs(edge: Edge) -> None:
    sample = ROOT / "services" / "costs" / "tests" / "data" / "aws_focus_1_0.csv"
    status, _, raw, request_id = call(
        edge,
        "/api/costs/imports?filename=edge.csv",
        method="POST",
        body=sample.read_bytes(),
        headers={"Content-Type": "text/csv"},
    )
    assert status == 201, raw
    assert json.loads(raw)["data"]["rows_rejected"] == 0
    assert edge.upstream_of(request_id) == "costs"


def test_a_large_upload_is_let_through_to_the_upload_limit(edge: Edge) -> None:
    """The decision subrequest carries the upload's headers: it must not refuse the size."""
    head = (
        "POST /api/costs/imports?filename=big.csv HTTP/1.1\r\nHost: x\r\n"
        f"X-API-Key: {ADMIN_KEY}\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {64 * 1024**2}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    host, port = edge.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")


# --- nginx's own answers ----------------------------------------------------------------------


def raw_exchange(url: str, data: bytes, seconds: float = 10) -> bytes:
    """Send ``data`` on a fresh connection; everything received until nginx closes it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=seconds) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET /api/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (
            b"POST /api/resources HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 20000000\r\nConnection: close\r\n\r\n",
            413,
        ),
    ],
    ids=["400", "414", "413"],
)
def test_nginxs_own_refusals_are_problems_with_security_headers(
    edge: Edge, data: bytes, expected: int
) -> None:
    status, headers, body = parse(raw_exchange(edge.url, data))
    assert status == expected
    assert headers["Content-Type"] == PROBLEM
    assert json.loads(body)["status"] == expected
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert headers["Cache-Control"] == "no-store"


def test_the_access_log_never_holds_the_query_string(edge: Edge) -> None:
    secret = f"s3cr3t{uuid.uuid4().hex}"
    status, _, _, request_id = call(edge, f"/api/resources?limit=1&api_key={secret}", key=None)
    assert status == 401
    edge.upstream_of(request_id)  # logged
    assert '"GET /api/resources HTTP/1.1" 401' in edge.access_log
    assert secret not in edge.access_log
    assert secret not in (edge.run_dir / "nginx" / "error.log").read_text()


def test_a_slow_body_is_cut_off(edge: Edge) -> None:
    head = (
        f"POST /api/resources HTTP/1.1\r\nHost: x\r\nX-API-Key: {ADMIN_KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    ).encode()
    began = time.monotonic()
    raw_exchange(edge.url, head, seconds=CLIENT_TIMEOUT_SECONDS + 10)
    # Cut off at the deadline, not left to the service's or the client's patience.
    assert time.monotonic() - began < CLIENT_TIMEOUT_SECONDS + 3


def test_a_gateway_that_is_down_is_a_fast_503_problem(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nothing = closed.getsockname()[1]  # bound and free again: nothing listens there
    public_port = free_port()
    conf = render_nginx(tmp_path, public_port, nothing, {"resources": nothing})
    with running_nginx(conf, public_port):
        began = time.monotonic()
        status, headers, body = request(
            f"http://127.0.0.1:{public_port}/api/resources", key=ADMIN_KEY
        )
        assert time.monotonic() - began < 0.5
    problem = assert_problem(status, headers, body, 503)
    assert problem["type"] == "https://cloudops.dev/problems/overloaded"
    assert headers["Retry-After"] == "1"
    assert headers["X-Content-Type-Options"] == "nosniff"


# --- last: it flags this test client's address ------------------------------------------------


def test_a_honeypot_flags_the_client_on_the_direct_path_too(edge: Edge) -> None:
    assert call(edge, "/api/resources")[0] == 200
    status, _, _, _ = call(edge, "/api/admin/debug")
    assert status == 404
    status, headers, body, request_id = call(edge, "/api/resources")
    assert_problem(status, headers, body, 403)
    assert edge.upstream_of(request_id) == "gateway"
