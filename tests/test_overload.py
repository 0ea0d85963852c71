"""Graceful overload at the public edge: beyond capacity an answer is a fast 503, never a hang.

nginx, the gateway and the costs service are the real processes (started as in
test_upload_streaming). The bounds are set low (the requests nginx lets in at once,
CLOUDOPS_NGINX_MAX_CONNECTIONS, and how many may wait in line, CLOUDOPS_NGINX_MAX_QUEUED; the
gateway's CLOUDOPS_MAX_IN_FLIGHT) so a few hundred concurrent requests on loopback go past all of
them: some wait their turn in nginx and are served, some wait half a second in vain, some are
refused at once.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from common.testing import ServiceProcess, free_port

from .conftest import ADMIN_KEY, public_path, render_nginx, running_nginx

CLIENTS = 400
NGINX_MAX_CONNECTIONS = 24
NGINX_MAX_QUEUED = 120
GATEWAY_MAX_IN_FLIGHT = 8
FAST_SECONDS = 1.0
PROBLEM = "application/problem+json"
READ = "/api/costs/budgets"


@dataclass
class Answer:
    status: int
    seconds: float
    retry_after: str | None
    content_type: str
    body: dict[str, object] | None


async def ask(session: aiohttp.ClientSession, url: str, start: asyncio.Event) -> Answer:
    await start.wait()
    began = time.monotonic()
    async with session.get(url, headers={"X-API-Key": ADMIN_KEY}) as response:
        raw = await response.read()
        content_type = response.headers.get("Content-Type", "")
        body = await response.json(content_type=None) if PROBLEM in content_type else None
        return Answer(
            response.status,
            time.monotonic() - began,
            response.headers.get("Retry-After"),
            content_type,
            body if raw else None,
        )


async def burst(url: str, clients: int) -> list[Answer | BaseException]:
    """``clients`` requests at once, each on its own connection."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = asyncio.Event()
        tasks = [asyncio.create_task(ask(session, url, start)) for _ in range(clients)]
        await asyncio.sleep(0.05)
        start.set()
        return await asyncio.gather(*tasks, return_exceptions=True)


def assert_fast_problem(answer: Answer) -> None:
    assert answer.status == 503, answer
    assert answer.retry_after == "1", answer
    assert answer.content_type.startswith(PROBLEM), answer
    assert answer.body is not None, answer
    assert answer.body["status"] == 503, answer
    assert answer.seconds < FAST_SECONDS, answer


async def test_beyond_capacity_every_answer_is_served_or_a_fast_503(
    costs_service: ServiceProcess,
    costs_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLOUDOPS_NGINX_MAX_CONNECTIONS", str(NGINX_MAX_CONNECTIONS))
    monkeypatch.setenv("CLOUDOPS_NGINX_MAX_QUEUED", str(NGINX_MAX_QUEUED))
    with public_path(
        costs_service,
        costs_database,
        tmp_path,
        CLOUDOPS_MAX_IN_FLIGHT=str(GATEWAY_MAX_IN_FLIGHT),
        CLOUDOPS_GATEWAY_RATE_LIMIT="1000000",
    ) as path:
        conf = (tmp_path / "nginx" / "nginx.conf").read_text()
        assert f'require("cloudops_edge").init_worker({NGINX_MAX_CONNECTIONS})' in conf
        assert f"limit_conn api_connections {NGINX_MAX_QUEUED};" in conf
        answers = await burst(path.url + READ, CLIENTS)

    errors = [answer for answer in answers if isinstance(answer, BaseException)]
    assert errors == [], f"{len(errors)} connection errors, first: {errors[:1]!r}"
    served = [a for a in answers if isinstance(a, Answer) and a.status == 200]
    shed = [a for a in answers if isinstance(a, Answer) and a.status != 200]
    assert served, "nothing was served: the edge shed everything"
    assert shed, "nothing was shed: the bounds were never reached"
    for answer in shed:
        assert_fast_problem(answer)


async def test_a_gateway_that_is_down_is_a_fast_503_not_a_502_or_504(tmp_path: Path) -> None:
    with socket.socket() as closed:
        # A port that was bound and is free again: nothing listens on it.
        closed.bind(("127.0.0.1", 0))
        gateway_port = closed.getsockname()[1]
    public_port = free_port()
    conf = render_nginx(tmp_path, public_port, gateway_port)
    with running_nginx(conf, public_port):
        answers = await burst(f"http://127.0.0.1:{public_port}{READ}", 5)
    for answer in answers:
        assert isinstance(answer, Answer), answer
        assert_fast_problem(answer)
        assert answer.seconds < 0.5, answer
        assert answer.body is not None
        assert answer.body["type"] == "https://cloudops.dev/problems/overloaded"
