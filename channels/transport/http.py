"""aiohttp sessions for the HTTP channels (X, webhooks) that honour the [network] pins and CA file.

Imported only by channels that speak HTTP, so the mirror-only CLI never loads aiohttp."""

from __future__ import annotations

import socket
from collections.abc import Mapping

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from channels.transport.net import pinned_address, ssl_context
from config.sections import NetworkSettings


def client_session(
    network: NetworkSettings,
    *,
    limit: int,
    timeout: aiohttp.ClientTimeout,
    headers: Mapping[str, str] | None = None,
) -> aiohttp.ClientSession:
    """One pooled session for a lane: at most `limit` connections, pins and CA applied, no proxy from
    the environment. Create it inside the running event loop; close it in the channel's aclose()."""
    connector = aiohttp.TCPConnector(
        limit=limit,
        limit_per_host=limit,
        ssl=ssl_context(network),
        resolver=PinnedResolver(network, aiohttp.ThreadedResolver()),
    )
    return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers, trust_env=False)


class PinnedResolver(AbstractResolver):
    """Answers pinned names from [network] resolve and asks `fallback` (normal DNS) for the rest."""

    def __init__(self, network: NetworkSettings, fallback: AbstractResolver) -> None:
        self._network = network
        self._fallback = fallback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        pinned = pinned_address(self._network, host, port)
        if pinned is None:
            return await self._fallback.resolve(host, port, family)
        ip, pinned_port = pinned
        return [
            {
                "hostname": host,
                "host": ip,
                "port": pinned_port,
                "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            }
        ]

    async def close(self) -> None:
        await self._fallback.close()
