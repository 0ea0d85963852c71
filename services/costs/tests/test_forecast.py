"""Forecast intervals are honest; short history is said plainly; anomalies are emitted once."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest

from common.testing import EventTap
from costs.forecast import HistoryTooShort, forecast, t_quantile_90

from .conftest import Client, focus_bytes, focus_rows, imported, to_csv

FIRST = date(2024, 1, 1)
WEEKLY = [0.0, 5.0, 8.0, 6.0, 3.0, -10.0, -12.0]


def synthetic(seed: int, days: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return [
        100 + 0.5 * t + WEEKLY[(FIRST + timedelta(days=t)).weekday()] + rng.normal(0, 5)
        for t in range(days)
    ]


def test_80_percent_interval_holds_the_truth_about_80_percent_of_the_time() -> None:
    inside = total = 0
    for seed in range(300):
        series = synthetic(seed, 56 + 30)
        for point, truth in zip(forecast(series[:56], FIRST, 30), series[56:], strict=True):
            total += 1
            inside += point.lower <= Decimal(repr(truth)) <= point.upper
    assert 0.77 <= inside / total <= 0.83


def test_point_forecast_follows_trend_and_weekday() -> None:
    exact = [100 + 0.5 * t + WEEKLY[(FIRST + timedelta(days=t)).weekday()] for t in range(70)]
    points = forecast(exact[:56], FIRST, 14)
    for point, truth in zip(points, exact[56:], strict=True):
        assert abs(float(point.point) - truth) < 1e-6
        assert point.lower <= point.point <= point.upper


@pytest.mark.parametrize("days", [0, 5, 13])
def test_short_history_is_refused_with_a_plain_message(days: int) -> None:
    with pytest.raises(HistoryTooShort, match=f"only {days} exist"):
        forecast([1.0] * days, FIRST, 30)


def test_t_quantile_approximation_is_close() -> None:
    assert abs(t_quantile_90(10) - 1.3722) < 2e-3
    assert abs(t_quantile_90(48) - 1.2994) < 1e-3


def daily_file(values: list[str]) -> bytes:
    template = focus_rows("aws_focus_1_0.csv")[0]
    rows = []
    for i, value in enumerate(values):
        day = FIRST + timedelta(days=i)
        rows.append({**template, "BilledCost": value, "EffectiveCost": value,
                     "ChargePeriodStart": f"{day.isoformat()}T00:00:00Z",
                     "ChargePeriodEnd": f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z",
                     "BillingPeriodStart": "2024-01-01T00:00:00Z",
                     "BillingPeriodEnd": "2024-03-01T00:00:00Z"})  # fmt: skip
    return to_csv(rows)


async def test_forecast_endpoint_gives_the_horizon_with_intervals(client: Client) -> None:
    await imported(client, daily_file([f"{v:.6f}" for v in synthetic(1, 42)]))
    resp = await client.get("/api/costs/forecast", params={"horizon": "10"})
    assert resp.status == 200
    data = (await resp.json())["data"]
    points = data["currencies"]["USD"]
    assert [p["date"] for p in points] == [
        (FIRST + timedelta(days=42 + i)).isoformat() for i in range(10)
    ]
    assert all(Decimal(p["lower"]) < Decimal(p["point"]) < Decimal(p["upper"]) for p in points)
    assert data["message"] is None


async def test_forecast_endpoint_says_when_history_is_too_short(client: Client) -> None:
    await imported(client, focus_bytes("aws_focus_1_0.csv"))
    data = (await (await client.get("/api/costs/forecast")).json())["data"]
    assert data["currencies"] == {}
    assert "At least 14 days" in data["message"]
    assert "only 3 exist" in data["message"]


async def test_forecast_without_any_history_says_so(client: Client) -> None:
    data = (await (await client.get("/api/costs/forecast")).json())["data"]
    assert data["message"].startswith("No cost history")


async def test_a_spike_is_detected_and_emitted_once(client: Client, event_tap: EventTap) -> None:
    values = [f"{v:.6f}" for v in synthetic(2, 42)]
    values[30] = "900.000000"
    await imported(client, daily_file(values))
    resp = await client.post("/api/costs/anomalies/detect")
    assert resp.status == 200
    found = (await resp.json())["data"]
    assert [(a["date"], a["new"]) for a in found] == [
        ((FIRST + timedelta(days=30)).isoformat(), True)
    ]
    [event] = await event_tap.take(1)
    assert event["type"] == "cost.anomaly_detected"
    assert event["data"]["actual"] == "900.000000"
    again = (await (await client.post("/api/costs/anomalies/detect")).json())["data"]
    assert [a["new"] for a in again] == [False]
    assert await event_tap.quiet(1.0) == []
    listed = await (await client.get("/api/costs/anomalies")).json()
    assert [a["dimension"] for a in listed["data"]] == ["all:USD"]
    # Listed as detection answers it: the same day field and the currency.
    assert [(a["date"], a["currency"]) for a in listed["data"]] == [(found[0]["date"], "USD")]
    assert listed["meta"]["total"] == 1
    by_provider = await client.post("/api/costs/anomalies/detect", params={"provider": "AWS"})
    assert [a["dimension"] for a in (await by_provider.json())["data"]] == ["provider=AWS:USD"]
    [provider_event] = await event_tap.take(1)
    assert provider_event["subject"] == "provider=AWS:USD"


def test_ordinary_noise_is_rarely_called_an_anomaly() -> None:
    from costs.forecast import anomaly_scores

    flagged = total = 0
    for seed in range(50):
        scores, _ = anomaly_scores(synthetic(seed, 42), FIRST, threshold=3.5)
        flagged += sum(abs(z) >= 3.5 for z in scores)
        total += len(scores)
    assert flagged / total < 0.01


async def test_detection_without_enough_history_finds_nothing(client: Client) -> None:
    await imported(client, focus_bytes("aws_focus_1_0.csv"))
    resp = await client.post("/api/costs/anomalies/detect")
    assert (await resp.json())["data"] == []
