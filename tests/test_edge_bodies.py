"""Reads nginx answers itself: a service's tagged body, kept while its generation is current.

The real processes, started as an operator starts them: nginx from the repository's template
(rendered by platformctl's own code), ``python -m gateway`` and ``python -m resources`` on one
scratch database and one scratch Redis prefix. nginx's access log says of each request where it
was answered: ``upstream=cloudops_resources`` by the service, ``edge=body`` by nginx itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from common.testing import (
    TEST_REDIS_URL,
    ServiceProcess,
    TcpProxy,
    free_port,
    scratch_database,
    scratch_redis_prefix,
)

from .conftest import (
    ADMIN_KEY,
    new_api_key,
    nginx_in_front,
    render_nginx,
    request,
    running_nginx,
    traced_request,
)

LIST = "/api/resources?limit=5"
GENERATION = "cache:resources:generation"


@dataclass
class Stack:
    url: str
    run_dir: Path
    gateway: ServiceProcess
    resources: ServiceProcess
    prefix: str
    redis: redis.Redis

    def call(
        self, path: str, *, key: str | None = ADMIN_KEY, **kw: Any
    ) -> tuple[int, dict[str, str], bytes, str]:
        """``request`` through nginx with a fresh request id, returned last."""
        return traced_request(self.url + path, key=key, **kw)

    def new_key(self, permissions: list[str], **fields: Any) -> tuple[str, str]:
        """A new API key and its id."""
        return new_api_key(self.url, permissions, **fields)

    @contextmanager
    def beside(self, run_dir: Path, resources_port: int) -> Iterator[Stack]:
        """Another nginx in front of the same gateway (rendered in ``run_dir``), sending reads
        to resources at ``resources_port``: the same stack seen through it."""
        public_port = free_port()
        conf = render_nginx(
            run_dir,
            public_port,
            self.gateway.port,
            {"resources": resources_port},
            edge_secret=self.gateway.env["CLOUDOPS_GATEWAY_EDGE_SECRET"],
            redis_prefix=self.prefix,
        )
        with running_nginx(conf, public_port):
            yield dataclasses.replace(self, url=f"http://127.0.0.1:{public_port}", run_dir=run_dir)

    def write_past_nginx(self, key_id: str) -> None:
        """A resource created at the service's own port: nginx sees nothing of it."""
        status, _, raw = request(
            f"{self.resources.url}/api/resources",
            method="POST",
            body=resource_fields(),
            headers={"X-CloudOps-Principal": key_id, "X-CloudOps-Permissions": "read,write"},
        )
        assert status == 201, raw

    def answered_by(self, *request_ids: str) -> list[str]:
        """For each request: ``body`` when nginx answered it itself, else the upstream it went
        to (from the access log, which nginx writes at least once a second)."""
        deadline = time.monotonic() + 5
        log = self.run_dir / "nginx" / "access.log"
        while True:
            found: dict[str, str] = {}
            for line in log.read_text().splitlines():
                request_id = line.rsplit(" id=", 1)[-1]
                if request_id in request_ids:
                    upstream = line.split(" upstream=", 1)[1].split(" ", 1)[0]
                    found[request_id] = (
                        "body" if " edge=body " in line else upstream.removeprefix("cloudops_")
                    )
            if len(found) == len(set(request_ids)):
                return [found[request_id] for request_id in request_ids]
            assert time.monotonic() < deadline, "requests missing from the access log"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("edge-bodies")
    prefix = scratch_redis_prefix()
    with scratch_database() as database_url, redis.Redis.from_url(TEST_REDIS_URL) as client:
        common = {
            "CLOUDOPS_DATABASE_URL": database_url,
            "CLOUDOPS_LOG_LEVEL": "WARNING",
            "CLOUDOPS_REDIS_PREFIX": prefix,
            "CLOUDOPS_PLATFORM_FLUSH_SECONDS": "1",
            # Decisions remembered long enough that a slow run still finds them in each worker.
            "CLOUDOPS_GATEWAY_EDGE_CACHE_SECONDS": "30",
        }
        resources_port, gateway_port = free_port(), free_port()
        resources = ServiceProcess(
            "resources", {**common, "CLOUDOPS_RESOURCES_PORT": str(resources_port)}, resources_port
        )
        edge_secret = secrets.token_urlsafe(32)
        gateway = ServiceProcess(
            "gateway",
            {
                **common,
                "CLOUDOPS_GATEWAY_PORT": str(gateway_port),
                "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
                "CLOUDOPS_GATEWAY_EDGE_SECRET": edge_secret,
                "CLOUDOPS_GATEWAY_RESOURCES_URL": resources.url,
            },
            gateway_port,
        )
        with nginx_in_front(
            run_dir,
            [resources, gateway],
            gateway,
            {"resources": resources.port},
            edge_secret=edge_secret,
            redis_prefix=prefix,
        ) as url:
            stack = Stack(url, run_dir, gateway, resources, prefix, client)
            create_resource(stack)  # a written namespace: bodies have a generation
            yield stack


