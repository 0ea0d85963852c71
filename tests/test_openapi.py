"""The API document: generated from the route table, valid OpenAPI 3.1, true to the routers, and
its human page rendered by chromium from this machine only."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from alerts.handlers import add_routes as alerts_routes
from common.apicheck import ContractViolation, check_response
from costs.handlers import add_routes as costs_routes
from gateway.app import gateway_routes
from gateway.openapi import build_document, documented
from gateway.routes import RouteSpec, upstream_routes
from resources.handlers import add_routes as resources_routes

from .conftest import ROOT, Platform, load_platformctl, request

TABLE = [*gateway_routes(), *upstream_routes()]
DOCUMENT = build_document(TABLE)
METHODS = {"get", "post", "put", "patch", "delete"}
CHROMIUM = Path("/usr/bin/chromium")


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def _pattern(template: str) -> re.Pattern[str]:
    """An aiohttp template as a regex: ``{name}`` one segment, ``{name:re}`` that regex."""
    out, pos = "", 0
    for m in re.finditer(r"{(\w+)(?::([^}]+))?}", template):
        out += re.escape(template[pos : m.start()]) + f"({m.group(2) or '[^/]+'})"
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]) + "$")


def _row_for(method: str, path: str) -> list[RouteSpec]:
    return [s for s in TABLE if method in s.methods and _pattern(s.template).match(path)]


def test_document_passes_the_openapi_validator() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    validate(DOCUMENT)


def test_document_lists_every_route_of_the_table_and_nothing_else() -> None:
    operations = _operations(DOCUMENT)
    # Every documented operation is served by exactly the row that documents it...
    for spec, operation, path in documented(TABLE):
        assert (operation.method, re.sub(r"{(\w+):[^}]+}", r"{\1}", path)) in operations
        assert operation.method in spec.methods, (spec.template, operation)
        assert _pattern(spec.template).match(path), (spec.template, path)
    # ...and every (row, method) of the table has its operations, so nothing routed is missing.
    for spec in TABLE:
        for method in spec.methods:
            assert any(o.method == method for o in spec.operations), (spec.template, method)
    assert len(operations) == sum(len(s.operations) for s in TABLE)


def _router_operations(add_routes: Any) -> set[tuple[str, str]]:
    app = web.Application()
    add_routes(app)
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }


@pytest.mark.parametrize(
    ("upstream", "add_routes"),
    [("resources", resources_routes), ("costs", costs_routes), ("alerts", alerts_routes)],
)
def test_document_lists_exactly_what_each_service_serves(upstream: str, add_routes: Any) -> None:
    documented_here = {
        (operation.method, path)
        for spec, operation, path in documented(TABLE)
        if spec.upstream == upstream
    }
    assert documented_here == _router_operations(add_routes)


def test_every_operation_states_its_permission_security_problems_and_rate_limit() -> None:
    for spec, operation, path in documented(TABLE):
        item = DOCUMENT["paths"][re.sub(r"{(\w+):[^}]+}", r"{\1}", path)][operation.method.lower()]
        permission = spec.permission.value if spec.permission else None
        assert item["x-permission"] == permission
        if permission:
            assert f"`{permission}`" in item["description"]
            schemes = [set(s) for s in item["security"]]
            assert {"apiKey"} in schemes
            assert {"bearer"} in schemes
            session = {"session", "csrf"} if operation.method != "GET" else {"session"}
            assert session in schemes
        codes = set(item["responses"])
        assert {"400", "401", "403", "503"} <= codes
        if spec.rate_limited:
            assert "429" in codes
            success = item["responses"][str(operation.status)]
            assert {"RateLimit", "RateLimit-Policy"} <= set(success["headers"])
        if "requestBody" in item:
            assert {"413", "415", "422"} <= codes
        for code in codes - {str(operation.status)}:
            problem = DOCUMENT["components"]["responses"][code]
            assert "application/problem+json" in problem["content"]


def test_document_names_every_security_scheme() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["bearer"]["bearerFormat"] == "JWT"
    assert schemes["session"]["in"] == "cookie"
    assert schemes["csrf"]["name"] == "X-CSRF-Token"


# --- the check every service's test responses go through (common.apicheck) ----------------

RESOURCE: dict[str, Any] = {
    "id": "6f1c1f55-0a8e-4a43-9d1c-5b0f1d1d9a10",
    "external_id": "i-1",
    "name": "web-1",
    "provider": "aws",
    "type": "compute",
    "region": "eu-west-1",
    "account": "123",
    "status": "running",
    "hourly_cost": "0.0416",
    "currency": "USD",
    "tags": {},
    "owner": None,
    "team": None,
    "cpu_utilization": None,
    "memory_utilization": None,
    "status_since": None,
    "provisioned_at": None,
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:00:00+00:00",
}
PATH = "/api/resources/6f1c1f55-0a8e-4a43-9d1c-5b0f1d1d9a10"


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_a_response_of_the_documented_shape_passes_the_check() -> None:
    body = _body({"success": True, "data": RESOURCE})
    check_response("resources", "GET", PATH, 200, "application/json", body)


@pytest.mark.parametrize(
    ("status", "content_type", "body", "why"),
    [
        (
            200,
            "application/json",
            {"success": True, "data": {**RESOURCE, "colour": "red"}},
            "colour",
        ),
        (
            200,
            "application/json",
            {"success": True, "data": {**RESOURCE, "hourly_cost": 1}},
            "hourly_cost",
        ),
        (200, "application/json", {"data": RESOURCE}, "success"),
        (202, "application/json", {"success": True, "data": RESOURCE}, "202 is not documented"),
        (404, "application/problem+json", {"status": 404, "title": "Not Found"}, "type"),
    ],
)
def test_a_shape_the_document_does_not_describe_fails_the_check(
    status: int, content_type: str, body: Any, why: str
) -> None:
    with pytest.raises(ContractViolation, match=why):
        check_response("resources", "GET", PATH, status, content_type, _body(body))


def test_problems_are_checked_on_paths_outside_the_document_too() -> None:
    with pytest.raises(ContractViolation):
        check_response("costs", "GET", "/nowhere", 404, "application/problem+json", b"{}")


def test_an_operation_is_held_only_in_the_app_that_serves_it() -> None:
    """The gateway's tests put stand-ins behind the proxy: their bodies are theirs."""
    check_response("gateway", "GET", PATH, 200, "application/json", b'{"anything": 1}')


