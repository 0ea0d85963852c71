"""The Python client and the ``cloudops`` command against the running platform."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cloudops_client import AlertEvent, CloudOps, NotFound, Unauthorized, ValidationFailed
from cloudops_client.client import _events

from .conftest import ADMIN_KEY, ROOT, Platform

SAMPLE = ROOT / "services" / "costs" / "tests" / "data" / "aws_focus_1_0.csv"
CLOUDOPS = Path(sys.executable).parent / "cloudops"


@pytest.fixture
def api(api_platform: Platform) -> Any:
    with CloudOps(api_platform.api, api_key=ADMIN_KEY) as client:
        yield client


def focus_file(path: Path, size_at_least: int) -> Path:
    """The sample FOCUS rows repeated (with a padding column the importer ignores)."""
    lines = SAMPLE.read_text().splitlines()
    padding = "p" * 4000
    with path.open("w") as f:
        f.write(lines[0] + ",x_Padding\n")
        i = 0
        while f.tell() < size_at_least:
            f.write(f"{lines[1 + i % (len(lines) - 1)]},{padding}\n")
            i += 1
    return path


def test_pagination_iterates_every_item_page_by_page(api: CloudOps) -> None:
    total = api.call("GET", "/api/resources", params={"limit": 1})["meta"]["total"]
    assert total > 20  # the seeded inventory spans several pages
    ids = [r["id"] for r in api.resources.list(page_size=7)]
    assert len(ids) == total
    assert len(set(ids)) == total


def test_a_created_resource_round_trips(api: CloudOps) -> None:
    created = api.resources.create(
        {"external_id": f"i-{uuid.uuid4().hex}", "name": "client-made", "provider": "aws",
         "type": "compute", "region": "eu-west-1", "account": "1"}
    )  # fmt: skip
    assert api.resources.get(created["id"])["name"] == "client-made"
    assert api.resources.update(created["id"], {"status": "running"})["status"] == "running"
    api.resources.delete(created["id"])
    with pytest.raises(NotFound) as caught:
        api.resources.get(created["id"])
    assert caught.value.status == 404
    assert caught.value.request_id


def test_problems_are_raised_as_typed_errors(api: CloudOps, api_platform: Platform) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        api.resources.create({"external_id": "x", "name": "n", "provider": "mars",
                              "type": "compute", "region": "r", "account": "a"})  # fmt: skip
    assert any(e["field"] == "provider" for e in invalid.value.errors)
    with CloudOps(api_platform.api, api_key="ck_wrong") as stranger, pytest.raises(Unauthorized):
        next(stranger.resources.list())


def test_a_bearer_token_works_like_the_key(api: CloudOps, api_platform: Platform) -> None:
    token = api.token()
    with CloudOps(api_platform.api, token=token) as bearer:
        assert next(bearer.resources.list())["id"]


def test_a_focus_upload_reports_its_progress(api: CloudOps, tmp_path: Path) -> None:
    path = focus_file(tmp_path / "focus.csv", 3 * 1024 * 1024)
    seen: list[tuple[int, int]] = []
    result = api.costs.import_focus(
        path, progress=lambda sent, total: seen.append((sent, total)), chunk_size=256 * 1024
    )
    size = path.stat().st_size
    assert result["status"] == "succeeded"
    assert result["rows_rejected"] == 0
    assert len(seen) >= size // (256 * 1024)
    assert [s for s, _ in seen] == sorted(s for s, _ in seen)
    assert seen[-1] == (size, size)
    assert api.costs.get_import(result["id"])["id"] == result["id"]


def _cli(platform: Platform, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLOUDOPS_URL": platform.api, "CLOUDOPS_API_KEY": ADMIN_KEY}
    return subprocess.run(
        [str(CLOUDOPS), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cloudops_costs_import_shows_progress_and_the_result(
    api_platform: Platform, tmp_path: Path
) -> None:
    path = focus_file(tmp_path / "large.csv", 12 * 1024 * 1024)
    done = _cli(api_platform, "costs", "import", str(path))
    assert done.returncode == 0, done.stderr
    # Redraws start with a carriage return (text mode reads it as a line break).
    bars = [line for line in done.stderr.splitlines() if "MiB" in line]
    assert len(bars) >= 12  # one redraw per MiB sent
    assert [int(b.split("%")[0].split()[-1]) for b in bars] == sorted(
        int(b.split("%")[0].split()[-1]) for b in bars
    )
    assert "100%" in bars[-1]
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    assert result["filename"] == "large.csv"


def test_cloudops_resources_list_prints_every_resource(
    api: CloudOps, api_platform: Platform
) -> None:
    total = api.call("GET", "/api/resources", params={"limit": 1})["meta"]["total"]
    done = _cli(api_platform, "resources", "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "provider", "type", "status", "region", "hourly_cost"]
    assert lines[-1] == f"{total} resources"


def test_cloudops_alerts_tail_prints_a_raised_alert(api: CloudOps, api_platform: Platform) -> None:
    name = f"ClientTail{uuid.uuid4().hex[:8]}"

    def raise_alert() -> None:
        time.sleep(2)  # the stream is open by then; the alert is also what it prints first
        api.call("POST", "/api/alerts/v2/alerts",
                 json=[{"labels": {"alertname": name, "severity": "critical"}}])  # fmt: skip

    sender = threading.Thread(target=raise_alert)
    sender.start()
    done = _cli(api_platform, "alerts", "tail", "--max-events", "1", timeout=60)
    sender.join()
    assert done.returncode == 0, done.stderr
    assert name in done.stdout
    assert "critical" in done.stdout


def test_server_sent_events_are_parsed_as_the_stream_sends_them() -> None:
    lines = iter(["retry: 2000", "", ": keepalive", "", "id: 1-0", "event: alert.raised",
                  'data: {"id": "a"}', "", "id: 2-0", "data: plain", ""])  # fmt: skip
    assert list(_events(lines)) == [
        AlertEvent("1-0", "alert.raised", {"id": "a"}),
        AlertEvent("2-0", "message", "plain"),
    ]
