"""SMTP connections: opening one to the first relay that takes us, and a pool that reuses them.

aiosmtplib runs one transaction at a time per connection, so parallel sending means several connections.
The pool caps how many the channel holds across every delivery it runs at once ([email] pool_size), keeps
idle ones for reuse (for at most idle_timeout seconds), and opens new ones through the relays in order:
the primary first, then each fallback relay. A relay that just failed to connect is tried last for
relay_cooldown seconds, so a dead primary costs one connect timeout, not one per message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import aiosmtplib

from broadcaster.domain.text import printable
from channels.transport.net import pinned_address, ssl_context
from config.email import RelaySettings
from config.sections import NetworkSettings

log = logging.getLogger("broadcaster.email")


class RelayError(Exception):
    """No usable connection to a relay. `permanent` when the relay answered and refused us (5xx, a
    certificate that does not verify, no STARTTLS): waiting will not change its mind."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def reply_text(code: int, message: str) -> str:
    """An SMTP reply for logs, the ledger and the suppression file: the code and at most 120 characters of
    the server's text, with any terminal escape sequence in it made visible (printable)."""
    text = " ".join(message.split())
    return f"{code} {printable(text[:120])}".rstrip()


def _relay_error(relay: RelaySettings, exc: aiosmtplib.SMTPException | OSError) -> RelayError:
    where = relay.label
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return RelayError(
            f"{where}: authentication refused ({reply_text(exc.code, exc.message)})", permanent=exc.code >= 500
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return RelayError(f"{where}: refused ({reply_text(exc.code, exc.message)})", permanent=exc.code >= 500)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RelayError(f"{where}: TLS certificate not trusted ({exc.verify_message})", permanent=True)
    if isinstance(exc, TimeoutError):
        return RelayError(f"{where}: timed out", permanent=False)
    if isinstance(exc, OSError):  # refused, reset, unreachable, TLS handshake failures
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc  # aiosmtplib wraps the socket's
        return RelayError(f"{where}: unreachable ({type(cause).__name__}: {cause})", permanent=False)
    # No STARTTLS, no AUTH: the relay and our settings disagree, which waiting will not change.
    return RelayError(f"{where}: {exc.message}", permanent=True)


class Dialer:
    """How to reach the relays: [network] pins and CA, the EHLO name, and timeouts in seconds."""

    def __init__(
        self, network: NetworkSettings, *, helo_name: str, connect_timeout: float, command_timeout: float
    ) -> None:
        self._network = network
        self._helo_name = helo_name
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._tls: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:  # built on first use: loading the system CAs takes a few milliseconds
            self._tls = ssl_context(self._network)
        return self._tls

    async def open(self, relay: RelaySettings) -> aiosmtplib.SMTP:
        """Connect, EHLO, STARTTLS or TLS, EHLO again and AUTH, within connect_timeout. Raises RelayError."""
        sock: socket.socket | None = None
        smtp: aiosmtplib.SMTP | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                pinned = pinned_address(self._network, relay.host, relay.port)
                if pinned is not None:
                    # Connect to the pinned address ourselves; TLS still verifies relay.host.
                    sock = await _connected_socket(*pinned)
                smtp = aiosmtplib.SMTP(
                    hostname=relay.host,
                    port=relay.port if sock is None else None,
                    sock=sock,
                    local_hostname=self._helo_name,
                    timeout=self._command_timeout,
                    use_tls=relay.security == "tls",
                    start_tls=relay.security == "starttls",
                    tls_context=self._tls_context() if relay.security != "none" else None,
                    username=relay.username,
                    password=relay.password.get_secret_value() if relay.password is not None else None,
                )
                sock = None  # the SMTP connection owns it now, and closes it with its transport
                await smtp.connect()
                if smtp.is_ehlo_or_helo_needed:
                    await smtp.ehlo()
                return smtp
        except BaseException as exc:
            # Whatever failed (or cancelled us), nothing half-open may outlive this call.
            if smtp is not None:
                smtp.close()
            if sock is not None:
                sock.close()
            if isinstance(exc, aiosmtplib.SMTPException | OSError):
                raise _relay_error(relay, exc) from None
            raise


async def _connected_socket(ip: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (ip, port))
    except BaseException:
        sock.close()
        raise
    return sock


QUIT_TIMEOUT: Final = 2.0
"""Seconds to wait for the reply to QUIT before simply closing."""


async def close_quietly(smtp: aiosmtplib.SMTP) -> None:
    """QUIT politely when the connection still works, and close it in any case."""
    if smtp.is_connected:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            async with asyncio.timeout(QUIT_TIMEOUT):
                await smtp.quit()
    smtp.close()


@dataclass(slots=True)
class Connection:
    """An open SMTP connection and the relay it goes to. `idle_since` is a time.monotonic() reading."""

    relay: RelaySettings
    smtp: aiosmtplib.SMTP
    idle_since: float = 0.0


class ConnectionPool:
    """At most `size` connections in use or idle at once, shared by every delivery of the channel."""

    def __init__(
        self,
        relays: Sequence[RelaySettings],
        dialer: Dialer,
        *,
        size: int,
        idle_timeout: float,
        relay_cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._relays = list(relays)
        self._dialer = dialer
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Connection] = []
        self._idle_timeout = idle_timeout
        self._cooldown = relay_cooldown
        self._failed_at: dict[int, float] = {}
        self._clock = clock

    async def acquire(self) -> Connection:
        """An idle connection young enough to trust, or a new one. Raises RelayError when every relay
        failed; the message names each relay's reason."""
        await self._slots.acquire()
        try:
            while self._idle:
                connection = self._idle.pop()
                if connection.smtp.is_connected and self._clock() - connection.idle_since < self._idle_timeout:
                    return connection
                await close_quietly(connection.smtp)
            return await self._open()
        except BaseException:
            self._slots.release()
            raise

    async def release(self, connection: Connection, *, reuse: bool) -> None:
        """Hand a connection back: kept for reuse if `reuse` and still connected, else closed."""
        try:
            if reuse and connection.smtp.is_connected:
                connection.idle_since = self._clock()
                self._idle.append(connection)
            else:
                await close_quietly(connection.smtp)
        finally:
            self._slots.release()

    def discard(self, connection: Connection) -> None:
        """Close a broken or interrupted connection at once (no QUIT: its state is unknown)."""
        connection.smtp.close()
        self._slots.release()

    def avoid(self, relay: RelaySettings) -> None:
        """Try `relay` last for a while: it refused what we sent (e.g. our sender address)."""
        self._failed_at[self._relays.index(relay)] = self._clock()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(close_quietly(connection.smtp) for connection in idle))

    def _order(self) -> list[int]:
        now = self._clock()
        cooling = {i for i, failed in self._failed_at.items() if now - failed < self._cooldown}
        healthy = [i for i in range(len(self._relays)) if i not in cooling]
        return healthy + sorted(cooling, key=self._failed_at.__getitem__)

    async def _open(self) -> Connection:
        errors: list[RelayError] = []
        for index in self._order():
            relay = self._relays[index]
            try:
                smtp = await self._dialer.open(relay)
            except RelayError as exc:
                log.warning("email relay %s", exc)
                self._failed_at[index] = self._clock()
                errors.append(exc)
                continue
            self._failed_at.pop(index, None)
            return Connection(relay, smtp)
        raise RelayError("; ".join(str(e) for e in errors), permanent=all(e.permanent for e in errors))