def resource_fields() -> bytes:
    return json.dumps(
        {
            "external_id": f"i-{uuid.uuid4().hex[:12]}",
            "name": "edge-body",
            "provider": "aws",
            "type": "compute",
            "region": "eu-west-1",
            "account": "123456789012",
        }
    ).encode()


def create_resource(stack: Stack, key: str = ADMIN_KEY) -> None:
    status, _, body, _ = stack.call(
        "/api/resources", key=key, method="POST", body=resource_fields()
    )
    assert status == 201, body


def reads(stack: Stack, path: str, key: str, n: int, **kw: Any) -> list[str]:
    """Where each of ``n`` reads was answered."""
    ids = []
    for _ in range(n):
        status, _, body, request_id = stack.call(path, key=key, **kw)
        assert status == 200, body
        ids.append(request_id)
    return stack.answered_by(*ids)


def read_until_answered_by_nginx(
    stack: Stack, path: str, key: str
) -> tuple[int, dict[str, str], bytes, str]:
    """Read until nginx answers itself: in each worker the first read is decided by the gateway,
    the next let through to the service, which tags its body; the body is then shared."""
    for _ in range(5):
        reads(stack, path, key, 4)
        answer = stack.call(path, key=key)
        assert answer[0] == 200, answer[2]
        if stack.answered_by(answer[3]) == ["body"]:
            return answer
    raise AssertionError("nginx never answered the read itself")


def total(body: bytes) -> int:
    return int(json.loads(body)["meta"]["total"])


def test_a_kept_body_is_the_services_with_fresh_ids_and_exact_rate_limit_headers(
    stack: Stack,
) -> None:
    key, key_id = stack.new_key(["read"], rate_limit=500, rate_window_seconds=600)
    status, headers, body, request_id = read_until_answered_by_nginx(stack, LIST, key)
    direct = request(
        f"{stack.resources.url}{LIST}",
        headers={"X-CloudOps-Principal": key_id, "X-CloudOps-Permissions": "read"},
    )
    assert body == direct[2]  # byte for byte what the service serves
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Request-ID"] == request_id
    assert headers["traceparent"].startswith("00-")
    assert len(headers["traceparent"]) == 55
    for name in ("X-Content-Type-Options", "Content-Security-Policy", "Cache-Control"):
        assert name in headers, name
    assert not [name for name in headers if name.lower().startswith("x-cloudops")]
    # Every read took one slot of the key's window, nginx's answers too.
    used = 500 - int(headers["RateLimit-Remaining"])
    traces, ids = set(), []
    for n in range(1, 6):
        status, headers, _, request_id = stack.call(LIST, key=key)
        assert status == 200
        assert headers["RateLimit-Remaining"] == str(500 - used - n)
        traces.add(headers["traceparent"])
        ids.append(request_id)
    assert len(traces) == 5  # a trace of its own each time
    assert stack.answered_by(*ids).count("body") >= 3  # one worker may not have the decision yet


