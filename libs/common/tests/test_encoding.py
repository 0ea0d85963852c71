"""JSON encoding: money as plain decimal strings, every digit kept."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from pydantic import BaseModel

from common.encoding import PlainDecimal, dumps


@pytest.mark.parametrize(
    ("amount", "written"),
    [
        ("5.47E-8", "0.0000000547"),
        ("0E-10", "0.0000000000"),
        ("-0E-10", "-0.0000000000"),
        ("1E+3", "1000"),
        ("0.0416000000", "0.0416000000"),
        ("123456789012345678901234.5678901234", "123456789012345678901234.5678901234"),
    ],
)
def test_money_is_written_in_plain_decimal_notation(amount: str, written: str) -> None:
    body = orjson.loads(dumps({"cost": Decimal(amount)}))

    assert body == {"cost": written}
    assert Decimal(body["cost"]) == Decimal(amount)


class Priced(BaseModel):
    cost: PlainDecimal


def test_a_models_plain_decimal_field_is_written_the_same_way() -> None:
    priced = Priced(cost=Decimal("5.47E-8"))

    assert priced.model_dump(mode="json") == {"cost": "0.0000000547"}
    assert orjson.loads(dumps(priced)) == {"cost": "0.0000000547"}
    assert priced.model_dump() == {"cost": Decimal("5.47E-8")}  # Python values stay Decimals
