"""Webhook subscribers, against a real aiohttp receiver: registration confirmed by the code its signed ping
carries (typed in, or answered at once), signed updates for what it follows, a new secret, unsubscribing,
and the endpoints the form refuses (loopback, private, link-local, metadata, a name resolving to one)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from standardwebhooks import Webhook

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.subscriptions import Subscriber
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.web import create_app
from broadcaster.web.subscriptions.common import REQUESTS_PER_CLIENT
from config import load_settings
from tests.channels.webhook.receiver import Answer, Receiver
from tests.conftest import WriteConfig
from tests.support.helpers import eventually
from tests.web.conftest import AUTH, TOKEN, Client
from tests.web.incidents import API_DOWN, SITE_SLOW

SERVICE = "https://broadcaster.example.com"


class EchoingReceiver(Receiver):
    """Answers a ping on /echo with {"confirmed": code}, as a receiver may to confirm itself; /parrot answers
    every request with its own body, as a careless echo service would."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        answer = await super()._handle(request)
        if request.path == "/echo":
            sent = json.loads(self.received[-1].body)
            return web.json_response({"confirmed": sent.get("confirmation_code")})
        if request.path == "/parrot":
            return web.Response(body=self.received[-1].body, content_type="application/json")
        return answer


@dataclass
class Hooks:
    client: Client
    runtime: Runtime
    receiver: EchoingReceiver


def config_text(*, allow_private: bool) -> str:
    return (
        f'[service]\npublic_url = "{SERVICE}"\n'
        '[mirror]\nenabled = false\npublic_url = "https://status.example.com"\ncomponents = ["API", "Website"]\n'
        f'[auth]\napi_tokens = {{ deploy-bot = "{TOKEN}" }}\n'
        f"[webhook]\nenabled = true\nsubscribers = true\nallow_private_subscriber_urls = {str(allow_private).lower()}\n"
    )


async def open_hooks(config: Path) -> AsyncIterator[Hooks]:
    receiver = EchoingReceiver()
    await receiver.start()
    runtime = await open_runtime(load_settings(config))
    try:
        async with (
            Dispatcher(runtime, poll_interval=0.05) as dispatcher,
            TestClient(TestServer(create_app(runtime, dispatcher))) as client,
        ):
            yield Hooks(client, runtime, receiver)
    finally:
        await runtime.close()
        await receiver.stop()


@pytest.fixture
async def hooks(workdir: Path, write_config: WriteConfig) -> AsyncIterator[Hooks]:
    """Webhook subscriptions offered, private addresses allowed (the receiver is on loopback)."""
    async for opened in open_hooks(write_config(config_text(allow_private=True))):
        yield opened


async def register(hooks: Hooks, path: str, *components: str) -> str:
    data = [("url", hooks.receiver.url(path)), *(("component", name) for name in components)]
    response = await hooks.client.post("/subscribe/webhook", data=data)
    assert response.status == 200, await response.text()
    return await response.text()


def secret_on(page: str) -> str:
    found = re.search(r'<code class="secret">(whsec_[^<]+)</code>', page)
    assert found is not None, page
    return found.group(1)


def verified(secret: str, body: bytes, headers: dict[str, str]) -> Any:
    """The body, once its Standard Webhooks signature checks out with `secret`."""
    return Webhook(secret).verify(body, headers)


async def post_update(hooks: Hooks, update: dict[str, Any]) -> str:
    response = await hooks.client.post("/api/v1/updates", json=update, headers=AUTH)
    assert response.status == 202, await response.text()
    update_id = (await response.json())["update_id"]

    async def settled() -> bool:
        deliveries = await hooks.runtime.store.deliveries(update_id=update_id)
        return [d.state.value for d in deliveries] == ["delivered"]

    await eventually(settled)
    (delivery,) = await hooks.runtime.store.deliveries(update_id=update_id)
    return delivery.detail


