"""Request ids and W3C Trace Context (``traceparent``) parsing and generation."""

from __future__ import annotations

import random
import re
from typing import NamedTuple

# Used with ``fullmatch``: ``$`` would also accept a trailing newline (header injection in logs).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


class TraceContext(NamedTuple):
    """One hop of a trace: the shared trace id and this hop's span id.

    Immutable. A named tuple rather than a frozen dataclass: one is made for every request, and a
    frozen dataclass's ``__init__`` costs a ``object.__setattr__`` call per field.
    """

    trace_id: str
    span_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> TraceContext:
        """A new span in the same trace, for an outgoing call or a published event."""
        return TraceContext(self.trace_id, _nonzero_hex(64), self.flags)


def _hex(bits: int) -> str:
    # Correlation ids, not secrets: the cheap PRNG avoids a syscall per request.
    return f"{random.getrandbits(bits):0{bits // 4}x}"


def new_request_id() -> str:
    return _hex(128)


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


def _nonzero_hex(bits: int) -> str:
    value = _hex(bits)
    return value if value.strip("0") else _nonzero_hex(bits)  # all-zero ids are invalid


def new_trace() -> TraceContext:
    # One draw for both ids; an all-zero id (invalid per spec) is drawn again.
    value = random.getrandbits(192)
    if not value >> 64 or not value & 0xFFFFFFFFFFFFFFFF:
        return new_trace()
    ids = f"{value:048x}"
    return TraceContext(ids[:32], ids[32:])
