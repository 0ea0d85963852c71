"""Request bodies at the gateway and at a service reached directly: every limit counted on the bytes
actually read (chunked bodies included), a deadline on slow bodies, bounded error lists, and no
body parsed on a route or method that does not use it."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import orjson
import pytest

from common.errors import MAX_PROBLEM_ERRORS
from common.testing import RssSampler, ServiceProcess
from gateway.settings import GatewaySettings

from .conftest import ADMIN, ADMIN_KEY, Client, Recorder, resource_body

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]
EIGHT_MB = 8 * 1024 * 1024
PIECE = 64 * 1024


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def exchange(
    port: int, head: bytes, pieces: list[bytes], *, pause: float = 0
) -> tuple[bytes, int, float]:
    """Send a request by hand while reading the answer; returns the answer, the body bytes the
    server took before answering, and how long the answer took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0

    async def send() -> None:
        nonlocal sent
        try:
            writer.write(head)
            for piece in pieces:
                if pause:
                    await asyncio.sleep(pause)
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        except ConnectionError:
            pass

    started = time.perf_counter()
    sender = asyncio.create_task(send())
    try:
        async with asyncio.timeout(10):
            answer = await reader.read(65536)
        return answer, sent, time.perf_counter() - started
    finally:
        sender.cancel()
        # Not close(): with unsent bytes buffered (the server stopped reading) the transport would
        # wait to flush them forever and be collected unclosed in a later test.
        writer.transport.abort()


def chunked_head(path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\n{lines}\r\n"
    ).encode()