# --- served through nginx ----------------------------------------------------------------------


@pytest.fixture
def platform(api_platform: Platform) -> Platform:
    return api_platform


def test_document_is_public_through_nginx_and_is_the_generated_one(platform: Platform) -> None:
    status, headers, body = request(f"{platform.api}/api/openapi.json")
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    served = json.loads(body)
    assert _operations(served) == _operations(DOCUMENT)
    validate(served)


RENDER_SCRIPT = r"""
const { chromium } = require('@playwright/test');
(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const requested = [];
  const problems = [];
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    requested.push(url.href);
    if (url.hostname !== '127.0.0.1') return route.abort();
    return route.continue();
  });
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(process.env.DOCS_URL, { waitUntil: 'networkidle' });
  await page.waitForSelector('.opblock', { timeout: 30000 });
  const operations = await page.locator('.opblock').count();
  const title = await page.locator('.info .title').first().innerText();
  console.log(JSON.stringify({ operations, title, requested, problems }));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_docs_page_renders_in_chromium_from_this_machine_only(
    platform: Platform, tmp_path: Path
) -> None:
    assert CHROMIUM.exists(), "Debian's chromium is needed: `make test` installs it"
    status, headers, body = request(f"{platform.api}/api/docs")
    assert status == 200
    assert b"swagger-ui-bundle.js" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    script = ROOT / "dashboard" / "node_modules" / ".cloudops-docs-render.cjs"
    script.write_text(RENDER_SCRIPT)
    try:
        node = load_platformctl().node_toolchain()
        result = subprocess.run(
            [str(node.bin_dir / "node"), str(script)],
            cwd=ROOT / "dashboard",
            env={**node.env(), "DOCS_URL": f"{platform.api}/api/docs"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        script.unlink()
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["operations"] == len(_operations(DOCUMENT)), seen
    assert seen["title"].startswith("CloudOps API")
    assert seen["problems"] == [], seen
    assert all(url.startswith(platform.api) for url in seen["requested"]), seen["requested"]
