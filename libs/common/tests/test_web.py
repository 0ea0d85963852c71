"""The shared aiohttp skeleton: problem responses, JSON in/out, request context, health, metrics."""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common import errors, metrics
from common.config import ServiceSettings
from common.db import postgres_ctx
from common.metrics import render_metrics
from common.redis import redis_ctx
from common.testing import make_settings
from common.web import (
    READINESS,
    QueryMemo,
    Readiness,
    create_base_app,
    json_response,
    parse_query,
    prepare_stream,
    read_json,
    read_json_value,
)

SERVICE = "t"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
Client = TestClient[web.Request, web.Application]


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    price: Decimal


class Page(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


PROBLEMS: dict[str, type[errors.ProblemError]] = {
    "bad-request": errors.BadRequest,
    "unauthorized": errors.Unauthorized,
    "forbidden": errors.Forbidden,
    "not-found": errors.NotFound,
    "conflict": errors.Conflict,
    "payload-too-large": errors.PayloadTooLarge,
    "unsupported-media-type": errors.UnsupportedMediaType,
    "validation-failed": errors.ValidationFailed,
    "rate-limited": errors.TooManyRequests,
    "service-unavailable": errors.ServiceUnavailable,
}


async def get_item(request: web.Request) -> web.Response:
    return json_response(
        {"id": request.match_info["id"], "price": Decimal("12.30")},
        meta={"total": 1, "limit": 20, "offset": 0},
    )


async def list_items(request: web.Request) -> web.Response:
    page = parse_query(request, Page)
    return json_response([], meta={"total": 0, "limit": page.limit, "offset": page.offset})


async def create_item(request: web.Request) -> web.Response:
    item = await read_json(request, Item)
    return json_response(item, status=201)


async def echo_json(request: web.Request) -> web.Response:
    return json_response(await read_json_value(request))


async def raise_problem(request: web.Request) -> web.Response:
    cls = PROBLEMS[request.match_info["slug"]]
    raise cls(
        f"{cls.__name__} raised by the handler.",
        errors=[{"field": "name", "message": "taken"}],
        headers={"Retry-After": "7"},
    )


async def raise_validation_error(request: web.Request) -> web.Response:
    Item.model_validate({"name": 5, "price": "cheap"})
    raise AssertionError("unreachable")


async def crash(request: web.Request) -> web.Response:
    raise RuntimeError("password=hunter2 in /srv/app/secret_module.py")


# What a client sent, as a stored copy read back: the input a validation error would quote.
PLANTED = {"name": "ok", "price": "planted-secret-in-a-body"}


async def crash_over_invalid_data(request: web.Request) -> web.Response:
    try:
        Item.model_validate(PLANTED)
    except ValidationError as exc:
        raise RuntimeError("stored item unreadable") from exc
    raise AssertionError("unreachable")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/health/live")


async def gone(request: web.Request) -> web.Response:
    raise web.HTTPGone()


def build_app(settings: ServiceSettings, **kwargs: Any) -> web.Application:
    app = create_base_app(settings, **kwargs)
    app.router.add_get("/items", list_items)
    app.router.add_post("/items", create_item)
    app.router.add_get("/items/{id}", get_item)
    app.router.add_post("/echo", echo_json)
    app.router.add_get("/problems/{slug}", raise_problem)
    app.router.add_post("/validate", raise_validation_error)
    app.router.add_get("/crash", crash)
    app.router.add_get("/crash/invalid", crash_over_invalid_data)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/gone", gone)
    return app


@pytest.fixture
def settings(pg_url: str) -> ServiceSettings:
    return make_settings(ServiceSettings, service_name=SERVICE, database_url=pg_url)


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[Client]], settings: ServiceSettings
) -> Client:
    return await aiohttp_client(build_app(settings))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def problem_of(response: Any) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = orjson.loads(await response.read())
    return body


