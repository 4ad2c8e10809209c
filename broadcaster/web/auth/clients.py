"""Which client a request comes from: the connection's address, or, when that is a trusted proxy
([service] trusted_proxies), the nearest address in X-Forwarded-For that is not one."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: web.Request, trusted: Sequence[IPNetwork]) -> str:
    peer = request.remote or ""
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    for hop in reversed(forwarded):  # the right-most hops were added by our own proxies
        if not _trusted(hop, trusted):
            return hop
    return forwarded[0] if forwarded else peer


def _trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
