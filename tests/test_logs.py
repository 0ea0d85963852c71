"""Log lines of running services: every kind is one flat JSON object with the standard fields, and
no line holds a credential, even for a malformed request, an exception in a consumer or a
validation error over data that holds one."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest

from common.logging import STANDARD_FIELDS
from common.messaging import ATTEMPT_HEADER, new_event
from common.testing import (
    TEST_AMQP_URL,
    ServiceProcess,
    free_port,
    scratch_database,
    scratch_exchange,
)

from .conftest import running_nginx

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "co_logs_admin_key_0123456789abcdefghijklmnopq"
JWT_SECRET = "logs-test-jwt-secret-0123456789abcdefghijkl"
# Held only in request bytes and in an event's data: never in an exception message.
STOLEN_KEY = "co_stolen_key_NEVER_LOGGED_0123456789abcdefgh"
EVENT_SECRET = "event-secret-NEVER-LOGGED-0123456789"
# Held only in a value a model refuses: a validation error's text would quote it.
VALIDATION_SECRET = "validation-secret-NEVER-LOGGED-0123456789"


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, Any]]:
    """A gateway and a costs service as processes at DEBUG level, on a scratch database."""
    exchange = scratch_exchange()
    gateway_port, costs_port = free_port(), free_port()
    with scratch_database() as database_url:
        shared = {
            "CLOUDOPS_DATABASE_URL": database_url,
            "CLOUDOPS_LOG_LEVEL": "DEBUG",
            "CLOUDOPS_EVENTS_EXCHANGE": exchange,
        }
        gateway = ServiceProcess(
            "gateway",
            {
                **shared,
                "CLOUDOPS_GATEWAY_PORT": str(gateway_port),
                "CLOUDOPS_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
                "CLOUDOPS_GATEWAY_JWT_SECRET": JWT_SECRET,
            },
            gateway_port,
        )
        costs = ServiceProcess(
            "costs", {**shared, "CLOUDOPS_COSTS_PORT": str(costs_port)}, costs_port
        )
        try:
            gateway.start(timeout=90)
            costs.start(timeout=90)
            yield {
                "gateway": gateway,
                "costs": costs,
                "exchange": exchange,
                "database_url": database_url,
            }
        finally:
            gateway.close()
            costs.close()


def get(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def consumer_attached(connection: aio_pika.abc.AbstractConnection, queue: str) -> None:
    async with asyncio.timeout(30):
        while True:
            channel = await connection.channel()
            try:
                declared = await channel.declare_queue(queue, passive=True)
                if declared.declaration_result.consumer_count:
                    return
            except aio_pika.exceptions.ChannelClosed:
                pass  # not declared yet
            finally:
                if not channel.is_closed:
                    await channel.close()
            await asyncio.sleep(0.2)


async def publish_bad_events(exchange_name: str) -> None:
    """A resource event without a resource: once on a first delivery, once on its last attempt."""
    connection = await aio_pika.connect(TEST_AMQP_URL)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await consumer_attached(connection, f"{exchange_name}.costs.inventory")
        for attempt in (1, 5):
            event = new_event(
                "resource.created", source="/tests", data={"note": EVENT_SECRET, "resource": "x"}
            )
            await exchange.publish(
                aio_pika.Message(
                    event.to_json(),
                    headers={"x-request-id": f"log-kinds-{attempt}", ATTEMPT_HEADER: attempt},
                ),
                routing_key="resource.created",
            )
    finally:
        await connection.close()


async def plant_unreadable_outbox_row(database_url: str) -> asyncpg.Connection:
    """An event in costs' outbox whose time is a secret: the relay's model refuses it.

    Returns the connection that wrote it, to take it away again.
    """
    conn = await asyncpg.connect(database_url)
    payload = {"id": "planted", "source": "/tests", "type": "x", "time": VALIDATION_SECRET}
    await conn.execute(
        "INSERT INTO costs.outbox (id, type, payload, headers, created_at)"
        " VALUES (gen_random_uuid(), 'x', $1::jsonb, '{}'::jsonb, clock_timestamp())",
        json.dumps(payload),
    )
    return conn


def lines_of(process: ServiceProcess) -> list[dict[str, Any]]:
    parsed = []
    for line in process.output().splitlines():
        record = json.loads(line)  # every line is JSON: nothing else is written
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


async def wait_for(process: ServiceProcess, message: str, seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while f'"message":"{message}"' not in process.output():
            await asyncio.sleep(0.2)


async def test_every_kind_of_line_is_flat_json_without_credentials(
    services: dict[str, Any],
) -> None:
    gateway: ServiceProcess = services["gateway"]
    costs: ServiceProcess = services["costs"]
    assert get(f"{gateway.url}/api/health", {"X-Request-ID": "log-kinds-request"}) == 200
    assert get(f"{gateway.url}/api/resources", {"X-API-Key": STOLEN_KEY}) == 401
    # A malformed request (a header line without a colon) whose bytes carry a key.
    answer = send_raw(
        gateway.port,
        b"GET /api/resources?api_key=" + STOLEN_KEY.encode() + b" HTTP/1.1\r\n"
        b"Host: x\r\nX-API-Key: " + STOLEN_KEY.encode() + b"\r\nbroken header line\r\n\r\n",
    )
    assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    await publish_bad_events(services["exchange"])
    await wait_for(costs, "event dead-lettered")
    await wait_for(costs, "event handling failed, will retry")
    conn = await plant_unreadable_outbox_row(services["database_url"])
    try:
        await wait_for(costs, "outbox relay failed, starting over")
    finally:
        await conn.execute("DELETE FROM costs.outbox WHERE payload->>'id' = 'planted'")
        await conn.close()

    records = lines_of(gateway) + lines_of(costs)
    for record in records:
        assert list(record)[: len(STANDARD_FIELDS)] == list(STANDARD_FIELDS), record
        assert record["service"] in {"gateway", "costs"}
        assert str(record["time"]).endswith("Z")
    kinds = {
        "request": [r for r in records if r["message"] == "request"],
        "security event": [r for r in records if r["message"] == "security event"],
        "consumer": [r for r in records if r["message"] == "event handling failed, will retry"],
        "error": [r for r in records if r["level"] == "ERROR" and "exception.type" in r],
    }
    assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
    [request] = [r for r in kinds["request"] if r["request_id"] == "log-kinds-request"]
    assert len(request["trace_id"]) == 32
    assert len(request["span_id"]) == 16
    assert {"method", "path", "status", "duration_ms"} <= set(request)
    assert kinds["security event"][0]["security_event"] == "auth_failed"
    consumer = kinds["consumer"][0]
    assert consumer["request_id"] == "log-kinds-1"
    assert len(consumer["trace_id"]) == 32
    assert len(consumer["span_id"]) == 16  # its handling's own span in the event's trace
    assert consumer["event_id"]
    [error] = [r for r in kinds["error"] if r["message"] == "event dead-lettered"]
    assert error["request_id"] == "log-kinds-5"
    assert error["exception.type"] == "ValueError"
    assert "on_resource_event" in error["exception.stacktrace"]
    assert len(error["span_id"]) == 16
    relay = next(r for r in records if r["message"] == "outbox relay failed, starting over")
    assert relay["exception.type"] == "RedactedValidationError"
    assert "time [" in relay["exception.message"]

    output = gateway.output() + costs.output()
    request_lines = [line for line in output.splitlines() if '"message":"request"' in line]
    assert max(len(line.encode()) for line in request_lines) < 400
    for secret in (ADMIN_KEY, JWT_SECRET, STOLEN_KEY, EVENT_SECRET, VALIDATION_SECRET):
        assert secret not in output


def test_compose_nginx_logs_paths_without_their_query(tmp_path: Path) -> None:
    """The compose edge's access log: a key sent in the URL never reaches it."""
    port = free_port()
    conf = (ROOT / "compose" / "nginx.conf").read_text()
    for old, new in [
        ("pid /var/run/nginx.pid;", f"pid {tmp_path}/nginx.pid;\ndaemon off;"),
        ("error_log /dev/stderr warn;", f"error_log {tmp_path}/error.log warn;"),
        ("access_log /dev/stdout cloudops;", f"access_log {tmp_path}/access.log cloudops;"),
        ("server gateway:8100;", f"server 127.0.0.1:{free_port()};"),  # nothing listens
        ("listen 8080 backlog=4096;", f"listen 127.0.0.1:{port};"),
    ]:
        assert conf.count(old) == 1, old
        conf = conf.replace(old, new)
    (tmp_path / "nginx.conf").write_text(conf)
    with running_nginx(tmp_path / "nginx.conf", port):
        status = get(
            f"http://127.0.0.1:{port}/api/resources?limit=5&api_key={STOLEN_KEY}",
            {"X-API-Key": STOLEN_KEY, "X-Request-ID": "edge-log-1"},
        )
    assert status in (502, 503)
    log = (tmp_path / "access.log").read_text()
    assert '"GET /api/resources HTTP/1.1"' in log
    assert STOLEN_KEY not in log
