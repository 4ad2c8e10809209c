"""Chat commands against the running service: the application with its lanes on loopback (served as `serve`
serves it), the real webhook channel delivering to a local receiver, and stand-ins for chat's response_url:
Slack's, an HTTPS server that [network] pins hooks.slack.com to (its certificate from a private CA in
ca_file), and Mattermost's, a plain HTTP server named in [chatops] mattermost_hosts."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import pytest
import trustme
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from slack_sdk.signature import SignatureVerifier

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.web import create_app
from config import load_settings
from tests.channels.webhook.receiver import Receiver
from tests.conftest import WriteConfig
from tests.web.pages.conftest import ServedAsInProduction, password_hash

SLACK_SECRET: Final = "8f742231b10e8888abcd99yyyzzz85a5"
MATTERMOST_TOKEN: Final = "xkmq5ndgc7yb3rb7cfzbr3hs8w"
SLACK_HOST: Final = "hooks.slack.com"
PUBLIC_URL: Final = "https://broadcaster.example.com"
FORM_TYPE: Final = {"Content-Type": "application/x-www-form-urlencoded"}

Client = TestClient[web.Request, web.Application]


@dataclass
class Chat:
    client: Client
    runtime: Runtime
    hooks: Receiver
    """The webhook channel's receiver (path /hook), and Mattermost's response_url and reminders (plain HTTP)."""
    slack: Receiver
    """What hooks.slack.com:443 is pinned to: Slack's response_url."""
    workdir: Path

    def slack_fields(self, text: str, **fields: str) -> dict[str, str]:
        """A slash command's fields as Slack posts them, its response_url on hooks.slack.com."""
        trigger = f"{time.monotonic_ns()}.{len(text)}"
        return {
            "token": "deprecated-verification-token",
            "team_id": "T0001",
            "team_domain": "example",
            "channel_id": "C2147483705",
            "channel_name": "incidents",
            "user_id": "U2147483697",
            "user_name": "ann",
            "command": "/incident",
            "text": text,
            "response_url": f"https://{SLACK_HOST}/commands/T0001/1234/{trigger}",
            "trigger_id": trigger,
            **fields,
        }

    async def slack_command(
        self, text: str, *, secret: str = SLACK_SECRET, at: float | None = None, fields: Mapping[str, str] = {}
    ) -> ClientResponse:
        """The command posted with `fields` changed, signed with `secret` at time `at` (now)."""
        body = urlencode(self.slack_fields(text, **fields))
        return await self.client.post(
            "/chatops/slack", data=body.encode(), headers={**FORM_TYPE, **slack_signature(body, secret, at)}
        )

    def mattermost_fields(self, text: str, **fields: str) -> dict[str, str]:
        trigger = f"{time.monotonic_ns()}"
        return {
            "token": MATTERMOST_TOKEN,
            "team_id": "mmteam1",
            "team_domain": "example",
            "channel_id": "mmchannel1",
            "channel_name": "incidents",
            "user_id": "mmuser1",
            "user_name": "bo",
            "command": "/incident",
            "text": text,
            "response_url": self.hooks.url(f"/hooks/commands/{trigger}"),
            "trigger_id": trigger,
            **fields,
        }

    async def mattermost_command(self, text: str, **fields: str) -> ClientResponse:
        body = urlencode(self.mattermost_fields(text, **fields))
        return await self.client.post("/chatops/mattermost", data=body.encode(), headers=FORM_TYPE)

    def journaled(self) -> list[tuple[str, str, str]]:
        """(author, status, message) of every update, read as another process would."""
        with sqlite3.connect(self.workdir / "var" / "broadcaster.db") as journal:
            return journal.execute("SELECT author, status, message FROM updates ORDER BY created_at").fetchall()


def slack_signature(body: str, secret: str = SLACK_SECRET, at: float | None = None) -> dict[str, str]:
    """The headers Slack sends, computed as its documentation says (and checked with slack_sdk's verifier)."""
    timestamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    signature = f"v0={digest}"
    if at is None:  # slack_sdk checks the age against the real clock: only a current request is cross-checked
        assert SignatureVerifier(secret).is_valid(body=body, timestamp=timestamp, signature=signature)
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature}


OpenChat = Callable[..., AbstractAsyncContextManager[Chat]]


@pytest.fixture
async def hooks() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest.fixture
def slack_tls(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A private CA (its file) and a server context with a certificate for hooks.slack.com."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(SLACK_HOST).configure_cert(server)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ca_file, server


@pytest.fixture
async def slack_hooks(slack_tls: tuple[Path, ssl.SSLContext]) -> AsyncIterator[Receiver]:
    started = await Receiver().start(slack_tls[1])
    yield started
    await started.stop()


@pytest.fixture
def open_chat(
    workdir: Path,
    write_config: WriteConfig,
    hooks: Receiver,
    slack_hooks: Receiver,
    slack_tls: tuple[Path, ssl.SSLContext],
) -> OpenChat:
    """Opens the service with both chat platforms set up, the webhook channel on, a user for the form,
    `auth` added to [auth] and `extra` to the file."""

    @asynccontextmanager
    async def serving(
        *, auth: str = "", extra: str = "", summary_after: float = 10, public_url: str = PUBLIC_URL
    ) -> AsyncIterator[Chat]:
        write_config(
            f'[service]\npublic_url = "{public_url}"\n'
            f'[mirror]\npublic_url = "https://status.example.com"\n'
            f'[auth]\nslack_signing_secret = "{SLACK_SECRET}"\nmattermost_token = "{MATTERMOST_TOKEN}"\n{auth}\n'
            f'users = {{ ann = "{password_hash()}" }}\n'
            f'[chatops]\nmattermost_hosts = ["127.0.0.1:{hooks.port}"]\nsummary_after = {summary_after}\n'
            f'reminder_webhook = "{hooks.url("/hooks/reminders")}"\n'
            f'[network]\nresolve = {{ "{SLACK_HOST}:443" = "127.0.0.1:{slack_hooks.port}" }}\n'
            f'ca_file = "{slack_tls[0]}"\n'
            "[retry.webhook]\nmax_attempts = 2\nbase_delay = 0.05\nmax_delay = 0.1\n"
            f'[webhook]\nenabled = true\n[[webhook.targets]]\nurl = "{hooks.url("/hook")}"\nname = "ops"\n'
            f"{extra}"
        )
        runtime = await open_runtime(load_settings(workdir / "broadcaster.toml"))
        try:
            async with (
                Dispatcher(runtime, poll_interval=0.05) as dispatcher,
                TestClient(ServedAsInProduction(create_app(runtime, dispatcher))) as client,
            ):
                yield Chat(client, runtime, hooks, slack_hooks, workdir)
        finally:
            await runtime.close()

    return serving


@pytest.fixture
async def chat(open_chat: OpenChat) -> AsyncIterator[Chat]:
    async with open_chat() as opened:
        yield opened


def reply_text(answer: dict[str, Any]) -> str:
    """The text of an ephemeral reply (asserting it is one)."""
    assert answer["response_type"] == "ephemeral"
    text: str = answer["text"]
    return text
