"""The JSON body guard every service gets from create_base_app: limits on the bytes actually read,
a read deadline, depth and markup, bounded error lists, and bodies on GET/HEAD/DELETE ignored."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import BaseModel, ConfigDict

from common.config import ServiceSettings
from common.errors import MAX_PROBLEM_ERRORS
from common.json_guard import BodyPolicy, check_json_value
from common.testing import make_settings
from common.web import create_base_app, json_response, read_json, read_json_value

Client = TestClient[web.Request, web.Application]
LIMIT = 4096


class Numbers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: list[int]


class Seen:
    handled = 0


async def echo(request: web.Request) -> web.Response:
    Seen.handled += 1
    return json_response(await read_json_value(request))


async def numbers(request: web.Request) -> web.Response:
    return json_response(len((await read_json(request, Numbers)).values))


async def unread(request: web.Request) -> web.Response:
    Seen.handled += 1
    return json_response({"method": request.method})


def guarded_app(policy: BodyPolicy) -> web.Application:
    app = create_base_app(make_settings(ServiceSettings, service_name="guard"), body_policy=policy)
    app.router.add_post("/echo", echo)
    app.router.add_post("/numbers", numbers)
    app.router.add_get("/unread", unread)
    app.router.add_delete("/unread", unread)
    return app


@pytest.fixture
async def client(aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    Seen.handled = 0
    return await aiohttp_client(guarded_app(BodyPolicy(max_bytes=LIMIT, read_timeout_seconds=0.5)))


async def exchange(client: Client, head: bytes, body_parts: list[bytes], pause: float = 0) -> bytes:
    """Send a request by hand while reading the answer: the server may answer (and close)
    before the body is sent, as it should for a body it refuses."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)

    async def send() -> None:
        try:
            writer.write(head)
            for part in body_parts:
                if pause:
                    await asyncio.sleep(pause)
                writer.write(part)
                await writer.drain()
        except ConnectionError:
            pass

    sender = asyncio.create_task(send())
    try:
        async with asyncio.timeout(5):
            return await reader.read(65536)
    finally:
        sender.cancel()
        writer.close()


def head(method: str, path: str, extra: str = "") -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}\r\n"
    ).encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def problem(answer: bytes) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(answer.split(b"\r\n\r\n", 1)[1])
    return body


async def test_a_chunked_body_over_the_limit_is_cut_off_at_the_limit(client: Client) -> None:
    offered = [chunk(b" " * 65536)] * 160  # 10 MiB offered, 4 KiB allowed, never terminated
    started = time.perf_counter()
    answer = await exchange(
        client, head("POST", "/echo", "Transfer-Encoding: chunked\r\n"), offered
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert b"Connection: close" in answer
    assert problem(answer)["type"].endswith("/payload-too-large")
    assert time.perf_counter() - started < 2
    assert Seen.handled == 1  # the handler asked for the body; the guard refused it


async def test_a_declared_body_over_the_limit_is_refused_before_the_handler(
    client: Client,
) -> None:
    answer = await exchange(client, head("POST", "/echo", f"Content-Length: {LIMIT + 1}\r\n"), [])
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in answer
    assert Seen.handled == 0


async def test_a_body_slower_than_the_deadline_is_408(client: Client) -> None:
    started = time.perf_counter()
    answer = await exchange(
        client, head("POST", "/echo", "Content-Length: 100\r\n"), [b"{"] * 100, pause=0.2
    )
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert b"Connection: close" in answer
    assert problem(answer)["type"].endswith("/request-timeout")
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_a_body_on_a_method_without_one_is_ignored_never_parsed(
    client: Client, method: str
) -> None:
    body = b"{not json at all" * 1000
    answer = await exchange(
        client, head(method, "/unread", f"Content-Length: {len(body)}\r\n"), [body]
    )
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    # The unread body must not be taken for the next request on this connection.
    assert b"Connection: close" in answer
    assert Seen.handled == 1


async def test_deep_json_is_400(client: Client) -> None:
    resp = await client.post("/echo", data="[" * 40 + "]" * 40, headers=JSON)
    assert resp.status == 400
    assert "nested deeper" in (await resp.json())["detail"]


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "<script>alert(1)</script>"}, "name"),
        ({"tags": {"env": "javascript:alert(1)"}}, "tags.env"),
        ({"items": [{"note": "<img src=x onerror=y>"}]}, "items.0.note"),
        ("<b>bold</b>", "body"),
    ],
)
async def test_markup_in_a_string_is_422_naming_the_field(
    client: Client, body: Any, field: str
) -> None:
    resp = await client.post("/echo", json=body)
    assert resp.status == 422
    problem_body = await resp.json()
    assert [e["field"] for e in problem_body["errors"]] == [field]
    assert "<" not in await resp.text()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "we\x00b"}, "name", "must not contain the NUL character"),
        ({"tags": {"env": "\x00"}}, "tags.env", "must not contain the NUL character"),
        ({"items": [{"note": "a\x00"}]}, "items.0.note", "must not contain the NUL character"),
        ({"labels": {"te\x00am": "web"}}, "labels", "keys must not contain the NUL character"),
        ({"n\x00": 1}, "body", "keys must not contain the NUL character"),
        ("\x00", "body", "must not contain the NUL character"),
    ],
)
async def test_a_nul_character_anywhere_in_a_body_is_422_naming_the_field(
    client: Client, body: Any, field: str, message: str
) -> None:
    resp = await client.post("/echo", json=body)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    problem_body = await resp.json()
    assert problem_body["errors"] == [{"field": field, "message": message}]
    assert "NUL" in problem_body["detail"]


