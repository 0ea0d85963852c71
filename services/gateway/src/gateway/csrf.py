"""Cross-site request forgery defence for the dashboard: the synchronizer-token pattern.

A browser attaches the session cookie to a request whatever page made it; only the dashboard's
own pages can read the CSRF token (it comes in the login and session bodies, never in a cookie).
So every state-changing request authenticated by the cookie must echo the session's token in
``X-CSRF-Token``. Callers with an API key or a bearer token send their credential explicitly,
which a forged request cannot do, and are exempt.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from common.errors import Forbidden
from gateway.routes import RouteSpec
from gateway.security_log import security_event
from gateway.sessions import Session

CSRF_HEADER = "X-CSRF-Token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Login's credential is the password in its body, not the cookie, and it replaces any session
# the browser had: a stale cookie must not stop a user from logging in again.
EXEMPT_TEMPLATES = frozenset({"/api/auth/login"})


def check_csrf(request: web.Request, spec: RouteSpec, session: Session) -> None:
    """403 (problem type ``.../csrf``) unless a cookie-authenticated change carries the token."""
    if request.method not in STATE_CHANGING or spec.template in EXEMPT_TEMPLATES:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    # Constant-time, so the response time does not tell how much of a guess was right.
    if hmac.compare_digest(sent.encode(errors="replace"), session.csrf_token.encode()):
        return
    security_event("csrf_rejected", request, principal=session.principal.name, sent=bool(sent))
    raise Forbidden(
        f"This request needs the session's {CSRF_HEADER} header.",
        slug="csrf",
    )
