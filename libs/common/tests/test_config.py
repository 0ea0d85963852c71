"""Settings: one prefix per service, shared CLOUDOPS_* variables, validated pool bounds."""

from __future__ import annotations

import os
from typing import Any

import pydantic
import pytest
from pydantic_settings import SettingsConfigDict

from common.config import ServiceSettings


class XSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDOPS_X_")

    service_name: str = "x"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CLOUDOPS_* variable of the machine running the tests may leak into them."""
    for name in list(os.environ):
        if name.upper().startswith("CLOUDOPS_"):
            monkeypatch.delenv(name)


def test_defaults_point_at_loopback_servers() -> None:
    settings = XSettings()

    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/cloudops"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.amqp_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.environment == "development"
    assert settings.db_schema == "x"


@pytest.mark.parametrize(
    ("variable", "field", "value", "expected"),
    [
        ("CLOUDOPS_X_PORT", "port", "9001", 9001),
        ("CLOUDOPS_X_SERVICE_NAME", "service_name", "inventory", "inventory"),
        ("CLOUDOPS_X_DB_POOL_MAX", "db_pool_max", "30", 30),
        ("CLOUDOPS_X_OUTBOX_POLL_SECONDS", "outbox_poll_seconds", "0.25", 0.25),
    ],
)
def test_service_variables_are_read_with_the_service_prefix(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str, value: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)

    assert getattr(XSettings(), field) == expected


def test_service_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9002")
    monkeypatch.setenv("CLOUDOPS_Y_PORT", "9003")

    assert XSettings().port == 8000


@pytest.mark.parametrize(
    ("variable", "field", "value"),
    [
        ("CLOUDOPS_DATABASE_URL", "database_url", "postgresql://db.internal:5432/cloudops"),
        ("CLOUDOPS_REDIS_URL", "redis_url", "redis://cache.internal:6379/2"),
        ("CLOUDOPS_AMQP_URL", "amqp_url", "amqp://u:p@mq.internal:5672/"),
        ("CLOUDOPS_ENVIRONMENT", "environment", "production"),
        ("CLOUDOPS_LOG_LEVEL", "log_level", "DEBUG"),
        ("CLOUDOPS_EVENTS_EXCHANGE", "events_exchange", "cloudops.events.blue"),
        ("CLOUDOPS_REDIS_PREFIX", "redis_prefix", "green:"),
    ],
)
def test_shared_variables_are_read_without_the_service_prefix(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    assert getattr(XSettings(), field) == value


@pytest.mark.parametrize(
    ("variable", "field", "value", "expected"),
    [
        ("CLOUDOPS_UVLOOP", "uvloop", "false", False),
        ("CLOUDOPS_MAX_IN_FLIGHT", "max_in_flight", "64", 64),
        ("CLOUDOPS_LISTEN_BACKLOG", "listen_backlog", "16384", 16384),
    ],
)
def test_serving_limits_are_shared_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str, value: str, expected: object
) -> None:
    defaults = XSettings()
    monkeypatch.setenv(variable, value)

    assert getattr(XSettings(), field) == expected != getattr(defaults, field)


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("DATABASE_URL", "postgresql://someone-else/db", "database_url"),
        ("ENVIRONMENT", "staging", "environment"),
        ("REDIS_URL", "redis://someone-else:6379/0", "redis_url"),
    ],
)
def test_shared_settings_ignore_other_programs_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    monkeypatch.setenv(variable, value)

    assert getattr(XSettings(), field) == ServiceSettings.model_fields[field].default


def test_shared_settings_can_be_passed_by_field_name() -> None:
    settings = XSettings(database_url="postgresql://given/db", queue_expires_ms=5000)

    assert (settings.database_url, settings.queue_expires_ms) == ("postgresql://given/db", 5000)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"db_pool_min": 11, "db_pool_max": 10}, "db_pool_min must not exceed db_pool_max"),
        ({"db_pool_min": 0}, "greater than or equal to 1"),
        ({"workers": 0}, "greater than or equal to 1"),
        ({"workers": 65}, "less than or equal to 64"),
        ({"outbox_poll_seconds": 0}, "greater than 0"),
        ({"environment": "staging"}, "'development', 'test' or 'production'"),
    ],
)
def test_invalid_values_stop_start_up(values: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        XSettings(**values)


def test_equal_pool_bounds_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDOPS_X_DB_POOL_MIN", "4")
    monkeypatch.setenv("CLOUDOPS_X_DB_POOL_MAX", "4")

    settings = XSettings()

    assert (settings.db_pool_min, settings.db_pool_max) == (4, 4)