def test_a_write_through_nginx_is_seen_by_the_next_read(stack: Stack) -> None:
    key, _ = stack.new_key(["read", "write"])
    _, _, body, _ = read_until_answered_by_nginx(stack, LIST, key)
    count, ids = total(body), []
    for _ in range(8):
        create_resource(stack, key)
        count += 1
        for _ in range(3):  # the first read after the write is the service's, the next nginx's
            status, _, body, request_id = stack.call(LIST, key=key)
            assert status == 200, body
            ids.append(request_id)
            assert total(body) == count, f"a stale read, answered by {stack.answered_by(*ids)}"
    assert stack.answered_by(*ids).count("body") >= 8


def test_a_write_made_past_nginx_is_seen_by_the_next_read(stack: Stack) -> None:
    key, key_id = stack.new_key(["read", "write"])
    _, _, body, _ = read_until_answered_by_nginx(stack, LIST, key)
    stack.write_past_nginx(key_id)
    status, _, fresh, _ = stack.call(LIST, key=key)
    assert status == 200
    assert total(fresh) == total(body) + 1


def test_bodies_are_never_shared_between_credentials(stack: Stack) -> None:
    first, _ = stack.new_key(["read"])
    read_until_answered_by_nginx(stack, LIST, first)
    second, _ = stack.new_key(["read"])
    # Decided by the gateway, then let through by nginx to the service: never the first's body.
    assert reads(stack, LIST, second, 2) == ["resources", "resources"]
    # Nor between clients that differ in anything the decision read.
    other_agent = {"User-Agent": "another-client/1.0"}
    assert reads(stack, LIST, first, 2, headers=other_agent) == ["resources", "resources"]


