"""Notifications: grouped, timed and retried outgoing webhooks (generic JSON or Slack).

The dispatcher finds groups that are due (group_wait / group_interval / repeat_interval, tracked in
PostgreSQL so every process agrees) and delivers each in its own task. A delivery retries 5xx,
timeouts and connection errors with doubling gaps, never a 4xx; every attempt is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg
import orjson
from loguru import logger
from prometheus_client import Counter
from redis.exceptions import RedisError

from alerts import storage
from alerts.domain import Alert, Status, match_all
from alerts.settings import AlertsSettings, Receiver
from common.metrics import APPLICATION_ERRORS

SIGNATURE_HEADER = "X-CloudOps-Signature"
NOTIFICATIONS = Counter(
    "alert_notifications",
    "Notification deliveries by receiver and outcome (success, failure).",
    ["receiver", "outcome"],
)
NOTIFICATION_ATTEMPTS = Counter(
    "alert_notification_attempts",
    "Notification HTTP attempts by receiver and outcome (success, retry, rejected, failed).",
    ["receiver", "outcome"],
)
SLACK_COLOURS = {"critical": "#d50200", "warning": "#ffa500", "info": "#439fe0"}


def _common(dicts: Sequence[dict[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first = dicts[0]
    return {k: v for k, v in first.items() if all(d.get(k) == v for d in dicts[1:])}


def webhook_payload(
    receiver: Receiver,
    key: str,
    labels: dict[str, str],
    alerts: Sequence[Alert],
    external_url: str,
) -> dict[str, Any]:
    """The Alertmanager webhook (version 4) document for one group."""
    firing = any(a.status is not Status.RESOLVED for a in alerts)
    return {
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver.name,
        "groupLabels": labels,
        "commonLabels": _common([a.labels for a in alerts]),
        "commonAnnotations": _common([a.annotations for a in alerts]),
        "externalURL": external_url,
        "alerts": [
            {
                "status": "resolved" if a.status is Status.RESOLVED else "firing",
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": a.starts_at.isoformat(),
                "endsAt": (a.resolved_at or a.ends_at or datetime(1, 1, 1)).isoformat(),
                "generatorURL": a.generator_url or f"{external_url}/{a.id}",
                "fingerprint": a.fingerprint,
            }
            for a in alerts
        ],
    }


def slack_payload(document: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message summarising the group."""
    alerts = document["alerts"]
    firing = sum(1 for a in alerts if a["status"] == "firing")
    title = ", ".join(f"{k}={v}" for k, v in document["groupLabels"].items()) or "alerts"
    severity = document["commonLabels"].get("severity", "warning")
    lines = [
        f"[{a['status'].upper()}] {a['annotations'].get('title') or a['labels'].get('alertname')}"
        for a in alerts
    ]
    return {
        "text": f"[{document['status'].upper()}:{firing}] {title}",
        "attachments": [
            {
                "color": "good"
                if document["status"] == "resolved"
                else SLACK_COLOURS.get(severity, "#ffa500"),
                "title": title,
                "title_link": document["externalURL"],
                "text": "\n".join(lines),
            }
        ],
    }


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Notifier:
    """Claims due groups and delivers them; one instance per process."""

    def __init__(
        self, pool: asyncpg.Pool, session: aiohttp.ClientSession, settings: AlertsSettings
    ) -> None:
        self.pool = pool
        self.session = session
        self.settings = settings
        self._deliveries: set[asyncio.Task[bool]] = set()

    async def dispatch_once(self) -> int:
        """Start a delivery for every due group; returns how many were started."""
        started = 0
        for receiver in self.settings.receivers:
            async with self.pool.acquire() as conn, conn.transaction():
                due = await storage.claim_due_groups(
                    conn,
                    receiver.name,
                    group_wait=receiver.group_wait_seconds,
                    group_interval=receiver.group_interval_seconds,
                    repeat_interval=receiver.repeat_interval_seconds,
                )
                for group in due:
                    document = await self._document(conn, receiver, group)
                    firing = document is not None and document["status"] == "firing"
                    await storage.set_group_firing(conn, receiver.name, group["group_key"], firing)
                    if document is None:
                        continue
                    task = asyncio.create_task(self.deliver(receiver, group["group_key"], document))
                    self._deliveries.add(task)
                    task.add_done_callback(self._deliveries.discard)
                    started += 1
        return started

    async def _document(
        self, conn: Any, receiver: Receiver, group: asyncpg.Record
    ) -> dict[str, Any] | None:
        members = await storage.group_members(
            conn, group["group_labels"], group["previous_sent_at"]
        )
        alerts = [
            a
            for a in members
            if match_all(receiver.matchers, a.labels)
            and not a.suppressed
            and (receiver.send_resolved or a.status is not Status.RESOLVED)
        ]
        # Acknowledged alerts are someone's already: they are not repeated.
        if not any(a.status is not Status.ACKNOWLEDGED for a in alerts):
            return None
        alerts = [a for a in alerts if a.status is not Status.ACKNOWLEDGED]
        return webhook_payload(
            receiver, group["group_key"], group["group_labels"], alerts, self.settings.external_url
        )

    async def deliver(self, receiver: Receiver, key: str, document: dict[str, Any]) -> bool:
        """POST the group until it is taken, rejected (4xx) or attempts run out."""
        body = orjson.dumps(slack_payload(document) if receiver.format == "slack" else document)
        headers = {"Content-Type": "application/json", "User-Agent": "cloudops-alerts"}
        if receiver.secret:
            headers[SIGNATURE_HEADER] = sign(receiver.secret, body)
        delivery_id = uuid.uuid4()
        settings = self.settings
        for attempt in range(1, settings.notify_max_attempts + 1):
            status, error, duration_ms = await self._post(str(receiver.url), body, headers)
            retryable = status is None or status >= 500 or status in (408, 429)
            outcome = (
                "success"
                if status is not None and status < 300
                else "retry"
                if retryable and attempt < settings.notify_max_attempts
                else "rejected"
                if not retryable
                else "failed"
            )
            async with self.pool.acquire() as conn:
                await storage.record_attempt(
                    conn,
                    receiver=receiver.name,
                    group_key=key,
                    delivery_id=delivery_id,
                    attempt=attempt,
                    status_code=status,
                    outcome=outcome,
                    error=error,
                    duration_ms=duration_ms,
                )
            NOTIFICATION_ATTEMPTS.labels(receiver.name, outcome).inc()
            if outcome == "success":
                NOTIFICATIONS.labels(receiver.name, "success").inc()
                return True
            if outcome != "retry":
                break
            delay = min(
                settings.notify_backoff_seconds * 2 ** (attempt - 1),
                settings.notify_backoff_max_seconds,
            )
            await asyncio.sleep(delay)
        NOTIFICATIONS.labels(receiver.name, "failure").inc()
        logger.warning("notification not delivered", receiver=receiver.name, group_key=key)
        return False

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None, float]:
        """One attempt: (status or None, error name or None, duration in ms)."""
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self.settings.notify_timeout_seconds)
        try:
            async with self.session.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                await response.read()
                status: int | None = response.status
                error = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, error = None, type(exc).__name__
        return status, error, (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        for task in list(self._deliveries):
            task.cancel()
        for task in list(self._deliveries):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def run_every(seconds: float, name: str, work: Any) -> None:
    """Call ``work()`` every ``seconds`` until cancelled; a failure is logged, never fatal."""
    while True:
        try:
            await work()
        except (OSError, asyncpg.PostgresError, RedisError) as exc:
            APPLICATION_ERRORS.labels("alerts", type(exc).__name__).inc()
            logger.warning("background task failed", task=name, error=type(exc).__name__)
        await asyncio.sleep(seconds)
