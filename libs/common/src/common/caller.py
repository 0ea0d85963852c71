"""Who is calling a service: the identity the gateway (or nginx's edge check) vouches for.

Services listen on loopback or the cluster network only, behind the gateway, which overwrites
every identity header a client sent. This module is the one place that names those headers and
reads them, with one sanitising policy: a principal is printable, at most 256 characters, and
otherwise absent (it ends up in history rows, events and logs); permissions are the known ones
only. A request without the headers is an internal caller (an operator's script, a test).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from aiohttp import web

from common.context import REQUEST_ID, TRACE
from common.errors import BadRequest
from common.tracing import TraceContext

PRINCIPAL_HEADER = "X-CloudOps-Principal"
PERMISSIONS_HEADER = "X-CloudOps-Permissions"
#: The actor recorded for a change whose caller is not known.
ANONYMOUS = "anonymous"
MAX_PRINCIPAL_LENGTH = 256
PERMISSIONS = frozenset({"read", "write", "admin"})
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def parse_principal(raw: str | None) -> str | None:
    """The principal, or None when absent, empty, too long or holding control characters."""
    value = (raw or "").strip()
    if not value or len(value) > MAX_PRINCIPAL_LENGTH:
        return None
    if _CONTROL.search(value):
        return None
    return value


def parse_permissions(raw: str | None) -> frozenset[str]:
    """The comma-separated permissions the gateway granted; unknown names are ignored."""
    return frozenset(p.strip() for p in (raw or "").split(",")) & PERMISSIONS


def identity_headers(principal: str, permissions: frozenset[str] | set[str]) -> dict[str, str]:
    """The headers that carry a caller's identity to a service (the gateway's side)."""
    return {PRINCIPAL_HEADER: principal, PERMISSIONS_HEADER: ",".join(sorted(permissions))}


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller of one request, and the trace that what it causes continues."""

    principal: str | None
    permissions: frozenset[str]
    trace: TraceContext | None = None
    request_id: str | None = None

    @property
    def actor(self) -> str:
        """The name a change is recorded under."""
        return self.principal or ANONYMOUS

    @property
    def is_admin(self) -> bool:
        return "admin" in self.permissions


def caller(request: web.Request) -> Caller:
    """The request's caller, as the gateway identified it."""
    return Caller(
        principal=parse_principal(request.headers.get(PRINCIPAL_HEADER)),
        permissions=parse_permissions(request.headers.get(PERMISSIONS_HEADER)),
        trace=request.get(TRACE),
        request_id=request.get(REQUEST_ID),
    )


def path_uuid(request: web.Request, name: str = "id", what: str | None = None) -> UUID:
    """The path parameter ``name`` as a UUID; a 400 naming the field otherwise."""
    try:
        return UUID(request.match_info[name])
    except ValueError:
        subject = f"{what} id" if what else name
        raise BadRequest(
            f"The {subject} in the path is not a UUID.",
            errors=[{"field": name, "message": "must be a UUID"}],
        ) from None
