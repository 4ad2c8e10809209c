"""Fixtures for the webhook channel: real receivers on loopback (HTTP, and HTTPS with a trustme CA),
configuration written to the test's directory, and the real journal + lanes around the channel."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import trustme

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.models import UpdateDraft
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.store import Accepted
from broadcaster.store.base import Delivery
from config import Settings, load_settings
from tests.channels.webhook.receiver import Receiver
from tests.conftest import WriteConfig

TLS_HOST = "hooks.example.test"
# Fast retries so a test sees several attempts in well under a second; a breaker that never opens.
FAST_RETRIES = """
[retry.webhook]
max_attempts = 3
base_delay = 0.05
max_delay = 0.2
timeout = 10
breaker_threshold = 100
"""


def target(url: str, **keys: Any) -> str:
    """One [[webhook.targets]] table in TOML."""
    lines = ["[[webhook.targets]]", f"url = {_toml(url)}"]
    lines += [f"{key} = {_toml(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value), ensure_ascii=False)  # JSON string escapes are valid TOML basic strings


class Configure(Protocol):
    def __call__(self, *targets: str, extra: str = "", retries: str = FAST_RETRIES) -> Settings: ...


@pytest.fixture
def configure(write_config: WriteConfig) -> Configure:
    """Settings with the webhook channel on, these targets, fast retries and `extra` TOML."""

    def build(*targets: str, extra: str = "", retries: str = FAST_RETRIES) -> Settings:
        text = (
            '[mirror]\nenabled = false\npublic_url = "https://status.example.com"\npage_title = "Example status"\n'
            'components = ["API"]\n'
            f"{extra}\n{retries}\n[webhook]\nenabled = true\n" + "".join(targets)
        )
        return load_settings(write_config(text))

    return build


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@dataclass(frozen=True, slots=True)
class Tls:
    ca_file: Path
    server: ssl.SSLContext


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    """A private CA and a server certificate for TLS_HOST, as the receiver's TLS context."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(TLS_HOST).configure_cert(server)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(ca_file, server)


@pytest.fixture
async def tls_receiver(tls: Tls) -> AsyncIterator[Receiver]:
    started = await Receiver().start(tls.server)
    yield started
    await started.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (bound once to pick it, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def broadcasting(settings: Settings) -> AsyncIterator[tuple[Runtime, Dispatcher]]:
    """The real journal and a running webhook lane, as the CLI and the service run them."""
    runtime = await open_runtime(settings)
    try:
        async with Dispatcher(runtime, channels=["webhook"], poll_interval=0.05) as dispatcher:
            yield runtime, dispatcher
    finally:
        await runtime.close()


async def post(runtime: Runtime, dispatcher: Dispatcher, **fields: Any) -> Accepted:
    """Submit an update to the webhook channel (a new incident unless incident_id is given)."""
    fields.setdefault("status", "investigating")
    fields.setdefault("message", "We are looking into elevated API errors.")
    if "incident_id" not in fields:
        fields.setdefault("title", "API errors")
    accepted = await runtime.submit(UpdateDraft(channels=["webhook"], **fields))
    dispatcher.wake()
    return accepted


async def settle(dispatcher: Dispatcher, accepted: Accepted, wait: float = 20) -> dict[str, Delivery]:
    """The update's deliveries by target once each is final (or cannot move)."""
    return {d.target: d for d in await dispatcher.settle([accepted.update.id], wait=wait)}


def labels(settings: Settings) -> Sequence[str]:
    return settings.webhook.target_names()
