"""W3C traceparent parsing and request-id validation."""

from __future__ import annotations

import re

import pytest

from common.tracing import (
    TraceContext,
    new_request_id,
    new_trace,
    parse_traceparent,
    valid_request_id,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"00-{TRACE_ID}-{SPAN_ID}-01", TraceContext(TRACE_ID, SPAN_ID, "01")),
        (f"00-{TRACE_ID}-{SPAN_ID}-00", TraceContext(TRACE_ID, SPAN_ID, "00")),
        (f"  00-{TRACE_ID}-{SPAN_ID}-01 ", TraceContext(TRACE_ID, SPAN_ID, "01")),
    ],
)
def test_valid_traceparent_is_parsed(header: str, expected: TraceContext) -> None:
    assert parse_traceparent(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param(f"ff-{TRACE_ID}-{SPAN_ID}-01", id="version-ff"),
        pytest.param(f"00-{'0' * 32}-{SPAN_ID}-01", id="all-zero-trace-id"),
        pytest.param(f"00-{TRACE_ID}-{'0' * 16}-01", id="all-zero-span-id"),
        pytest.param(f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01", id="short-trace-id"),
        pytest.param(f"00-{TRACE_ID}0-{SPAN_ID}-01", id="long-trace-id"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID[:-1]}-01", id="short-span-id"),
        pytest.param(f"0-{TRACE_ID}-{SPAN_ID}-01", id="short-version"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID}-1", id="short-flags"),
        pytest.param(f"00-{TRACE_ID.upper()}-{SPAN_ID}-01", id="uppercase-trace-id"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID.upper()}-01", id="uppercase-span-id"),
        pytest.param(f"00-{TRACE_ID}-{SPAN_ID}-01-extra", id="trailing-field"),
        pytest.param(f"00_{TRACE_ID}_{SPAN_ID}_01", id="wrong-separator"),
        pytest.param(f"00-{TRACE_ID[:-1]}g-{SPAN_ID}-01", id="non-hex"),
    ],
)
def test_invalid_traceparent_is_ignored(header: str | None) -> None:
    assert parse_traceparent(header) is None


def test_traceparent_renders_version_00() -> None:
    assert TraceContext(TRACE_ID, SPAN_ID, "01").traceparent == f"00-{TRACE_ID}-{SPAN_ID}-01"


def test_child_span_keeps_trace_id_and_flags_with_a_new_span_id() -> None:
    parent = TraceContext(TRACE_ID, SPAN_ID, "00")

    child = parent.child()

    assert (child.trace_id, child.flags) == (TRACE_ID, "00")
    assert re.fullmatch(r"[0-9a-f]{16}", child.span_id)
    assert child.span_id != SPAN_ID
    assert parse_traceparent(child.traceparent) == child


def test_new_traces_are_random_and_parse_back() -> None:
    first, second = new_trace(), new_trace()

    assert first.trace_id != second.trace_id
    assert parse_traceparent(first.traceparent) == first


@pytest.mark.parametrize(
    "value", ["abc", "0af7651916cd43dd8448eb211c80319c", "req-1.2:3_4", "x" * 128]
)
def test_harmless_request_ids_are_kept(value: str) -> None:
    assert valid_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("abc\n", id="trailing-newline"),
        pytest.param("abc\r\nX-Admin: 1", id="header-injection"),
        pytest.param('abc", "level": "ERROR', id="json-injection"),
        pytest.param("abc def", id="space"),
        pytest.param("<script>", id="markup"),
        pytest.param("réq", id="non-ascii"),
    ],
)
def test_unsafe_request_ids_are_rejected(value: str | None) -> None:
    assert valid_request_id(value) is None


def test_new_request_ids_are_unique_and_valid() -> None:
    ids = {new_request_id() for _ in range(100)}

    assert len(ids) == 100
    assert all(valid_request_id(i) == i and len(i) == 32 for i in ids)
