"""Unsubscribing, end to end: the email channel mails a real aiosmtpd server, the List-Unsubscribe link is
taken from the message it received and used as a mail client would (RFC 8058 one-click) or as a person
would (the confirmation page), and the next update is not mailed to that address."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.unsubscribe import unsubscribe_token
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.web import create_app
from config import load_settings
from config.keys import stored_secret
from tests.channels.email.smtp_server import Recorder, Server, smtp_server
from tests.conftest import WriteConfig
from tests.support.helpers import eventually
from tests.web.conftest import AUTH, TOKEN, Client

ANN, BOB = "ann@example.org", "bob@example.org"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
UPDATE: dict[str, Any] = {"title": "Checkout errors", "status": "investigating", "message": "Some payments fail."}


@dataclass
class Mailing:
    client: Client
    runtime: Runtime
    received: Recorder


@pytest.fixture
def relay() -> Iterator[Server]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def mailing(workdir: Path, write_config: WriteConfig, relay: Server) -> AsyncIterator[Mailing]:
    """The service with email on (two subscribers, a real SMTP server). Its public address is HTTPS, so
    the emails' unsubscribe links point to its own /unsubscribe, signed with the key it generated."""
    (workdir / "subscribers.txt").write_text(f"{ANN}\n{BOB}\n")
    config = write_config(
        '[service]\npublic_url = "https://broadcaster.example.com"\n'
        '[mirror]\nenabled = false\npublic_url = "https://status.example.com"\n'
        f'[auth]\napi_tokens = {{ deploy-bot = "{TOKEN}" }}\n'
        f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {relay.port}\nsecurity = "none"\n'
        'from_addr = "Example Status <status@example.com>"\nsubscribers_file = "subscribers.txt"\n'
    )
    runtime = await open_runtime(load_settings(config))
    try:
        async with (
            Dispatcher(runtime, poll_interval=0.05) as dispatcher,
            TestClient(TestServer(create_app(runtime, dispatcher))) as client,
        ):
            yield Mailing(client, runtime, relay.recorder)
    finally:
        await runtime.close()


async def post_and_deliver(mailing: Mailing, update: dict[str, Any]) -> tuple[str, str]:
    """Post an update; once its email delivery is done, its incident id and the delivery's detail."""
    response = await mailing.client.post("/api/v1/updates", json=update, headers=AUTH)
    assert response.status == 202
    body = await response.json()

    async def delivered() -> bool:
        deliveries = await mailing.runtime.store.deliveries(update_id=body["update_id"])
        return [d.state for d in deliveries] == ["delivered"]

    await eventually(delivered)
    (delivery,) = await mailing.runtime.store.deliveries(update_id=body["update_id"])
    return str(body["incident_id"]), delivery.detail


def unsubscribe_link(received: Recorder, address: str) -> URL:
    """The List-Unsubscribe URL of the first message `address` received, as a mail client reads it."""
    message = received.messages_to(address)[0].message
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return URL(str(message["List-Unsubscribe"]).strip().removeprefix("<").removesuffix(">"))


def suppressions(workdir: Path) -> list[tuple[str, str]]:
    """The journal's suppression list, read by another connection (as another process would)."""
    with sqlite3.connect(workdir / "var" / "broadcaster.db") as journal:
        return journal.execute("SELECT address, source FROM suppressions ORDER BY address").fetchall()


async def test_one_click_unsubscribe_suppresses_the_address_for_the_next_update(
    mailing: Mailing, workdir: Path
) -> None:
    incident_id, _detail = await post_and_deliver(mailing, UPDATE)
    link = unsubscribe_link(mailing.received, ANN)
    assert (link.scheme, link.host, link.path) == ("https", "broadcaster.example.com", "/unsubscribe")
    assert link.query["email"] == ANN

    forged = unsubscribe_link(mailing.received, BOB).update_query(token="A" * 43)
    refused = await mailing.client.post(forged.path_qs, data=ONE_CLICK)
    assert refused.status == 403
    assert suppressions(workdir) == []

    # As a mail client does it: a POST to the link itself, no cookie, no CSRF token.
    response = await mailing.client.post(link.path_qs, data=ONE_CLICK)
    assert response.status == 200
    assert await response.text() == "Unsubscribed.\n"
    assert suppressions(workdir) == [(ANN, "unsubscribe")]

    second = {"incident_id": incident_id, "status": "identified", "message": "A bad deploy; rolling back."}
    _incident, detail = await post_and_deliver(mailing, second)
    assert detail == "1 accepted, 0 refused of 1; 1 suppressed"
    assert len(mailing.received.messages_to(ANN)) == 1
    assert len(mailing.received.messages_to(BOB)) == 2