@pytest.mark.parametrize(("slug", "cls"), PROBLEMS.items(), ids=list(PROBLEMS))
async def test_problem_errors_become_problem_json_with_their_status(
    client: Client, slug: str, cls: type[errors.ProblemError]
) -> None:
    response = await client.get(f"/problems/{slug}?token=secret", headers={"X-Request-ID": "r-1"})

    assert response.status == cls.status
    assert response.headers["Retry-After"] == "7"
    assert await problem_of(response) == {
        "type": f"https://cloudops.dev/problems/{slug}",
        "title": HTTPStatus(cls.status).phrase,
        "status": cls.status,
        "detail": f"{cls.__name__} raised by the handler.",
        "instance": f"/problems/{slug}",
        "success": False,
        "request_id": "r-1",
        "errors": [{"field": "name", "message": "taken"}],
    }


def test_problem_error_status_and_slug_can_be_overridden() -> None:
    exc = errors.Conflict("stale", status=412, slug="precondition-failed")

    assert (exc.status, exc.slug, exc.detail, exc.errors, exc.headers) == (
        412,
        "precondition-failed",
        "stale",
        [],
        {},
    )
    assert errors.Conflict.status == 409


@pytest.mark.parametrize(
    ("status", "type_", "title"),
    [
        (418, "https://cloudops.dev/problems/i'm-a-teapot", "I'm a Teapot"),
        (599, "https://cloudops.dev/problems/error", "Error"),
    ],
)
def test_problem_body_falls_back_to_the_status_phrase(status: int, type_: str, title: str) -> None:
    body = errors.problem_body(status=status, detail="d", instance="/x", request_id=None)

    assert (body["type"], body["title"], "errors" in body) == (type_, title, False)


async def test_pydantic_validation_error_becomes_422_with_field_errors(client: Client) -> None:
    response = await client.post("/validate")

    assert response.status == 422
    body = await problem_of(response)
    assert body["type"] == "https://cloudops.dev/problems/validation-failed"
    assert body["detail"] == "The request has invalid values."
    assert body["errors"] == [
        {"field": "name", "message": "Input should be a valid string"},
        {"field": "price", "message": "Input should be a valid decimal"},
    ]
    assert "cheap" not in await response.text()


async def test_unknown_exception_becomes_500_problem_without_internals(
    client: Client, log_lines: list[str]
) -> None:
    before = sample("application_errors_total", service=SERVICE, kind="RuntimeError")

    response = await client.get("/crash")

    assert response.status == 500
    text = await response.text()
    body = orjson.loads(text)
    request_id = response.headers["X-Request-ID"]
    assert body == {
        "type": "https://cloudops.dev/problems/internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "An unexpected error occurred. Quote the request id when reporting it.",
        "instance": "/crash",
        "success": False,
        "request_id": request_id,
    }
    assert not {"hunter2", "secret_module", "Traceback", "RuntimeError"} & set(
        re.split(r"\W", text)
    )
    assert sample("application_errors_total", service=SERVICE, kind="RuntimeError") == before + 1

    [error_line] = [orjson.loads(line) for line in log_lines if '"unhandled error"' in line]
    assert error_line["level"] == "ERROR"
    assert error_line["request_id"] == request_id
    assert error_line["error"] == "RuntimeError"
    assert error_line["exception.type"] == "RuntimeError"
    assert "Traceback" in error_line["exception.stacktrace"]
    assert 'raise RuntimeError("password=hunter2' in error_line["exception.stacktrace"]


async def test_a_validation_error_behind_a_500_is_logged_without_its_input(
    client: Client, log_lines: list[str]
) -> None:
    response = await client.get("/crash/invalid")

    assert response.status == 500
    [error_line] = [orjson.loads(line) for line in log_lines if '"unhandled error"' in line]
    assert error_line["exception.type"] == "RuntimeError"
    assert (
        "RedactedValidationError: 1 validation error for Item: price [decimal_parsing]"
        in error_line["exception.stacktrace"]
    )
    assert not [line for line in log_lines if "planted-secret" in line]


