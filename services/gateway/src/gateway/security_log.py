"""Structured security events: one JSON log line per auth failure, rate-limit hit, honeypot hit
or IP denial, with request id (from the log context) and client IP, never with a credential."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from loguru import logger
from prometheus_client import Counter

SECURITY_EVENTS = Counter(
    "gateway_security_events_total", "Security events seen by the gateway.", ["event"]
)


def security_event(event: str, request: web.Request, **fields: Any) -> None:
    """Log ``event``; ``fields`` must describe the event, never carry a credential value."""
    from gateway.network import CLIENT  # the network module itself logs through here

    client = request.get(CLIENT)
    SECURITY_EVENTS.labels(event).inc()
    logger.warning(
        "security event",
        security_event=event,
        client_ip=client.ip if client else request.remote,
        method=request.method,
        path=request.path,
        **fields,
    )
