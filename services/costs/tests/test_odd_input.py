"""Odd query input is a 400 problem, not a 500: NUL characters, huge offsets, calendar ends."""

from __future__ import annotations

from typing import Any

from .conftest import Client, focus_rows, imported, to_csv

FILTERS = ["provider", "service_category", "service", "region", "account", "resource", "tag"]
#: Every cost query and the text parameters it takes.
QUERIES: dict[str, list[str]] = {
    "/api/costs/daily": [*FILTERS, "group_by", "basis", "currency"],
    "/api/costs/export/daily.csv": [*FILTERS, "group_by"],
    "/api/costs/export/focus.csv": FILTERS,
    "/api/costs/forecast": [*FILTERS, "basis"],
    "/api/costs/anomalies/detect": FILTERS,
    "/api/costs/invoices": ["billing_account_id"],
    "/api/costs/realtime": ["group_by", "basis"],
    "/api/costs/platform": ["day"],
}
#: Every parameter that names a day or an instant, per path.
DATES: dict[str, list[str]] = {
    "/api/costs/daily": ["start", "end"],
    "/api/costs/export/daily.csv": ["start", "end"],
    "/api/costs/export/focus.csv": ["start", "end"],
    "/api/costs/forecast": ["end"],
    "/api/costs/anomalies/detect": ["end"],
    "/api/costs/invoices": ["start", "end"],
    "/api/costs/platform": ["day"],
    "/api/costs/realtime": ["at"],
    "/api/costs/optimization": ["at"],
    "/api/costs/budgets/evaluate": ["at"],
}
PAGED = ["/api/costs/invoices", "/api/costs/anomalies", "/api/costs/budgets"]
POSTS = {"/api/costs/anomalies/detect", "/api/costs/budgets/evaluate"}
CALENDAR_ENDS = ["9999-12-31", "0001-01-01"]
INSTANT_ENDS = ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00"]


async def call(client: Client, path: str, params: dict[str, str]) -> Any:
    method = "POST" if path in POSTS else "GET"
    return await client.request(method, path, params=params)


async def refusal(resp: Any, field: str) -> str | None:
    """Why ``resp`` is not a 400 problem naming ``field``; None if it is one."""
    if resp.status != 400 or resp.content_type != "application/problem+json":
        return f"{resp.status} {resp.content_type}"
    fields = {e["field"] for e in (await resp.json())["errors"]}
    return None if field in fields else f"errors name {fields}"


async def test_a_nul_character_in_any_text_filter_is_a_400(client: Client) -> None:
    wrong = {}
    for path, names in QUERIES.items():
        for name in names:
            value = "team:we\x00b" if name in ("tag", "group_by") else "we\x00b"
            wrong[path, name] = await refusal(await call(client, path, {name: value}), name)
    assert {case: why for case, why in wrong.items() if why} == {}


async def test_the_calendars_ends_in_any_cost_query_are_a_400(client: Client) -> None:
    wrong = {}
    for path, names in DATES.items():
        for name in names:
            for value in INSTANT_ENDS if name == "at" else CALENDAR_ENDS:
                resp = await call(client, path, {name: value})
                wrong[path, name, value] = await refusal(resp, name)
    assert {case: why for case, why in wrong.items() if why} == {}


async def test_offsets_and_limits_beyond_64_bits_are_a_400(client: Client) -> None:
    wrong = {}
    for path in PAGED:
        for name, value in [
            ("offset", str(2**63)),
            ("offset", str(2**64)),
            ("offset", "9" * 40),
            ("limit", str(2**64)),
        ]:
            resp = await client.get(path, params={name: value})
            wrong[path, name, value] = await refusal(resp, name)
    assert {case: why for case, why in wrong.items() if why} == {}


async def test_the_largest_bigint_offset_is_an_empty_page(client: Client) -> None:
    for path in PAGED:
        resp = await client.get(path, params={"offset": str(2**63 - 1)})
        assert resp.status == 200, path
        body = await resp.json()
        assert body["data"] == []
        assert body["meta"]["offset"] == 2**63 - 1


async def test_a_charge_at_the_calendars_end_is_rejected_and_reports_still_work(
    client: Client,
) -> None:
    rows = focus_rows("aws_focus_1_0.csv")[:3]
    rows[0].update(ChargePeriodStart="9999-12-31T00:00:00Z", ChargePeriodEnd="9999-12-31T01:00Z")
    rows[1].update(ChargePeriodStart="0001-01-01T00:00:00Z")
    result = await imported(client, to_csv(rows))
    assert result["rows_rejected"] == 2
    for path in ("/api/costs/forecast", "/api/costs/daily", "/api/costs/export/focus.csv"):
        assert (await client.get(path)).status == 200, path


async def test_a_nul_character_in_stored_text_is_refused(client: Client) -> None:
    bodies = [
        {"name": "we\x00b", "amount": "10"},
        {"name": "x", "amount": "10", "scope": "provider", "scope_value": "A\x00"},
        {"name": "x", "amount": "10", "scope": "tag", "scope_key": "te\x00am", "scope_value": "v"},
    ]
    for body in bodies:
        resp = await client.post("/api/costs/budgets", json=body)
        assert resp.status == 422, body
        assert resp.content_type == "application/problem+json"
    created = await client.post("/api/costs/budgets", json={"name": "ok", "amount": "10"})
    budget = (await created.json())["data"]["id"]
    patched = await client.patch(f"/api/costs/budgets/{budget}", json={"name": "a\x00"})
    assert patched.status == 422
    upload = await client.post(
        "/api/costs/imports",
        params={"filename": "bill\x00.csv"},
        data=to_csv(focus_rows("aws_focus_1_0.csv")),
        headers={"Content-Type": "text/csv"},
    )
    assert await refusal(upload, "filename") is None