async def test_each_request_writes_one_access_line_with_path_but_no_query(
    client: Client, log_lines: list[str]
) -> None:
    response = await client.get("/items/7?api_key=leaked", headers={"X-Request-ID": "req-77"})

    assert response.status == 200
    access = [orjson.loads(line) for line in log_lines if '"request"' in line]
    assert len(access) == 1
    extra = access[0]
    assert {k: extra[k] for k in ("service", "request_id", "method", "path", "status")} == {
        "service": "svc-under-test",
        "request_id": "req-77",
        "method": "GET",
        "path": "/items/7",
        "status": 200,
    }
    assert re.fullmatch(r"[0-9a-f]{32}", extra["trace_id"])
    assert not any("leaked" in line for line in log_lines)


async def test_unknown_route_is_a_404_problem(client: Client) -> None:
    response = await client.get("/nowhere")

    assert response.status == 404
    body = await problem_of(response)
    assert (body["type"], body["title"], body["instance"]) == (
        "https://cloudops.dev/problems/not-found",
        "Not Found",
        "/nowhere",
    )


async def test_wrong_method_is_a_405_problem_with_allow(client: Client) -> None:
    response = await client.delete("/items/1")

    assert response.status == 405
    assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD"}
    body = await problem_of(response)
    assert (body["status"], body["title"]) == (405, "Method Not Allowed")


async def test_other_aiohttp_http_errors_become_problems(client: Client) -> None:
    response = await client.get("/gone")

    assert response.status == 410
    assert (await problem_of(response))["type"] == "https://cloudops.dev/problems/gone"


async def test_redirects_pass_through_and_are_counted_with_their_status(client: Client) -> None:
    labels = {"service": SERVICE, "method": "GET", "route": "/redirect"}
    before = sample("http_requests_total", **labels, status="302")

    response = await client.get("/redirect", allow_redirects=False)

    assert response.status == 302
    assert response.headers["Location"] == "/health/live"
    assert sample("http_requests_total", **labels, status="302") == before + 1
    assert sample("http_requests_total", **labels, status="500") == 0


async def test_valid_incoming_request_id_is_echoed(client: Client) -> None:
    response = await client.get("/items/1", headers={"X-Request-ID": "abc-123"})

    assert response.headers["X-Request-ID"] == "abc-123"


@pytest.mark.parametrize("incoming", [None, "", "x" * 129, "bad id", "a;b", "ü"])
async def test_missing_or_invalid_request_id_is_replaced(
    client: Client, incoming: str | None
) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming}

    response = await client.get("/problems/not-found", headers=headers)

    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert (await problem_of(response))["request_id"] == request_id


async def test_incoming_traceparent_is_continued_with_a_new_span(client: Client) -> None:
    response = await client.get("/items/1", headers={"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-00"})

    version, trace_id, span_id, flags = response.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "00")
    assert re.fullmatch(r"[0-9a-f]{16}", span_id)
    assert span_id != SPAN_ID


async def test_invalid_traceparent_starts_a_new_trace(client: Client) -> None:
    response = await client.get("/items/1", headers={"traceparent": f"ff-{TRACE_ID}-{SPAN_ID}-01"})

    match = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", response.headers["traceparent"])
    assert match is not None
    assert match.group(1) != TRACE_ID


async def test_json_response_wraps_data_and_meta_and_keeps_decimals_as_strings(
    client: Client,
) -> None:
    response = await client.get("/items/42")

    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert orjson.loads(await response.read()) == {
        "success": True,
        "data": {"id": "42", "price": "12.30"},
        "meta": {"total": 1, "limit": 20, "offset": 0},
    }


def test_json_response_omits_meta_when_not_given_and_refuses_unknown_types() -> None:
    response = json_response({"ok": True}, status=202)

    assert response.status == 202
    assert response.body == b'{"success":true,"data":{"ok":true}}'
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        json_response(object())


