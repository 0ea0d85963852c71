"""API keys and users as values, and the rules about them; no aiohttp, no SQL."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from gateway.principal import Permission

KEY_PREFIX = "ck_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$")


def _plain_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("letters, digits, space and . _ @ - only")
    return value


PlainName = Annotated[str, AfterValidator(_plain_name)]


def hash_key(key: str) -> bytes:
    """Keys are long random secrets, so a fast hash is enough (no brute force is feasible)."""
    return hashlib.sha256(key.encode()).digest()


def new_key() -> tuple[str, str]:
    """A fresh (key id, key); the key is shown once and only its hash is stored."""
    return f"key_{secrets.token_hex(8)}", KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    owner: str
    key_hash: bytes
    permissions: frozenset[Permission]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rate_limit: int | None = None
    rate_window_seconds: int | None = None

    def usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now

    def public(self) -> dict[str, object]:
        """What the admin API shows: everything but the hash."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "permissions": sorted(p.value for p in self.permissions),
            "rate_limit": self.rate_limit,
            "rate_window_seconds": self.rate_window_seconds,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PlainName
    owner: PlainName
    permissions: list[Permission] = Field(min_length=1, max_length=3)
    expires_at: datetime | None = None
    rate_limit: int | None = Field(default=None, ge=1, le=1_000_000)
    rate_window_seconds: int | None = Field(default=None, ge=1, le=86_400)

    def check_expiry(self, now: datetime) -> None:
        if self.expires_at is None:
            return
        if self.expires_at.tzinfo is None:
            raise ValueError("expires_at must carry a timezone")
        if self.expires_at <= now:
            raise ValueError("expires_at must be in the future")


@dataclass(frozen=True, slots=True)
class User:
    username: str
    password_hash: str
    permissions: frozenset[Permission]
    created_at: datetime
    disabled_at: datetime | None = None

    def public(self) -> dict[str, object]:
        return {
            "username": self.username,
            "permissions": sorted(p.value for p in self.permissions),
            "created_at": self.created_at.isoformat(),
            "disabled": self.disabled_at is not None,
        }


Username = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$")]


class UserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: str = Field(min_length=1, max_length=256)
    permissions: list[Permission] = Field(min_length=1, max_length=3)


def utcnow() -> datetime:
    return datetime.now(UTC)
