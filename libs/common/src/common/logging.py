"""JSON logging through loguru, with stdlib logging routed into it and secrets scrubbed.

Every line carries ``service`` and, inside a request or message, ``request_id`` and ``trace_id``
(bound with ``logger.contextualize`` by the request-context middleware and the consumer base).
"""

from __future__ import annotations

import inspect
import logging
import re
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

#: Keys whose values are credentials: they are replaced before a line is written.
SECRET_KEYS = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|cookie|session|credential)", re.I
)
REDACTED = "[redacted]"


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if SECRET_KEYS.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


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


def setup_logging(service: str, level: str = "INFO", sink: Any = None) -> None:
    """Configure loguru to write one JSON object per line for ``service``.

    ``sink`` defaults to stdout; tests pass a list-appending callable to read the lines back.
    """

    def patch(record: Record) -> None:
        record["extra"].setdefault("service", service)
        record["extra"] = _scrub(record["extra"])

    logger.remove()
    logger.configure(patcher=patch)
    logger.add(sink or sys.stdout, level=level.upper(), serialize=True, enqueue=False)
    # The same threshold for stdlib loggers, so that records below it are never built: aio-pika
    # alone formats every published message (pprint) for a DEBUG line.
    threshold = logger.level(level.upper()).no
    logging.basicConfig(handlers=[_InterceptHandler()], level=threshold, force=True)
    # aiohttp's own access log would be a second, unstructured line per request.
    logging.getLogger("aiohttp.access").disabled = True
