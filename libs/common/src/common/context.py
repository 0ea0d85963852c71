"""Typed per-request storage keys set by the request-context middleware."""

from __future__ import annotations

from aiohttp import web

from common.tracing import TraceContext

REQUEST_ID = web.RequestKey("request_id", str)
TRACE = web.RequestKey("trace", TraceContext)
