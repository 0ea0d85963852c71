"""Settings from environment variables: shared ``CLOUDOPS_*`` values plus one prefix per service."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def shared(name: str) -> AliasChoices:
    """Alias for a field read from the shared ``CLOUDOPS_<NAME>`` variable, not the prefix.

    Only the prefixed variable: a bare ``DATABASE_URL`` or ``ENVIRONMENT`` belongs to someone else
    (``populate_by_name`` still lets code pass ``database_url=...``).
    """
    return AliasChoices(f"CLOUDOPS_{name.upper()}")


class ServiceSettings(BaseSettings):
    """What every service needs; subclasses set ``env_prefix`` (``CLOUDOPS_<SERVICE>_``)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1, le=64)
    # Connections the kernel may hold for a worker before it accepts them (capped by somaxconn).
    listen_backlog: int = Field(default=2048, ge=1, validation_alias=shared("listen_backlog"))
    # uvloop runs the event loop; ``CLOUDOPS_UVLOOP=false`` falls back to asyncio's own loop.
    uvloop: bool = Field(default=True, validation_alias=shared("uvloop"))
    # Requests one worker process serves at once; beyond it a request gets an immediate 503.
    max_in_flight: int = Field(default=256, ge=1, validation_alias=shared("max_in_flight"))

    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=shared("environment")
    )
    log_level: str = Field(default="INFO", validation_alias=shared("log_level"))
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/cloudops",
        validation_alias=shared("database_url"),
    )
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias=shared("redis_url"))
    redis_prefix: str = Field(default="cloudops:", validation_alias=shared("redis_prefix"))
    amqp_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/", validation_alias=shared("amqp_url")
    )
    events_exchange: str = Field(
        default="cloudops.events", validation_alias=shared("events_exchange")
    )
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    # Unused queues vanish after this many ms; tests set it so the shared broker stays clean.
    queue_expires_ms: int | None = Field(default=None, validation_alias=shared("queue_expires_ms"))

    @model_validator(mode="after")
    def _pool_bounds(self) -> ServiceSettings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("db_pool_min must not exceed db_pool_max")
        return self

    @property
    def db_schema(self) -> str:
        """The PostgreSQL schema this service owns."""
        return self.service_name
