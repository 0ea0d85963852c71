"""HTTP handlers under ``/api/alerts``: parse, call the alert book, render. Nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from redis.exceptions import RedisError

from alerts.alertbook import ALERT_BOOK, Caller
from alerts.domain import AlertIn, AlertQuery, SilenceIn, Text
from alerts.settings import AlertsSettings
from alerts.stream import (
    VIEWER_RENEW_SECONDS,
    AlertFeed,
    Cap,
    StreamViewers,
    Viewer,
    valid_stream_id,
)
from common.caller import caller, path_uuid
from common.errors import (
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    validation_errors,
)
from common.paging import Page
from common.validation import refuse_nul, refuse_unstorable
from common.web import json_response, parse_query, prepare_stream, read_json, read_json_value

ALERTS_SETTINGS = web.AppKey("alerts_settings", AlertsSettings)
ALERT_FEED = web.AppKey("alert_feed", AlertFeed)
CLOSING = web.AppKey("closing", asyncio.Event)


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Text | None = None


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text


class WebhookAlert(AlertIn):
    status: Literal["firing", "resolved"]


class WebhookPayload(BaseModel):
    """Alertmanager's webhook notification, version 4."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    group_key: Annotated[str, StringConstraints(max_length=4096)] = Field(alias="groupKey")
    status: Literal["firing", "resolved"]
    receiver: Annotated[str, StringConstraints(max_length=256)]
    external_url: Annotated[str, StringConstraints(max_length=2048)] = Field(
        default="", alias="externalURL"
    )
    alerts: list[WebhookAlert]


class AttemptQuery(Page):
    receiver: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


def _principal(request: web.Request) -> str:
    # Bounded and printable (common.caller's policy) because it ends up in history rows.
    return caller(request).actor


def _caller(request: web.Request) -> Caller:
    who = caller(request)
    return Caller(actor=who.actor, trace=who.trace, request_id=who.request_id)


def _uuid(request: web.Request, what: str) -> UUID:
    return path_uuid(request, "id", what)


def _query(request: web.Request) -> AlertQuery:
    values: dict[str, Any] = dict(request.query)
    for name in ("severity", "status"):
        values[name] = [v for item in request.query.getall(name, []) for v in item.split(",") if v]
    values["matcher"] = request.query.getall("matcher", [])
    refuse_nul(values)
    try:
        return refuse_unstorable(AlertQuery.model_validate(values))
    except ValidationError as exc:
        raise BadRequest("Invalid query parameters.", errors=validation_errors(exc)) from None


async def list_alerts(request: web.Request) -> web.Response:
    query = _query(request)
    alerts, total = await request.config_dict[ALERT_BOOK].list_page(query)
    return json_response(
        [a.public() for a in alerts],
        meta={"total": total, "limit": query.limit, "offset": query.offset},
    )


async def get_alert(request: web.Request) -> web.Response:
    alert, history = await request.config_dict[ALERT_BOOK].get(_uuid(request, "alert"))
    return json_response(
        {**alert.public(), "history": [h.model_dump(mode="json") for h in history]}
    )


async def _optional_note(request: web.Request) -> str | None:
    if not request.can_read_body:
        return None
    return (await read_json(request, Note)).comment


async def acknowledge(request: web.Request) -> web.Response:
    alert_id = _uuid(request, "alert")
    note = await _optional_note(request)
    alert = await request.config_dict[ALERT_BOOK].acknowledge(alert_id, _caller(request), note)
    return json_response(alert.public())


async def resolve(request: web.Request) -> web.Response:
    alert_id = _uuid(request, "alert")
    note = await _optional_note(request)
    alert = await request.config_dict[ALERT_BOOK].resolve(alert_id, _caller(request), note)
    return json_response(alert.public())


async def comment(request: web.Request) -> web.Response:
    alert_id = _uuid(request, "alert")
    body = await read_json(request, CommentIn)
    alert = await request.config_dict[ALERT_BOOK].comment(alert_id, _caller(request), body.text)
    return json_response(alert.public(), status=201)


def _check_count(request: web.Request, count: int) -> None:
    limit = request.config_dict[ALERTS_SETTINGS].max_alerts_per_request
    if count > limit:
        raise PayloadTooLarge(f"At most {limit} alerts per request.")


