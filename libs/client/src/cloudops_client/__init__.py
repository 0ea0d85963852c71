"""A typed client for the CloudOps public API, and the ``cloudops`` command on top of it."""

from cloudops_client.client import AlertEvent, CloudOps
from cloudops_client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)

__all__ = [
    "AlertEvent",
    "ApiError",
    "BadRequest",
    "CloudOps",
    "Conflict",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
]
