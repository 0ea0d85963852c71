"""Schemathesis against the running platform, through nginx, from the served API document.

Every operation gets a bounded number of generated requests (valid and invalid), with a fixed
seed so a run repeats; the stateful phase follows the document's links (create, then read, change
and delete the created item). A 5xx, an undocumented status or content type, or a body that breaks
the document's schema fails the test, with Schemathesis's report.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ADMIN_KEY, Platform, request

EXAMPLES_PER_OPERATION = 10
SEED = 20261130
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# Not fuzzed: the live stream never ends (its own tests cover it), and the load test spends
# up to 30 s per call by design.
EXCLUDED_PATHS = ("/api/alerts/stream", "/api/performance/loadtest")
ST = Path(sys.executable).parent / "st"


@pytest.fixture
def platform(api_platform: Platform) -> Platform:
    return api_platform


def test_every_operation_survives_schemathesis(platform: Platform, tmp_path: Path) -> None:
    command = [
        str(ST),
        "run",
        f"{platform.api}/api/openapi.json",
        "--header",
        f"X-API-Key: {ADMIN_KEY}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        # The coverage phase walks every schema boundary of every parameter, unbounded by
        # --max-examples: minutes on a shared machine. Fuzzing and the stateful links are bounded.
        "--phases",
        "fuzzing,stateful",
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "all",
        "--no-color",
        *(arg for path in EXCLUDED_PATHS for arg in ("--exclude-path", path)),
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    summary = re.search(r"(\d+) generated, \d+ passed", output)
    assert summary, output[-5000:]
    # The run's figures (shown with pytest -s): operations tested and requests generated.
    print(*re.findall(r"Tested: \d+|\d+ generated, \d+ passed|Scenarios: +\d+", output))


# --- what Schemathesis found, pinned -------------------------------------------------------------

NUL = "a\u0000b"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/api/alerts/silences",
            {
                "matchers": [{"name": "team", "value": NUL}],
                "endsAt": "2999-01-01T00:00:00Z",
                "comment": "maintenance",
            },
        ),
        ("/api/alerts/silences", {"matchers": [{"name": "team", "value": "web"}],
                                  "endsAt": "2999-01-01T00:00:00Z", "comment": NUL}),
        ("/api/costs/budgets", {"name": NUL, "amount": "100"}),
        ("/api/resources/bulk", {"resources": [{"external_id": "i-1", "name": "web",
                                                "provider": "aws", "type": "compute",
                                                "region": "eu", "account": "1",
                                                "tags": {"team": NUL}}]}),
    ],
)  # fmt: skip
def test_a_nul_character_in_a_json_body_is_a_422_not_a_500(
    platform: Platform, path: str, body: dict[str, object]
) -> None:
    """PostgreSQL text and jsonb cannot hold NUL: the insert failed with a 500."""
    status, headers, answer = request(
        platform.api + path, key=ADMIN_KEY, method="POST", body=json.dumps(body).encode()
    )
    assert status == 422, answer
    assert headers["Content-Type"].startswith("application/problem+json")
    assert "NUL" in json.loads(answer)["errors"][0]["message"]


def test_an_overlong_query_is_a_documented_414(platform: Platform) -> None:
    status, headers, body = request(
        f"{platform.api}/api/costs/daily?provider={'x' * 20000}", key=ADMIN_KEY
    )
    assert status == 414, body
    assert headers["Content-Type"].startswith("application/problem+json")
    document = json.loads(request(f"{platform.api}/api/openapi.json")[2])
    assert "414" in document["paths"]["/api/costs/daily"]["get"]["responses"]