async def post_v2_alerts(request: web.Request) -> web.Response:
    """Alertmanager ``POST /api/v2/alerts``: a list of alerts; all valid or nothing stored."""
    raw = await read_json_value(request)
    if not isinstance(raw, list):
        raise BadRequest("The body must be a JSON array of alerts.")
    _check_count(request, len(raw))
    alerts = [AlertIn.model_validate(item) for item in raw]
    changed = await request.config_dict[ALERT_BOOK].ingest_http(
        alerts, source="alertmanager", caller=_caller(request), expire=True
    )
    return json_response([a.public() for a in changed], meta={"received": len(alerts)})


def _webhook_alert(alert: WebhookAlert) -> AlertIn:
    ends_at = alert.ends_at
    if ends_at is not None and ends_at.year <= 1:
        ends_at = None  # Alertmanager sends the zero time for "not ended"
    if alert.status == "resolved" and (ends_at is None or ends_at > datetime.now(UTC)):
        ends_at = datetime.now(UTC)
    if alert.status == "firing" and ends_at is not None and ends_at <= datetime.now(UTC):
        ends_at = None  # still firing, as the sender says; it will send "resolved" later
    return AlertIn(
        labels=alert.labels,
        annotations=alert.annotations,
        startsAt=alert.starts_at,
        endsAt=ends_at,
        generatorURL=alert.generator_url,
    )


async def post_webhook(request: web.Request) -> web.Response:
    """An Alertmanager webhook (version 4) notification; replaying one changes nothing."""
    payload = await read_json(request, WebhookPayload)
    _check_count(request, len(payload.alerts))
    alerts = [_webhook_alert(a) for a in payload.alerts]
    changed = await request.config_dict[ALERT_BOOK].ingest_http(
        alerts, source=f"alertmanager:{payload.receiver}", caller=_caller(request), expire=False
    )
    return json_response(
        [a.public() for a in changed], meta={"received": len(alerts), "changed": len(changed)}
    )


async def list_delivery_attempts(request: web.Request) -> web.Response:
    """Every notification attempt: receiver, group, attempt number, status or error, duration."""
    query = parse_query(request, AttemptQuery)
    attempts, total = await request.config_dict[ALERT_BOOK].delivery_attempts(
        query.receiver, query.limit, query.offset
    )
    return json_response(
        [a.model_dump(mode="json") for a in attempts],
        meta={"total": total, "limit": query.limit, "offset": query.offset},
    )


async def list_silences(request: web.Request) -> web.Response:
    now = datetime.now(UTC)
    silences = await request.config_dict[ALERT_BOOK].list_silences()
    state = request.query.get("state")
    items = [s.public(now) for s in silences]
    if state:
        items = [s for s in items if s["state"] == state]
    return json_response(items, meta={"total": len(items)})


async def create_silence(request: web.Request) -> web.Response:
    body = await read_json(request, SilenceIn)
    silence = await request.config_dict[ALERT_BOOK].create_silence(
        body,
        _principal(request),
        max_unexpired=request.config_dict[ALERTS_SETTINGS].max_silences,
    )
    return json_response(
        silence.public(datetime.now(UTC)),
        status=201,
        headers={"Location": f"/api/alerts/silences/{silence.id}"},
    )


async def get_silence(request: web.Request) -> web.Response:
    silence = await request.config_dict[ALERT_BOOK].get_silence(_uuid(request, "silence"))
    return json_response(silence.public(datetime.now(UTC)))


async def replace_silence(request: web.Request) -> web.Response:
    silence_id = _uuid(request, "silence")
    body = await read_json(request, SilenceIn)
    silence = await request.config_dict[ALERT_BOOK].replace_silence(silence_id, body)
    return json_response(silence.public(datetime.now(UTC)))


async def expire_silence(request: web.Request) -> web.Response:
    silence = await request.config_dict[ALERT_BOOK].expire_silence(_uuid(request, "silence"))
    return json_response(silence.public(datetime.now(UTC)))


#: Seconds a refused viewer is told to wait: a slot frees only when another stream closes.
STREAM_RETRY_AFTER = "10"


def _viewers(request: web.Request, feed: AlertFeed) -> StreamViewers:
    settings = request.config_dict[ALERTS_SETTINGS]
    return StreamViewers(
        feed.redis,
        f"{feed.key}:viewers",
        per_principal=settings.streams_per_principal,
        total=settings.streams_total,
    )