async def test_read_json_validates_into_the_model_keeping_every_digit(client: Client) -> None:
    response = await client.post(
        "/items",
        data=b'{"name": "vm", "price": 0.1000000000000000055511151231257827}',
        headers={"Content-Type": "application/json"},
    )

    assert response.status == 201
    assert orjson.loads(await response.read())["data"] == {
        "name": "vm",
        "price": "0.1000000000000000055511151231257827",
    }


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
@pytest.mark.parametrize("path", ["/items", "/echo"])
async def test_body_not_declared_json_is_415(
    client: Client, content_type: str | None, path: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    response = await client.post(path, data=b'{"name": "vm", "price": 1}', headers=headers)

    assert response.status == 415
    body = await problem_of(response)
    assert body["type"] == "https://cloudops.dev/problems/unsupported-media-type"
    assert body["detail"].startswith("Expected Content-Type application/json, got ")


@pytest.mark.parametrize("body", [b'{"name": "vm"', b"", b"not json", b"{'name': 1}"])
@pytest.mark.parametrize("path", ["/items", "/echo"])
async def test_malformed_json_is_400(client: Client, body: bytes, path: str) -> None:
    response = await client.post(path, data=body, headers={"Content-Type": "application/json"})

    assert response.status == 400
    problem = await problem_of(response)
    assert problem["type"] == "https://cloudops.dev/problems/bad-request"
    assert problem["detail"].startswith("The body is not valid JSON")


@pytest.mark.parametrize("content_type", ["application/json", "application/merge-patch+json"])
async def test_json_media_types_are_accepted(client: Client, content_type: str) -> None:
    response = await client.post(
        "/echo", data=b'{"a": [1, 2]}', headers={"Content-Type": content_type}
    )

    assert response.status == 200
    assert orjson.loads(await response.read())["data"] == {"a": [1, 2]}


async def test_unknown_field_is_422_naming_it(client: Client) -> None:
    response = await client.post("/items", json={"name": "vm", "price": "1.5", "colour": "red"})

    assert response.status == 422
    assert (await problem_of(response))["errors"] == [
        {"field": "colour", "message": "Extra inputs are not permitted"}
    ]


@pytest.mark.parametrize(
    ("query", "errors_"),
    [
        (
            "limit=abc",
            [
                {
                    "field": "limit",
                    "message": "Input should be a valid integer, "
                    "unable to parse string as an integer",
                }
            ],
        ),
        ("limit=101", [{"field": "limit", "message": "Input should be less than or equal to 100"}]),
        (
            "offset=-1",
            [{"field": "offset", "message": "Input should be greater than or equal to 0"}],
        ),
    ],
)
async def test_invalid_query_is_400_with_field_errors(
    client: Client, query: str, errors_: list[dict[str, str]]
) -> None:
    response = await client.get(f"/items?{query}")

    assert response.status == 400
    body = await problem_of(response)
    assert (body["detail"], body["errors"]) == ("Invalid query parameters.", errors_)


async def test_valid_query_is_parsed(client: Client) -> None:
    response = await client.get("/items?limit=5&offset=10")

    assert orjson.loads(await response.read())["meta"] == {"total": 0, "limit": 5, "offset": 10}


async def test_oversized_body_is_a_413_problem(
    aiohttp_client: Callable[..., Awaitable[Client]], settings: ServiceSettings
) -> None:
    client = await aiohttp_client(build_app(settings, client_max_size=64))

    response = await client.post(
        "/echo", data=b"[" + b"1," * 100 + b"1]", headers={"Content-Type": "application/json"}
    )

    assert response.status == 413
    # One problem type for 413 in every service and at the gateway (common.json_guard).
    assert (await problem_of(response))["type"] == "https://cloudops.dev/problems/payload-too-large"


async def test_liveness_answers_without_dependencies(client: Client) -> None:
    response = await client.get("/health/live")

    assert response.status == 200
    assert orjson.loads(await response.read()) == {
        "success": True,
        "data": {"status": "ok", "service": SERVICE},
    }


@pytest.fixture
def ready_app(settings: ServiceSettings) -> web.Application:
    app = build_app(settings)
    app.cleanup_ctx.append(postgres_ctx(None))
    app.cleanup_ctx.append(redis_ctx)
    return app


async def test_readiness_is_200_when_postgres_and_redis_answer(
    aiohttp_client: Callable[..., Awaitable[Client]], ready_app: web.Application
) -> None:
    client = await aiohttp_client(ready_app)

    response = await client.get("/health/ready")

    assert response.status == 200
    assert "Retry-After" not in response.headers
    assert orjson.loads(await response.read())["data"] == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok"},
    }


