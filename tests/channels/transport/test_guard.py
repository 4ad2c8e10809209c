"""Endpoints registered by strangers reach only public addresses, checked on every address a name has."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from channels.transport.guard import PublicOnlyResolver, RefusedAddress, address_refusal, public_endpoint_refusal

REFUSED = {
    "127.0.0.1": "loopback",
    "::1": "loopback",
    "10.0.0.1": "a private network",
    "192.168.1.20": "a private network",
    "169.254.169.254": "link-local",
    "fe80::1%eth0": "link-local",
    "100.64.0.1": "not globally routable",  # carrier-grade NAT, shared by the provider's customers
    "0.0.0.0": "unspecified",
    "fc00::1": "a private network",
    "224.0.0.1": "multicast",
    "::ffff:127.0.0.1": "loopback",  # IPv4-mapped
    "64:ff9b::a00:1": "a private network",  # NAT64 of 10.0.0.1
    "2002:a00:1::": "a private network",  # 6to4 of 10.0.0.1
    "::7f00:1": "not a global unicast address",  # IPv4-compatible 127.0.0.1
    "::ffff:0:a00:1": "not a global unicast address",  # SIIT 10.0.0.1
    # Local-use NAT64: Python 3.11.4 and later no longer count it as private (the IANA registry's update),
    # earlier 3.11 releases do; refused either way, and the reason says which.
    "64:ff9b:1::a00:1": "not a global unicast address|a private network",
}


@pytest.mark.parametrize(("address", "kind"), REFUSED.items())
def test_non_public_addresses_are_refused_with_their_kind(address: str, kind: str) -> None:
    refusal = address_refusal(address)
    assert refusal is not None and address in refusal
    assert any(one in refusal for one in kind.split("|")), refusal


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "1.1.1.1", "64:ff9b::5db8:d822"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(address) is None


class Answers(AbstractResolver):
    """A resolver with fixed answers: the name's addresses as a DNS server might give them."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": a, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_a_name_with_any_private_address_is_refused() -> None:
    """One public and one private answer: the connection could go to either, so the name is refused."""
    with pytest.raises(RefusedAddress, match=r"hooks\.example\.com resolves to 10\.1\.2\.3"):
        await PublicOnlyResolver(Answers("93.184.216.34", "10.1.2.3")).resolve("hooks.example.com", 443)


async def test_a_public_name_resolves_to_the_addresses_checked() -> None:
    answers = await PublicOnlyResolver(Answers("93.184.216.34")).resolve("hooks.example.com", 443)
    assert [a["host"] for a in answers] == ["93.184.216.34"]


async def test_a_real_lookup_of_localhost_is_refused() -> None:
    """The system resolver (not a stand-in) answers localhost with a loopback address."""
    refusal = await public_endpoint_refusal("https://localhost:8443/hook", aiohttp.ThreadedResolver())
    assert refusal is not None and "localhost resolves to" in refusal and "loopback" in refusal


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("http://10.0.0.1/hook", "a private network"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]:8443/", "loopback"),
        ("http://127.1/hook", "a number, not a name"),  # 127.0.0.1 as some resolvers read it
        ("http://2130706433/hook", "a number, not a name"),
        ("ftp://example.com/x", "http:// or https://"),
        ("https:///no-host", "http:// or https://"),
    ],
)
async def test_literal_and_malformed_urls_are_refused(url: str, words: str) -> None:
    refusal = await public_endpoint_refusal(url, Answers("93.184.216.34"))
    assert refusal is not None and words in refusal


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    refusal = await public_endpoint_refusal("https://no-such-host.invalid/hook", aiohttp.ThreadedResolver())
    assert refusal is not None and "does not resolve" in refusal
