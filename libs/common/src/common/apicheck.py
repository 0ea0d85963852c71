"""Test-only: every JSON response the test suites receive is checked against the API document.

Loaded as a pytest plugin (``-p common.apicheck`` in the project's pytest options). It wraps
aiohttp's test client, so each response a service's tests get from the app under test is checked
against the operation the document gives for its method and path: the status must be documented,
and a JSON or problem+json body must match the schema. A shape that changes without the document
fails the test that saw it.

Only the app that serves an operation is held to it: the gateway's own operations in the gateway's
tests, each service's in its tests (the gateway's tests put stand-ins behind the proxy). Problem
bodies are checked everywhere, documented operation or not. Non-JSON bodies (CSV, event streams,
the docs page) are not read here, so streams keep streaming.

The document is built from the gateway's route table (``gateway.openapi``) once per test session,
before the first test, and only in pytest: this module adds nothing to processes that are not tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from common.web import SETTINGS

DOCUMENT_URI = "urn:cloudops:openapi"
JSON_TYPES = ("application/json", "application/problem+json")
PROBLEM_REF = "#/components/schemas/Problem"


class ContractViolation(AssertionError):
    """A response that the API document does not describe."""


@cache
def document() -> dict[str, Any]:
    # Imported here: only a test session needs the document.
    from gateway.app import gateway_routes
    from gateway.openapi import build_document
    from gateway.routes import upstream_routes

    built: dict[str, Any] = build_document([*gateway_routes(), *upstream_routes()])
    return built


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(document(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    return registry


@cache
def _paths() -> list[tuple[re.Pattern[str], str]]:
    """Document paths as patterns; fixed segments first, so ``/silences`` beats ``/{id}``."""
    out = []
    for path in document()["paths"]:
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path))
        out.append((re.compile(pattern + "$"), path))
    return sorted(out, key=lambda p: (p[1].count("{"), p[1]))


def operation_for(method: str, path: str) -> dict[str, Any] | None:
    for pattern, template in _paths():
        if pattern.match(path):
            item = document()["paths"][template]
            if method.lower() in item:
                found: dict[str, Any] = item[method.lower()]
                return found
    return None


def _absolute(schema: Any) -> Any:
    """Point the schema's local references at the document."""
    if isinstance(schema, dict):
        return {
            k: (DOCUMENT_URI + v if k == "$ref" and v.startswith("#") else _absolute(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute(v) for v in schema]
    return schema


def check_body(schema: Mapping[str, Any], body: Any, where: str) -> None:
    validator = Draft202012Validator(
        _absolute(schema),
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    error = best_match(validator.iter_errors(body))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "(root)"
        why = error.message if len(error.message) < 500 else error.message[:500] + "..."
        raise ContractViolation(f"{where}: the body breaks the API document at {at}: {why}")


def _response_spec(operation: Mapping[str, Any], status: int) -> dict[str, Any] | None:
    spec = operation["responses"].get(str(status))
    if spec is None:
        return None
    ref = spec.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        spec = document()["components"]["responses"][name]
    found: dict[str, Any] = spec
    return found


def check_response(
    service: str, method: str, path: str, status: int, content_type: str, body: bytes | None
) -> None:
    """Raise :class:`ContractViolation` when the document does not describe this response."""
    where = f"{service}: {method} {path} -> {status}"
    operation = operation_for(method, path)
    ours = operation is not None and operation.get("x-upstream") == service
    if operation is None or not ours:
        if content_type == "application/problem+json" and body is not None:
            check_body({"$ref": PROBLEM_REF}, orjson.loads(body), where)
        return
    spec = _response_spec(operation, status)
    if spec is None:
        raise ContractViolation(f"{where}: status {status} is not documented for the operation")
    content = spec.get("content", {})
    if body is None or content_type not in JSON_TYPES:
        return
    if content_type not in content:
        raise ContractViolation(f"{where}: {content_type} is not documented for this status")
    check_body(content[content_type]["schema"], orjson.loads(body), where)


def _service(client: TestClient[Any, Any]) -> str | None:
    server = client.server
    if not isinstance(server, TestServer):
        return None
    settings = server.app.get(SETTINGS) if server.app is not None else None
    return settings.service_name if settings is not None else None


_original_request = TestClient._request


async def _checked_request(
    self: TestClient[Any, Any], method: str, path: Any, **kwargs: Any
) -> ClientResponse:
    response = await _original_request(self, method, path, **kwargs)
    service = _service(self)
    if service is None or method.upper() == "HEAD":
        return response
    content_type = response.content_type
    body = await response.read() if content_type in JSON_TYPES else None
    if body == b"":
        body = None
    check_response(service, method.upper(), response.url.path, response.status, content_type, body)
    return response


def pytest_configure(config: pytest.Config) -> None:
    TestClient._request = _checked_request  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def _api_document_built() -> None:
    """Build the document and its schema registry before the first test, not inside it.

    Building takes a second or more; inside a test it would land in the middle of whatever that
    test times (a notification's group wait measured from its first request, for example).
    """
    _paths()
    _registry()
