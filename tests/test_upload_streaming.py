"""Billing uploads on the public path (nginx -> gateway -> costs): streamed, cut at one limit.

The processes are the real ones, started as an operator starts them: nginx from the repository's
template, ``python -m gateway`` and ``python -m costs``. The upload is generated while it is sent,
so neither the test nor any hop ever needs the whole file.
"""

from __future__ import annotations

import asyncio
import csv
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from common.limits import API_MAX_BODY_BYTES, UPLOAD_MAX_BYTES, UPLOAD_READ_TIMEOUT_SECONDS
from common.testing import RssSampler, ServiceProcess
from costs.settings import CostsSettings
from gateway.routes import upstream_routes
from gateway.settings import GatewaySettings

from .conftest import ADMIN_KEY, public_path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = "/api/costs/imports"
SAMPLE = ROOT / "services" / "costs" / "tests" / "data" / "aws_focus_1_0.csv"
GIB = 1024**3
RSS_GROWTH_LIMIT_MB = 50


# --- a FOCUS file made while it is sent ------------------------------------------------------


class PaddedFocusFile:
    """The sample FOCUS rows over and over, each with a long ``x_Padding`` the importer ignores.

    ``size`` is known before a byte is made (so it can be sent with a Content-Length), and the
    bytes are produced as they are sent: a few KiB of text plus one shared padding string.
    """

    def __init__(self, size_at_least: int, padding: int = 100_000) -> None:
        with SAMPLE.open(newline="") as f:
            lines = f.read().splitlines()
        self.header = (lines[0] + ",x_Padding\n").encode()
        self.samples = [line.encode() + b"," for line in lines[1:]]
        self.costs = [Decimal(row[0]) for row in csv.reader(lines[1:])]
        self.padding = b"p" * padding + b"\n"
        sample_bytes = sum(map(len, self.samples))
        cycle = sample_bytes + len(self.samples) * len(self.padding)
        self.rows = len(self.samples) * -(-(size_at_least - len(self.header)) // cycle)
        self.size = len(self.header) + self.rows // len(self.samples) * cycle

    @property
    def billed_total(self) -> Decimal:
        return sum(self.costs, Decimal(0)) * (self.rows // len(self.samples))

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.header
        for i in range(self.rows):
            yield self.samples[i % len(self.samples)]
            yield self.padding


async def stored(database_url: str) -> tuple[int, Decimal, list[str]]:
    """Rows in ``line_items``, their billed total and every import's status."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*), coalesce(sum(billed_cost), 0) FROM costs.line_items"
        )
        assert row is not None
        count, total = row
        statuses = [r["status"] for r in await conn.fetch("SELECT status FROM costs.imports")]
    finally:
        await conn.close()
    return count, total, statuses


async def settled(database_url: str, seconds: float = 30) -> tuple[int, Decimal, list[str]]:
    """What is stored once no import is running any more."""
    async with asyncio.timeout(seconds):
        while True:
            count, total, statuses = await stored(database_url)
            if "running" not in statuses:
                return count, total, statuses
            await asyncio.sleep(0.1)


async def truncate_imports(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "TRUNCATE costs.line_items, costs.import_rejections, costs.imports CASCADE"
        )
    finally:
        await conn.close()


HEADERS = {"X-API-Key": ADMIN_KEY, "Content-Type": "text/csv"}


# --- streaming and the cut-off ----------------------------------------------------------------


async def test_a_1_gib_upload_streams_through_nginx_and_the_gateway_in_bounded_memory(
    costs_service: ServiceProcess, costs_database: str, tmp_path: Path
) -> None:
    await truncate_imports(costs_database)
    upload = PaddedFocusFile(GIB)
    with public_path(costs_service, costs_database, tmp_path) as path:
        timeout = aiohttp.ClientTimeout(total=UPLOAD_READ_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            # Warm the gateway's route and upstream pool, so the baseline is a serving process.
            async with session.get(f"{path.url}/api/costs/daily", headers=HEADERS) as warm:
                assert warm.status == 200, await warm.text()
            sampler = RssSampler(path.gateway.process.pid)  # type: ignore[union-attr]
            baseline = sampler.before
            started = time.perf_counter()
            with sampler:
                async with session.post(
                    f"{path.url}{IMPORTS}?filename=padded.csv",
                    data=upload.chunks(),
                    headers={**HEADERS, "Content-Length": str(upload.size)},
                    expect100=True,  # as curl sends a large file
                ) as resp:
                    body = await resp.json()
            seconds = time.perf_counter() - started
    assert resp.status == 201, body
    result = body["data"]
    assert result["rows_accepted"] == upload.rows, result
    assert result["rows_rejected"] == 0, result
    assert upload.size >= GIB
    assert len(sampler.samples) >= seconds / sampler.interval / 2, "RSS was not sampled"
    growth = max(sampler.samples) - baseline
    print(
        f"\n{upload.size / 1024**2:.0f} MiB, {upload.rows} rows in {seconds:.1f} s: gateway RSS "
        f"{baseline:.0f} MiB before, peak {max(sampler.samples):.0f} MiB (+{growth:.1f})"
    )
    assert growth < RSS_GROWTH_LIMIT_MB, f"the gateway grew by {growth:.0f} MiB during the upload"
    count, total, statuses = await stored(costs_database)
    assert (count, total, statuses) == (upload.rows, upload.billed_total, ["succeeded"])


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "chunked"])
async def test_an_upload_over_the_limit_is_cut_off_and_nothing_is_imported(
    costs_service: ServiceProcess, costs_database: str, tmp_path: Path, sized: bool
) -> None:
    limit = 1024**2
    await truncate_imports(costs_database)
    upload = PaddedFocusFile(4 * limit, padding=1000)
    headers = {**HEADERS, "Content-Length": str(upload.size)} if sized else HEADERS
    body_limits = f'{{"{IMPORTS}": {limit}}}'
    with public_path(
        costs_service, costs_database, tmp_path, CLOUDOPS_GATEWAY_ROUTE_BODY_LIMITS=body_limits
    ) as path:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{path.url}{IMPORTS}?filename=too-big.csv", data=upload.chunks(), headers=headers
            ) as resp,
        ):
            problem = await resp.json(content_type=None)
    assert resp.status == 413, problem
    assert resp.content_type == "application/problem+json"
    assert str(limit) in problem["detail"]
    count, _, statuses = await settled(costs_database)
    assert count == 0
    # A declared size is refused before a byte is read; a chunked body reaches the service
    # until the limit and then breaks off, so the service fails that import and keeps nothing.
    assert statuses == ([] if sized else ["failed"])


async def import_statuses(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [r["status"] for r in await conn.fetch("SELECT status FROM costs.imports")]
    finally:
        await conn.close()


async def test_an_abandoned_upload_is_broken_off_and_not_blamed_on_the_service(
    costs_service: ServiceProcess, costs_database: str, tmp_path: Path
) -> None:
    await truncate_imports(costs_database)
    text = SAMPLE.read_bytes()
    body = text + text.split(b"\n", 1)[1] * 5  # a header and ~50 KB of rows, never finished
    head = (
        f"POST {IMPORTS}?filename=abandoned.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-API-Key: {ADMIN_KEY}\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    # One more than the breaker's threshold of consecutive upstream failures.
    attempts = GatewaySettings.model_fields["breaker_failure_threshold"].default + 1
    with public_path(costs_service, costs_database, tmp_path) as path:
        port = int(path.url.rpartition(":")[2])
        for attempt in range(1, attempts + 1):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head + f"{len(body):x}\r\n".encode() + body + b"\r\n")
            await writer.drain()
            try:
                async with asyncio.timeout(10):  # until the service is reading this upload
                    while (await import_statuses(costs_database)).count("running") != 1:
                        await asyncio.sleep(0.02)
            except TimeoutError:
                answer = await asyncio.wait_for(reader.read(500), 5)
                pytest.fail(f"upload {attempt} never reached the service: {answer!r}")
            writer.close()  # the client goes away mid-body
            await writer.wait_closed()
            statuses = (await settled(costs_database))[2]
            assert statuses == ["failed"] * attempt
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{path.url}/api/costs/daily", headers=HEADERS) as resp,
        ):
            # The breaker stayed closed: the client broke those uploads, not the service.
            assert resp.status == 200, await resp.text()
    count, _, _ = await stored(costs_database)
    assert count == 0


# --- one set of limits ----------------------------------------------------------------------

NGINX_SIZE = re.compile(r"^(\d+)([kmg]?)$", re.IGNORECASE)
NGINX_TIME = re.compile(r"^(\d+)(ms|s|m|h)?$")


def nginx_bytes(value: str) -> int:
    match = NGINX_SIZE.match(value)
    assert match, value
    return int(match[1]) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match[2].lower()]


def nginx_seconds(value: str) -> float:
    match = NGINX_TIME.match(value)
    assert match, value
    return int(match[1]) * {None: 1, "s": 1, "ms": 0.001, "m": 60, "h": 3600}[match[2]]


def nginx_directives(conf: str, location: str | None) -> dict[str, str]:
    """Directives of the ``server`` block (``location`` None) or of one exact location block."""
    text = re.sub(r"#[^\n]*", "", conf)
    server = text[text.index("server {") :]
    if location is None:
        block = re.sub(r"location[^{]*\{[^{}]*(\{[^{}]*\}[^{}]*)*\}", "", server)
    else:
        match = re.search(r"location\s+" + re.escape(location) + r"\s*\{([^{}]*)\}", server)
        assert match, f"no location {location}"
        block = match[1]
    found = re.findall(r"^\s*([a-z_]+)\s+([^;{}]+);", block, re.MULTILINE)
    return {name: value.strip() for name, value in found}


def ingress_annotations(name: str) -> dict[str, str]:
    for document in (ROOT / "k8s" / "ingress.yaml").read_text().split("\n---\n"):
        if re.search(rf"^\s+name:\s+{re.escape(name)}\s*$", document, re.MULTILINE):
            found = re.findall(
                r'nginx\.ingress\.kubernetes\.io/([a-z-]+):\s*"?([^"\n]+)"?', document
            )
            return dict(found)
    raise AssertionError(f"no Ingress {name}")


@pytest.mark.parametrize("conf", ["nginx/nginx.conf.template", "compose/nginx.conf"])
def test_nginx_has_the_shared_limits_and_timeouts(conf: str) -> None:
    text = (ROOT / conf).read_text()
    imports = nginx_directives(text, IMPORTS)
    assert nginx_bytes(imports["client_max_body_size"]) == UPLOAD_MAX_BYTES
    assert nginx_seconds(imports["proxy_read_timeout"]) == UPLOAD_READ_TIMEOUT_SECONDS
    assert nginx_seconds(imports["proxy_send_timeout"]) == UPLOAD_READ_TIMEOUT_SECONDS
    # Streamed, never spooled to a temp file: set for the location or for all of http.
    assert "proxy_request_buffering off;" in text
    server = nginx_directives(text, None)
    assert nginx_bytes(server["client_max_body_size"]) == API_MAX_BODY_BYTES


def test_the_ingress_has_the_shared_limits_and_timeouts() -> None:
    imports = ingress_annotations("cloudops-api-imports")
    assert nginx_bytes(imports["proxy-body-size"]) == UPLOAD_MAX_BYTES
    assert int(imports["proxy-read-timeout"]) == UPLOAD_READ_TIMEOUT_SECONDS
    assert int(imports["proxy-send-timeout"]) == UPLOAD_READ_TIMEOUT_SECONDS
    assert imports["proxy-request-buffering"] == "off"
    assert nginx_bytes(ingress_annotations("cloudops-api")["proxy-body-size"]) == (
        API_MAX_BODY_BYTES
    )


def test_the_gateway_and_costs_have_the_shared_limits() -> None:
    (imports,) = [spec for spec in upstream_routes() if spec.template == IMPORTS]
    assert imports.max_body_bytes == UPLOAD_MAX_BYTES
    assert imports.read_timeout_seconds == UPLOAD_READ_TIMEOUT_SECONDS
    assert GatewaySettings.model_fields["max_body_bytes"].default == API_MAX_BODY_BYTES
    assert CostsSettings.model_fields["import_max_upload_bytes"].default == UPLOAD_MAX_BYTES


DEPLOYMENTS = [
    "compose/docker-compose.yml",
    *(f"k8s/{p.name}" for p in sorted((ROOT / "k8s").glob("*.yaml"))),
]


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_deployments_do_not_override_the_shared_limits(deployment: str) -> None:
    text = (ROOT / deployment).read_text()
    for variable in (
        "CLOUDOPS_GATEWAY_ROUTE_BODY_LIMITS",
        "CLOUDOPS_GATEWAY_MAX_BODY_BYTES",
        "CLOUDOPS_COSTS_IMPORT_MAX_UPLOAD_BYTES",
    ):
        assert variable not in text, f"{deployment} sets {variable}; change common/limits.py"
