"""Paged lists: the bounded page every list takes from its query string, and the ``meta`` every
paged answer carries (``total``, ``limit``, ``offset``).

A list's query model extends :class:`Page` with its filters and is read with
``common.web.parse_query``; its storage turns the filters into SQL with :class:`Where`. No aiohttp
here, so domain modules may use it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: PostgreSQL's ``bigint``, what an OFFSET can hold: beyond it a request is a 400, not a 500 from
#: the driver; up to it, an empty page.
MAX_OFFSET = 2**63 - 1


class Page(BaseModel):
    """``?limit=&offset=``; list queries with filters extend it."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)

    def meta(self, total: int, **more: Any) -> dict[str, Any]:
        """The answer's ``meta`` for this page of ``total`` items."""
        return {"total": total, "limit": self.limit, "offset": self.offset, **more}


class Where:
    """A parameterised WHERE clause: trusted SQL with ``$n`` placeholders, untrusted values in
    ``args`` (never in the text)."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        """The placeholder of ``value``."""
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    def sql(self) -> str:
        """`` WHERE a AND b``, or nothing without clauses."""
        return " WHERE " + " AND ".join(self.clauses) if self.clauses else ""
