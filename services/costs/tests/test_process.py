"""``python -m costs`` serves; ``python -m costs import FILE`` imports from the command line."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import asyncpg
import pytest

from common.testing import ServiceProcess, free_port, truncate_schema
from costs.cli import main

from .conftest import DATA, focus_rows


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costs", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_imports_a_gzip_file_and_reports_the_outcome(
    pg_url: str, redis_prefix: str, events_exchange: str, tmp_path: Path
) -> None:
    await truncate_schema(pg_url, "costs")
    path = tmp_path / "bill.csv.gz"
    path.write_bytes(gzip.compress((DATA / "azure_focus_1_1.csv").read_bytes()))
    # The import invalidates the cost cache in Redis: under this test's prefix, not the default.
    env = {
        "CLOUDOPS_DATABASE_URL": pg_url,
        "CLOUDOPS_REDIS_PREFIX": redis_prefix,
        "CLOUDOPS_EVENTS_EXCHANGE": events_exchange,
    }
    done = cli(["import", str(path)], env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rows_accepted"] == len(focus_rows("azure_focus_1_1.csv"))
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM costs.line_items") == 22
    finally:
        await conn.close()


def test_cli_reports_a_bad_file_and_exits_non_zero(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDOPS_DATABASE_URL", pg_url)
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert main(["import", str(path)]) == 2
    assert "empty" in json.loads(capsys.readouterr().err.strip().splitlines()[-1])["detail"]


def test_cli_imports_in_process_and_prints_the_outcome(
    pg_url: str,
    redis_prefix: str,
    events_exchange: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLOUDOPS_DATABASE_URL", pg_url)
    monkeypatch.setenv("CLOUDOPS_REDIS_PREFIX", redis_prefix)
    monkeypatch.setenv("CLOUDOPS_EVENTS_EXCHANGE", events_exchange)
    assert main(["import", str(DATA / "oci_focus_1_0.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["rows_accepted"] == 16


def test_cli_refuses_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["import", str(tmp_path / "nope.csv")])
    assert exit_info.value.code == 2
    assert "is not a file" in capsys.readouterr().err


def test_python_m_costs_serves_the_api(pg_url: str, events_exchange: str) -> None:
    port = free_port()
    env = {
        "CLOUDOPS_DATABASE_URL": pg_url,
        "CLOUDOPS_EVENTS_EXCHANGE": events_exchange,
        "CLOUDOPS_QUEUE_EXPIRES_MS": "60000",
        "CLOUDOPS_COSTS_PORT": str(port),
    }
    service = ServiceProcess("costs", env, port)
    service.start()
    try:
        with urllib.request.urlopen(f"{service.url}/api/costs/budgets", timeout=5) as resp:  # noqa: S310
            assert json.loads(resp.read())["success"] is True
    finally:
        service.close()
