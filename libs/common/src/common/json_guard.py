"""JSON request bodies, guarded: size counted on the bytes actually read, a read deadline, nesting
depth, no NUL character and a markup policy. Every service gets the guard from
``common.web.create_base_app``; the gateway applies the same code, with its per-route limits, to
what it reads itself.

A body sent with a method that has none (``GET``, ``HEAD``, ``DELETE``, ``OPTIONS``) is ignored:
never read, parsed or forwarded, and the connection is closed after the answer. The guard
refuses a JSON body declared larger than the limit (413) before reading a byte, then attaches
the request's :class:`BodyPolicy`; a JSON body is read
only by a handler that uses it, through :func:`read_guarded_json` (``read_json`` and
``read_json_value`` in :mod:`common.web`), which enforces the policy while reading: a chunked
body is cut off as soon as it passes the limit, a body that trickles in slower than the deadline
is answered 408, and a parsed value deeper than ``max_depth`` (400), holding the NUL character
in a string or an object's key (422, whatever the policy: PostgreSQL's text and jsonb refuse it,
and this is where every body is refused it) or markup in a string (422) never reaches the
handler. Both refusals close the connection: the unread rest of the
body must not be parsed as the next request.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from common.errors import (
    MAX_PROBLEM_ERRORS,
    BadRequest,
    PayloadTooLarge,
    ProblemError,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationFailed,
    problem_from,
)
from common.limits import API_MAX_BODY_BYTES, BODY_READ_TIMEOUT_SECONDS, JSON_MAX_DEPTH
from common.validation import NUL_REFUSED

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Guard = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

# RFC 9110 gives content in these requests no meaning: a body there is refused, never parsed.
BODILESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
# Tags, comments, processing instructions, script URLs and inline handlers: what a browser could
# execute if a plain-text field were ever rendered as HTML.
MARKUP = re.compile(r"<\s*[a-zA-Z!/?]|javascript\s*:|\bon[a-z]+\s*=", re.IGNORECASE)
MARKUP_REFUSED = "must not contain HTML or script markup"
NUL_KEY_REFUSED = "keys must not contain the NUL character"
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class BodyPolicy:
    """How much JSON a request may send, how fast, how deep, and whether markup is refused."""

    max_bytes: int = API_MAX_BODY_BYTES
    max_depth: int = JSON_MAX_DEPTH
    read_timeout_seconds: float = BODY_READ_TIMEOUT_SECONDS
    reject_markup: bool = True


DEFAULT_POLICY = BodyPolicy()
BODY_POLICY = web.RequestKey("body_policy", BodyPolicy)
_RAW_BODY = web.RequestKey("raw_body", bytes)


def is_json_content_type(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


def close_after(response: web.Response) -> web.Response:
    """The response, with the connection closed after it: the body was not read to its end."""
    response.force_close()
    return response


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The body may be at most {limit} bytes.")


def needs_guard(request: web.Request) -> bool:
    """Whether the guard has work on ``request``: a method whose body means something, or a body
    sent with a method that has none. The request frame asks before calling the guard."""
    return request.method not in BODILESS_METHODS or request.body_exists


def json_guard(policy: BodyPolicy) -> Guard:
    """The guard for ``policy`` (a handler may narrow it per route, see above), called by the
    request frame as ``guard(request, handler)`` for a request :func:`needs_guard` picks."""

    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in BODILESS_METHODS:
            # Its body is never read: the connection closes after the answer, so the unread
            # bytes are never taken for the next request.
            response = await handler(request)
            response.force_close()
            return response
        length = request.content_length
        if (
            length is not None
            and length > policy.max_bytes
            and is_json_content_type(request.content_type)
        ):
            return close_after(problem_from(request, _too_large(policy.max_bytes)))
        request[BODY_POLICY] = policy
        try:
            return await handler(request)
        except (PayloadTooLarge, RequestTimeout) as exc:
            return close_after(problem_from(request, exc))

    return guard


async def read_body(request: web.Request) -> bytes:
    """The whole body, read under the request's policy: 413 past ``max_bytes`` (counted as read,
    whatever ``Content-Length`` said), 408 when it takes longer than ``read_timeout_seconds``."""
    cached: bytes | None = request.get(_RAW_BODY)
    if cached is not None:
        return cached
    policy: BodyPolicy = request.get(BODY_POLICY, DEFAULT_POLICY)
    if not request.body_exists or request.method in BODILESS_METHODS:
        return b""
    length = request.content_length
    if length is not None and length > policy.max_bytes:
        raise _too_large(policy.max_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(policy.read_timeout_seconds):
            while chunk := await request.content.read(CHUNK):
                size += len(chunk)
                if size > policy.max_bytes:
                    raise _too_large(policy.max_bytes)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(
            f"The body did not arrive within {policy.read_timeout_seconds:g} seconds."
        ) from None
    body = b"".join(chunks)
    request[_RAW_BODY] = body
    return body


def check_json_value(value: Any, policy: BodyPolicy) -> None:
    """400 when ``value`` is nested deeper than the policy allows; 422 for the NUL character in a
    string or an object's key (always: PostgreSQL's text and jsonb refuse it, and any body a
    service reads may be stored) and for markup in a string.

    Recursion is bounded by ``max_depth`` (checked before going deeper), each container's items
    are visited in one loop with no per-item allocation, and a field's path (``tags.env``,
    ``items.0.name``; ``body`` for a top-level string; the object's own path for a key) is only
    spelled out for a finding. Findings stop being collected at the problem's bound, but all are
    counted.
    """
    errors: list[dict[str, str]] = []
    found = 0
    kinds: set[str] = set()
    max_depth = policy.max_depth

    search = MARKUP.search if policy.reject_markup else None

    def finding(path: tuple[str | int, ...], message: str) -> None:
        nonlocal found
        found += 1
        kinds.add(message)
        if len(errors) < MAX_PROBLEM_ERRORS:
            errors.append({"field": ".".join(map(str, path)) or "body", "message": message})

    def walk(node: dict[str, Any] | list[Any], depth: int, path: tuple[str | int, ...]) -> None:
        # Its items are one level deeper: a non-empty container at the limit is too deep.
        if depth > max_depth or (depth == max_depth and node):
            raise BadRequest(f"The JSON body is nested deeper than {max_depth} levels.")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(key, str) and "\x00" in key:
                finding(path, NUL_KEY_REFUSED)
            if isinstance(child, str):
                if "\x00" in child:
                    finding((*path, key), NUL_REFUSED)
                elif search is not None and search(child):
                    finding((*path, key), MARKUP_REFUSED)
            elif isinstance(child, dict | list):
                walk(child, depth + 1, (*path, key))

    if isinstance(value, dict | list):
        walk(value, 1, ())
    elif isinstance(value, str):
        if "\x00" in value:
            finding((), NUL_REFUSED)
        elif search is not None and search(value):
            finding((), MARKUP_REFUSED)
    if found:
        details = []
        if kinds - {MARKUP_REFUSED}:
            details.append("Text may not contain the NUL character.")
        if MARKUP_REFUSED in kinds:
            details.append("Plain-text fields may not contain markup.")
        raise ValidationFailed(" ".join(details), errors=errors, total_errors=found)


def require_json_content_type(request: web.Request) -> None:
    if not is_json_content_type(request.content_type):
        raise UnsupportedMediaType(
            f"Expected Content-Type application/json, got {request.content_type!r}."
        )


async def read_guarded_json(
    request: web.Request, parse: Callable[[bytes], Any]
) -> tuple[bytes, Any]:
    """The body's bytes and ``parse(bytes)``, checked: 415 unless declared JSON, 413/408 while
    reading, 400 when it does not parse or is too deep, 422 for markup."""
    require_json_content_type(request)
    raw = await read_body(request)
    try:
        value = parse(raw)
    except ProblemError:
        raise
    except (ValueError, RecursionError) as exc:  # orjson's and json's decode errors are both
        raise BadRequest(f"The body is not valid JSON: {type(exc).__name__}.") from None
    check_json_value(value, request.get(BODY_POLICY, DEFAULT_POLICY))
    return raw, value
