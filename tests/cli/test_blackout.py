"""The blackout rehearsal: the platform is gone, and a commander posts from the fallback kit on a laptop.

Before the outage, the service (here: the CLI on its journal, SQLite or Redis) delivered two updates of an
incident on every channel (so X has a thread of two posts), someone unsubscribed (the journal) and an address
hard-bounced (the suppression file). A kit is made from it, with its real venv. Then, from the kit's
directory only, with a clean environment holding nothing but the secrets, no Redis, no service and no DNS
(webhook and X by pinned host names, SMTP by address), `venv/bin/broadcaster send --incident ID` must reach
every channel's local peer (aiosmtpd, an aiohttp receiver, the fake X API), mail nobody who unsubscribed
or bounced, reply under the incident's last X post, and write a status site that keeps the incident's whole history."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from broadcaster.store import open_store
from tests.channels.email.smtp_server import smtp_server
from tests.channels.webhook.receiver import Receiver
from tests.channels.x.fake_x import CREDENTIALS, FakeX, serving
from tests.support.helpers import run_cli
from tests.support.kit import fill_secrets

HOOK_HOST = "hooks.blackout.test"
HOOK_PATH = "/hook/T0K3N-blackout-4d1e"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"blackout-signing-key-0123456789").decode()
UNSUBSCRIBE_SECRET = "unsub-blackout-7c2f"
SUBSCRIBERS = ("ann@example.org", "bob@example.org", "cat@example.org", "dan@example.org")
UNSUBSCRIBED = "bob@example.org"
BOUNCED = "Cat@Example.org"
"""A hard bounce, in the suppression file as the email channel appends it (and as an operator may)."""
FIRST, SECOND = "Card payments fail for some customers.", "A faulty deploy; we are rolling it back."
THIRD = "The rollback is done; payments recover."


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest.fixture
async def fake_x(tmp_path: Path) -> AsyncIterator[tuple[FakeX, Path]]:
    ca = trustme.CA()
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    fake = FakeX()
    async with serving(fake, ca):
        yield fake, ca_file


def service_config(smtp_port: int, receiver: Receiver, fake: FakeX, ca_file: Path, store_url: str) -> str:
    return f"""
