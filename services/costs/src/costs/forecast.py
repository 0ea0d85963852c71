"""Daily cost forecasting and anomaly scoring, in numpy (no aiohttp, no SQL).

Model: ordinary least squares on ``cost = a + b*t + c_dow`` (intercept, linear trend, six
day-of-week dummies). Why this and not Holt-Winters: billing series are short (weeks to a few
months), have a strong weekly pattern and a slow trend; a regression with those terms has eight
parameters, is fitted in closed form, and gives *exact* prediction intervals under Gaussian
noise (``yhat +- t(0.9, n-p) * s * sqrt(1 + x (X'X)^-1 x')``), so the 80% interval is honest
without bootstrapping. Holt-Winters needs at least two full seasons to initialise, has no
closed-form interval for the damped case, and needs an optimiser (statsmodels) we would rather
not ship.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

PARAMETERS = 8  # intercept, trend, six weekday dummies
Z_80 = 1.2815515655446004  # standard normal quantile at 0.90 (two-sided 80%)
PLACES = Decimal("0.0001")


class HistoryTooShort(ValueError):
    def __init__(self, have: int, need: int) -> None:
        super().__init__(
            f"At least {need} days of cost history are needed to forecast; only {have} exist."
        )
        self.have = have
        self.need = need


@dataclass(frozen=True)
class ForecastPoint:
    day: date
    point: Decimal
    lower: Decimal
    upper: Decimal


def t_quantile_90(dof: int) -> float:
    """Student t quantile at 0.90 (Cornish-Fisher expansion; error < 1e-3 for dof >= 5)."""
    z = Z_80
    v = float(dof)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )


def _design(first: date, days: int, offset: int = 0) -> npt.NDArray[np.float64]:
    x = np.zeros((days, PARAMETERS))
    x[:, 0] = 1.0
    x[:, 1] = np.arange(offset, offset + days, dtype=np.float64)
    for i in range(days):
        weekday = (first + timedelta(days=offset + i)).weekday()
        if weekday > 0:
            x[i, 1 + weekday] = 1.0
    return x


@dataclass(frozen=True)
class Fit:
    first: date
    days: int
    beta: npt.NDArray[np.float64]
    sigma: float
    xtx_inv: npt.NDArray[np.float64]
    residuals: npt.NDArray[np.float64]


def fit(series: Sequence[Decimal | float], first: date, *, min_days: int = 14) -> Fit:
    """Fit the model to a gap-free daily series that starts on ``first``."""
    if len(series) < max(min_days, PARAMETERS + 1):
        raise HistoryTooShort(len(series), max(min_days, PARAMETERS + 1))
    y = np.array([float(v) for v in series])
    x = _design(first, len(y))
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residuals = y - x @ beta
    dof = len(y) - PARAMETERS
    sigma = math.sqrt(float(residuals @ residuals) / dof)
    xtx_inv = np.asarray(np.linalg.pinv(x.T @ x), dtype=np.float64)
    return Fit(first, len(y), beta, sigma, xtx_inv, residuals)


def forecast(
    series: Sequence[Decimal | float], first: date, horizon: int, *, min_days: int = 14
) -> list[ForecastPoint]:
    """The next ``horizon`` days after the series, each with an 80% prediction interval."""
    model = fit(series, first, min_days=min_days)
    x = _design(first, horizon, offset=model.days)
    points = x @ model.beta
    spread = np.sqrt(1.0 + np.einsum("ij,jk,ik->i", x, model.xtx_inv, x))
    half = t_quantile_90(model.days - PARAMETERS) * model.sigma * spread
    return [
        ForecastPoint(
            first + timedelta(days=model.days + i),
            _money(points[i]),
            _money(points[i] - half[i]),
            _money(points[i] + half[i]),
        )
        for i in range(horizon)
    ]


def _mad(values: npt.NDArray[np.float64]) -> tuple[float, float]:
    """Median and median absolute deviation (mean deviation if the MAD is 0)."""
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    if mad == 0.0:
        mad = float(np.mean(np.abs(values - median))) * 0.7979 or 1e-12
    return median, mad


def anomaly_scores(
    series: Sequence[Decimal | float], first: date, *, threshold: float, min_days: int = 14
) -> tuple[list[float], list[Decimal]]:
    """Robust z-score of each day against a fit that excludes the outliers, and the expected cost.

    One big spike pulls an ordinary least-squares fit towards itself and makes its neighbours look
    odd, so days scoring beyond ``threshold`` are left out and the model refitted (at most three
    rounds), then every day is scored against that clean fit.
    """
    fit(series, first, min_days=min_days)  # refuses short histories
    y = np.array([float(v) for v in series])
    x = _design(first, len(y))
    keep = np.ones(len(y), dtype=bool)
    for _ in range(3):
        beta, *_ = np.linalg.lstsq(x[keep], y[keep], rcond=None)
        residuals = y - x @ beta
        median, mad = _mad(residuals[keep])
        z = 0.6745 * (residuals - median) / mad
        outliers = np.abs(z) >= threshold
        if not (outliers & keep).any() or (~outliers).sum() <= PARAMETERS + 1:
            break
        keep = ~outliers
    return [float(v) for v in z], [_money(v) for v in x @ beta]


def _money(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(PLACES)