async def test_an_endpoint_confirmed_by_its_code_receives_signed_updates_it_follows(hooks: Hooks) -> None:
    page = await register(hooks, "/hook", "API")
    secret = secret_on(page)
    (ping,) = hooks.receiver.at("/hook")
    sent = verified(secret, ping.body, ping.standard_headers())
    assert sent["meta"]["event"] == "subscription.ping"
    assert await hooks.runtime.store.subscribers("webhook") == [], "nothing kept before the code is entered"
    assert await post_update(hooks, API_DOWN) == "0 of 0 subscriber endpoints delivered, 0 refused"

    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None
    wrong = await hooks.client.post("/subscribe/webhook/confirm", data={"token": token.group(1), "code": "WRONG123"})
    assert wrong.status == 400 and "not the code" in await wrong.text()
    done = await hooks.client.post(
        "/subscribe/webhook/confirm", data={"token": token.group(1), "code": sent["confirmation_code"].lower()}
    )
    assert done.status == 200 and "Your endpoint is subscribed" in await done.text()

    assert await post_update(hooks, API_DOWN) == "1 of 1 subscriber endpoints delivered, 0 refused"
    assert await post_update(hooks, SITE_SLOW) == "0 of 0 subscriber endpoints delivered, 0 refused"
    (_ping, update) = hooks.receiver.at("/hook")
    body = verified(secret, update.body, update.standard_headers())
    assert body["incident"]["name"] == "API errors" and body["meta"]["event"] == "incident.update"


async def test_an_endpoint_answering_its_ping_with_the_code_is_subscribed_at_once(hooks: Hooks) -> None:
    page = await register(hooks, "/echo")
    assert "Your endpoint is subscribed" in page
    secret = secret_on(page)
    assert json.loads(hooks.receiver.at("/echo")[0].body)["meta"]["event"] == "subscription.ping"
    (subscriber,) = await hooks.runtime.store.subscribers("webhook")
    assert subscriber.address == hooks.receiver.url("/echo") and subscriber.secret == secret


async def test_the_manage_link_changes_the_secret_and_unsubscribes(hooks: Hooks) -> None:
    page = await register(hooks, "/echo")
    manage = re.search(r'href="(https://broadcaster\.example\.com/subscribe/webhook/manage\?token=[^"]+)"', page)
    assert manage is not None
    token = manage.group(1).partition("token=")[2]
    rotated = await hooks.client.post("/subscribe/webhook/manage", data={"token": token, "action": "rotate"})
    rotated_page = await rotated.text()
    new_secret = secret_on(rotated_page)
    new_link = re.search(
        r'href="https://broadcaster\.example\.com/subscribe/webhook/manage\?token=([^"]+)"', rotated_page
    )
    assert new_link is not None
    token = new_link.group(1)
    assert new_secret != secret_on(page)
    await post_update(hooks, API_DOWN)
    update = hooks.receiver.at("/echo")[-1]
    assert verified(new_secret, update.body, update.standard_headers())["incident"]["name"] == "API errors"

    gone = await hooks.client.post("/subscribe/webhook/manage", data={"token": token, "action": "unsubscribe"})
    assert "receives no status updates" in await gone.text()
    assert await post_update(hooks, API_DOWN) == "0 of 0 subscriber endpoints delivered, 0 refused"


async def test_forged_and_expired_registrations_are_refused(hooks: Hooks) -> None:
    page = await register(hooks, "/hook")
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None
    code = json.loads(hooks.receiver.at("/hook")[0].body)["confirmation_code"]
    payload, _, signature = token.group(1).partition(".")
    forged = await hooks.client.post(
        "/subscribe/webhook/confirm", data={"token": f"{payload}.{signature[::-1]}", "code": code}
    )
    assert forged.status == 403
    clock = hooks.runtime.clock
    hooks.runtime.clock = lambda: clock() + 2 * 3600
    expired = await hooks.client.post("/subscribe/webhook/confirm", data={"token": token.group(1), "code": code})
    assert expired.status == 410
    assert await hooks.runtime.store.subscribers("webhook") == []


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "localhost"])
async def test_private_and_metadata_endpoints_are_refused_unless_allowed(
    workdir: Path, write_config: WriteConfig, host: str
) -> None:
    """Refused with one answer, which tells nothing of what a name resolved to."""
    async for hooks in open_hooks(write_config(config_text(allow_private=False))):
        url = hooks.receiver.url("/hook", host=host)
        refused = await hooks.client.post("/subscribe/webhook", data={"url": url})
        assert refused.status == 400
        text = await refused.text()
        assert "resolves to public internet addresses only" in text
        assert "127.0.0.1" not in text.replace(url, "") and "loopback" not in text.replace(
            "not a private, loopback", ""
        )
        assert hooks.receiver.received == [], "nothing was sent to the refused endpoint"