[store]
url = "{store_url}"
[mirror]
public_url = "https://status.example.com"
page_title = "Example status"
[email]
enabled = true
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from_addr = "Example Status <status@example.com>"
subscribers_file = "subscribers.txt"
unsubscribe_url = "https://status.example.com/unsubscribe"
unsubscribe_secret = "{UNSUBSCRIBE_SECRET}"
[x]
enabled = true
consumer_key = "{CREDENTIALS.consumer_key}"
consumer_secret = "{CREDENTIALS.consumer_secret}"
access_token = "{CREDENTIALS.token}"
access_token_secret = "{CREDENTIALS.token_secret}"
[webhook]
enabled = true
[[webhook.targets]]
name = "ops"
url = "http://{HOOK_HOST}:{receiver.port}{HOOK_PATH}"
secret = "{SIGNING_SECRET}"
[network]
resolve = {{ "api.twitter.com" = "127.0.0.1:{fake.port}", "{HOOK_HOST}" = "127.0.0.1:{receiver.port}" }}
ca_file = "{ca_file}"
"""


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_blackout_send_from_the_kit_reaches_every_channel(
    tmp_path: Path, receiver: Receiver, fake_x: tuple[FakeX, Path], backend: str, request: pytest.FixtureRequest
) -> None:
    fake, ca_file = fake_x
    service, kit = tmp_path / "service", tmp_path / "laptop" / "kit"
    store_url = request.getfixturevalue("redis_url") if backend == "redis" else "sqlite:///var/broadcaster.db"
    (service / "var").mkdir(parents=True)
    (service / "subscribers.txt").write_text("".join(f"{address}\n" for address in SUBSCRIBERS))
    with smtp_server() as smtp:
        (service / "broadcaster.toml").write_text(service_config(smtp.port, receiver, fake, ca_file, store_url))

        # Before the outage: an incident out on every channel twice (X has a thread of two posts), then
        # someone unsubscribes (the journal) and an address bounces (the suppression file).
        incident = await _send(service, "--title", "Checkout errors", "--status", "investigating", "--message", FIRST)
        await _send(service, "--incident", incident, "--status", "identified", "--message", SECOND)
        first_post, last_post = fake.posts
        assert last_post.reply_to == first_post.id
        await _unsubscribe(store_url, service, UNSUBSCRIBED)
        (service / "var" / "email-suppressed.txt").write_text(f"{BOUNCED}\t2024-05-01T10:00:00Z\t550 5.1.1 no user\n")

        made = await asyncio.to_thread(run_cli, "kit", str(kit), cwd=service)
        assert made.returncode == 0, made.stderr
        source = "the local journal" if backend == "sqlite" else f"the journal at {store_url}"
        assert f"from {source} (" in (kit / "RUNBOOK.md").read_text()

        # The outage: from the kit alone.
        mailed_before, hooked_before = len(smtp.recorder.received), len(receiver.at(HOOK_PATH))
        environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
        environment |= fill_secrets(
            kit,
            {
                "[x] consumer_key": CREDENTIALS.consumer_key,
                "[x] consumer_secret": CREDENTIALS.consumer_secret,
                "[x] access_token": CREDENTIALS.token,
                "[x] access_token_secret": CREDENTIALS.token_secret,
                "[email] unsubscribe_secret": UNSUBSCRIBE_SECRET,
                "[webhook] targets[0].url": f"http://{HOOK_HOST}:{receiver.port}{HOOK_PATH}",
                "[webhook] targets[0].secret": SIGNING_SECRET,
            },
        )
        update = [str(kit / "venv/bin/broadcaster"), "send", "--incident", incident, "--status", "monitoring"]
        sent = await asyncio.to_thread(
            subprocess.run,
            [*update, "--message", THIRD],
            cwd=kit,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        mailed = smtp.recorder.received[mailed_before:]

    assert sorted(address for message in mailed for address in message.recipients) == [
        "ann@example.org",
        "dan@example.org",
    ]
    assert all(THIRD in message.message.get_body(("plain",)).get_content() for message in mailed)  # type: ignore[union-attr]
    hooked = receiver.at(HOOK_PATH)[hooked_before:]
    assert len(hooked) == 1
    assert json.loads(hooked[0].body)["incident"]["id"] == incident
    assert THIRD in hooked[0].body.decode()
    # X: one more post, a reply to the thread's last post (not its first).
    assert len(fake.posts) == 3
    assert fake.posts[-1].reply_to == last_post.id
    page = (kit / "public" / "incidents" / f"{incident}.html").read_text()
    assert FIRST in page and SECOND in page and THIRD in page
    history = json.loads((kit / "public" / "api" / "v2" / "incidents.json").read_text())
    bodies = [u["body"] for i in history["incidents"] if i["id"] == incident for u in i["incident_updates"]]
    assert bodies == [THIRD, SECOND, FIRST]


async def _send(service: Path, *args: str) -> str:
    """`broadcaster send` on the service's journal, before the outage; the incident's id."""
    sent = await asyncio.to_thread(run_cli, "send", *args, "--json", cwd=service)
    assert sent.returncode == 0, sent.stderr
    incident: str = json.loads(sent.stdout)["incident_id"]
    return incident


async def _unsubscribe(store_url: str, service: Path, address: str) -> None:
    """What the service's unsubscribe endpoint records: the address in the journal's suppression list."""
    relative = store_url.removeprefix("sqlite:///")
    store = open_store(f"sqlite:///{service / relative}" if relative != store_url else store_url)
    await store.open()
    try:
        await store.suppress({address: "unsubscribed"}, source="unsubscribe", now=time.time())
    finally:
        await store.close()
