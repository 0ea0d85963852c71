"""Who the client is on the network: its IP (trusted-proxy aware), scheme, and IP allow/deny.

``X-Forwarded-For`` is client-controlled input: it is believed only when the direct peer is a
configured trusted proxy (nginx), and then read right to left, skipping our own proxies, so a
client cannot prepend a forged address. With an edge secret configured
(``CLOUDOPS_GATEWAY_EDGE_SECRET``), the forwarding headers are believed only on requests that
carry it in ``X-CloudOps-Edge`` (which nginx sets on everything it sends the gateway), never
because of where the connection comes from: a local process on the gateway's port cannot pick
its address, and with it its anonymous quota or honeypot flag. The header never goes upstream
(the proxy drops every ``X-CloudOps-*`` a request brought).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

from aiohttp import web

from common.errors import Forbidden
from common.web import Handler
from gateway.routes import route_spec
from gateway.security_log import security_event
from gateway.settings import GATEWAY_SETTINGS, GatewaySettings, Network

Address = IPv4Address | IPv6Address


@dataclass(frozen=True, slots=True)
class Client:
    ip: str
    scheme: str

    @property
    def secure(self) -> bool:
        return self.scheme == "https"


CLIENT = web.RequestKey("client", Client)
EDGE_HEADER = "X-CloudOps-Edge"


def _parse(value: str) -> Address | None:
    try:
        return ip_address(value.strip())
    except ValueError:
        return None


def _within(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def from_edge(request: web.Request, secret: bytes) -> bool:
    """The request carries the edge secret (compared in constant time)."""
    sent = request.headers.get(EDGE_HEADER)
    return sent is not None and hmac.compare_digest(sent.encode(errors="replace"), secret)


def resolve_client(request: web.Request, settings: GatewaySettings) -> Client:
    scheme = request.scheme  # from the socket; cheaper than request.secure, which builds the URL
    edge_secret = settings.edge_secret
    if edge_secret is None and not settings.trusted_proxies and request.remote:
        return Client(request.remote, scheme)  # the socket's own peer address: no parsing
    peer = _parse(request.remote or "") or ip_address("0.0.0.0")  # noqa: S104 - unknown peer
    if edge_secret is not None:
        if not from_edge(request, edge_secret.get_secret_value().encode()):
            return Client(str(peer), scheme)
    elif not _within(peer, settings.trusted_proxies):
        return Client(str(peer), scheme)
    address = peer
    headers = request.headers
    forwarded = headers.get("X-Forwarded-For") or headers.get("X-Real-IP") or ""
    hops = [h for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        parsed = _parse(hop)
        if parsed is None:
            break
        address = parsed
        if not _within(parsed, settings.trusted_proxies):
            break
    proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
    if proto in ("http", "https"):
        scheme = proto
    return Client(str(address), scheme)


def ip_refusal(address: Address, settings: GatewaySettings, *, admin: bool) -> str | None:
    """Why this address may not call (None when it may): deny wins over allow."""
    if _within(address, settings.deny_cidrs):
        return "denied network"
    if settings.allow_cidrs and not _within(address, settings.allow_cidrs):
        return "network not allowed"
    if admin and settings.admin_allow_cidrs and not _within(address, settings.admin_allow_cidrs):
        return "network not allowed for admin routes"
    return None


@web.middleware
async def network_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[GATEWAY_SETTINGS]
    client = resolve_client(request, settings)
    request[CLIENT] = client
    if not (settings.allow_cidrs or settings.deny_cidrs or settings.admin_allow_cidrs):
        return await handler(request)
    spec = route_spec(request)
    reason = ip_refusal(
        ip_address(client.ip), settings, admin=spec is not None and spec.admin_network
    )
    if reason is not None:
        security_event("ip_denied", request, reason=reason)
        raise Forbidden("Requests from your network are not allowed.")
    return await handler(request)
