"""Flat JSON log lines: standard fields on each line, secrets redacted, stdlib routed in,
tracebacks without variable values."""

from __future__ import annotations

import logging

import orjson
import pytest
from loguru import logger

from common.logging import REDACTED, STANDARD_FIELDS, enter_context, leave_context


def records(lines: list[str]) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in lines]


def own_fields(record: dict[str, object]) -> dict[str, object]:
    """The event's own fields: what is not standard and not the emitting module."""
    return {k: v for k, v in record.items() if k not in STANDARD_FIELDS and k != "logger"}


def test_each_line_is_json_naming_the_service(log_lines: list[str]) -> None:
    logger.info("hello {}", "world")

    [record] = records(log_lines)
    assert list(record)[: len(STANDARD_FIELDS)] == list(STANDARD_FIELDS)
    assert record["message"] == "hello world"
    assert record["level"] == "INFO"
    assert record["service"] == "svc-under-test"
    assert str(record["time"]).endswith("Z")
    assert record["logger"] == __name__
    assert own_fields(record) == {}


def test_request_and_trace_ids_are_on_lines_inside_contextualize(log_lines: list[str]) -> None:
    with logger.contextualize(request_id="req-1", trace_id="a" * 32):
        logger.info("inside")
    logger.info("outside")

    inside, outside = records(log_lines)
    assert (inside["request_id"], inside["trace_id"]) == ("req-1", "a" * 32)
    assert (outside["request_id"], outside["trace_id"], outside["span_id"]) == (None, None, None)


def test_the_request_context_is_on_every_line_of_the_task(log_lines: list[str]) -> None:
    token = enter_context("req-3", "c" * 32, "d" * 16)
    try:
        logger.info("inside", items=3)
    finally:
        leave_context(token)

    [record] = records(log_lines)
    assert {k: record[k] for k in ("request_id", "trace_id", "span_id")} == {
        "request_id": "req-3",
        "trace_id": "c" * 32,
        "span_id": "d" * 16,
    }
    assert own_fields(record) == {"items": 3}


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_password",
        "api_key",
        "X-Api-Key",
        "authorization",
        "token",
        "refresh_token",
        "cookie",
        "Set-Cookie",
        "client_secret",
        "session",
    ],
)
def test_secret_values_are_redacted_wherever_they_are_bound(log_lines: list[str], key: str) -> None:
    logger.bind(**{key: "s3cr3t-value"}, user="alice").info("login")
    logger.info("nested", headers={key: "s3cr3t-value", "accept": "json"}, items=[{key: "x"}])

    flat, nested = records(log_lines)
    assert own_fields(flat) == {key: REDACTED, "user": "alice"}
    assert nested["headers"] == {key: REDACTED, "accept": "json"}
    assert nested["items"] == [{key: REDACTED}]
    assert all("s3cr3t-value" not in line for line in log_lines)


def test_stdlib_logging_is_routed_into_loguru(log_lines: list[str]) -> None:
    with logger.contextualize(request_id="req-2"):
        logging.getLogger("aiohttp.server").warning("peer reset %s", "10.0.0.1")

    [record] = records(log_lines)
    assert record["message"] == "peer reset 10.0.0.1"
    assert record["level"] == "WARNING"
    assert (record["service"], record["request_id"]) == ("svc-under-test", "req-2")
    assert record["logger"] == __name__  # the caller, not the logging module


def test_stdlib_custom_levels_keep_their_number(log_lines: list[str]) -> None:
    logging.getLogger("thirdparty").log(25, "between info and warning")

    [record] = records(log_lines)
    assert record["level"] == "Level 25"


def test_stdlib_exceptions_keep_their_traceback(log_lines: list[str]) -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        logging.getLogger("asyncpg").exception("query failed")

    [record] = records(log_lines)
    assert record["exception.type"] == "KeyError"
    assert "KeyError: 'missing'" in str(record["exception.stacktrace"])


def test_lines_below_the_level_are_dropped(log_lines: list[str]) -> None:
    from common.logging import setup_logging

    setup_logging("quiet", "warning", sink=lambda m: log_lines.append(str(m)))
    logger.info("dropped")
    logger.warning("kept")

    assert [r["message"] for r in records(log_lines)] == ["kept"]


def test_stdlib_records_below_the_level_are_never_formatted(log_lines: list[str]) -> None:
    from common.logging import setup_logging

    formatted: list[str] = []

    class Costly:
        def __repr__(self) -> str:
            formatted.append("repr")
            return "costly"

    setup_logging("quiet", "info", sink=lambda m: log_lines.append(str(m)))
    logging.getLogger("aio_pika.exchange").debug("Publishing %r", Costly())
    logging.getLogger("aio_pika.exchange").info("Connected %r", Costly())

    assert formatted == ["repr"]
    assert [r["message"] for r in records(log_lines)] == ["Connected costly"]


def test_aiohttp_access_log_is_silenced(log_lines: list[str]) -> None:
    logging.getLogger("aiohttp.access").info("GET / 200")

    assert log_lines == []


def _reject(raw: bytes) -> None:
    raise ValueError(f"malformed request of {len(raw)} bytes")


def _fails_holding_a_credential() -> None:
    raw_request = b"GET / HTTP/1.1\r\nX-API-Key: cloudops_LOCAL-VALUE-NEVER-LOGGED\r\n\r\n"
    _reject(raw_request)


@pytest.mark.parametrize("route", ["loguru", "stdlib"])
def test_tracebacks_never_show_variable_values(log_lines: list[str], route: str) -> None:
    try:
        _fails_holding_a_credential()
    except ValueError:
        if route == "loguru":
            logger.exception("request failed")
        else:  # how aiohttp's server reports an error handling a request
            logging.getLogger("aiohttp.server").error("Error handling request", exc_info=True)

    [record] = records(log_lines)
    assert "_fails_holding_a_credential" in str(record["exception.stacktrace"])
    assert record["exception.message"] == "malformed request of 64 bytes"
    assert all("LOCAL-VALUE-NEVER-LOGGED" not in line for line in log_lines)


def test_a_request_line_is_small(log_lines: list[str]) -> None:
    from common.logging import access_line

    token = enter_context("f" * 32, "a" * 32, "b" * 16)
    try:
        access_line(method="GET", path="/api/resources/" + "0" * 36, status=200, duration_ms=12.345)
    finally:
        leave_context(token)

    [line] = log_lines
    assert len(line.encode()) < 400
    assert own_fields(orjson.loads(line)) == {
        "method": "GET",
        "path": "/api/resources/" + "0" * 36,
        "status": 200,
        "duration_ms": 12.345,
    }