async def test_an_endpoint_echoing_its_ping_does_not_confirm_itself(hooks: Hooks) -> None:
    page = await register(hooks, "/parrot")
    assert "Enter the confirmation code" in page
    assert await hooks.runtime.store.subscribers("webhook") == []


async def test_a_registration_confirms_once_and_never_restores_an_old_secret(hooks: Hooks) -> None:
    page = await register(hooks, "/hook")
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token is not None
    code = json.loads(hooks.receiver.at("/hook")[0].body)["confirmation_code"]
    form = {"token": token.group(1), "code": code}
    first = await hooks.client.post("/subscribe/webhook/confirm", data=form)
    assert first.status == 200
    manage = re.search(
        r'href="https://broadcaster\.example\.com(/subscribe/webhook/manage\?token=[^"]+)"', await first.text()
    )
    assert manage is not None
    await hooks.client.post(
        "/subscribe/webhook/manage", data={"token": manage.group(1).partition("token=")[2], "action": "rotate"}
    )
    (rotated,) = await hooks.runtime.store.subscribers("webhook")
    replayed = await hooks.client.post("/subscribe/webhook/confirm", data=form)
    assert replayed.status == 410 and "ask for a new one" in await replayed.text()
    assert (await hooks.runtime.store.subscribers("webhook")) == [rotated], "the old secret is not back"
    old_link = await hooks.client.get(manage.group(1))
    assert old_link.status == 410, "a new secret voids the management links made before it"


async def test_a_bounded_burst_of_registrations_is_limited(hooks: Hooks) -> None:
    answers = [
        (await hooks.client.post("/subscribe/webhook", data={"url": "ftp://nowhere.example/x"})).status
        for _ in range(REQUESTS_PER_CLIENT + 2)
    ]
    assert answers == [400] * REQUESTS_PER_CLIENT + [429, 429], "refused registrations count too"


async def test_the_guard_holds_at_delivery_too(workdir: Path, write_config: WriteConfig) -> None:
    """An endpoint that points at a private address by the time an update goes out (its name moved, or
    the journal was edited) is refused then too, for good, and never called."""
    async for hooks in open_hooks(write_config(config_text(allow_private=False))):
        for host in ("127.0.0.1", "localhost"):
            endpoint = Subscriber(
                kind="webhook", address=hooks.receiver.url(f"/{host}", host=host), secret="whsec_AAAA"
            )
            await hooks.runtime.store.save_subscribers([endpoint])
        detail = await post_update(hooks, API_DOWN)
        assert detail == "0 of 2 subscriber endpoints delivered, 2 refused"
        assert hooks.receiver.received == []


async def test_an_endpoint_s_answer_never_puts_its_url_into_the_journal(hooks: Hooks, workdir: Path) -> None:
    """A refusal quoting the request line ("Cannot POST /hooks/<token>") is kept without the path."""
    path = "/hooks/s3cr3t-path-token"
    hooks.receiver.script(path, Answer(status=404, body=f"Cannot POST {path}".encode()))
    subscriber = Subscriber(kind="webhook", address=hooks.receiver.url(path), secret="whsec_AAAA")
    await hooks.runtime.store.save_subscribers([subscriber])
    assert await post_update(hooks, API_DOWN) == "0 of 1 subscriber endpoints delivered, 1 refused"
    with sqlite3.connect(workdir / "var" / "broadcaster.db") as journal:
        notes = [row[0] for row in journal.execute("SELECT note FROM progress")]
    assert notes and all("s3cr3t" not in note for note in notes), notes
    assert any("Cannot POST <path>" in note for note in notes)


async def test_an_endpoint_answering_410_is_unsubscribed(hooks: Hooks) -> None:
    """410 Gone is the endpoint asking to stop, as a hard bounce is for email: it is not called again."""
    hooks.receiver.script("/gone", Answer(status=410))
    subscriber = Subscriber(kind="webhook", address=hooks.receiver.url("/gone"), secret="whsec_AAAA")
    await hooks.runtime.store.save_subscribers([subscriber])
    assert await post_update(hooks, API_DOWN) == "0 of 1 subscriber endpoints delivered, 1 refused"
    assert await hooks.runtime.store.subscribers("webhook") == []
    assert await post_update(hooks, API_DOWN) == "0 of 0 subscriber endpoints delivered, 0 refused"
    assert len(hooks.receiver.at("/gone")) == 1
