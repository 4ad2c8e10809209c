"""A real aiosmtpd server for the tests, in this process (its own thread and loop) on a free port, that
records what it accepted and misbehaves on request: chosen replies to RCPT or DATA, dropped connections,
slow answers. Variants with STARTTLS (certificate from a test CA) and with AUTH required."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOSTNAME = "smtp.example.test"


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted transaction, as the server saw it."""

    mail_from: str
    recipients: tuple[str, ...]
    data: bytes
    over_tls: bool
    authenticated_as: str | None
    client: tuple[str, int]
    """The client's address and port: one per connection."""

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class Script:
    """How the server misbehaves. Addresses are compared lower-cased; DATA numbers count every DATA
    command the server received, from 1."""

    refuse: dict[str, str] = field(default_factory=dict)
    """address -> reply to every RCPT for it, e.g. "550 5.1.1 No such user"."""
    defer_once: dict[str, str] = field(default_factory=dict)
    """address -> reply to its first RCPT only, e.g. "451 4.7.1 Try again later"."""
    refuse_data: dict[str, str] = field(default_factory=dict)
    """address -> reply to DATA of a message for it, e.g. "554 5.6.0 Content rejected"."""
    refuse_sender: str | None = None
    """Reply to every MAIL FROM, e.g. "553 5.7.1 Sender not allowed"."""
    refuse_every_rcpt: str | None = None
    """Reply to every RCPT, e.g. "550 5.7.1 Relaying denied"."""
    drop_at_data: set[int] = field(default_factory=set)
    """DATA numbers at which the server closes the connection without answering."""
    data_delay: float = 0.0
    """Seconds to sit on every DATA before answering."""
    reply_delay: float = 0.0
    """Seconds between accepting a message (it is recorded as received) and sending the 250 reply: the
    window in which a client that stops or dies has had its message accepted without knowing it."""


class Recorder:
    """The aiosmtpd handler: follows a Script and records what it accepted (thread-safe)."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.received: list[Received] = []
        self.data_commands = 0
        self.rcpt_seen: list[str] = []
        self._deferred: set[str] = set()
        self._lock = threading.Lock()

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]) -> str:
        if self.script.refuse_sender:
            return self.script.refuse_sender
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        key = address.lower()
        with self._lock:
            self.rcpt_seen.append(key)
            if self.script.refuse_every_rcpt:
                return self.script.refuse_every_rcpt
            if key in self.script.refuse:
                return self.script.refuse[key]
            if key in self.script.defer_once and key not in self._deferred:
                self._deferred.add(key)
                return self.script.defer_once[key]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.data_commands += 1
            number = self.data_commands
        if self.script.data_delay:
            await asyncio.sleep(self.script.data_delay)
        if number in self.script.drop_at_data:
            server.transport.close()
            return "250 never heard"
        for address in envelope.rcpt_tos:
            if address.lower() in self.script.refuse_data:
                return self.script.refuse_data[address.lower()]
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self._lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    tuple(envelope.rcpt_tos),
                    envelope.content,
                    session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                    login,
                    tuple(session.peer),
                )
            )
        if self.script.reply_delay:
            await asyncio.sleep(self.script.reply_delay)
        return "250 2.0.0 Accepted"

    def messages_to(self, address: str) -> list[Received]:
        return [r for r in self.received if address.lower() in (a.lower() for a in r.recipients)]


class Authenticator:
    """Accepts exactly one user name and password."""

    def __init__(self, username: str, password: str) -> None:
        self._expected = (username.encode(), password.encode())

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == self._expected
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class _Controller(Controller):
    """aiosmtpd's threaded controller, bound to port 0: the real port is read back before the start-up
    probe connects to it."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]  # aiosmtpd leaves it unannotated


@dataclass(frozen=True, slots=True)
class Server:
    recorder: Recorder
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def smtp_server(
    script: Script | None = None,
    *,
    tls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    credentials: tuple[str, str] | None = None,
) -> Iterator[Server]:
    """A running server: plain SMTP; with `tls` STARTTLS offered and required; with `implicit_tls` TLS from
    the first byte (as on port 465); with `credentials` AUTH required (over STARTTLS, as aiosmtpd insists;
    with implicit TLS it is offered, not required)."""
    recorder = Recorder(script)
    options: dict[str, Any] = {"server_hostname": HOSTNAME, "timeout": 10}
    if tls is not None:
        options |= {"tls_context": tls, "require_starttls": True}
    if credentials is not None:
        options |= {"auth_required": True, "authenticator": Authenticator(*credentials)}
    if implicit_tls is not None:
        # aiosmtpd counts only STARTTLS as TLS for AUTH, so here AUTH is offered (over TLS all the same) but
        # not enforced: enforcing it without "TLS" would make aiosmtpd warn.
        options |= {"ssl_context": implicit_tls, "auth_require_tls": False, "auth_required": False}
    controller = _Controller(recorder, hostname="127.0.0.1", port=0, **options)
    controller.start()
    try:
        yield Server(recorder, controller.port)
    finally:
        controller.stop()


def closed_port() -> int:
    """A loopback port nobody listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
