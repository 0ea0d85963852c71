"""JSON log lines: service and request context on each line, secrets redacted, stdlib routed in."""

from __future__ import annotations

import logging

import orjson
import pytest
from loguru import logger

from common.logging import REDACTED


def records(lines: list[str]) -> list[dict[str, object]]:
    return [orjson.loads(line)["record"] for line in lines]


def test_each_line_is_json_naming_the_service(log_lines: list[str]) -> None:
    logger.info("hello {}", "world")

    [record] = records(log_lines)
    assert record["message"] == "hello world"
    assert record["level"]["name"] == "INFO"  # type: ignore[index]
    assert record["extra"] == {"service": "svc-under-test"}


def test_request_and_trace_ids_are_on_lines_inside_contextualize(log_lines: list[str]) -> None:
    with logger.contextualize(request_id="req-1", trace_id="a" * 32):
        logger.info("inside")
    logger.info("outside")

    inside, outside = records(log_lines)
    assert inside["extra"] == {
        "service": "svc-under-test",
        "request_id": "req-1",
        "trace_id": "a" * 32,
    }
    assert outside["extra"] == {"service": "svc-under-test"}


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
    assert flat["extra"] == {"service": "svc-under-test", key: REDACTED, "user": "alice"}
    assert nested["extra"]["headers"] == {key: REDACTED, "accept": "json"}  # type: ignore[index]
    assert nested["extra"]["items"] == [{key: REDACTED}]  # type: ignore[index]
    assert all("s3cr3t-value" not in line for line in log_lines)


def test_stdlib_logging_is_routed_into_loguru(log_lines: list[str]) -> None:
    with logger.contextualize(request_id="req-2"):
        logging.getLogger("aiohttp.server").warning("peer reset %s", "10.0.0.1")

    [record] = records(log_lines)
    assert record["message"] == "peer reset 10.0.0.1"
    assert record["level"]["name"] == "WARNING"  # type: ignore[index]
    assert record["extra"] == {"service": "svc-under-test", "request_id": "req-2"}
    assert record["function"] == "test_stdlib_logging_is_routed_into_loguru"


def test_stdlib_custom_levels_keep_their_number(log_lines: list[str]) -> None:
    logging.getLogger("thirdparty").log(25, "between info and warning")

    [record] = records(log_lines)
    assert record["level"]["no"] == 25  # type: ignore[index]


def test_stdlib_exceptions_keep_their_traceback(log_lines: list[str]) -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        logging.getLogger("asyncpg").exception("query failed")

    [line] = log_lines
    assert "KeyError: 'missing'" in orjson.loads(line)["text"]


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
