"""Problem responses (RFC 9457 ``application/problem+json``) as typed exceptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class ApiError(Exception):
    """An error answer of the API. ``errors`` names each invalid field (``field``, ``message``)."""

    status: int
    title: str
    detail: str = ""
    type: str = "about:blank"
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    retry_after: float | None = None

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.status} {self.title}: {self.detail}{where}"


class BadRequest(ApiError):
    """400: a malformed query, path id or body."""


class Unauthorized(ApiError):
    """401: no credentials, or wrong, revoked or expired ones."""


class Forbidden(ApiError):
    """403: the credentials lack the permission (or the CSRF token is missing)."""


class NotFound(ApiError):
    """404: nothing has this id."""


class Conflict(ApiError):
    """409: the change conflicts with the current state."""


class PayloadTooLarge(ApiError):
    """413: the body is larger than the operation accepts."""


class UnsupportedMediaType(ApiError):
    """415: the body's media type is not accepted."""


class ValidationFailed(ApiError):
    """422: the body has invalid values (see ``errors``)."""


class RateLimited(ApiError):
    """429: the caller's quota is used up; ``retry_after`` says for how long."""


class ServiceUnavailable(ApiError):
    """503: a dependency is down or the service is overloaded; retry after ``retry_after``."""


class ServerError(ApiError):
    """Any other 5xx."""


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def error_for(response: httpx.Response) -> ApiError:
    """The typed error of an error response (problem+json, or whatever a proxy sent)."""
    body: dict[str, Any] = {}
    if response.headers.get("Content-Type", "").split(";")[0].endswith("json"):
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
    cls = BY_STATUS.get(
        response.status_code, ServerError if response.status_code >= 500 else ApiError
    )
    return cls(
        status=response.status_code,
        title=str(body.get("title") or response.reason_phrase),
        detail=str(body.get("detail") or ""),
        type=str(body.get("type") or "about:blank"),
        instance=body.get("instance"),
        request_id=body.get("request_id") or response.headers.get("X-Request-ID"),
        errors=list(body.get("errors") or []),
        retry_after=_retry_after(response),
    )
