"""Gateway settings (``CLOUDOPS_GATEWAY_*`` plus the shared ``CLOUDOPS_*``)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from aiohttp import web
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from common.config import ServiceSettings
from common.limits import BODY_READ_TIMEOUT_SECONDS, JSON_MAX_DEPTH

Network = IPv4Network | IPv6Network

DEFAULT_TRAP_PATHS = (
    "/wp-login.php",
    "/wp-admin/",
    "/.env",
    "/.git/config",
    "/phpmyadmin/",
    "/admin.php",
    "/api/admin/debug",
)
DEFAULT_DENIED_AGENTS = (
    r"sqlmap",
    r"nikto",
    r"nmap",
    r"masscan",
    r"zgrab",
    r"nuclei",
    r"gobuster",
    r"dirbuster",
    r"wpscan",
)


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLOUDOPS_GATEWAY_", extra="ignore", populate_by_name=True
    )

    service_name: str = "gateway"
    port: int = 8100

    # Upstreams: base URLs of the services behind the gateway.
    resources_url: str = "http://127.0.0.1:8101"
    costs_url: str = "http://127.0.0.1:8102"
    alerts_url: str = "http://127.0.0.1:8103"
    upstream_connect_timeout: float = Field(default=2.0, gt=0)
    upstream_read_timeout: float = Field(default=30.0, gt=0)
    upstream_pool_size: int = Field(default=100, ge=1)

    # Circuit breaker, per upstream.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_window_seconds: float = Field(default=10.0, gt=0)
    breaker_window_min_requests: int = Field(default=20, ge=1)
    breaker_failure_ratio: float = Field(default=0.5, gt=0, le=1)
    breaker_reset_seconds: float = Field(default=15.0, gt=0)

    # Credentials.
    bootstrap_admin_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("CLOUDOPS_BOOTSTRAP_ADMIN_KEY")
    )
    key_cache_seconds: float = Field(default=5.0, ge=0)
    # How long nginx's edge may let the same read through without asking the gateway (each
    # request is still counted by the rate limit; a revocation voids it at once). 0: ask always.
    edge_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    jwt_secret: SecretStr | None = None
    jwt_ttl_seconds: int = Field(default=900, ge=30, le=3600)
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=30)
    jwt_issuer: str = "cloudops-gateway"

    # The API reference page (/api/docs): the directory of Swagger UI's files (the npm package
    # swagger-ui-dist); unset, the dashboard's installed copy.
    docs_assets: Path | None = None

    # Dashboard sessions.
    session_cookie: str = "cloudops_session"
    session_idle_seconds: int = Field(default=1800, ge=60)
    session_absolute_seconds: int = Field(default=8 * 3600, ge=60)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=20, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    # Past the account's limit, each further failure doubles the lock, from the base to the cap;
    # a device cookie from an earlier successful login is not held back by it.
    login_lockout_base_seconds: int = Field(default=30, ge=1)
    login_lockout_max_seconds: int = Field(default=900, ge=1)
    device_cookie: str = "cloudops_device"
    device_cookie_days: int = Field(default=90, ge=1)
    # Failed key and token checks per client IP: past the limit, 429 before any lookup.
    auth_max_failures_per_ip: int = Field(default=30, ge=1)
    auth_failure_window_seconds: int = Field(default=300, ge=1)
    password_min_length: int = Field(default=12, ge=8)

    # Rate limiting.
    rate_limit: int = Field(default=100, ge=1)
    rate_window_seconds: int = Field(default=900, ge=1)
    # Dashboard sessions, per user: a page view makes several calls, a key's quota would not do.
    session_rate_limit: int = Field(default=3000, ge=1)
    session_rate_window_seconds: int = Field(default=300, ge=1)
    fallback_rate_limit: int = Field(default=100, ge=1)
    # Per route template: (limit, window seconds), e.g. {"/api/auth/token": [10, 60]}.
    route_rate_limits: dict[str, tuple[int, int]] = {}
    # Per route template: body limit in bytes, e.g. {"/api/resources/bulk": 20971520}.
    route_body_limits: dict[str, int] = {}

    # Request hardening.
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=JSON_MAX_DEPTH, ge=2)
    # A JSON body must have arrived this long after its headers (408 otherwise).
    body_read_timeout_seconds: float = Field(default=BODY_READ_TIMEOUT_SECONDS, gt=0)
    # A streamed upload that sends nothing for this long is broken off.
    upload_idle_seconds: float = Field(default=60.0, gt=0)
    cors_origins: tuple[str, ...] = ()

    # Networks. The client IP comes from X-Forwarded-For only when the peer is a trusted proxy,
    # and, when the edge secret is set, only on requests that carry it in X-CloudOps-Edge.
    trusted_proxies: tuple[Network, ...] = ()
    edge_secret: SecretStr | None = None
    allow_cidrs: tuple[Network, ...] = ()
    deny_cidrs: tuple[Network, ...] = ()
    admin_allow_cidrs: tuple[Network, ...] = ()

    # Bot defence.
    trap_paths: tuple[str, ...] = DEFAULT_TRAP_PATHS
    honeypot_field: str = "website"
    flag_seconds: int = Field(default=3600, ge=1)
    # Regular expressions, searched case-insensitively in the User-Agent.
    denied_user_agents: tuple[str, ...] = DEFAULT_DENIED_AGENTS
    allowed_user_agents: tuple[str, ...] = ()

    # Load test bounds.
    loadtest_max_requests: int = Field(default=2000, ge=1)
    loadtest_max_concurrency: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _production_secrets(self) -> GatewaySettings:
        if self.environment == "production" and self.jwt_secret is None:
            raise ValueError("CLOUDOPS_GATEWAY_JWT_SECRET is required in production")
        if self.jwt_secret is not None and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("CLOUDOPS_GATEWAY_JWT_SECRET must be at least 32 characters")
        return self


GATEWAY_SETTINGS = web.AppKey("gateway_settings", GatewaySettings)