async def test_readiness_is_503_naming_the_dependency_that_is_down(
    aiohttp_client: Callable[..., Awaitable[Client]], ready_app: web.Application
) -> None:
    async def broker_down() -> None:
        raise ConnectionError("broker not connected")

    ready_app[READINESS].add("rabbitmq", broker_down)
    client = await aiohttp_client(ready_app)

    response = await client.get("/health/ready")

    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert orjson.loads(await response.read())["data"] == {
        "status": "not ready",
        "checks": {"rabbitmq": "down: ConnectionError", "postgres": "ok", "redis": "ok"},
    }


async def test_a_relaxed_check_that_is_down_leaves_the_service_ready_but_degraded(
    aiohttp_client: Callable[..., Awaitable[Client]], ready_app: web.Application
) -> None:
    async def cache_down() -> None:
        raise ConnectionError("cache away")

    ready_app[READINESS].add("cache", cache_down)
    ready_app[READINESS].relax("cache")
    client = await aiohttp_client(ready_app)

    response = await client.get("/health/ready")

    assert response.status == 200
    assert orjson.loads(await response.read())["data"] == {
        "status": "degraded",
        "checks": {"cache": "down: ConnectionError", "postgres": "ok", "redis": "ok"},
    }


async def test_a_hanging_readiness_check_times_out() -> None:
    readiness = Readiness()

    async def hangs() -> None:
        await asyncio.sleep(10)

    async def fine() -> None:
        return None

    readiness.add("slow", hangs)
    readiness.add("fast", fine)

    assert await readiness.run(timeout=0.05) == {"slow": "down: TimeoutError", "fast": "ok"}


