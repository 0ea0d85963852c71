"""The CI/CD workflow: valid for GitHub Actions, and every command it runs exists in the repository.

actionlint cannot be installed offline (its Python wheel downloads the Go binary from GitHub), so
the workflow is validated against SchemaStore's GitHub workflow schema (bundled with
check-jsonschema), and its ``run:`` steps are checked against the Makefile, the files and the
tools they name.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci-cd.yml"
BIN = Path(sys.executable).parent


def workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return document


def run_steps() -> list[tuple[str, str]]:
    """(job, command line) of every shell line in a ``run:`` step."""
    lines = []
    for name, job in workflow()["jobs"].items():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                if line.strip() and not line.strip().startswith("#"):
                    lines.append((name, line.strip()))
    return lines


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][\w-]*):", text, re.M))


def test_the_workflow_matches_the_github_workflow_schema() -> None:
    proc = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         str(WORKFLOW)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_pipeline_tests_audits_and_builds() -> None:
    jobs = workflow()["jobs"]
    commands = {name: " ".join(line for job, line in run_steps() if job == name) for name in jobs}
    assert "make test" in commands["test"]
    assert "pip-audit" in commands["security"]
    assert "uv export --locked" in commands["security"]
    assert "bandit" in commands["security"]
    assert set(jobs["build"]["needs"]) == {"test", "security"}
    [build] = [s for s in jobs["build"]["steps"] if "build-push-action" in s.get("uses", "")]
    assert (ROOT / build["with"]["file"]).is_file()
    # Only main publishes the image, with the job's own token.
    assert "refs/heads/main" in build["with"]["push"]


@pytest.mark.parametrize(("job", "line"), run_steps())
def test_every_command_names_real_targets_files_and_tools(job: str, line: str) -> None:
    words = shlex.split(line)
    if words[0] == "make":
        assert words[1] in make_targets(), f"{job}: no make target {words[1]!r}"
    for word in words:
        if word.startswith(".venv/bin/"):
            assert (BIN / word.removeprefix(".venv/bin/")).exists(), f"{job}: {word} not installed"
    if ".venv/bin/bandit" in words:
        for path in words[words.index("-r") + 1 :]:
            if path.startswith("-"):
                break
            assert (ROOT / path).is_dir(), f"{job}: bandit scans {path}, which does not exist"


def test_the_lock_file_exports_as_the_security_job_does(tmp_path: Path) -> None:
    [export] = [line for _, line in run_steps() if line.startswith("uv export")]
    words = shlex.split(export)
    words[words.index("--output-file") + 1] = str(tmp_path / "requirements.txt")
    subprocess.run(words, cwd=ROOT, check=True, timeout=60, capture_output=True)
    pinned = (tmp_path / "requirements.txt").read_text()
    assert re.search(r"^aiohttp==", pinned, re.M)
