"""Fixtures for the email tests: a test CA and server certificate, and settings built from a real TOML file
(the way the service loads them) pointing the channel at local aiosmtpd servers."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
import trustme

from broadcaster.domain.models import IncidentHistory
from channels.base import ChannelContext
from channels.email import EmailChannel
from config import Settings, load_settings
from tests.channels.email.smtp_server import HOSTNAME
from tests.conftest import WriteConfig

FALLBACK_HOSTNAME = "smtp2.example.test"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(test_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def server_tls(test_ca: trustme.CA) -> ssl.SSLContext:
    """The servers' side of TLS: a certificate for both test relay names, signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert(HOSTNAME, FALLBACK_HOSTNAME).configure_cert(context)
    return context


@dataclass(frozen=True, slots=True)
class Relay:
    """One relay as the config names it: a host name pinned ([network] resolve) to the local server's port."""

    port: int
    security: str = "none"
    host: str = HOSTNAME
    username: str | None = None
    password: str | None = None

    def toml(self) -> str:
        lines = [f'host = "{self.host}"', f"port = {self.port}", f'security = "{self.security}"']
        if self.username is not None:
            lines += [f'username = "{self.username}"', f'password = "{self.password}"']
        return "\n".join(lines) + "\n"


class Configure(Protocol):
    def __call__(
        self,
        primary: Relay,
        *fallbacks: Relay,
        subscribers: Iterable[str] | str = (),
        email: Mapping[str, object] | None = None,
        retry: str = "",
        trust_test_ca: bool = True,
    ) -> Settings: ...


@pytest.fixture
def configure(write_config: WriteConfig, workdir: Path, ca_file: Path) -> Configure:
    """Write the subscribers file and broadcaster.toml into the test's directory and load them. `email`
    adds or overrides [email] keys (values written as JSON, which TOML reads the same for these types)."""

    def build(
        primary: Relay,
        *fallbacks: Relay,
        subscribers: Iterable[str] | str = (),
        email: Mapping[str, object] | None = None,
        retry: str = "",
        trust_test_ca: bool = True,
    ) -> Settings:
        options = {"pool_size": 4, "connect_timeout": 5, "command_timeout": 5} | dict(email or {})
        text = subscribers if isinstance(subscribers, str) else "".join(f"{line}\n" for line in subscribers)
        (workdir / "subscribers.txt").write_text(text)
        pins = ", ".join(f'"{relay.host}:{relay.port}" = "127.0.0.1:{relay.port}"' for relay in (primary, *fallbacks))
        config = (
            '[mirror]\npublic_url = "https://status.example.com"\n'
            "[email]\nenabled = true\n" + primary.toml() + 'from_addr = "Example Status <status@example.com>"\n'
            'subscribers_file = "subscribers.txt"\nunsubscribe_url = "https://status.example.com/unsubscribe"\n'
        )
        config += "".join(f"{key} = {json.dumps(value)}\n" for key, value in options.items())
        config += "".join(f"[[email.fallback_relays]]\n{relay.toml()}" for relay in fallbacks)
        config += f"[network]\nresolve = {{ {pins} }}\n"
        config += f'ca_file = "{ca_file}"\n' if trust_test_ca else ""
        config += retry
        return load_settings(write_config(config))

    return build


class NoJournal:
    """The email channel never reads the journal; the context still needs a reader."""

    async def site_history(self, *, recent: int | None) -> list[IncidentHistory]:
        return []

    async def suppressed(self) -> frozenset[str]:
        return frozenset()


@asynccontextmanager
async def email_channel(settings: Settings, journal: NoJournal | None = None) -> AsyncIterator[EmailChannel]:
    """The channel as the lane builds it, closed (connections and all) at the end."""
    channel = EmailChannel.create(ChannelContext(settings, journal or NoJournal()))
    try:
        yield channel
    finally:
        await channel.aclose()