def eight_mb_of_json() -> list[bytes]:
    # One JSON document, never terminated: 8 MB of a string inside an object.
    return [chunk(b'{"username": "a", "password": "'), *[chunk(b"x" * PIECE)] * (EIGHT_MB // PIECE)]


def port_of(client: Client) -> int:
    assert client.server.port is not None
    return client.server.port


@pytest.mark.parametrize(
    ("path", "headers", "limit"),
    [
        ("/api/auth/login", {}, 8 * 1024),
        ("/api/auth/token", {}, 8 * 1024),
        ("/api/admin/keys", ADMIN, 64 * 1024),
        ("/api/admin/users", ADMIN, 64 * 1024),
    ],
)
async def test_a_chunked_body_is_cut_at_the_routes_own_limit(
    client: Client, path: str, headers: dict[str, str], limit: int
) -> None:
    answer, sent, seconds = await exchange(
        port_of(client), chunked_head(path, headers), eight_mb_of_json()
    )
    print(f"\n{path}: 413 after {seconds * 1000:.0f} ms, {sent / 1024:.0f} KiB of 8 MiB taken")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert f"at most {limit} bytes".encode() in answer
    assert b"Connection: close" in answer
    assert seconds < 2  # what the client got rid of meanwhile sits mostly in socket buffers


async def test_parallel_chunked_logins_leave_memory_flat(client: Client) -> None:
    await exchange(port_of(client), chunked_head("/api/auth/login"), eight_mb_of_json())
    with RssSampler(os.getpid(), interval=0.02) as sampler:
        answers = await asyncio.gather(
            *(
                exchange(port_of(client), chunked_head("/api/auth/login"), eight_mb_of_json())
                for _ in range(20)
            )
        )
    assert all(a.startswith(b"HTTP/1.1 413") for a, _, _ in answers)
    growth = sampler.peak - sampler.before
    print(f"\n20 chunked 8 MiB logins at once: RSS {sampler.before:.0f} MiB, +{growth:.1f} at peak")
    assert growth < 40, f"20 chunked 8 MB logins grew the process by {growth:.0f} MiB"


async def test_validation_errors_are_bounded(client: Client) -> None:
    resp = await client.post(
        "/api/admin/keys",
        json={"name": "k", "owner": "o", "permissions": ["read"]}
        | {f"unknown_{i}": i for i in range(2000)},
        headers=ADMIN,
    )
    assert resp.status == 422
    body = await resp.json()
    assert len(body["errors"]) == MAX_PROBLEM_ERRORS
    assert body["errors_total"] == 2000


async def test_markup_errors_are_bounded_on_the_proxied_path(
    client: Client, costs_recorder: Recorder
) -> None:
    resp = await client.post("/api/costs/budgets", json=["<b>"] * 1000, headers=ADMIN)
    assert resp.status == 422
    body = await resp.json()
    assert len(body["errors"]) == MAX_PROBLEM_ERRORS
    assert body["errors_total"] == 1000
    assert costs_recorder.requests == []


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_a_body_on_a_method_without_one_is_never_parsed_nor_forwarded(
    client: Client, costs_recorder: Recorder, method: str
) -> None:
    body = b'{"not": "closed' + b"x" * 100_000
    path = "/api/costs/daily" if method == "GET" else "/api/costs/budgets/b1"
    resp = await client.request(
        method, path, data=body, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["Connection"] == "close"
    seen = costs_recorder.requests[-1]
    assert seen["method"] == method
    assert seen["body"] == ""


async def test_a_slow_json_body_meets_a_deadline(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(settings.model_copy(update={"body_read_timeout_seconds": 0.5}))
    head = (
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n"
    )
    answer, _, seconds = await exchange(port_of(client), head, [b" "] * 200, pause=0.1)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"Connection: close" in answer
    assert seconds < 2


async def test_a_stalled_upload_is_broken_off(
    make_client: MakeClient, settings: GatewaySettings, costs_recorder: Recorder
) -> None:
    client = await make_client(settings.model_copy(update={"upload_idle_seconds": 0.5}))
    head = (
        f"POST /api/costs/imports HTTP/1.1\r\nHost: x\r\nX-API-Key: {ADMIN_KEY}\r\n"
        "Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    answer, _, seconds = await exchange(port_of(client), head, [chunk(b"a,b\n")] * 3, pause=1.5)
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert seconds < 3


# --- a service reached directly, as nginx reaches it once the gateway has decided ----------------


async def direct(
    service: ServiceProcess, method: str, path: str, body: bytes
) -> tuple[int, dict[str, object]]:
    import io

    import aiohttp

    headers = {
        "Content-Type": "application/json",
        "X-CloudOps-Principal": "tests",
        "X-CloudOps-Permissions": "admin,read,write",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, service.url + path, data=io.BytesIO(body), headers=headers) as resp,
    ):
        return resp.status, orjson.loads(await resp.read())


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (orjson.dumps(resource_body(name="<script>alert(1)</script>")), 422),
        (b'{"name": ' + b"[" * 40 + b"]" * 40 + b"}", 400),
        (b'{"name": "' + b"x" * (6 * 1024 * 1024) + b'"}', 413),
    ],
    ids=["markup", "deep", "oversized"],
)
async def test_a_service_guards_its_own_json_bodies(
    resources_service: ServiceProcess, body: bytes, status: int
) -> None:
    answer, problem = await direct(resources_service, "POST", "/api/resources", body)
    assert answer == status, problem
    assert problem["status"] == status


async def test_a_service_cuts_a_chunked_body_at_its_limit(
    resources_service: ServiceProcess,
) -> None:
    port = int(resources_service.url.rsplit(":", 1)[1])
    head = chunked_head(
        "/api/resources", {"X-CloudOps-Principal": "t", "X-CloudOps-Permissions": "write"}
    )
    answer, sent, seconds = await exchange(
        port, head, [chunk(b'{"name": "'), *[chunk(b"x" * PIECE)] * 480]
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 16 * 1024 * 1024  # 5 MiB read, some in socket buffers, not the 30 MiB offered
    assert seconds < 3


async def test_a_password_may_hold_what_looks_like_markup(client: Client) -> None:
    password = "<script>onload=javascript:1</script>"
    created = await client.post(
        "/api/admin/users",
        json={"username": "ivy", "password": password, "permissions": ["read"]},
        headers=ADMIN,
    )
    assert created.status == 201, await created.text()
    login = await client.post("/api/auth/login", json={"username": "ivy", "password": password})
    assert login.status == 200, await login.text()
