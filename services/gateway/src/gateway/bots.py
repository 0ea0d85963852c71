"""Bot defence: User-Agent allow/deny patterns and honeypot trap paths.

A trap path answers exactly like any unknown path (so a scanner learns nothing), but the
client is flagged for ``flag_seconds``; the rate limiter then refuses it (403) everywhere.
The User-Agent is client-controlled input: it is only matched, never logged in full.
"""

from __future__ import annotations

import re

from aiohttp import web

from common.errors import Forbidden, NotFound
from common.web import Handler
from gateway.network import CLIENT
from gateway.ratelimit import RATE_LIMITER
from gateway.security_log import security_event
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings

BOT_PATTERNS = web.AppKey("bot_patterns", tuple)  # (denied, allowed), each one pattern


def is_trap(path: str, traps: tuple[str, ...]) -> bool:
    """A trap ending in ``/`` catches everything under it; the others match exactly."""
    return path in traps or any(t.endswith("/") and path.startswith(t) for t in traps)


def _one_pattern(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    # One alternation is searched once per request instead of once per pattern.
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def compile_patterns(settings: GatewaySettings) -> tuple[re.Pattern[str] | None, ...]:
    return _one_pattern(settings.denied_user_agents), _one_pattern(settings.allowed_user_agents)


def agent_refused(
    agent: str, denied: re.Pattern[str] | None, allowed: re.Pattern[str] | None
) -> bool:
    if denied is not None and denied.search(agent):
        return True
    return allowed is not None and not allowed.search(agent)


async def flag_client(request: web.Request, trap: str) -> None:
    settings = request.app[GATEWAY_SETTINGS]
    await request.app[RATE_LIMITER].flag(request[CLIENT].ip, settings.flag_seconds)
    security_event("honeypot_hit", request, trap=trap)


@web.middleware
async def bot_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[GATEWAY_SETTINGS]
    denied, allowed = request.app[BOT_PATTERNS]
    agent = request.headers.get("User-Agent", "")[:512]
    if agent_refused(agent, denied, allowed):
        security_event("user_agent_denied", request)
        raise Forbidden("This client is not allowed.")
    if is_trap(request.path, settings.trap_paths):
        await flag_client(request, "path")
        raise NotFound("Not Found")
    return await handler(request)