@contextmanager
def slow_path_to(port: int, delay: float) -> Iterator[int]:
    """A TcpProxy to ``port`` that holds every chunk ``delay`` s, on a loop of its own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    proxy = TcpProxy("127.0.0.1", port, delay=delay)
    asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(10)
    try:
        yield proxy.port
    finally:
        asyncio.run_coroutine_threadsafe(proxy.cut(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_reads_of_an_outdated_body_wait_for_one_of_them_to_bring_the_new_one(
    stack: Stack, tmp_path: Path
) -> None:
    key, key_id = stack.new_key(["read", "write"])
    # Every answer of the service takes 0.4 s or more through this nginx.
    with (
        slow_path_to(stack.resources.port, 0.2) as slow_port,
        stack.beside(tmp_path, slow_port) as slow,
    ):
        _, _, body, _ = read_until_answered_by_nginx(slow, LIST, key)
        reads(slow, LIST, key, 8)  # both workers have the decision
        stack.write_past_nginx(key_id)  # the kept body is outdated
        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(lambda _: slow.call(LIST, key=key), range(32)))
        fresh = total(body) + 1
        assert {(status, total(body)) for status, _, body, _ in answers} == {(200, fresh)}
        answered = slow.answered_by(*(request_id for *_, request_id in answers))
    # One read per nginx worker went to the service (two in a worker that had to ask the gateway
    # first); the others waited for it and were answered with what it brought.
    assert answered.count("resources") <= 4, answered


def test_a_revoked_key_is_refused_though_its_body_is_kept(stack: Stack) -> None:
    key, key_id = stack.new_key(["read"])
    read_until_answered_by_nginx(stack, LIST, key)
    status, _, body, _ = stack.call(f"/api/admin/keys/{key_id}", method="DELETE")
    assert status == 200, body
    ids = []
    for _ in range(3):
        status, headers, body, request_id = stack.call(LIST, key=key)
        assert status == 401, body
        assert headers["Content-Type"].startswith("application/problem+json")
        ids.append(request_id)
    assert stack.answered_by(*ids) == ["gateway"] * 3


def test_a_lost_generation_is_never_answered_from_a_kept_body(stack: Stack) -> None:
    key, _ = stack.new_key(["read", "write"])
    read_until_answered_by_nginx(stack, LIST, key)
    generation = f"{stack.prefix}{GENERATION}"
    value = stack.redis.get(generation)
    stack.redis.delete(generation)  # a Redis that lost its keys (or one nginx does not share)
    try:
        # And the service tags nothing to keep meanwhile.
        assert reads(stack, LIST, key, 4) == ["resources"] * 4
    finally:
        stack.redis.set(generation, int(value or 0) + 1)


def test_head_errors_and_untagged_reads_are_never_kept(stack: Stack) -> None:
    key, _ = stack.new_key(["read"])
    missing, ids = f"/api/resources/{uuid.uuid4()}", []
    for _ in range(4):
        status, _, _, request_id = stack.call(missing, key=key)
        assert status == 404
        ids.append(request_id)
    assert "body" not in stack.answered_by(*ids)
    for _ in range(4):
        status, headers, body, _ = stack.call(LIST, key=key, method="HEAD")
        assert status == 200
        assert body == b""
    # The GET after those HEADs (the same decision) still gets the whole body.
    _, headers, body, _ = read_until_answered_by_nginx(stack, LIST, key)
    assert int(headers["Content-Length"]) == len(body) > 0
    assert total(body) >= 1
    # A read the service does not tag (not from its read cache) goes to it every time.
    resource_id = json.loads(body)["data"][0]["id"]
    assert "body" not in reads(stack, f"/api/resources/{resource_id}/utilization", key, 6)


def test_a_body_over_256_kib_is_never_kept(stack: Stack) -> None:
    key, _ = stack.new_key(["read", "write"])
    account = f"big-{uuid.uuid4().hex[:8]}"
    tags = {f"tag-{n:02d}-{'k' * 40}": "v" * 200 for n in range(20)}
    fields = [json.loads(resource_fields()) | {"account": account, "tags": tags} for _ in range(60)]
    status, _, body, _ = stack.call(
        "/api/resources/bulk",
        key=key,
        method="POST",
        body=json.dumps({"resources": fields}).encode(),
    )
    assert status == 200, body
    path = f"/api/resources?limit=100&account={account}"
    status, _, page, _ = stack.call(path, key=key)
    assert status == 200
    assert len(page) > 256 * 1024
    assert "body" not in reads(stack, path, key, 8)
    # The same key's smaller read is kept as usual.
    read_until_answered_by_nginx(stack, f"/api/resources?limit=2&account={account}", key)


def test_a_client_can_neither_ask_for_a_tag_nor_see_one(stack: Stack) -> None:
    key, _ = stack.new_key(["read"])
    asking = {"X-CloudOps-Edge-Body": "1"}
    for _ in range(4):
        _, headers, _, _ = stack.call(LIST, key=key, headers=asking)
        assert not [name for name in headers if name.lower().startswith("x-cloudops")]
    # The gateway's own port drops every X-CloudOps-* a request brought.
    _, headers, _ = request(f"{stack.gateway.url}{LIST}", key=key, headers=asking)
    assert "X-CloudOps-Body-Tag" not in headers


def usage_of(stack: Stack, principal: str) -> int:
    """Requests of ``principal`` in the platform usage ledger's queue (not drained here)."""
    seen = 0
    for raw in stack.redis.lrange(f"{stack.prefix}platform:usage", 0, -1):
        batch = json.loads(raw)
        if batch["service"] == "resources":
            seen += sum(row[3] for row in batch["rows"] if row[1] == principal)
    return seen


def test_reads_answered_by_nginx_are_metered_like_the_services(stack: Stack) -> None:
    key, key_id = stack.new_key(["read"])
    assert reads(stack, LIST, key, 12).count("body") >= 6
    deadline = time.monotonic() + 15  # the service flushes every second, nginx every five
    while usage_of(stack, key_id) < 12:
        assert time.monotonic() < deadline, f"metered {usage_of(stack, key_id)} of 12"
        time.sleep(0.25)
    time.sleep(1.5)
    assert usage_of(stack, key_id) == 12  # every read once: none lost, none twice


def test_with_no_room_for_bodies_every_read_goes_to_the_service(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDOPS_NGINX_EDGE_BODIES_MB", "0")
    with stack.beside(tmp_path, stack.resources.port) as other:
        assert "cloudops_edge_bodies" not in (tmp_path / "nginx" / "nginx.conf").read_text()
        for _ in range(6):
            status, _, body = request(f"{other.url}{LIST}", key=ADMIN_KEY)
            assert status == 200, body
    log = (tmp_path / "nginx" / "access.log").read_text()
    assert "edge=body" not in log
    assert log.count("upstream=cloudops_resources") >= 5
