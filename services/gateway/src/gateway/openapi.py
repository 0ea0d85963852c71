"""The API document (OpenAPI 3.1), built from the route table and the models its rows name, and
the human page that renders it (Swagger UI, served from local files only).

Nothing here is written by hand that the code already knows: paths, methods, permissions and rate
limits come from :mod:`gateway.routes`; parameters, request bodies and response data come from the
pydantic models the rows name. The few answers that are plain dicts are described in
:data:`SHAPES`, next to the code's own names for them, and the tests check every response against
the document, so a shape that drifts fails there.

``/api/openapi.json`` and ``/api/docs`` are public, like ``/api/health``: the document describes
only the public surface (no data, no secrets), and a client generator or a person needs it before
holding a credential. They are rate limited like any other route.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from common.encoding import dumps
from common.errors import NotFound, ServiceUnavailable
from gateway.routes import ROUTES, Operation, RouteSpec
from gateway.settings import GATEWAY_SETTINGS

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
COMPONENT = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UUID_PATHS = frozenset({"id"})
QUERY_MARK = "x-query-model"
ROOT = Path(__file__).resolve().parents[4]
DEFAULT_DOCS_ASSETS = ROOT / "dashboard" / "node_modules" / "swagger-ui-dist"

_OBJECT: dict[str, Any] = {"type": "object"}
_STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_PERMISSIONS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "enum": ["admin", "read", "write"]},
}

#: Answers built as dicts rather than models, by the name the route table uses for them.
SHAPES: dict[str, dict[str, Any]] = {
    "Liveness": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
        "additionalProperties": False,
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
        },
        "additionalProperties": False,
    },
    "Session": {
        "type": "object",
        "required": ["username", "permissions", "csrf_token"],
        "properties": {
            "username": {"type": "string"},
            "permissions": _PERMISSIONS,
            "csrf_token": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "ApiKey": {
        "type": "object",
        "required": ["id", "name", "owner", "permissions", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "owner": {"type": "string"},
            "permissions": _PERMISSIONS,
            "rate_limit": {"type": ["integer", "null"]},
            "rate_window_seconds": {"type": ["integer", "null"]},
            "created_at": _TIME,
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "revoked_at": {"type": ["string", "null"], "format": "date-time"},
        },
        "additionalProperties": False,
    },
    "NewApiKey": {
        "x-extends": {"$ref": COMPONENT.format(model="ApiKey")},
        "required": ["key"],
        "properties": {"key": {"type": "string", "description": "Shown only this once."}},
    },
    "User": {
        "type": "object",
        "required": ["username", "permissions", "created_at", "disabled"],
        "properties": {
            "username": {"type": "string"},
            "permissions": _PERMISSIONS,
            "created_at": _TIME,
            "disabled": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    "SilenceWithState": {
        "x-extends": {"$ref": "model:alerts.domain:Silence"},
        "required": ["state"],
        "properties": {"state": {"type": "string", "enum": ["pending", "active", "expired"]}},
    },
    "BudgetDetail": {
        "x-extends": {"$ref": "model:costs.domain:Budget"},
        "required": ["crossings"],
        "properties": {
            "crossings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kind", "percent", "period", "value", "crossed_at"],
                    "properties": {
                        "kind": {"type": "string", "enum": ["actual", "forecast"]},
                        "percent": {"type": "string"},
                        "period": {"type": "string"},
                        "value": {"type": "string"},
                        "crossed_at": _TIME,
                    },
                },
            }
        },
    },
    "AlertDetail": {
        "x-extends": {"$ref": "model:alerts.domain:Alert"},
        "required": ["history"],
        "properties": {
            "history": {"type": "array", "items": {"$ref": "model:alerts.domain:HistoryEntry"}}
        },
    },
    "SilenceStateQuery": {
        "type": "object",
        "properties": {"state": {"type": "string", "enum": ["pending", "active", "expired"]}},
    },
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details, as every error of this API is answered.",
        "required": ["type", "title", "status", "detail", "success"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "success": {"const": False},
            "request_id": {"type": ["string", "null"]},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
}

#: Problem statuses and when they are answered.
PROBLEMS: dict[int, str] = {
    400: "The request is malformed: a query parameter, path id or body that does not parse.",
    401: "No credentials, or a credential that is wrong, revoked or expired.",
    403: "The credentials lack the permission, the CSRF token is missing, or the client is "
    "refused.",
    404: "Nothing has this id.",
    409: "The change conflicts with the current state.",
    413: "The body is larger than this operation accepts.",
    414: "The path and query are longer than the front door accepts.",
    415: "The body's media type is not one this operation accepts.",
    422: "The body parses but has invalid values; ``errors`` names each field.",
    429: "The caller's rate limit is used up; retry after ``Retry-After`` seconds.",
    503: "A dependency is down or the service is overloaded; retry after ``Retry-After`` seconds.",
}

_RATE_HEADERS: dict[str, Any] = {
    "RateLimit": {
        "description": 'Remaining quota of the policy: ``"policy";r=<remaining>;t=<reset s>``.',
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'The policy: ``"policy";q=<limit>;w=<window s>``.',
        "schema": {"type": "string"},
    },
}
_REQUEST_ID = {"description": "The request's id, to quote when reporting a problem.",
               "schema": {"type": "string"}}  # fmt: skip


class _Models:
    """Every model the operations name, turned into components in one pydantic pass."""

    def __init__(self) -> None:
        self.wanted: dict[tuple[str, str], type[BaseModel]] = {}

    def ref(self, name: str, mode: str) -> dict[str, Any]:
        """A ``$ref`` placeholder for ``module:Class`` in ``mode``; resolved in :meth:`build`."""
        if name.startswith("[") and name.endswith("]"):
            return {"type": "array", "items": self.ref(name[1:-1], mode)}
        if name in ("object", "[object]"):
            return dict(_OBJECT)
        if ":" not in name:
            return {"$ref": COMPONENT.format(model=name)}
        self.wanted[(name, mode)] = _import(name)
        return {"$ref": f"model:{mode}:{name}"}

    def build(self) -> tuple[dict[tuple[str, str], str], dict[str, Any]]:
        keys = sorted(self.wanted)
        mapping, top = models_json_schema(
            [(self.wanted[k], k[1]) for k in keys],  # type: ignore[misc]
            ref_template=COMPONENT,
        )
        refs = {k: mapping[(self.wanted[k], k[1])]["$ref"] for k in keys}  # type: ignore[index]
        return refs, top.get("$defs", {})

    def shapes(self, value: Any) -> Any:
        """:data:`SHAPES` with their ``model:`` references registered (serialization mode)."""
        if isinstance(value, dict):
            ref = value.get("$ref")
            if isinstance(ref, str) and ref.startswith("model:"):
                return self.ref(ref.removeprefix("model:"), "serialization")
            return {k: self.shapes(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.shapes(v) for v in value]
        return value


def _import(name: str) -> type[BaseModel]:
    module, _, attr = name.partition(":")
    model = getattr(importlib.import_module(module), attr)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{name} is not a pydantic model")
    return model


def _resolve(value: Any, refs: Mapping[tuple[str, str], str]) -> Any:
    """Replace ``model:`` placeholders by the component references pydantic chose."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("model:"):
            _, mode, name = ref.split(":", 2)
            value = {**value, "$ref": refs[(name, mode)]}
        return {k: _resolve(v, refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, refs) for v in value]
    return value


