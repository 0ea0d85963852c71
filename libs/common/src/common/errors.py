"""Domain errors and their RFC 9457 ``application/problem+json`` rendering.

Handlers and domain code raise these; the request frame in :mod:`common.web` is the one place
that turns them (and validation errors, and anything unexpected) into HTTP responses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from common.context import REQUEST_ID

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://cloudops.dev/problems/"
# A problem lists at most this many field errors, plus ``errors_total`` when there were more: an
# invalid body must not be answered with an answer many times its size.
MAX_PROBLEM_ERRORS = 20


class ProblemError(Exception):
    """An error with an HTTP status; ``slug`` names its problem type URI."""

    status: int = 500
    slug: str = "internal-error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        status: int | None = None,
        slug: str | None = None,
        total_errors: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors or [])[:MAX_PROBLEM_ERRORS]
        #: How many errors there were, when ``errors`` holds only the first of them.
        self.total_errors = max(total_errors or 0, len(errors or []))
        self.headers = dict(headers or {})
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug


class BadRequest(ProblemError):
    status, slug = 400, "bad-request"


class Unauthorized(ProblemError):
    status, slug = 401, "unauthorized"


class Forbidden(ProblemError):
    status, slug = 403, "forbidden"


class NotFound(ProblemError):
    status, slug = 404, "not-found"


class Conflict(ProblemError):
    status, slug = 409, "conflict"


class PayloadTooLarge(ProblemError):
    status, slug = 413, "payload-too-large"


class RequestTimeout(ProblemError):
    status, slug = 408, "request-timeout"


class UnsupportedMediaType(ProblemError):
    status, slug = 415, "unsupported-media-type"


class ValidationFailed(ProblemError):
    status, slug = 422, "validation-failed"


class TooManyRequests(ProblemError):
    status, slug = 429, "rate-limited"


class ServiceUnavailable(ProblemError):
    status, slug = 503, "service-unavailable"


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``[{"field", "message"}]``, never echoing the rejected input.

    Only the first :data:`MAX_PROBLEM_ERRORS`; ``exc.error_count()`` says how many there were.
    """
    out = []
    for err in exc.errors(include_input=False, include_url=False)[:MAX_PROBLEM_ERRORS]:
        field = ".".join(str(p) for p in err["loc"]) or "body"
        out.append({"field": field, "message": err["msg"]})
    return out


def problem_body(
    *,
    status: int,
    detail: str,
    instance: str,
    request_id: str | None,
    slug: str | None = None,
    title: str | None = None,
    errors: Sequence[Mapping[str, str]] = (),
    total_errors: int = 0,
) -> dict[str, Any]:
    """The problem document the API returns for every error.

    At most :data:`MAX_PROBLEM_ERRORS` field errors, the first ones; when there were more,
    ``errors_total`` says how many.
    """
    try:
        default_title = HTTPStatus(status).phrase
    except ValueError:
        default_title = "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or default_title.lower().replace(" ", "-")),
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "success": False,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = list(errors[:MAX_PROBLEM_ERRORS])
        total = max(total_errors, len(errors))
        if total > MAX_PROBLEM_ERRORS:
            body["errors_total"] = total
    return body


def problem_response(
    request: web.Request,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    total_errors: int = 0,
) -> web.Response:
    """Render a problem for ``request``; ``instance`` is the path only (no query, no secrets)."""
    body = problem_body(
        status=status,
        detail=detail,
        instance=request.path,
        request_id=request.get(REQUEST_ID),
        slug=slug,
        errors=errors,
        total_errors=total_errors,
    )
    return web.Response(
        status=status,
        body=orjson.dumps(body),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def problem_from(request: web.Request, exc: ProblemError) -> web.Response:
    """The problem response for ``exc``, as the request frame renders it."""
    return problem_response(
        request,
        exc.status,
        exc.detail,
        slug=exc.slug,
        errors=exc.errors,
        headers=exc.headers,
        total_errors=exc.total_errors,
    )
