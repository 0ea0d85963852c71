"""The dashboard against the real platform: the browser suite (Playwright driving Debian's
chromium) and what nginx sends the browser (security headers, caching, compression)."""

from __future__ import annotations

import gzip
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.testing import scratch_database

from .conftest import (
    ADMIN_KEY,
    ADMIN_PASSWORD,
    ROOT,
    Platform,
    load_platformctl,
    request,
    running_platform,
)

DASHBOARD = ROOT / "dashboard"
CHROMIUM = Path("/usr/bin/chromium")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'"
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """``make up`` on its own database; ``up`` returns once /api/health answers through nginx."""
    with (
        scratch_database() as database_url,
        running_platform(
            database_url,
            tmp_path_factory.mktemp("run"),
            # The browser suite reads and writes through the admin key as well as the UI.
            extra_env={"CLOUDOPS_GATEWAY_RATE_LIMIT": "100000"},
        ) as running,
    ):
        status, _, body = request(f"{running.api}/api/health")
        assert status == 200, body
        yield running


def _needs_a_dashboard() -> None:
    if not (DASHBOARD / "package.json").exists():
        pytest.skip("dashboard/package.json does not exist yet: nothing is built to serve")


def test_browser_suite_passes_against_the_platform(
    platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if not (DASHBOARD / "e2e").is_dir():
        pytest.skip("dashboard/e2e does not exist yet: there is no browser suite to run")
    assert CHROMIUM.exists(), "Debian's chromium is needed: `make test` installs it"
    output = tmp_path_factory.mktemp("e2e")
    node = load_platformctl().node_toolchain()
    env = {
        **node.env(),
        "CLOUDOPS_E2E_URL": platform.api,
        "CLOUDOPS_E2E_USERNAME": "admin",
        "CLOUDOPS_E2E_PASSWORD": ADMIN_PASSWORD,
        "CLOUDOPS_E2E_ADMIN_KEY": ADMIN_KEY,
        "CLOUDOPS_E2E_OUTPUT": str(output),
        "CI": "1",
    }
    result = subprocess.run(
        [*node.npm, "run", "e2e"],
        cwd=DASHBOARD,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    report = f"{result.stdout}\n{result.stderr}\n(Playwright's output is in {output})"
    assert result.returncode == 0, report
    assert re.search(r"\b\d+ passed\b", result.stdout), report


def test_index_has_the_csp_and_is_revalidated(platform: Platform) -> None:
    _needs_a_dashboard()
    for path in ("/", "/costs"):  # the page itself and a client-side route (SPA fallback)
        status, headers, body = request(platform.api + path)
        assert status == 200
        assert b"<script" in body
        assert headers["Content-Security-Policy"] == CSP
        assert headers["Cache-Control"] == "no-cache"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_built_scripts_are_immutable_and_compressed(platform: Platform) -> None:
    _needs_a_dashboard()
    _, _, index = request(platform.api + "/")
    scripts = re.findall(rb'src="(/assets/[^"]+\.js)"', index)
    assert scripts, f"no hashed script in the served index.html: {index[:300]!r}"
    status, headers, body = request(
        platform.api + scripts[0].decode(), headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["Content-Encoding"] == "gzip"
    built = DASHBOARD / "dist" / scripts[0].decode().lstrip("/")
    assert gzip.decompress(body) == built.read_bytes()


def test_api_responses_are_not_given_the_dashboard_headers(platform: Platform) -> None:
    """Compression and caching are the dashboard's: API bodies pass through untouched."""
    status, headers, body = request(
        f"{platform.api}/api/resources?limit=100",
        key=ADMIN_KEY,
        headers={"Accept-Encoding": "gzip"},
    )
    assert status == 200
    assert len(body) > 1024
    assert "Content-Encoding" not in headers
    assert headers.get("Content-Security-Policy") != CSP  # the gateway sets its own
    assert "immutable" not in headers.get("Cache-Control", "")
