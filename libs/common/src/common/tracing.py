"""Request ids and W3C Trace Context (``traceparent``) parsing and generation."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

# Used with ``fullmatch``: ``$`` would also accept a trailing newline (header injection in logs).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@dataclass(frozen=True, slots=True)
class TraceContext:
    """One hop of a trace: the shared trace id and this hop's span id."""

    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace, for an outgoing call or a published event."""
        return TraceContext(self.trace_id, secrets.token_hex(8), self.flags)


def new_request_id() -> str:
    return secrets.token_hex(16)


def valid_request_id(value: str | None) -> str | None:
    """Accept a client's request id only if it is short and harmless in logs and headers."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


def parse_traceparent(value: str | None) -> TraceContext | None:
    """Parse a version-00 ``traceparent``; all-zero ids and version ``ff`` are invalid per spec."""
    if not value:
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if not match:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return TraceContext(trace_id, span_id, flags)


def new_trace() -> TraceContext:
    return TraceContext(secrets.token_hex(16), secrets.token_hex(8))
