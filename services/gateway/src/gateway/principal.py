"""Who is calling and what they may do: the identity the gateway passes upstream."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


# Higher permissions include the lower ones: a writer may read, an admin may do anything.
_IMPLIED: dict[Permission, frozenset[Permission]] = {
    Permission.READ: frozenset({Permission.READ, Permission.WRITE, Permission.ADMIN}),
    Permission.WRITE: frozenset({Permission.WRITE, Permission.ADMIN}),
    Permission.ADMIN: frozenset({Permission.ADMIN}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``name`` is a key id or a user name, never a credential."""

    kind: str  # "key" or "user": what the credential (or the token's origin) was
    name: str
    permissions: frozenset[Permission]
    rate_limit: int | None = None
    rate_window_seconds: int | None = None
    bearer: bool = False  # authenticated by a bearer token rather than the key or session

    @property
    def subject(self) -> str:
        """Who the rate limit counts: the key or user, however it authenticated."""
        return f"{self.kind}:{self.name}"

    def may(self, needed: Permission) -> bool:
        return bool(self.permissions & _IMPLIED[needed])

    @property
    def permissions_header(self) -> str:
        return ",".join(sorted(p.value for p in self.permissions))


def parse_permissions(values: Iterable[str]) -> frozenset[Permission]:
    return frozenset(Permission(v) for v in values)


PRINCIPAL = web.RequestKey("principal", Principal)
