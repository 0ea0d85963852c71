"""Static security checks, run with the tests: bandit and pip-audit.

- bandit over ``libs``, ``services`` and ``scripts`` reports no high-severity finding. A finding
  that is a false positive is marked where it is, ``# nosec <test id>`` with the reason beside it.
- pip-audit finds no known vulnerability in the locked dependencies (``uv.lock``, exported as
  pinned requirements), except those listed in :data:`ACCEPTED_VULNERABILITIES` with a reason.
  It reads PyPI's per-release vulnerability data, so it needs the network. Every locked package
  must be audited, unless PyPI's per-release API cannot be reached at all (an index mirror that
  serves only ``/simple``): then pip-audit can audit nothing, and only the export is checked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCANNED = ("libs", "services", "scripts")
#: Known vulnerabilities accepted for now: advisory id -> why it does not affect the platform and
#: what lifts it. Empty: none is accepted.
ACCEPTED_VULNERABILITIES: dict[str, str] = {}


def test_bandit_reports_no_high_severity_finding() -> None:
    proc = subprocess.run(
        [str(BIN / "bandit"), "-r", *SCANNED, "-q", "-lll", "-f", "json",
         "-x", "*/node_modules/*,*/.venv/*"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.stdout, proc.stderr
    report = json.loads(proc.stdout)
    assert report["errors"] == []
    high = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in report["results"]
    ]
    assert high == []
    assert report["metrics"]["_totals"]["loc"] > 10_000  # it did scan the code


def test_locked_dependencies_have_no_known_vulnerability(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is needed to export the lock file (make installs it)"
    requirements = tmp_path / "requirements.txt"
    subprocess.run(
        [uv, "export", "--locked", "--no-hashes", "--no-emit-workspace", "--quiet",
         "--format", "requirements-txt", "--output-file", str(requirements)],
        cwd=ROOT, check=True, timeout=60,
    )  # fmt: skip
    pinned = [line for line in requirements.read_text().splitlines() if "==" in line]
    assert len(pinned) > 50
    report_path = tmp_path / "audit.json"
    ignored = [arg for vuln in ACCEPTED_VULNERABILITIES for arg in ("--ignore-vuln", vuln)]
    proc = subprocess.run(
        [str(BIN / "pip-audit"), "--requirement", str(requirements), "--no-deps",
         "--disable-pip", "--progress-spinner", "off", "--format", "json",
         "--output", str(report_path), *ignored],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert report_path.exists(), proc.stderr
    dependencies = json.loads(report_path.read_text())["dependencies"]
    found = [
        f"{d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v['fix_versions']) or '-'})"
        for d in dependencies
        for v in d.get("vulns", [])
    ]
    assert found == [], "known vulnerabilities in uv.lock; upgrade, or accept one with a reason"
    skipped = [d["name"] for d in dependencies if "skip_reason" in d]
    if len(skipped) == len(dependencies) and not release_data_served():
        return  # PyPI's per-release data cannot be had here: nothing could be audited
    assert skipped == [], "pip-audit could not audit these locked packages"
    assert len(dependencies) >= len(pinned) - 5
    assert proc.returncode == 0, proc.stderr


def release_data_served() -> bool:
    """Whether PyPI's per-release JSON (where pip-audit reads vulnerabilities) answers at all.

    Some mirrors and proxies serve the package index but not this API; pip-audit then skips
    every package as "not found", which is no finding either way.
    """
    url = f"https://pypi.org/pypi/pip-audit/{version('pip-audit')}/json"
    try:
        with urllib.request.urlopen(url, timeout=15) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code != 404
