"""Which client a request comes from: the connection's address, or, when that is a trusted proxy
([service] trusted_proxies), the nearest address in X-Forwarded-For that is not one; and what the login
limits count it as."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

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


IPV6_CLIENT_PREFIX: Final = 64
"""An IPv6 client is limited as its /64: the block one host or one customer line is usually given, from which
it can take a new address for every try."""


def limit_key(address: str) -> str:
    """What the login limits count `address` as: itself for IPv4, its /64 for IPv6 (an IPv4-mapped IPv6
    address as the IPv4 one), the text as it is when it is not an address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip), IPV6_CLIENT_PREFIX), strict=False))  # int: no zone id
    return str(ip)


def _trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
