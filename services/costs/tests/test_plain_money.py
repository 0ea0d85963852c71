"""No amount in any cost answer or export is written in exponent form (5.47E-8, 0E-10)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal, InvalidOperation
from typing import Any

from .conftest import Client, focus_rows, imported, to_csv

WINDOW = {"start": "2024-01-01", "end": "2024-01-31"}
ADMIN = {"X-CloudOps-Principal": "root", "X-CloudOps-Permissions": "admin,read,write"}
JSON_ANSWERS = [
    ("GET", "/api/costs/daily", WINDOW),
    ("GET", "/api/costs/daily", {**WINDOW, "group_by": "resource"}),
    ("GET", "/api/costs/invoices", {}),
    ("GET", "/api/costs/forecast", {"end": "2024-01-31"}),
    ("POST", "/api/costs/anomalies/detect", {"end": "2024-01-31"}),
    ("GET", "/api/costs/realtime", {"at": "2024-01-15T00:00:00Z"}),
    ("GET", "/api/costs/optimization", {}),
    ("GET", "/api/costs/budgets", {}),
    ("POST", "/api/costs/budgets/evaluate", {"at": "2024-01-15T00:00:00Z"}),
    ("GET", "/api/costs/platform", {}),
]
CSV_EXPORTS = ["/api/costs/export/daily.csv", "/api/costs/export/focus.csv"]


def exponents(texts: list[str]) -> list[str]:
    """The texts that are numbers written with an exponent."""
    out = []
    for text in texts:
        try:
            Decimal(text)
        except InvalidOperation:
            continue
        if "e" in text.lower():
            out.append(text)
    return out


def leaves(value: Any) -> list[str]:
    """Every string and number of a JSON document, numbers as the text they were written as."""
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in leaves(v)]
    return [value] if isinstance(value, str) else []


async def test_no_answer_or_export_writes_money_with_an_exponent(client: Client) -> None:
    rows = focus_rows("aws_focus_1_0.csv")
    for row, amount in zip(rows, ["0.0000000547", "0E-10", "0.0000000000", "1E-7"], strict=False):
        row.update(BilledCost=amount, EffectiveCost=amount, ListCost=amount, ContractedCost=amount)
    await imported(client, to_csv(rows))
    budget = {"name": "tiny", "amount": "0.0000000001", "currency": "USD"}
    assert (await client.post("/api/costs/budgets", json=budget)).status == 201

    found: dict[str, list[str]] = {}
    for method, path, params in JSON_ANSWERS:
        resp = await client.request(method, path, params=params, headers=ADMIN)
        assert resp.status == 200, (path, await resp.text())
        # Numbers as written: a float in exponent form counts as much as a string does.
        found[path] = exponents(leaves(json.loads(await resp.text(), parse_float=str)))
    for path in CSV_EXPORTS:
        text = await (await client.get(path, params=WINDOW)).text()
        found[path] = exponents([cell for row in csv.reader(io.StringIO(text)) for cell in row])
    assert {path: texts for path, texts in found.items() if texts} == {}
