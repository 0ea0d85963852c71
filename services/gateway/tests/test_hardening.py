"""Request hardening: body limits, media types, refused methods, JSON bounds, security headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.settings import GatewaySettings

from .conftest import ADMIN, ADMIN_KEY, Client, Recorder, resource_body

MakeClient = Callable[[GatewaySettings], Awaitable[Client]]
LIMIT = 2048


@pytest.fixture
async def small(make_client: MakeClient, settings: GatewaySettings) -> Client:
    return await make_client(settings.model_copy(update={"max_body_bytes": LIMIT}))


async def raw_exchange(client: Client, head: bytes, chunks: list[bytes]) -> bytes:
    """Send a request by hand; returns whatever the server answered before closing."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(head)
        await writer.drain()
        for chunk in chunks:
            try:
                writer.write(chunk)
                await writer.drain()
            except ConnectionError:
                break
        async with asyncio.timeout(5):
            return await reader.read(65536)
    finally:
        writer.close()


async def test_oversized_body_is_rejected_before_it_is_read(
    small: Client, costs_recorder: Recorder
) -> None:
    # Only the headers are sent: a server that tried to read the body would wait forever.
    head = (
        f"POST /api/costs/budgets HTTP/1.1\r\nHost: x\r\nX-API-Key: {ADMIN_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {LIMIT + 1}\r\n\r\n"
    ).encode()
    answer = await raw_exchange(small, head, [])
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in answer
    assert b"X-Content-Type-Options: nosniff" in answer
    assert costs_recorder.requests == []


async def test_body_at_the_limit_is_accepted(small: Client, costs_recorder: Recorder) -> None:
    body = b'{"a": "' + b"x" * (LIMIT - 9) + b'"}'
    assert len(body) == LIMIT
    resp = await small.post(
        "/api/costs/budgets", data=body, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert resp.status == 200
    assert len(costs_recorder.requests[-1]["body"]) == LIMIT


async def test_chunked_body_over_the_limit_is_cut_off(
    small: Client, costs_recorder: Recorder
) -> None:
    head = (
        f"POST /api/costs/budgets HTTP/1.1\r\nHost: x\r\nX-API-Key: {ADMIN_KEY}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    answer = await raw_exchange(small, head, [chunk] * 256)  # 256 KiB offered, 2 KiB allowed
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in answer
    assert costs_recorder.requests == []


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("text/plain", 415), ("application/x-www-form-urlencoded", 415), ("application/xml", 415)],
)
async def test_wrong_content_type_is_415(
    client: Client, costs_recorder: Recorder, content_type: str, status: int
) -> None:
    resp = await client.post(
        "/api/costs/budgets", data=b"{}", headers={**ADMIN, "Content-Type": content_type}
    )
    assert resp.status == status
    assert costs_recorder.requests == []


async def test_trace_is_refused(client: Client, costs_recorder: Recorder) -> None:
    resp = await client.request("TRACE", "/api/costs/daily", headers=ADMIN)
    assert resp.status == 405
    assert "TRACE" not in resp.headers["Allow"]
    assert_security_headers(resp.headers)
    assert costs_recorder.requests == []


@pytest.mark.parametrize("method", ["TRACK", "CONNECT"])
async def test_other_tracing_methods_never_reach_a_service(
    client: Client, costs_recorder: Recorder, method: str
) -> None:
    resp = await client.request(method, "/api/costs/daily", headers=ADMIN)
    assert resp.status in (400, 405)  # aiohttp's parser refuses some before the app sees them
    assert costs_recorder.requests == []


async def test_deep_json_is_rejected(client: Client, costs_recorder: Recorder) -> None:
    body = "[" * 40 + "]" * 40
    resp = await client.post(
        "/api/costs/budgets", data=body, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert costs_recorder.requests == []


async def test_malformed_json_is_400(client: Client, costs_recorder: Recorder) -> None:
    resp = await client.post(
        "/api/costs/budgets", data=b"{nope", headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert costs_recorder.requests == []


@pytest.mark.parametrize(
    "value",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "javascript:alert(1)",
        'x" onclick="steal()',
        "<!-- comment -->",
    ],
)
async def test_markup_in_text_fields_is_rejected_and_not_reflected(
    client: Client, value: str
) -> None:
    before = await (await client.get("/api/resources", headers=ADMIN)).json()
    resp = await client.post("/api/resources", json=resource_body(name=value), headers=ADMIN)
    assert resp.status == 422
    body = await resp.text()
    assert value not in body
    assert resp.content_type == "application/problem+json"
    # Nothing was stored (other tests of the module share the service, so compare, not zero).
    after = await (await client.get("/api/resources", headers=ADMIN)).json()
    assert after["meta"]["total"] == before["meta"]["total"]


async def test_plain_text_with_angle_free_punctuation_passes(client: Client) -> None:
    resp = await client.post(
        "/api/resources", json=resource_body(name="web 1 - eu (a=b)"), headers=ADMIN
    )
    assert resp.status == 201


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "no-store",
    "X-XSS-Protection": "0",
}


def assert_security_headers(headers: object) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name  # type: ignore[index]
    assert "default-src 'none'" in headers["Content-Security-Policy"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/api/health", {}, 200),
        ("GET", "/api/resources", ADMIN, 200),
        ("GET", "/api/resources", {}, 401),
        ("GET", "/api/nowhere", {}, 404),
        ("PUT", "/api/health", {}, 405),
        ("GET", "/metrics", {}, 200),
    ],
)
async def test_security_headers_on_every_response(
    client: Client, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    resp = await client.request(method, path, headers=headers)
    assert resp.status == status
    assert_security_headers(resp.headers)
    assert "Strict-Transport-Security" not in resp.headers


async def test_cors_only_for_configured_origins(
    make_client: MakeClient, settings: GatewaySettings
) -> None:
    client = await make_client(
        settings.model_copy(update={"cors_origins": ("https://dash.example",)})
    )
    allowed = await client.get("/api/health", headers={"Origin": "https://dash.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://dash.example"
    other = await client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = {"Access-Control-Request-Method": "POST"}
    ok = await client.options(
        "/api/resources", headers={"Origin": "https://dash.example", **preflight}
    )
    assert ok.status == 204
    assert "X-API-Key" in ok.headers["Access-Control-Allow-Headers"]
    refused = await client.options(
        "/api/resources", headers={"Origin": "https://evil.example", **preflight}
    )
    assert refused.status == 403


@pytest.mark.parametrize(
    "path",
    [
        "/api/costs/../../metrics",
        "/api/costs/%2e%2e/%2e%2e/metrics",
        "/api/costs/a%2F..%2F..%2Fmetrics",
        "/api/costs/./daily",
        "/api/costs/a%5c..%5cb",
        "/api/costs/a%00b",
    ],
)
async def test_paths_that_could_escape_their_route_are_400(
    client: Client, costs_recorder: Recorder, path: str
) -> None:
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {ADMIN_KEY}\r\n\r\n".encode()
    answer = await raw_exchange(client, head, [])
    assert answer.startswith(b"HTTP/1.1 400")
    assert costs_recorder.requests == []
