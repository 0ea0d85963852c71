"""JSON encoding used everywhere (HTTP bodies, jsonb columns, caches, events).

``Decimal`` becomes a string in plain decimal notation (never ``5.47E-8`` or ``0E-10``, which
``str`` gives for small amounts and which many clients cannot parse as money), so money keeps every
digit; pydantic models become their JSON form, where :data:`PlainDecimal` fields do the same.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import BaseModel, PlainSerializer


def plain_decimal(value: Decimal) -> str:
    """Every digit, in positional notation: ``0.0000000547``, ``0.0000000000``, ``1000``."""
    return format(value, "f")


#: A Decimal field of a pydantic model that is written the way :func:`dumps` writes one (pydantic
#: itself would write ``5.47E-8``).
PlainDecimal = Annotated[Decimal, PlainSerializer(plain_decimal, return_type=str, when_used="json")]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, UUID):  # asyncpg's own UUID subclass, which orjson does not know
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_SORT_KEYS if sort_keys else None)


loads = orjson.loads
