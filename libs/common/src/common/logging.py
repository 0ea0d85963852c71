"""Flat JSON log lines through loguru, stdlib logging routed in, credentials scrubbed.

One JSON object per line, with the field names of the OpenTelemetry log data model as its
"Trace Context in non-OTLP log formats" spec writes them flat (docs/metrics.md, "Log lines"):

``time`` (RFC 3339, UTC), ``level``, ``message``, ``service``, ``request_id``, ``trace_id``,
``span_id``, then the event's own fields, then ``logger`` (the emitting module) and, for errors,
``exception.type``, ``exception.message`` and ``exception.stacktrace`` (OpenTelemetry's exception
attributes). The seven standard fields are on every line (``null`` outside a request or message).

Request and message context is a ``ContextVar`` set once per request (:func:`enter_context`);
``logger.contextualize`` values override it. Tracebacks never show variable values: loguru's
``diagnose`` is off, so a malformed request's bytes held in a local never reach a line.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import FrameType
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

#: Keys whose values are credentials: they are replaced before a line is written.
SECRET_KEYS = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|cookie|session|credential)", re.I
)
REDACTED = "[redacted]"
#: Libraries whose DEBUG lines hold raw wire data; they log from INFO up whatever the level.
WIRE_LOGGERS = ("aiormq", "aio_pika")
#: The fields every line starts with, in this order.
STANDARD_FIELDS = ("time", "level", "message", "service", "request_id", "trace_id", "span_id")
_CONTEXT_FIELDS = ("request_id", "trace_id", "span_id")
_INFO = 20
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


class LogContext(NamedTuple):
    """The correlation ids of the request or message being handled (one per request: a named
    tuple is cheaper to make than a frozen dataclass)."""

    request_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None


_NO_CONTEXT = LogContext()
_CONTEXT: contextvars.ContextVar[LogContext] = contextvars.ContextVar(
    "cloudops_log_context", default=_NO_CONTEXT
)


def enter_context(
    request_id: str | None, trace_id: str | None, span_id: str | None
) -> contextvars.Token[LogContext]:
    """Put the ids on every line logged in this task until :func:`leave_context`.

    One ``ContextVar.set``: much cheaper than ``logger.contextualize``, which copies loguru's
    whole context dict on entry and exit of each request.
    """
    return _CONTEXT.set(LogContext(request_id, trace_id, span_id))


def leave_context(token: contextvars.Token[LogContext]) -> None:
    _CONTEXT.reset(token)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if SECRET_KEYS.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _default(value: Any) -> Any:
    """What orjson cannot write natively: money as plain decimal text, anything else as str."""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


class _FlatJsonSink:
    """The one loguru sink: writes each record as a flat JSON line to ``write``.

    It also serves :func:`access_line`, which builds its line without a loguru record at all.
    """

    def __init__(self, service: str, levelno: int, write: Callable[[bytes], None]) -> None:
        self.service = service
        self.levelno = levelno
        self._write = write

    def write(self, message: Message) -> None:
        record = message.record
        extra = dict(record["extra"])
        context = _CONTEXT.get()
        entry: dict[str, Any] = {
            # loguru's own datetime subclass, which orjson would write as str()
            "time": datetime.fromtimestamp(record["time"].timestamp(), UTC),
            "level": record["level"].name,
            "message": record["message"],
            "service": extra.pop("service", None) or self.service,
            "request_id": extra.pop("request_id", None) or context.request_id,
            "trace_id": extra.pop("trace_id", None) or context.trace_id,
            "span_id": extra.pop("span_id", None) or context.span_id,
        }
        for key, value in _scrub(extra).items():
            entry[key if key not in entry else f"attributes.{key}"] = value
        entry["logger"] = record["name"]
        if record["exception"] is not None:
            exc_type, exc_value, _ = record["exception"]
            entry["exception.type"] = exc_type.__name__ if exc_type else None
            entry["exception.message"] = str(exc_value)
            # The loguru-formatted traceback (diagnose off: frames and source, no values).
            entry["exception.stacktrace"] = str(message).rstrip("\n")
        self._write(orjson.dumps(entry, default=_default, option=_JSON_OPTIONS))

    def access(self, fields: Mapping[str, Any]) -> None:
        context = _CONTEXT.get()
        entry = {
            "time": datetime.now(UTC),
            "level": "INFO",
            "message": "request",
            "service": self.service,
            "request_id": context.request_id,
            "trace_id": context.trace_id,
            "span_id": context.span_id,
            **fields,
            "logger": "common.web",
        }
        self._write(orjson.dumps(entry, default=_default, option=_JSON_OPTIONS))

    def stop(self) -> None:
        """Called by loguru when the sink is removed: access lines stop going here too."""
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None


_ACTIVE: _FlatJsonSink | None = None


def access_line(**fields: Any) -> None:
    """The one line per request, written without building a loguru record (hot path).

    ``fields`` are the request's own (method, path, status, duration); they hold no credential.
    """
    sink = _ACTIVE
    if sink is None:  # logging not set up (a library user): plain loguru
        logger.info("request", **fields)
    elif sink.levelno <= _INFO:
        sink.access(fields)


def _stdout_writer() -> Callable[[bytes], None]:
    """Whole lines straight to file descriptor 1: one system call, no buffer to flush later."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # stdout replaced by a non-file object
        stream = sys.stdout

        def write_text(data: bytes) -> None:
            stream.write(data.decode())
            stream.flush()

        return write_text

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    return write


def _callable_writer(sink: Callable[[str], Any]) -> Callable[[bytes], None]:
    return lambda data: sink(data.decode())


class _InterceptHandler(logging.Handler):
    """Send stdlib records (aiohttp, asyncpg, aio-pika) to loguru with the caller's depth."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        # Walk out of this method and the logging module, so the line names the real caller.
        frame: FrameType | None = inspect.currentframe()
        depth = 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def _exception_only(record: Record) -> str:
    """Loguru renders just the traceback (when there is one) for the sink to put in a field."""
    return "{exception}"


def setup_logging(service: str, level: str = "INFO", sink: Any = None) -> None:
    """Configure loguru to write one flat JSON object per line for ``service``.

    ``sink`` defaults to stdout; tests pass a callable taking each line (a ``str``).
    """
    global _ACTIVE
    threshold = logger.level(level.upper()).no
    writer = _callable_writer(sink) if sink is not None else _stdout_writer()
    flat = _FlatJsonSink(service, threshold, writer)
    logger.remove()
    logger.configure(patcher=None)
    logger.add(
        flat,
        level=threshold,
        format=_exception_only,
        colorize=False,
        # Variable values in tracebacks would log whatever a frame held: request bytes, keys.
        diagnose=False,
        backtrace=False,
        enqueue=False,
    )
    _ACTIVE = flat
    # The same threshold for stdlib loggers, so that records below it are never built: aio-pika
    # alone formats every published message (pprint) for a DEBUG line.
    logging.basicConfig(handlers=[_InterceptHandler()], level=threshold, force=True)
    # aiohttp's own access log would be a second, unstructured line per request.
    logging.getLogger("aiohttp.access").disabled = True
    # At DEBUG these dump every AMQP frame, message bodies included: data that is not theirs to log.
    for wire_logger in WIRE_LOGGERS:
        logging.getLogger(wire_logger).setLevel(max(threshold, logging.INFO))
