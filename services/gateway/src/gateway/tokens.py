"""Short-lived bearer tokens (JWT, HS256 pinned server-side).

The algorithm comes from the server, never from the token header: ``alg=none``, a different
HMAC size, or an asymmetric algorithm (the RS/HS confusion attack) are all refused by PyJWT's
``algorithms`` allow list. ``exp``, ``nbf``, ``iat``, ``iss`` and ``sub`` are required.

A token is only as good as what minted it. Its ``src`` claim names that origin: ``key:<key id>``,
``session:<session ref>`` (a hash of the session id, never the cookie itself) or
``user:<user name>`` for a password exchange; a token without the claim comes from its ``sub``
(the key id or user name). Each use checks that the origin is still valid (the key neither
revoked nor expired, the session not logged out or timed out, the user not disabled), through
briefly cached answers, so revoking the origin ends its tokens within seconds on every replica.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt
from aiohttp import web

from gateway.principal import Principal, parse_permissions

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "nbf", "iat", "iss", "sub", "perms", "jti", "kind")
ORIGIN_KINDS = frozenset({"key", "session", "user"})


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not yet valid."""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token whose signature and claims check out; its ``origin`` must still be checked."""

    principal: Principal
    origin: str  # "key:<id>", "session:<ref>" or "user:<name>"


def default_origin(principal: Principal) -> str:
    """What minted a token for ``principal`` when nothing more specific is known."""
    return f"{principal.kind}:{principal.name}"


@dataclass(frozen=True)
class TokenIssuer:
    secret: str
    issuer: str
    ttl_seconds: int
    leeway_seconds: int

    def issue(self, principal: Principal, origin: str | None = None) -> tuple[str, int]:
        """A signed token for ``principal``, minted by ``origin``, and its lifetime in seconds."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": principal.name,
            "src": origin or default_origin(principal),
            "kind": principal.kind,
            "perms": sorted(p.value for p in principal.permissions),
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": secrets.token_hex(8),
        }
        if principal.rate_limit is not None:
            claims["rl"] = [principal.rate_limit, principal.rate_window_seconds]
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM), self.ttl_seconds

    def verify(self, token: str) -> VerifiedToken:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
            permissions = parse_permissions(claims["perms"])
            limit = claims.get("rl")
        except (jwt.PyJWTError, ValueError, TypeError):
            raise InvalidToken from None
        rate_limit, window = limit if isinstance(limit, list) and len(limit) == 2 else (None, None)
        kind = claims.get("kind")
        if kind not in ("key", "user"):
            raise InvalidToken
        principal = Principal(
            kind=kind,
            bearer=True,
            name=str(claims["sub"]),
            permissions=permissions,
            rate_limit=rate_limit,
            rate_window_seconds=window,
        )
        origin = claims.get("src", default_origin(principal))
        if not isinstance(origin, str) or origin.partition(":")[0] not in ORIGIN_KINDS:
            raise InvalidToken
        return VerifiedToken(principal, origin)


TOKEN_ISSUER = web.AppKey("token_issuer", TokenIssuer)