async def test_the_confirmation_page_unsubscribes_with_its_button(mailing: Mailing, workdir: Path) -> None:
    await post_and_deliver(mailing, UPDATE)
    link = unsubscribe_link(mailing.received, BOB)
    page = await mailing.client.get(link.path_qs)
    assert page.status == 200
    html = await page.text()
    assert BOB in html
    assert '<form method="post" action="/unsubscribe">' in html
    assert f'name="token" value="{link.query["token"]}"' in html
    assert suppressions(workdir) == []  # showing the page changes nothing

    # The button posts the address and token in the form's body.
    done = await mailing.client.post("/unsubscribe", data={"email": BOB, "token": link.query["token"]})
    assert done.status == 200
    assert "Unsubscribed" in await done.text()
    assert suppressions(workdir) == [(BOB, "unsubscribe")]
    # RFC 8058 allows the one-click body as multipart/form-data too; a second click is harmless.
    again = await mailing.client.post(link.path_qs, data=FormData(ONE_CLICK, default_to_multipart=True))
    assert (again.status, await again.text()) == (200, "Unsubscribed.\n")
    assert again.request_info.headers["Content-Type"].startswith("multipart/form-data")
    assert suppressions(workdir) == [(BOB, "unsubscribe")]


@pytest.fixture
async def service_only(workdir: Path, write_config: WriteConfig) -> AsyncIterator[Client]:
    """The service with its generated link key, no channel running: for the refusals."""
    runtime = await open_runtime(load_settings(write_config("[mirror]\nenabled = false\n")))
    try:
        async with TestClient(TestServer(create_app(runtime, Dispatcher(runtime, channels=[])))) as client:
            yield client
    finally:
        await runtime.close()


async def test_a_link_without_a_valid_token_is_refused(service_only: Client, workdir: Path) -> None:
    key = stored_secret(workdir / "var", "unsubscribe")
    someone_elses = unsubscribe_token(key, BOB)
    for query in ({"email": ANN, "token": someone_elses}, {"email": ANN, "token": ""}, {"email": ANN}):
        page = await service_only.get("/unsubscribe", params=query)
        assert page.status == 403
        assert "This unsubscribe link is not valid" in await page.text()
        one_click = await service_only.post(URL("/unsubscribe").with_query(query), data=ONE_CLICK)
        assert (one_click.status, await one_click.text()) == (403, "This unsubscribe link is not valid.\n")
    missing = await service_only.get("/unsubscribe", params={"token": unsubscribe_token(key, ANN)})
    assert missing.status == 400
    assert "no address" in await missing.text()
    assert (await service_only.post("/unsubscribe", data={})).status == 400
    assert suppressions(workdir) == []


async def test_the_address_is_shown_as_text(service_only: Client, workdir: Path) -> None:
    address = '"<script>alert(1)</script>"@example.org'
    token = unsubscribe_token(stored_secret(workdir / "var", "unsubscribe"), address)
    page = await service_only.get("/unsubscribe", params={"email": address, "token": token})
    assert page.status == 200
    html = await page.text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html


async def test_a_configured_secret_is_the_one_links_are_checked_with(workdir: Path, write_config: WriteConfig) -> None:
    config = write_config('[mirror]\nenabled = false\n[email]\nunsubscribe_secret = "configured-secret-5d1c"\n')
    runtime = await open_runtime(load_settings(config))
    try:
        async with TestClient(TestServer(create_app(runtime, Dispatcher(runtime, channels=[])))) as client:
            signed = unsubscribe_token(b"configured-secret-5d1c", ANN)
            generated = unsubscribe_token(stored_secret(workdir / "var", "unsubscribe"), ANN)
            refused = await client.post(URL("/unsubscribe").with_query(email=ANN, token=generated), data=ONE_CLICK)
            assert refused.status == 403
            accepted = await client.post(URL("/unsubscribe").with_query(email=ANN, token=signed), data=ONE_CLICK)
            assert accepted.status == 200
    finally:
        await runtime.close()
    assert suppressions(workdir) == [(ANN, "unsubscribe")]
