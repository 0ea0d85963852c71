"""Start-up configuration rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings


def test_production_requires_a_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET is required"):
        GatewaySettings(environment="production")


def test_short_jwt_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        GatewaySettings(jwt_secret="short")


def test_environment_variables_configure_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDOPS_BOOTSTRAP_ADMIN_KEY", "s3cr3t-value")
    monkeypatch.setenv("CLOUDOPS_GATEWAY_COSTS_URL", "http://10.0.0.2:9000")
    monkeypatch.setenv("CLOUDOPS_GATEWAY_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    settings = GatewaySettings()
    assert settings.port == 8100
    assert settings.resources_url == "http://127.0.0.1:8101"
    assert settings.costs_url == "http://10.0.0.2:9000"
    assert settings.bootstrap_admin_key is not None
    assert settings.bootstrap_admin_key.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings)
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8"]
