"""The pytest plugin the services' tests rely on: truncation, the TCP proxy, service processes."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
import urllib.request
from pathlib import Path

import asyncpg
import pytest

from common.testing import ServiceProcess, TcpProxy, free_port, truncate_schema


async def test_truncate_schema_empties_tables_but_keeps_the_migration_ledger(
    pool: asyncpg.Pool, pg_url: str, schema: str
) -> None:
    await pool.execute("CREATE TABLE notes (id int)")
    await pool.execute("INSERT INTO notes VALUES (1), (2)")
    await pool.execute("INSERT INTO processed_events (consumer, event_id) VALUES ('c', 'e1')")

    await truncate_schema(pg_url, schema)

    assert await pool.fetchval("SELECT count(*) FROM notes") == 0
    assert await pool.fetchval("SELECT count(*) FROM processed_events") == 0
    assert await pool.fetchval("SELECT count(*) FROM schema_migrations") == 2  # common 0001, 0002


async def test_truncate_schema_of_an_empty_schema_is_a_no_op(pg_url: str) -> None:
    await truncate_schema(pg_url, "no_such_schema")


class EchoServer:
    """A loopback TCP echo server that closes every connection it accepted when stopped."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._echo, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def test_proxy_forwards_until_cut_and_again_after_restore() -> None:
    server = EchoServer()
    await server.start()
    proxy = TcpProxy("127.0.0.1", server.port)
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ping")
        assert await reader.read(4) == b"ping"

        await proxy.cut()
        assert await asyncio.wait_for(reader.read(4), 5) == b""
        await close(writer)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", proxy.port)

        await proxy.restore()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"pong")
        assert await reader.read(4) == b"pong"
        await close(writer)
    finally:
        await proxy.cut()
        await server.stop()


async def test_proxy_to_a_dead_target_closes_the_client_connection() -> None:
    proxy = TcpProxy("127.0.0.1", free_port())
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await asyncio.wait_for(reader.read(1), 5) == b""
        await close(writer)
    finally:
        await proxy.cut()


TINY_SERVICE = """
import os, sys
from common.config import ServiceSettings
from common.serve import serve
from common.web import create_base_app

if os.environ.get("TINY_FAIL"):
    sys.exit("refusing to start")

def create_app(settings):
    return create_base_app(settings)

if __name__ == "__main__":
    settings = ServiceSettings(service_name="tiny", port=int(os.environ["TINY_PORT"]))
    serve("tiny_service:create_app", settings)
"""


@pytest.fixture
def tiny_service(tmp_path: Path) -> Path:
    (tmp_path / "tiny_service.py").write_text(textwrap.dedent(TINY_SERVICE))
    return tmp_path


def test_service_process_starts_serves_and_stops(tiny_service: Path) -> None:
    port = free_port()
    process = ServiceProcess(
        "tiny_service", {"PYTHONPATH": str(tiny_service), "TINY_PORT": str(port)}, port
    )
    process.start()
    try:
        with urllib.request.urlopen(f"{process.url}/health/live", timeout=5) as response:  # noqa: S310
            assert response.status == 200
    finally:
        process.close()

    assert process.process is not None
    assert process.process.returncode is not None
    assert process.url == f"http://127.0.0.1:{port}"


def test_service_process_that_exits_early_reports_its_output(tiny_service: Path) -> None:
    process = ServiceProcess(
        "tiny_service", {"PYTHONPATH": str(tiny_service), "TINY_FAIL": "1"}, free_port()
    )

    with pytest.raises(RuntimeError, match="tiny_service exited early: refusing to start"):
        process.start()
