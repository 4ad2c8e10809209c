"""Real peers for `broadcaster drill` tests, each standing for a real target and a drill target at once: one
aiosmtpd server (a subscriber's mailbox and the drill's), one aiohttp webhook receiver (/real and /drill),
and the fake X API over HTTPS, which accepts only the drill account's credentials, so any request made as the
real account would show as an authentication failure. `drill_config` writes a configuration in which every
channel has a real target and a drill target on these peers."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trustme

from tests.channels.email.smtp_server import HOSTNAME, Recorder, smtp_server
from tests.channels.webhook.receiver import Receiver
from tests.channels.x.fake_x import CREDENTIALS, FakeX, serving
from tests.channels.x.oauth1 import Credentials
from tests.support.helpers import run_cli

SECRET: Final = "whsec_ZHJpbGwtdGVzdC1zaWduaW5nLWtleS0zMmJ5dGVz"
SUBSCRIBER: Final = "customer@example.org"
DRILL_ADDRESS: Final = "drill@example.net"
REAL_X: Final = CREDENTIALS
DRILL_X: Final = Credentials(
    consumer_key="ck-drill-7a21e0",
    consumer_secret="cs-drill-3c9d54b1e2",
    token="2750-at-drill-9f13aa",
    token_secret="ats-drill-64be0d27c5",
)
FAST_RETRIES: Final = {"max_attempts": 2, "base_delay": 0.05, "max_delay": 0.1, "timeout": 20}


@dataclass(frozen=True, slots=True)
class Peers:
    smtp: Recorder
    smtp_port: int
    receiver: Receiver
    x: FakeX
    ca_file: Path

    def mailed(self) -> set[str]:
        """Every recipient the SMTP server accepted a message for, lower-cased."""
        return {address.lower() for received in self.smtp.received for address in received.recipients}


@asynccontextmanager
async def drill_peers(directory: Path) -> AsyncIterator[Peers]:
    ca = trustme.CA()
    ca_file = directory / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    fake = FakeX(credentials=DRILL_X)
    receiver = await Receiver().start()
    try:
        with smtp_server() as server:
            async with serving(fake, ca):
                yield Peers(server.recorder, server.port, receiver, fake, ca_file)
    finally:
        await receiver.stop()


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # JSON's strings, numbers, booleans and lists of them are also TOML's


def _table(name: str, keys: Mapping[str, Any]) -> str:
    return f"{name}\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in keys.items())


def _x_keys(credentials: Credentials) -> dict[str, Any]:
    return {
        "consumer_key": credentials.consumer_key,
        "consumer_secret": credentials.consumer_secret,
        "access_token": credentials.token,
        "access_token_secret": credentials.token_secret,
        "request_timeout": 5,
        "connect_timeout": 2,
    }


def drill_config(
    workdir: Path,
    peers: Peers,
    *,
    drill: Mapping[str, Any] | None = None,
    drill_webhook: str = "/drill",
    drill_x: Credentials | None = DRILL_X,
    email: Mapping[str, Any] | None = None,
    mirror: Mapping[str, Any] | None = None,
    extra: str = "",
) -> None:
    """broadcaster.toml in `workdir`: email to subscribers.txt (SUBSCRIBER), X as REAL_X, the webhook /real
    and the mirror into public/, all enabled; [drill] mails DRILL_ADDRESS, posts to `drill_webhook` (a path
    on the receiver, or a whole URL), writes drill-site/ and posts to X as `drill_x`. `drill` overrides
    [drill] keys, `email` and `mirror` those sections' keys."""
    (workdir / "subscribers.txt").write_text(f"{SUBSCRIBER}\n")
    port = peers.smtp_port
    webhook_url = drill_webhook if "://" in drill_webhook else peers.receiver.url(drill_webhook)
    email = {
        "enabled": True,
        "host": HOSTNAME,
        "port": port,
        "security": "none",
        "from_addr": "Example Status <status@example.com>",
        "subscribers_file": "subscribers.txt",
        **(email or {}),
    }
    network = {
        "resolve": {f"{HOSTNAME}:{port}": f"127.0.0.1:{port}", "api.twitter.com": f"127.0.0.1:{peers.x.port}"},
        "ca_file": str(peers.ca_file),
    }
    drill_keys = {"email_recipients": [DRILL_ADDRESS], "mirror_directory": "drill-site", **(drill or {})}
    text = "".join(
        [
            _table("[email]", email),
            _table("[x]", {"enabled": True, **_x_keys(REAL_X)}),
            _table("[webhook]", {"enabled": True}),
            _table("[[webhook.targets]]", {"name": "real", "url": peers.receiver.url("/real"), "secret": SECRET}),
            _table("[mirror]", {"directories": ["public"], **(mirror or {})}),
            _table("[network]", network),
            _table("[drill]", drill_keys),
            _table("[[drill.webhook_targets]]", {"name": "drill", "url": webhook_url, "secret": SECRET}),
            _table("[drill.x]", _x_keys(drill_x)) if drill_x is not None else "",
            *(_table(f"[retry.{channel}]", FAST_RETRIES) for channel in ("email", "x", "webhook")),
            extra,
        ]
    )
    (workdir / "broadcaster.toml").write_text(text)


async def cli(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, off this loop (the receiver and the fake X answer on it)."""
    return await asyncio.to_thread(run_cli, *args, cwd=cwd, env=env)
