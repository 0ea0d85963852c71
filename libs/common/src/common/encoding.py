"""JSON encoding used everywhere (HTTP bodies, jsonb columns, caches, events).

``Decimal`` becomes a string so money keeps every digit; pydantic models become their JSON form.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, UUID):  # asyncpg's own UUID subclass, which orjson does not know
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_SORT_KEYS if sort_keys else None)


loads = orjson.loads