def metric_value(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


async def test_metrics_count_requests_by_route_template(client: Client) -> None:
    labels = {"service": SERVICE, "method": "GET", "route": "/items/{id}", "status": "200"}
    before_text = await (await client.get("/metrics")).text()
    count_before = metric_value(before_text, "http_requests_total", labels) or 0.0
    hist_before = metric_value(before_text, "http_request_duration_seconds_count", labels) or 0.0

    for item_id in ("1", "2", "3"):
        assert (await client.get(f"/items/{item_id}")).status == 200
    response = await client.get("/metrics")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = await response.text()
    assert metric_value(text, "http_requests_total", labels) == count_before + 3
    assert metric_value(text, "http_request_duration_seconds_count", labels) == hist_before + 3
    assert (
        metric_value(text, "http_request_duration_seconds_bucket", {**labels, "le": "+Inf"})
        == hist_before + 3
    )
    assert "/items/1" not in text
    assert metric_value(text, "active_connections", {"service": SERVICE}) == 1.0  # this scrape


async def test_unmatched_routes_share_one_label(client: Client) -> None:
    labels = {"service": SERVICE, "method": "GET", "route": "<unmatched>", "status": "404"}
    before = sample("http_requests_total", **labels)

    await client.get("/random/a")
    await client.get("/random/b")

    assert sample("http_requests_total", **labels) == before + 2
    assert sample("active_connections", service=SERVICE) == 0.0


def test_multiprocess_mode_reports_the_workers_files_not_this_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert b"http_requests_total" in render_metrics()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # Collectors a service registered (the costs signals, when its modules were imported by an
    # earlier test) are rendered in both modes; this test is about the workers' files alone.
    monkeypatch.setattr(metrics, "_SERVICE_COLLECTORS", [])

    assert render_metrics() == b""


class FrozenPage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


async def test_a_query_memo_validates_each_query_string_once_and_refuses_bad_ones_every_time(
    aiohttp_client: Callable[..., Awaitable[Client]], settings: ServiceSettings
) -> None:
    built: list[str] = []

    def build(request: web.Request) -> FrozenPage:
        built.append(request.rel_url.raw_query_string)
        return parse_query(request, FrozenPage)

    memo = QueryMemo(build, size=2)

    async def page(request: web.Request) -> web.Response:
        query = memo(request)
        return json_response({"limit": query.limit, "offset": query.offset, "id": id(query)})

    app = create_base_app(settings)
    app.router.add_get("/pages", page)
    client = await aiohttp_client(app)

    async def get(query: str) -> tuple[int, Any]:
        async with client.get(f"/pages?{query}") as response:
            return response.status, orjson.loads(await response.read())

    status, first = await get("limit=5")
    assert status == 200
    assert (first["data"]["limit"], first["data"]["offset"]) == (5, 0)
    assert (await get("limit=5"))[1]["data"] == first["data"]  # the same parsed query
    assert built == ["limit=5"]

    for _ in range(2):  # refused each time, never remembered
        status, problem = await get("limit=500")
        assert status == 400
        assert problem["errors"][0]["field"] == "limit"
    assert built == ["limit=5", "limit=500", "limit=500"]

    # Two spellings of one query are two entries, each parsed once.
    assert (await get("limit=5&offset=1"))[1]["data"]["offset"] == 1
    assert (await get("offset=1&limit=5"))[1]["data"]["offset"] == 1
    # At most two remembered: the least recently used went first.
    await get("limit=5")
    assert built[-1] == "limit=5"


async def stream_lines(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await prepare_stream(request, response)
    for n in range(3):
        await response.write(f"line {n}\n".encode())
    await response.write_eof()
    return response


@pytest.mark.parametrize(
    ("path", "status"),
    [("/items/1", 200), ("/stream", 200), ("/problems/not-found", 404), ("/redirect", 302),
     ("/gone", 410), ("/crash", 500), ("/no/such/path", 404)],
)  # fmt: skip
async def test_every_answer_echoes_the_request_id_and_trace_streams_included(
    aiohttp_client: Callable[..., Awaitable[Client]],
    settings: ServiceSettings,
    path: str,
    status: int,
) -> None:
    app = build_app(settings)
    app.router.add_get("/stream", stream_lines)
    client = await aiohttp_client(app)
    sent = {"X-Request-ID": "req-42", "traceparent": f"00-{TRACE_ID}-{SPAN_ID}-01"}

    response = await client.get(path, headers=sent, allow_redirects=False)

    assert response.status == status
    assert response.headers["X-Request-ID"] == "req-42"
    assert response.headers["traceparent"].startswith(f"00-{TRACE_ID}-")
    if path == "/stream":
        assert await response.text() == "line 0\nline 1\nline 2\n"


def test_streaming_handlers_prepare_through_prepare_stream() -> None:
    """A stream's headers leave before its handler returns, after the frame's stamp would be too
    late: ``response.prepare`` anywhere but in common.web would send a stream without its ids."""
    root = Path(__file__).resolve().parents[3]
    sources = [*root.glob("services/*/src/**/*.py"), *root.glob("libs/*/src/**/*.py")]
    assert len(sources) > 50
    calls = [
        f"{path.relative_to(root)}:{node.lineno}"
        for path in sources
        if path.name != "web.py" or path.parent.name != "common"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "prepare"
    ]
    assert calls == []
