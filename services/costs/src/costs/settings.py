"""Costs service settings (``CLOUDOPS_COSTS_*`` plus the shared ``CLOUDOPS_*``)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.config import ServiceSettings
from common.limits import UPLOAD_MAX_BYTES


class CostsSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLOUDOPS_COSTS_", extra="ignore", populate_by_name=True
    )

    service_name: str = "costs"
    port: int = 8102
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # FOCUS import limits: a physical line or one record larger than this ends the import, so a
    # hostile file (one 1 GB line) is refused with bounded memory. The upload limit is the one
    # nginx and the gateway apply on the public path.
    import_max_line_bytes: int = Field(default=1024 * 1024, ge=1024)
    import_max_upload_bytes: int = Field(default=UPLOAD_MAX_BYTES, ge=1024)
    import_batch_rows: int = Field(default=5000, ge=1)
    import_chunk_bytes: int = Field(default=128 * 1024, ge=1024)
    import_max_stored_rejections: int = Field(default=1000, ge=1)

    forecast_horizon_days: int = Field(default=30, ge=1, le=366)
    forecast_min_history_days: int = Field(default=14, ge=9)
    anomaly_z_threshold: float = Field(default=3.5, gt=0)
    budget_check_seconds: float = Field(default=300.0, gt=0)
    # Cost signals in /metrics: their aggregates run at most this often (and after a write).
    metrics_refresh_seconds: float = Field(default=30.0, gt=0)
    team_tag_key: str = "team"

    # Optimisation thresholds; defaults follow AWS Trusted Advisor (idle: CPU <= 10% over 14 days)
    # and Azure Advisor (right-size when utilisation stays low; snapshots older than 90 days).
    idle_cpu_percent: Decimal = Decimal("10")
    idle_window_days: int = Field(default=14, ge=1)
    idle_min_samples: int = Field(default=4, ge=1)
    rightsize_cpu_percent: Decimal = Decimal("40")
    rightsize_memory_percent: Decimal = Decimal("40")
    stopped_min_days: int = Field(default=7, ge=0)
    unattached_volume_days: int = Field(default=7, ge=0)
    unused_ip_days: int = Field(default=1, ge=0)
    old_snapshot_days: int = Field(default=90, ge=1)
    hours_per_month: Decimal = Decimal("730")
    # Idle also needs network at or below this per sample where samples count it (Trusted
    # Advisor: 5 MB). The billing rules read the last 30 days of line items.
    idle_network_bytes: int = Field(default=5_000_000, ge=0)
    billing_window_days: int = Field(default=30, ge=1, le=366)
    zero_usage_days: int = Field(default=7, ge=1)
    unmanaged_min_monthly_cost: Decimal = Field(default=Decimal("1"), ge=0)
    commitment_min_monthly_savings: Decimal = Field(default=Decimal("1"), ge=0)

    # The platform's own unit prices are common.costtracker.PlatformPrices (CLOUDOPS_PLATFORM_*).

    # Cost-aware cache (costs.cache): an entry lives its miss's compute time x this factor,
    # bounded by the minimum and maximum.
    cache_ttl_per_miss_second: float = Field(default=600.0, gt=0)
    cache_min_ttl_seconds: int = Field(default=30, ge=1)
    cache_max_ttl_seconds: int = Field(default=900, ge=1)