def _path_parameters(path: str) -> list[dict[str, Any]]:
    out = []
    for name in re.findall(r"{([^}:]+)}", path):
        schema = {"type": "string", "format": "uuid"} if name in UUID_PATHS else {"type": "string"}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def _component(defs: Mapping[str, Any], ref: str) -> Any:
    return defs[ref.rsplit("/", 1)[-1]]


def _query_parameters(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One parameter per field of the query model; structured values travel as text."""
    required = set(schema.get("required", []))
    params = []
    for field, prop in schema.get("properties", {}).items():
        params.append(
            {
                "name": field,
                "in": "query",
                "required": field in required,
                "schema": _as_query_value(prop, defs),
                **({"style": "form", "explode": True} if _is_array(prop) else {}),
            }
        )
    return params


def _expand_queries(
    paths: dict[str, dict[str, Any]], refs: Mapping[tuple[str, str], str], defs: Mapping[str, Any]
) -> None:
    """Turn each operation's query model into its parameters (after pydantic named the types)."""
    for operation in (o for item in paths.values() for o in item.values()):
        name = operation.pop(QUERY_MARK, None)
        if name is None:
            continue
        schema = SHAPES[name] if ":" not in name else _component(defs, refs[(name, "validation")])
        operation["parameters"] += _query_parameters(schema, defs)


def _is_array(prop: Mapping[str, Any]) -> bool:
    return prop.get("type") == "array"


def _as_query_value(prop: dict[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Objects (a matcher) are sent as their text form, so the parameter is a string."""
    prop = {k: v for k, v in prop.items() if k != "title"}
    if _is_array(prop):
        return {**prop, "items": _as_query_value(prop.get("items", {}), defs)}
    ref = prop.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1], {})
        if target.get("type") == "object":
            return {"type": "string"}
    if "anyOf" in prop:
        return {**prop, "anyOf": [_as_query_value(p, defs) for p in prop["anyOf"]]}
    return prop


def _envelope(data: dict[str, Any] | None, paged: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"type": "object"}
    if paged:
        meta = {
            "type": "object",
            "required": ["total", "limit", "offset"],
            "properties": {
                "total": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                "offset": {"type": "integer", "minimum": 0},
            },
        }
    return {
        "type": "object",
        "required": ["success", "data", *(["meta"] if paged else [])],
        "properties": {"success": {"const": True}, "data": data or {}, "meta": meta},
        "additionalProperties": False,
    }


def _errors(spec: RouteSpec, operation: Operation, path: str) -> list[int]:
    codes = {400, 401, 403, 414, 503, *operation.errors}
    if spec.rate_limited:
        codes.add(429)
    if "{" in path:
        codes.add(404)
    if operation.body is not None:
        codes.update({413, 415, 422})
    return sorted(codes)


def _security(spec: RouteSpec, method: str) -> list[dict[str, list[str]]]:
    if spec.permission is None:
        return []
    session: dict[str, list[str]] = {"session": []}
    if method in UNSAFE:
        session["csrf"] = []
    return [{"apiKey": []}, {"bearer": []}, session]


def _request_body(spec: RouteSpec, operation: Operation, models: _Models) -> dict[str, Any]:
    if operation.body == "upload":
        content = {t: {"schema": {"type": "string", "format": "binary"}} for t in spec.body_types}
        return {"required": True, "content": content}
    assert operation.body is not None
    schema = models.ref(operation.body, "validation")
    return {
        "required": operation.body_required,
        "content": {t: {"schema": schema} for t in spec.body_types},
    }


def _operation(spec: RouteSpec, operation: Operation, path: str, models: _Models) -> dict[str, Any]:
    method = operation.method
    permission = spec.permission.value if spec.permission is not None else None
    needs = f"Needs the `{permission}` permission." if permission else "Public."
    headers = {"X-Request-ID": _REQUEST_ID, **(_RATE_HEADERS if spec.rate_limited else {})}
    success: dict[str, Any] = {"description": HTTPStatus(operation.status).phrase,
                               "headers": headers}  # fmt: skip
    if operation.media is not None:
        raw = _OBJECT if operation.media == "application/json" else {"type": "string"}
        success["content"] = {operation.media: {"schema": raw}}
    elif operation.data is not None:
        data = models.ref(operation.data, "serialization")
        success["content"] = {"application/json": {"schema": _envelope(data, operation.paged)}}
    responses: dict[str, Any] = {str(operation.status): success}
    for code in _errors(spec, operation, path):
        responses[str(code)] = {"$ref": f"#/components/responses/{code}"}
    for code in operation.also:
        problem = {"schema": {"$ref": COMPONENT.format(model="Problem")}}
        responses[str(code)] = {
            "description": PROBLEMS.get(code, HTTPStatus(code).phrase),
            "content": {**success.get("content", {}), PROBLEM: problem},
        }
    parameters = _path_parameters(path)
    query: dict[str, str] = {}
    if operation.query is not None:
        query[QUERY_MARK] = operation.query
        if ":" in operation.query:
            models.ref(operation.query, "validation")
    body: dict[str, Any] = {}
    if operation.body is not None:
        body["requestBody"] = _request_body(spec, operation, models)
    return {
        "operationId": _operation_id(method, path),
        "summary": operation.summary,
        "description": needs,
        "tags": [path.split("/")[2]],
        "x-permission": permission,
        "x-upstream": spec.upstream or "gateway",
        "security": _security(spec, method),
        "parameters": parameters,
        **body,
        "responses": responses,
        **query,
    }


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path.removeprefix("/api/").replace("{", "by_")).strip("_")
    return f"{method.lower()}_{words}"


def _components(refs_schemas: dict[str, Any], settings_cookie: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code, why in PROBLEMS.items():
        headers: dict[str, Any] = {"X-Request-ID": _REQUEST_ID}
        if code == 401:
            headers["WWW-Authenticate"] = {"schema": {"type": "string"}}
        if code in (429, 503):
            headers["Retry-After"] = {"schema": {"type": "integer", "minimum": 0}}
        if code == 429:
            headers.update(_RATE_HEADERS)
        responses[str(code)] = {
            "description": why,
            "headers": headers,
            "content": {PROBLEM: {"schema": {"$ref": COMPONENT.format(model="Problem")}}},
        }
    return {
        "schemas": refs_schemas,
        "responses": responses,
        "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A short-lived token from POST /api/auth/token.",
            },
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": settings_cookie,
                "description": "The dashboard's session, from POST /api/auth/login.",
            },
            "csrf": {
                "type": "apiKey",
                "in": "header",
                "name": "X-CSRF-Token",
                "description": "With the session cookie, changes also carry the session's token.",
            },
        },
    }


def documented(specs: Iterable[RouteSpec]) -> list[tuple[RouteSpec, Operation, str]]:
    """Every (row, operation, concrete path) of the table, in table order."""
    return [(s, o, o.path or s.template) for s in specs for o in s.operations]


def build_document(
    specs: Sequence[RouteSpec], *, session_cookie: str = "cloudops_session"
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``specs`` (the route table)."""
    models = _Models()
    paths: dict[str, dict[str, Any]] = {}
    for spec, operation, path in documented(specs):
        paths.setdefault(_openapi_path(path), {})[operation.method.lower()] = _operation(
            spec, operation, path, models
        )
    shapes = models.shapes(SHAPES)
    refs, defs = models.build()
    _expand_queries(paths, refs, defs)
    _link_created_items(paths)
    clash = set(defs) & set(shapes)
    if clash:
        raise ValueError(f"shapes named like models: {sorted(clash)}")
    schemas = {**defs, **shapes}
    document = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "CloudOps API",
            "version": API_VERSION,
            "description": (
                "Cloud inventory, FinOps costs and alerts behind one API. Successful answers "
                "are `{success, data, meta}`; errors are RFC 9457 problem+json. Every operation "
                "names the permission it needs in `x-permission`."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": _components(schemas, session_cookie),
    }
    resolved: dict[str, Any] = _resolve(document, refs)
    _extend(resolved["components"]["schemas"])
    return resolved


def _extend(schemas: dict[str, Any]) -> None:
    """A shape that ``x-extends`` a schema is that schema plus its own fields.

    Written out rather than as ``allOf``: a closed base (``additionalProperties: false``) would
    reject the added fields.
    """
    for name, shape in list(schemas.items()):
        base_ref = shape.pop("x-extends", {}).get("$ref")
        if base_ref is None:
            continue
        base = schemas[base_ref.rsplit("/", 1)[-1]]
        schemas[name] = {
            **{k: v for k, v in base.items() if k != "title"},
            "properties": {**base.get("properties", {}), **shape.get("properties", {})},
            "required": [*base.get("required", []), *shape.get("required", [])],
            "type": "object",
        }


def _link_created_items(paths: dict[str, dict[str, Any]]) -> None:
    """Links from a create (``POST P`` -> 201) to what can be done with ``P/{id}`` next.

    Clients and stateful fuzzers follow them: create, then read, change and delete that item.
    """
    for path, item in paths.items():
        created = item.get("post", {}).get("responses", {}).get("201")
        follow = paths.get(path + "/{id}")
        if created is None or follow is None or "content" not in created:
            continue
        created["links"] = {
            operation["operationId"]: {
                "operationId": operation["operationId"],
                "parameters": {"path.id": "$response.body#/data/id"},
            }
            for operation in follow.values()
        }


def _openapi_path(path: str) -> str:
    return re.sub(r"{([^}:]+):[^}]+}", r"{\1}", path)


class ApiDocument:
    """The served document, built on first use: it imports the models it describes, which
    routing never needs."""

    def __init__(self) -> None:
        self.body: bytes | None = None

    def get(self, app: web.Application) -> bytes:
        if self.body is None:
            specs = list(dict.fromkeys(app[ROUTES].values()))
            cookie = app[GATEWAY_SETTINGS].session_cookie
            self.body = dumps(build_document(specs, session_cookie=cookie))
        return self.body


API_DOCUMENT = web.AppKey("api_document", ApiDocument)


def setup_api_document(app: web.Application) -> None:
    """The document's cache, and the docs page's own headers (after the API's, which it
    replaces)."""
    app[API_DOCUMENT] = ApiDocument()
    app.on_response_prepare.append(docs_headers)


async def document_handler(request: web.Request) -> web.Response:
    """``GET /api/openapi.json``."""
    body = request.app[API_DOCUMENT].get(request.app)
    return web.Response(body=body, content_type="application/json")


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>CloudOps API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/cloudops-docs.js"></script>
</body>
</html>
"""
# validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
DOCS_SCRIPT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    withCredentials: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
# Swagger UI sets style attributes, so styles may be inline; scripts come only from here.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
DOCS_PATHS = ("/api/docs",)


async def docs_handler(request: web.Request) -> web.Response:
    """``GET /api/docs``: the API reference page."""
    return web.Response(text=DOCS_PAGE, content_type="text/html")


def docs_assets(request: web.Request) -> Path:
    return request.app[GATEWAY_SETTINGS].docs_assets or DEFAULT_DOCS_ASSETS


async def asset_handler(request: web.Request) -> web.StreamResponse:
    """One of the page's files: the fixed list only, never a path taken from the request."""
    name = request.match_info["asset"]
    if name == "cloudops-docs.js":
        return web.Response(text=DOCS_SCRIPT, content_type="text/javascript")
    if name not in ASSET_TYPES:
        raise NotFound("The API reference has no such file.")
    path = docs_assets(request) / name
    if not path.is_file():
        raise ServiceUnavailable(
            "The API reference page is not installed (npm package swagger-ui-dist); "
            "/api/openapi.json is.",
            headers={"Retry-After": "3600"},
        )
    return web.FileResponse(path, headers={"Content-Type": ASSET_TYPES[name]})


async def docs_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``, after the API's own headers: the page may run Swagger UI."""
    if request.path.startswith(DOCS_PATHS) and response.status < 400:
        response.headers["Content-Security-Policy"] = DOCS_CSP
        response.headers["Cache-Control"] = "no-cache"
