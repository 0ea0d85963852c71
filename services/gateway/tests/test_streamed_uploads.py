"""Billing files pass through the gateway as they arrive: sized or chunked, cut at the limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from common.limits import UPLOAD_MAX_BYTES, UPLOAD_READ_TIMEOUT_SECONDS
from gateway.breaker import BreakerState
from gateway.proxy import UPSTREAMS
from gateway.routes import upstream_routes
from gateway.settings import GatewaySettings

from .conftest import ADMIN, ADMIN_KEY, Client, Recorder
from .test_hardening import raw_exchange

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]
LIMIT = 4096
IMPORTS = "/api/costs/imports"


@pytest.fixture
async def capped(make_client: MakeClient, settings: GatewaySettings) -> Client:
    """The gateway with a small upload limit, so that crossing it takes a few KiB."""
    return await make_client(settings.model_copy(update={"route_body_limits": {IMPORTS: LIMIT}}))


def chunked_head(content_type: str = "text/csv") -> bytes:
    return (
        f"POST {IMPORTS}?filename=bill.csv HTTP/1.1\r\nHost: x\r\nX-API-Key: {ADMIN_KEY}\r\n"
        f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_the_import_route_has_the_shared_upload_limits() -> None:
    (spec,) = [s for s in upstream_routes() if s.template == IMPORTS]
    assert spec.max_body_bytes == UPLOAD_MAX_BYTES
    assert spec.read_timeout_seconds == UPLOAD_READ_TIMEOUT_SECONDS


async def test_a_sized_upload_reaches_the_service_with_its_content_length(
    client: Client, costs_recorder: Recorder
) -> None:
    body = b"".join(b"line %06d,%s\n" % (i, b"x" * 90) for i in range(5000))  # ~500 KB
    resp = await client.post(
        f"{IMPORTS}?filename=bill.csv", data=body, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert resp.status == 200
    seen = costs_recorder.requests[-1]
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["content-length"] == str(len(body))
    assert "transfer-encoding" not in headers
    assert seen["body"].encode() == body


async def test_a_chunked_upload_is_forwarded_chunked(
    client: Client, costs_recorder: Recorder
) -> None:
    parts = [b"a,b\n" * 1000, b"c,d\n" * 1000, b"e,f\n"]
    answer = await raw_exchange(client, chunked_head(), [*map(chunk, parts), b"0\r\n\r\n"])
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    seen = costs_recorder.requests[-1]
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert seen["body"].encode() == b"".join(parts)


async def test_a_declared_upload_over_the_limit_is_refused_before_it_is_read(
    capped: Client, costs_recorder: Recorder
) -> None:
    head = (
        f"POST {IMPORTS} HTTP/1.1\r\nHost: x\r\nX-API-Key: {ADMIN_KEY}\r\n"
        f"Content-Type: text/csv\r\nContent-Length: {LIMIT + 1}\r\n\r\n"
    ).encode()
    answer = await raw_exchange(capped, head, [])
    assert answer.startswith(b"HTTP/1.1 413")
    assert costs_recorder.requests == []


async def test_a_chunked_upload_over_the_limit_is_cut_off_upstream_and_answered_413(
    capped: Client, costs_recorder: Recorder
) -> None:
    pieces = [chunk(b"x" * 1023 + b"\n")] * 64  # 64 KiB offered, 4 KiB allowed, no last chunk
    answer = await raw_exchange(capped, chunked_head(), pieces)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer
    assert b"Connection: close" in answer
    # The service saw a body that broke off: its read failed, so it never recorded a request.
    assert costs_recorder.requests == []
    # The client's mistake is not the service's failure.
    assert capped.app[UPSTREAMS]["costs"].breaker.state is BreakerState.CLOSED


async def test_uploads_over_the_limit_never_open_the_breaker(
    capped: Client, settings: GatewaySettings
) -> None:
    pieces = [chunk(b"x" * 1023 + b"\n")] * 16
    for _ in range(settings.breaker_failure_threshold + 1):
        answer = await raw_exchange(capped, chunked_head(), pieces)
        assert answer.startswith(b"HTTP/1.1 413")
    assert capped.app[UPSTREAMS]["costs"].breaker.state is BreakerState.CLOSED
    resp = await capped.get("/api/costs/daily", headers=ADMIN)
    assert resp.status == 200


async def test_an_upload_at_the_limit_passes(capped: Client, costs_recorder: Recorder) -> None:
    body = b"y" * LIMIT
    resp = await capped.post(IMPORTS, data=body, headers={**ADMIN, "Content-Type": "text/csv"})
    assert resp.status == 200
    assert len(costs_recorder.requests[-1]["body"]) == LIMIT


async def test_an_upload_to_a_stopped_service_is_503_and_sent_once(
    client: Client, costs_recorder: Recorder
) -> None:
    costs_recorder.drop_next = 1
    resp = await client.post(
        IMPORTS, data=b"a,b\n" * 100, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert resp.status == 503
    assert resp.content_type == "application/problem+json"
    assert len(costs_recorder.requests) == 1


async def test_an_upload_that_expects_100_continue_is_streamed(
    client: Client, costs_recorder: Recorder
) -> None:
    body = b"a,b\n" * 20000
    resp = await client.post(
        IMPORTS, data=body, headers={**ADMIN, "Content-Type": "text/csv"}, expect100=True
    )
    assert resp.status == 200
    seen = costs_recorder.requests[-1]
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    # The gateway answered the expectation itself; the service gets a plain sized body.
    assert "expect" not in headers
    assert headers["content-length"] == str(len(body))
    assert seen["body"].encode() == body
