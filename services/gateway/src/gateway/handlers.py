"""HTTP handlers the gateway answers itself: health, admin keys and users, login, the dashboard
session, and tokens."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from common.errors import Forbidden, Unauthorized
from common.paging import Page
from common.web import json_response, parse_query, read_json, read_json_value
from gateway.bots import flag_client
from gateway.domain import KeyRequest, UserRequest
from gateway.keys import KEY_RING
from gateway.network import CLIENT
from gateway.principal import PRINCIPAL, Principal
from gateway.ratelimit import revoked
from gateway.security_log import security_event
from gateway.sessions import SESSION, SESSIONS
from gateway.settings import GATEWAY_SETTINGS
from gateway.tokens import TOKEN_ISSUER
from gateway.users import LOGIN_GUARD, USERS

LOGIN_CHALLENGE = 'Bearer realm="cloudops"'


async def health(request: web.Request) -> web.Response:
    """Public liveness of the platform's front door."""
    return json_response({"status": "ok"})


async def create_key(request: web.Request) -> web.Response:
    key, secret = await request.app[KEY_RING].create(await read_json(request, KeyRequest))
    # The only time the key is ever shown.
    return json_response(
        {**key.public(), "key": secret},
        status=201,
        headers={"Location": f"/api/admin/keys/{key.id}"},
    )


async def list_keys(request: web.Request) -> web.Response:
    page = parse_query(request, Page)
    keys, total = await request.app[KEY_RING].list(page.limit, page.offset)
    return json_response(
        [k.public() for k in keys],
        meta={"total": total, "limit": page.limit, "offset": page.offset},
    )


async def revoke_key(request: web.Request) -> web.Response:
    key = await request.app[KEY_RING].revoke(request.match_info["key_id"])
    response = json_response(key.public())
    await revoked(request, response)  # nginx's edge forgets what it allowed the key
    return response


async def create_user(request: web.Request) -> web.Response:
    user = await request.app[USERS].create(await read_json(request, UserRequest))
    return json_response(user.public(), status=201)


async def list_users(request: web.Request) -> web.Response:
    users = await request.app[USERS].list()
    return json_response([u.public() for u in users])


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


async def _check_password(request: web.Request, credentials: Credentials) -> Principal:
    guard = request.app[LOGIN_GUARD]
    ip = request[CLIENT].ip
    username = credentials.username
    device = guard.device(request, username)
    locked = await guard.check(username, ip, device)
    principal = await request.app[USERS].verify(username, credentials.password)
    if principal is None:
        await guard.failed(username, ip, device)
        security_event("login_failed", request)
        raise Unauthorized(
            "Unknown user or wrong password.", headers={"WWW-Authenticate": LOGIN_CHALLENGE}
        )
    await guard.succeeded(username, locked=locked)
    return principal


async def login(request: web.Request) -> web.Response:
    raw: Any = await read_json_value(request)
    field = request.app[GATEWAY_SETTINGS].honeypot_field
    if isinstance(raw, dict) and raw.pop(field, None):
        # Only bots fill the hidden field: answer like a wrong password, and remember them.
        await flag_client(request, "login-field")
        raise Unauthorized(
            "Unknown user or wrong password.", headers={"WWW-Authenticate": LOGIN_CHALLENGE}
        )
    principal = await _check_password(request, Credentials.model_validate(raw))
    sessions = request.app[SESSIONS]
    session = await sessions.start(request, principal)
    response = json_response(session.public())
    sessions.set_cookie(request, response, session)
    # This browser is now a known device of the user: an account lock does not hold it back.
    request.app[LOGIN_GUARD].remember_device(request, response, principal.name)
    return response


async def current_session(request: web.Request) -> web.Response:
    """The dashboard's session, CSRF token included, so a reloaded page can carry on."""
    session = request.get(SESSION)
    if session is None:
        raise Unauthorized(
            "There is no live session.", headers={"WWW-Authenticate": LOGIN_CHALLENGE}
        )
    return json_response(session.public())


async def logout(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    await request.app[SESSIONS].end(request, response)
    await revoked(request, response)
    return response


async def issue_token(request: web.Request) -> web.Response:
    """A short-lived JWT for the key or session sent, or for a user name and password."""
    principal = request.get(PRINCIPAL)
    if principal is None and not request.body_exists:
        raise Unauthorized(
            "Send an API key, a session, or a user name and password.",
            headers={"WWW-Authenticate": 'ApiKey realm="cloudops"'},
        )
    if principal is None:
        principal = await _check_password(request, await read_json(request, Credentials))
    elif principal.bearer:
        raise Forbidden("A bearer token cannot be exchanged for another token.")
    session = request.get(SESSION)
    # The token lives only as long as what minted it: the session, else the key or the user.
    origin = f"session:{session.ref}" if session is not None else None
    token, ttl = request.app[TOKEN_ISSUER].issue(principal, origin)
    return json_response({"access_token": token, "token_type": "Bearer", "expires_in": ttl})
