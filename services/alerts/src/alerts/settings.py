"""Alerts service settings (``CLOUDOPS_ALERTS_*`` plus the shared ``CLOUDOPS_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from pydantic_settings import SettingsConfigDict

from alerts.domain import LabelName, Matcher
from alerts.rules import DEFAULT_RULES_FILE
from common.config import ServiceSettings


class Receiver(BaseModel):
    """An outgoing webhook and its route: which alerts, grouped how, sent how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-zA-Z0-9_.-]{1,64}$")
    url: HttpUrl
    format: Literal["generic", "slack"] = "generic"
    #: HMAC-SHA256 key; when set, bodies carry ``X-CloudOps-Signature: sha256=<hex>``.
    secret: str | None = None
    matchers: list[Matcher] = Field(default_factory=list)
    group_by: list[LabelName] = Field(default_factory=lambda: ["alertname"])
    group_wait_seconds: float = Field(default=30.0, ge=0)
    group_interval_seconds: float = Field(default=300.0, gt=0)
    repeat_interval_seconds: float = Field(default=4 * 3600.0, gt=0)
    send_resolved: bool = True


class AlertsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLOUDOPS_ALERTS_", extra="ignore", populate_by_name=True
    )

    service_name: str = "alerts"
    port: int = 8103
    rules_file: Path = DEFAULT_RULES_FILE
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_alerts_per_request: int = Field(default=1000, ge=1)
    #: Silences active or pending at once (every ingest checks every active one).
    max_silences: int = Field(default=1000, ge=1)
    #: Alertmanager's resolve_timeout: an HTTP alert without endsAt resolves after this long.
    resolve_timeout_seconds: float = Field(default=300.0, gt=0)
    #: How often expired alerts are resolved, silences re-applied and gauges refreshed.
    maintenance_interval_seconds: float = Field(default=5.0, gt=0)
    #: How often the notification dispatcher looks for groups that are due.
    dispatch_interval_seconds: float = Field(default=1.0, gt=0)
    receivers: list[Receiver] = Field(default_factory=list)
    external_url: str = "http://127.0.0.1:8080/api/alerts"
    notify_timeout_seconds: float = Field(default=10.0, gt=0)
    notify_max_attempts: int = Field(default=5, ge=1, le=20)
    notify_backoff_seconds: float = Field(default=1.0, gt=0)
    notify_backoff_max_seconds: float = Field(default=60.0, gt=0)
    #: Entries kept in the Redis stream behind ``/api/alerts/stream`` (Last-Event-ID resume window).
    stream_max_len: int = Field(default=10_000, ge=100)
    stream_keepalive_seconds: float = Field(default=15.0, gt=0)
    #: Live streams one principal (``X-CloudOps-Principal``) may hold open at once, and all
    #: principals together, over every process; beyond either a new stream is a 429.
    streams_per_principal: int = Field(default=5, ge=1)
    streams_total: int = Field(default=1000, ge=1)
    consumer_prefetch: int = Field(default=256, ge=1)
    #: Events handled per transaction at most (the events waiting, never waiting for more).
    consumer_batch_size: int = Field(default=100, ge=1)
