"""Only public addresses for endpoints that strangers register.

A webhook URL a customer typed into a subscribe form must not turn the broadcaster into a proxy into its
own network: loopback, private ranges, link-local (169.254.169.254 is the cloud metadata service), shared
carrier-grade NAT space and every other non-global range are refused, and so is an IPv6 address that
carries one of those inside it (IPv4-mapped, NAT64, 6to4, Teredo). A name is resolved and every address
it has is checked; `PublicOnlyResolver` hands aiohttp only the addresses it checked, so the connection
goes where the check looked and a second, different DNS answer (rebinding) never gets a say."""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Final
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")
"""Where every public IPv6 host is; anything else (IPv4-compatible ::a.b.c.d, SIIT ::ffff:0:a.b.c.d, local
NAT64 64:ff9b:1::/48, unique local, link-local) is not a stranger's endpoint. The well-known NAT64 prefix
is judged by the IPv4 address it carries."""
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(OSError):
    """The endpoint is, or resolves to, an address strangers may not make the broadcaster call."""


def address_refusal(text: str) -> str | None:
    """Why `text` (an IP address) may not be called, or None when it is a public unicast address."""
    kind = _non_public_kind(text)
    return None if kind is None else f"{text} is not a public address ({kind})"


def _non_public_kind(text: str) -> str | None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # a zone id ("fe80::1%eth0") is link-local anyway
    except ValueError:
        return "not an IP address"
    for inner in reversed(_embedded(ip)):  # the embedded IPv4 address names the kind best
        if not inner.is_global or inner.is_multicast:
            return _kind(inner)
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST and ip not in _NAT64:
        return "not a global unicast address"
    return None


def _embedded(ip: IPAddress) -> list[IPAddress]:
    """The address and any IPv4 address an IPv6 one carries to the same host."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            found.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            found.append(ip.sixtofour)
        if ip.teredo is not None:
            found.append(ip.teredo[1])
        if ip in _NAT64:
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _kind(ip: IPAddress) -> str:
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local, where cloud metadata services answer"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "a private network"
    return "not globally routable"


def host_of(url: str) -> str:
    """The host part of an http(s) URL, brackets removed; ValueError when the URL has none."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("give an http:// or https:// URL with a host name")
    return parts.hostname


class PublicOnlyResolver(AbstractResolver):
    """Resolves through `inner` and refuses the name unless every address it has is public. aiohttp does
    not ask a resolver about an IP literal: check those with `address_refusal` before the request."""

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            kind = _non_public_kind(answer["host"])
            if kind is not None:
                raise RefusedAddress(f"{host} resolves to {answer['host']}, which is not a public address ({kind})")
        return answers

    async def close(self) -> None:
        await self._inner.close()


_NUMERIC_HOST: Final = re.compile(r"(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+))*\.?", re.IGNORECASE)
"""A host written as a number ("127.1", "2130706433", "0x7f.1"): an address in a form no one should use."""


def host_refusal(host: str) -> str | None:
    """Why `host` may not be called before any name is resolved: an IP literal that is not public (aiohttp
    asks no resolver about a literal), or an address written as a number; None for a name (the resolver
    judges it) or a public literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "a number, not a name or a canonical address" if _NUMERIC_HOST.fullmatch(host) else None
    return address_refusal(host)


async def public_endpoint_refusal(url: str, resolver: AbstractResolver) -> str | None:
    """Why a registered endpoint may not be called (a non-http URL, an address that is not public, a name
    that does not resolve or resolves to any such address), or None when it may."""
    try:
        host = host_of(url)
    except ValueError as exc:
        return str(exc)
    refusal = host_refusal(host)
    if refusal is not None or _is_literal(host):
        return refusal
    port = urlsplit(url).port or (443 if url.startswith("https") else 80)
    try:
        await PublicOnlyResolver(resolver).resolve(host, port, socket.AF_UNSPEC)
    except RefusedAddress as exc:
        return str(exc)
    except OSError as exc:
        return f"{host} does not resolve ({exc.strerror or exc})"
    return None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
