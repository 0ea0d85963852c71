"""Authentication (who is calling) and authorization (may they call this route).

Credentials are read from headers only: ``X-API-Key``, ``Authorization: Bearer``, or the
dashboard session cookie, in that order. A credential that is present but wrong is a 401 even
if another one would have worked: a caller must not be able to probe keys behind a valid cookie.
A change authenticated by the cookie must also carry the session's CSRF token
(:mod:`gateway.csrf`); it is checked here, where the session is already loaded.

A bearer token is honoured only while what minted it (key, session or user, see
:mod:`gateway.tokens`) is still valid. Failed key and token checks are counted per client
address (:class:`gateway.users.AuthThrottle`; a wrong key answered from the cache costs nothing
and is not counted again): past the limit, a key that is not already known to this process is
refused with 429 before the database is asked.
"""

from __future__ import annotations

from functools import partial

from aiohttp import web

from common.errors import Forbidden, TooManyRequests, Unauthorized
from common.web import Handler
from gateway.csrf import check_csrf
from gateway.keys import KEY_RING, key_principal
from gateway.network import CLIENT
from gateway.principal import PRINCIPAL, Principal
from gateway.routes import route_spec
from gateway.security_log import security_event
from gateway.sessions import SESSION, SESSIONS
from gateway.tokens import TOKEN_ISSUER, InvalidToken
from gateway.users import AUTH_THROTTLE, USERS

KEY_CHALLENGE = 'ApiKey realm="cloudops", Bearer realm="cloudops"'
BAD_BEARER_CHALLENGE = 'Bearer realm="cloudops", error="invalid_token"'
MAX_CREDENTIAL_LENGTH = 4096


def _unauthorized(request: web.Request, reason: str, challenge: str) -> Unauthorized:
    security_event("auth_failed", request, reason=reason)
    return Unauthorized("Valid credentials are required.", headers={"WWW-Authenticate": challenge})


async def _failed(request: web.Request, reason: str, challenge: str) -> Unauthorized:
    await request.app[AUTH_THROTTLE].failed(request[CLIENT].ip)
    return _unauthorized(request, reason, challenge)


async def _throttle(request: web.Request) -> None:
    try:
        await request.app[AUTH_THROTTLE].check(request[CLIENT].ip)
    except TooManyRequests:
        security_event("auth_throttled", request)
        raise


async def origin_valid(app: web.Application, origin: str) -> bool:
    """Whether what minted a token (``key:<id>``, ``session:<ref>``, ``user:<name>``) is still
    valid; each answer is cached for a few seconds by the component that owns it."""
    kind, _, name = origin.partition(":")
    if kind == "key":
        return await app[KEY_RING].usable(name)
    if kind == "session":
        return await app[SESSIONS].alive(name)
    return kind == "user" and await app[USERS].enabled(name)


async def authenticate(request: web.Request) -> Principal | None:
    """The caller's principal, None when no credential was sent; 401 for a bad credential."""
    api_key = request.headers.get("X-API-Key")
    if api_key is not None:
        if not api_key or len(api_key) > MAX_CREDENTIAL_LENGTH:
            raise await _failed(request, "malformed api key", KEY_CHALLENGE)
        key, looked_up = await request.app[KEY_RING].check(api_key, partial(_throttle, request))
        if key is None:
            reason = "unknown, revoked or expired api key"
            if not looked_up:
                # Answered from the cache: it cost nothing, and it is often the same request
                # decided twice (nginx's edge decision, then the gateway rendering the 401).
                raise _unauthorized(request, reason, KEY_CHALLENGE)
            raise await _failed(request, reason, KEY_CHALLENGE)
        return key_principal(key)
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token or len(token) > MAX_CREDENTIAL_LENGTH:
            raise await _failed(request, "unsupported authorization scheme", BAD_BEARER_CHALLENGE)
        try:
            verified = request.app[TOKEN_ISSUER].verify(token.strip())
        except InvalidToken:
            raise await _failed(request, "invalid bearer token", BAD_BEARER_CHALLENGE) from None
        if not await origin_valid(request.app, verified.origin):
            raise await _failed(request, "bearer token of a revoked origin", BAD_BEARER_CHALLENGE)
        return verified.principal
    session = await request.app[SESSIONS].load(request)
    if session is None:
        return None
    request[SESSION] = session
    return session.principal


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    spec = route_spec(request)
    if spec is None:  # unmatched (404/405) or operator routes (/metrics, /health/*)
        return await handler(request)
    principal = await authenticate(request)
    if principal is not None:
        request[PRINCIPAL] = principal
    session = request.get(SESSION)
    if session is not None:
        check_csrf(request, spec, session)
    if spec.permission is None:
        return await handler(request)
    if principal is None:
        raise _unauthorized(request, "no credentials", KEY_CHALLENGE)
    if not principal.may(spec.permission):
        security_event("forbidden", request, principal=principal.name, needed=spec.permission)
        raise Forbidden(f"This route needs the {spec.permission.value!r} permission.")
    return await handler(request)