async def _admit(viewers: StreamViewers, principal: str) -> Viewer:
    """A slot for this stream, or a 429: one caller's open streams must not starve the rest."""
    admitted = await viewers.admit(principal)
    if admitted is Cap.PRINCIPAL:
        raise TooManyRequests(
            f"At most {viewers.per_principal} live streams may be open per caller; "
            "close one or list /api/alerts instead.",
            headers={"Retry-After": STREAM_RETRY_AFTER},
        )
    if admitted is Cap.TOTAL:
        raise TooManyRequests(
            "The live feed has as many viewers as it serves; list /api/alerts instead.",
            headers={"Retry-After": STREAM_RETRY_AFTER},
        )
    assert isinstance(admitted, Viewer)
    return admitted


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events of alert changes; ``Last-Event-ID`` resumes after the entry it names.

    Open streams are capped per principal and in total (429 with ``Retry-After`` beyond);
    a stream's slot is freed when its viewer goes away.
    """
    feed = request.config_dict[ALERT_FEED]
    last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if last is not None and not valid_stream_id(last):
        raise BadRequest(
            "Last-Event-ID is not an event id from this stream.",
            errors=[{"field": "Last-Event-ID", "message": "must look like 1700000000000-0"}],
        )
    viewers = _viewers(request, feed)
    try:
        after = last or await feed.last_id()
        viewer = await _admit(viewers, _principal(request))
    except (RedisError, OSError):
        raise ServiceUnavailable(
            "The live feed is unavailable; list /api/alerts instead.", headers={"Retry-After": "5"}
        ) from None
    try:
        return await _serve_stream(request, feed, viewers, viewer, after)
    finally:
        with contextlib.suppress(RedisError, OSError):  # else the slot's lease runs out
            await viewers.release(viewer)


async def _serve_stream(
    request: web.Request, feed: AlertFeed, viewers: StreamViewers, viewer: Viewer, after: str
) -> web.StreamResponse:
    keepalive = request.config_dict[ALERTS_SETTINGS].stream_keepalive_seconds
    closing = request.config_dict[CLOSING]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx must not buffer a live stream
        }
    )
    await prepare_stream(request, response)
    await response.write(b"retry: 2000\n\n")
    written = renewed = time.monotonic()
    # A blocking read at most every second, so a gone client or a shutdown ends the loop quickly.
    while not closing.is_set() and request.transport is not None:
        if request.transport.is_closing():
            break
        try:
            entries = await feed.read_after(after, block_ms=1000)
            for entry in entries:
                frame = f"id: {entry.id}\nevent: {entry.kind}\ndata: ".encode()
                await response.write(frame + entry.data + b"\n\n")
                after = entry.id
                written = time.monotonic()
            if time.monotonic() - written >= keepalive:
                await response.write(b": keepalive\n\n")
                written = time.monotonic()
            if time.monotonic() - renewed >= VIEWER_RENEW_SECONDS:
                await viewers.renew(viewer)
                renewed = time.monotonic()
        except (ConnectionResetError, RedisError):
            break  # the client reconnects with Last-Event-ID and resumes
    return response


def add_routes(app: web.Application) -> None:
    # Fixed paths first: "/api/alerts/{id}" would otherwise swallow them.
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_get("/api/alerts/stream", stream)
    app.router.add_post("/api/alerts/v2/alerts", post_v2_alerts)
    app.router.add_post("/api/alerts/webhook", post_webhook)
    app.router.add_get("/api/alerts/notifications", list_delivery_attempts)
    app.router.add_get("/api/alerts/silences", list_silences)
    app.router.add_post("/api/alerts/silences", create_silence)
    app.router.add_get("/api/alerts/silences/{id}", get_silence)
    app.router.add_put("/api/alerts/silences/{id}", replace_silence)
    app.router.add_delete("/api/alerts/silences/{id}", expire_silence)
    app.router.add_get("/api/alerts/{id}", get_alert)
    app.router.add_post("/api/alerts/{id}/ack", acknowledge)
    app.router.add_post("/api/alerts/{id}/resolve", resolve)
    app.router.add_post("/api/alerts/{id}/comments", comment)