async def test_a_nul_character_is_refused_even_where_markup_is_allowed(
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await aiohttp_client(guarded_app(BodyPolicy(reject_markup=False)))
    assert (await client.post("/echo", json={"password": "<b>"})).status == 200
    resp = await client.post("/echo", json={"password": "a\x00", "note": "<b>"})
    assert resp.status == 422
    assert [e["field"] for e in (await resp.json())["errors"]] == ["password"]


async def test_nul_and_markup_findings_are_both_named(client: Client) -> None:
    resp = await client.post("/echo", json={"a": "x\x00", "b": "<b>"})
    assert resp.status == 422
    body = await resp.json()
    assert {e["field"]: e["message"] for e in body["errors"]} == {
        "a": "must not contain the NUL character",
        "b": "must not contain HTML or script markup",
    }
    assert "NUL" in body["detail"]
    assert "markup" in body["detail"]


async def test_markup_errors_are_bounded_with_a_total(client: Client) -> None:
    resp = await client.post("/echo", json=["<b>"] * 300)
    assert resp.status == 422
    body = await resp.json()
    assert len(body["errors"]) == MAX_PROBLEM_ERRORS
    assert body["errors_total"] == 300


async def test_validation_errors_are_bounded_with_a_total(client: Client) -> None:
    resp = await client.post("/numbers", json={"values": ["x"] * 500})
    assert resp.status == 422
    body = await resp.json()
    assert len(body["errors"]) == MAX_PROBLEM_ERRORS
    assert body["errors_total"] == 500
    assert len(await resp.read()) < 4096


async def test_a_few_errors_carry_no_total(client: Client) -> None:
    resp = await client.post("/numbers", json={"values": ["x", 1, "y"]})
    body = await resp.json()
    assert [e["field"] for e in body["errors"]] == ["values.0", "values.2"]
    assert "errors_total" not in body


async def test_plain_json_within_the_limits_reaches_the_handler(client: Client) -> None:
    value = {"name": "web 1 - eu (a < 5)", "n": [1, 2.5, {"x": None}]}
    resp = await client.post("/echo", json=value)
    assert resp.status == 200
    assert (await resp.json())["data"] == value


def test_checking_a_wide_body_allocates_nothing_per_item() -> None:
    # A 10 MiB body can hold 5 million items; a path string per item once cost ~650 MiB.
    value = [0, "plain", {"a": 1}] * 100_000
    tracemalloc.start()
    try:
        check_json_value(value, BodyPolicy())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"{peak / 1024:.0f} KiB"
