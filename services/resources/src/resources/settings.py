"""Resources service settings (``CLOUDOPS_RESOURCES_*`` plus the shared ``CLOUDOPS_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.config import ServiceSettings


class ResourcesSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLOUDOPS_RESOURCES_", extra="ignore", populate_by_name=True
    )

    service_name: str = "resources"
    port: int = 8101
    cache_ttl_seconds: int = Field(default=60, ge=1)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    bulk_max_items: int = Field(default=1000, ge=1)
    # Utilisation history, bounded on every write: samples older than the window are refused and
    # aged out; beyond the cap the oldest go (10 000 is 34 days of 5-minute samples).
    utilization_retention_days: int = Field(default=35, ge=1)
    utilization_max_samples_per_resource: int = Field(default=10_000, ge=1)
