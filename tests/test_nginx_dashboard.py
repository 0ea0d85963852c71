"""nginx serving the dashboard as ``make up`` renders it: caching, compression, security headers,
and a checkout inside a private (0700) directory, such as a home directory."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.testing import free_port

from .conftest import load_platformctl, request, running_nginx

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'"
)
INDEX = b"<!doctype html><title>CloudOps</title><script src=/assets/index-3f9a1c.js></script>"
SCRIPT = b"export const fleet = " + b"['web', 'db', 'cache'], " * 200 + b";\n"
# The owner of the private checkout when the tests run as root: a user that is neither root
# nor nginx's default worker user.
OWNER = "daemon"


@dataclass
class Served:
    url: str
    checkout: Path
    conf: Path


def _make_checkout(base: Path) -> Path:
    """``base``/home (0700) / cloudops / dashboard / dist, as a clone in a home directory."""
    home = base / "home"
    home.mkdir(mode=0o700)
    home.chmod(0o700)
    checkout = home / "cloudops"
    dist = checkout / "dashboard" / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_bytes(INDEX)
    (dist / "assets" / "index-3f9a1c.js").write_bytes(SCRIPT)
    if os.geteuid() == 0:
        import pwd

        owner = pwd.getpwnam(OWNER)
        for path in [home, *home.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        # Readable by root only: the workers must not have more rights than the owner.
        (dist / "root-only.txt").write_text("not for the workers")
        (dist / "root-only.txt").chmod(0o600)
    return checkout


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    platformctl = load_platformctl()
    # Outside pytest's own (root-only) temporary directory, so that the owner can reach it.
    base = Path(tempfile.mkdtemp(prefix="cloudops-private-", dir="/tmp"))
    try:
        base.chmod(0o755)
        checkout = _make_checkout(base)
        port = free_port()
        conf = platformctl.render_nginx(
            tmp_path, free_port(), port, checkout / "dashboard" / "dist", checkout=checkout
        )
        with running_nginx(conf, port):
            yield Served(f"http://127.0.0.1:{port}", checkout, conf)
    finally:
        shutil.rmtree(base)


def test_the_checkout_really_is_private(served: Served) -> None:
    assert (served.checkout.parent.stat().st_mode & 0o777) == 0o700


@pytest.mark.parametrize("path", ["/", "/index.html", "/resources/some-id", "/costs?window=30d"])
def test_index_and_spa_routes_are_served_with_csp_and_no_cache(served: Served, path: str) -> None:
    status, headers, body = request(served.url + path)
    assert status == 200
    assert body == INDEX
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_hashed_assets_are_immutable_and_compressed(served: Served) -> None:
    status, headers, body = request(
        served.url + "/assets/index-3f9a1c.js", headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "application/javascript"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "no-cache" not in headers["Cache-Control"]
    assert gzip.decompress(body) == SCRIPT
    assert len(body) < len(SCRIPT) / 4


def test_a_missing_asset_is_404_not_the_index(served: Served) -> None:
    status, _, body = request(served.url + "/assets/gone-000000.js")
    assert status == 404
    assert body != INDEX


def test_a_root_master_runs_its_workers_as_the_owner_of_the_checkout(served: Served) -> None:
    if os.geteuid() != 0:
        pytest.skip("not root: nginx's workers run as the caller, no user line is rendered")
    assert f"user {OWNER} {OWNER};" in served.conf.read_text()
    # Exactly the owner's rights: a file only root may read stays closed to the workers.
    assert request(served.url + "/root-only.txt")[0] == 403
