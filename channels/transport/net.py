"""Connections that keep working when DNS or the public CA chain is part of the outage.

[network] resolve pins host names to addresses ("host" or "host:port" -> "ip:port") and ca_file adds a
trusted CA. Every channel that opens connections goes through here (the HTTP channels through
channels.transport.http, which builds on it). TLS still verifies the original host name, so a pin changes
where a connection goes, never whom it trusts."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

from config.sections import NetworkSettings


def pinned_address(network: NetworkSettings, host: str, port: int) -> tuple[str, int] | None:
    """The pinned (ip, port) for host:port, or None to resolve it normally."""
    pin = network.resolve.get(f"{host}:{port}") or network.resolve.get(host)
    if pin is None:
        return None
    ip, _, pinned_port = pin.rpartition(":")
    return ip.strip("[]"), int(pinned_port)


def ssl_context(network: NetworkSettings) -> ssl.SSLContext:
    """The system's trusted CAs, plus [network] ca_file when set. Built once per CA file: loading the
    system store takes tens of milliseconds, and a context is safe to share between connections."""
    return _context_for(network.ca_file)


@functools.lru_cache(maxsize=8)
def _context_for(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context
