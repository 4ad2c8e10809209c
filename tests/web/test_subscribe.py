"""Subscribing oneself to the status emails, over HTTP against a real SMTP server: double opt-in (nothing
kept, nothing mailed before the link is opened and confirmed), per-component filtering, the manage page,
and what the form refuses (bad input, forged or expired links, robots, bursts)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.web import create_app
from broadcaster.web.subscriptions.common import REQUESTS_PER_ADDRESS, REQUESTS_PER_CLIENT
from config import load_settings
from tests.channels.email.smtp_server import Recorder, Server, smtp_server
from tests.conftest import WriteConfig
from tests.support.helpers import eventually
from tests.web.conftest import AUTH, TOKEN, Client
from tests.web.incidents import API_DOWN, EVERYTHING, SITE_SLOW

SERVICE = "https://broadcaster.example.com"
CAROL = "carol@example.org"


@dataclass
class Site:
    client: Client
    runtime: Runtime
    received: Recorder


@pytest.fixture
def relay() -> Iterator[Server]:
    with smtp_server() as server:
        yield server


async def open_site(config: Path, relay: Server) -> AsyncIterator[Site]:
    runtime = await open_runtime(load_settings(config))
    try:
        async with (
            Dispatcher(runtime, poll_interval=0.05) as dispatcher,
            TestClient(TestServer(create_app(runtime, dispatcher))) as client,
        ):
            yield Site(client, runtime, relay.recorder)
    finally:
        await runtime.close()


def config_text(relay: Server, *, service_url: str = SERVICE) -> str:
    return (
        f'[service]\npublic_url = "{service_url}"\n'
        '[mirror]\nenabled = false\npublic_url = "https://status.example.com"\npage_title = "Example status"\n'
        'components = ["API", "Website"]\n'
        f'[auth]\napi_tokens = {{ deploy-bot = "{TOKEN}" }}\n'
        f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {relay.port}\nsecurity = "none"\n'
        'from_addr = "Example Status <status@example.com>"\n'
    )


@pytest.fixture
async def site(workdir: Path, write_config: WriteConfig, relay: Server) -> AsyncIterator[Site]:
    """The service with email on and no subscribers file: everyone on the list subscribed themselves."""
    async for opened in open_site(write_config(config_text(relay)), relay):
        yield opened


def link_in(received: Recorder, address: str, path: str, *, index: int = -1) -> URL:
    body = received.messages_to(address)[index].message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    (found,) = re.findall(rf"{re.escape(SERVICE + path)}\?token=\S+", text)
    return URL(found)


async def subscribe(site: Site, address: str, *components: str, **extra: str) -> str:
    data = [("email", address), *(("component", name) for name in components), *extra.items()]
    response = await site.client.post("/subscribe", data=data)
    assert response.status == 200, await response.text()
    return await response.text()


async def confirm(site: Site, link: URL) -> str:
    page = await site.client.get(link.path_qs)
    assert page.status == 200
    html = await page.text()
    token = re.search(r'name="token" value="([^"]+)"', html)
    assert token is not None and "Confirm" in html
    done = await site.client.post("/subscribe/confirm", data={"token": token.group(1)})
    assert done.status == 200
    return await done.text()


async def post_update(site: Site, update: dict[str, Any]) -> str:
    """Post an update and wait until its email delivery is over; the delivery's detail."""
    response = await site.client.post("/api/v1/updates", json=update, headers=AUTH)
    assert response.status == 202, await response.text()
    update_id = (await response.json())["update_id"]

    async def delivered() -> bool:
        return [d.state.value for d in await site.runtime.store.deliveries(update_id=update_id)] == ["delivered"]

    await eventually(delivered)
    (delivery,) = await site.runtime.store.deliveries(update_id=update_id)
    return delivery.detail


async def test_only_a_confirmed_address_gets_updates_for_what_it_follows(site: Site) -> None:
    page = await subscribe(site, CAROL, "API")
    assert "Check your inbox" in page
    assert await site.runtime.store.subscribers("email") == [], "nothing is kept before the link is confirmed"
    assert await post_update(site, API_DOWN) == "0 accepted, 0 refused of 0"
    assert len(site.received.messages_to(CAROL)) == 1, "only the confirmation, no update before confirming"

    link = link_in(site.received, CAROL, "/subscribe/confirm")
    assert "Confirm your subscription" in str(site.received.messages_to(CAROL)[0].message["Subject"])
    assert "You are subscribed" in await confirm(site, link)
    (subscriber,) = await site.runtime.store.subscribers("email")
    assert (subscriber.address, subscriber.components) == (CAROL, ("API",))

    assert await post_update(site, API_DOWN) == "1 accepted, 0 refused of 1"
    assert (await post_update(site, SITE_SLOW)).endswith("1 follow other components")
    assert await post_update(site, EVERYTHING) == "1 accepted, 0 refused of 1"
    subjects = [str(r.message["Subject"]) for r in site.received.messages_to(CAROL)[1:]]
    assert [subject.partition("] ")[2] for subject in subjects] == [
        "API errors - Investigating",
        "Login trouble - Investigating",
    ]


async def test_the_manage_link_in_each_update_changes_components_and_unsubscribes(site: Site) -> None:
    await subscribe(site, CAROL)
    await confirm(site, link_in(site.received, CAROL, "/subscribe/confirm"))
    await post_update(site, SITE_SLOW)
    manage = link_in(site.received, CAROL, "/subscribe/manage")
    token = manage.query["token"]

    page = await site.client.get(manage.path_qs)
    assert page.status == 200 and CAROL in await page.text()
    saved = await site.client.post(
        "/subscribe/manage", data=[("token", token), ("action", "save"), ("component", "API")]
    )
    assert "Saved." in await saved.text()
    assert (await site.runtime.store.subscriber("email", CAROL)).components == ("API",)  # type: ignore[union-attr]
    assert (await post_update(site, SITE_SLOW)).endswith("1 follow other components")

    gone = await site.client.post("/subscribe/manage", data={"token": token, "action": "unsubscribe"})
    assert "gets no status emails" in await gone.text()
    assert await site.runtime.store.subscribers("email") == []
    assert CAROL in await site.runtime.store.suppressed()
    assert await post_update(site, API_DOWN) == "0 accepted, 0 refused of 0"

    await subscribe(site, CAROL)  # asking again, and confirming, lifts the suppression
    await confirm(site, link_in(site.received, CAROL, "/subscribe/confirm"))
    assert CAROL not in await site.runtime.store.suppressed()
    assert await post_update(site, API_DOWN) == "1 accepted, 0 refused of 1"


async def test_the_page_answers_the_same_whether_or_not_the_address_is_subscribed(site: Site) -> None:
    first = await subscribe(site, CAROL)
    await confirm(site, link_in(site.received, CAROL, "/subscribe/confirm"))
    again = await subscribe(site, CAROL)
    assert again == first
    reminder = site.received.messages_to(CAROL)[-1].message
    assert str(reminder["Subject"]) == "Your subscription to updates from Example status"
    assert link_in(site.received, CAROL, "/subscribe/manage").query["token"]


async def test_forged_and_expired_links_are_refused(site: Site) -> None:
    await subscribe(site, CAROL)
    link = link_in(site.received, CAROL, "/subscribe/confirm")
    payload, _, signature = link.query["token"].partition(".")
    forged = await site.client.post("/subscribe/confirm", data={"token": f"{payload}.{signature[::-1]}"})
    assert forged.status == 403 and "not valid" in await forged.text()
    manage_as_confirm = await site.client.get(f"/subscribe/manage?token={link.query['token']}")
    assert manage_as_confirm.status == 403, "a confirmation link is not a manage link"

    clock = site.runtime.clock
    site.runtime.clock = lambda: clock() + 25 * 3600
    expired = await site.client.get(link.path_qs)
    assert expired.status == 410 and "expired" in await expired.text()
    assert await site.runtime.store.subscribers("email") == []


async def test_robots_and_bad_input_are_not_mailed(site: Site) -> None:
    assert "Check your inbox" in await subscribe(site, CAROL, website="https://spam.example")
    bad = await site.client.post("/subscribe", data={"email": "not-an-address"})
    assert bad.status == 400 and "Give an email address" in await bad.text()
    unknown = await site.client.post("/subscribe", data={"email": CAROL, "component": "Billing"})
    assert unknown.status == 400 and "no component named &#39;Billing&#39;" in await unknown.text()
    assert site.received.received == []


async def test_a_bounded_burst_is_limited_per_address_and_per_client(site: Site) -> None:
    for _ in range(REQUESTS_PER_ADDRESS):
        await subscribe(site, CAROL)
    refused = await site.client.post("/subscribe", data={"email": CAROL})
    assert refused.status == 429 and "Retry-After" in refused.headers
    for n in range(REQUESTS_PER_CLIENT - REQUESTS_PER_ADDRESS):
        await subscribe(site, f"person{n}@example.org")
    busy = await site.client.post("/subscribe", data={"email": "one.more@example.org"})
    assert busy.status == 429 and "Too many requests" in await busy.text()
    assert len(site.received.received) == REQUESTS_PER_CLIENT


async def test_without_the_service_address_subscribing_is_not_offered(
    workdir: Path, write_config: WriteConfig, relay: Server
) -> None:
    config = write_config(config_text(relay, service_url=""))
    async for site in open_site(config, relay):
        page = await site.client.get("/subscribe")
        assert page.status == 404 and "not offered" in await page.text()
        posted = await site.client.post("/subscribe", data={"email": CAROL})
        assert posted.status == 404 and site.received.received == []


async def test_a_confirmation_link_works_once_and_not_after_an_unsubscribe(site: Site) -> None:
    await subscribe(site, CAROL, "API")
    link = link_in(site.received, CAROL, "/subscribe/confirm")
    await confirm(site, link)
    again = await site.client.get(link.path_qs)
    assert again.status == 410 and "ask for a new one" in await again.text()

    await post_update(site, API_DOWN)
    manage = link_in(site.received, CAROL, "/subscribe/manage")
    await site.client.post("/subscribe/manage", data={"token": manage.query["token"], "action": "unsubscribe"})
    replayed = await site.client.post("/subscribe/confirm", data={"token": link.query["token"]})
    assert replayed.status == 410
    assert await site.runtime.store.subscribers("email") == [] and CAROL in await site.runtime.store.suppressed()


async def test_after_a_one_click_unsubscribe_the_address_can_subscribe_again(site: Site) -> None:
    """The one-click list and the manage page agree: unsubscribed is unsubscribed, and asking again mails a
    confirmation (not "already subscribed")."""
    await subscribe(site, CAROL)
    await confirm(site, link_in(site.received, CAROL, "/subscribe/confirm"))
    await post_update(site, API_DOWN)
    manage = link_in(site.received, CAROL, "/subscribe/manage")
    await site.runtime.store.suppress({CAROL: "unsubscribed (one-click)"}, source="unsubscribe", now=0.0)
    assert await post_update(site, API_DOWN) == "0 accepted, 0 refused of 0; 1 suppressed"
    page = await site.client.get(manage.path_qs)
    assert "gets no status emails" in await page.text()
    await subscribe(site, CAROL)
    assert "Confirm your subscription" in str(site.received.messages_to(CAROL)[-1].message["Subject"])
    await confirm(site, link_in(site.received, CAROL, "/subscribe/confirm"))
    assert await post_update(site, API_DOWN) == "1 accepted, 0 refused of 1"


async def test_pages_with_links_are_never_cached(site: Site) -> None:
    await subscribe(site, CAROL)
    page = await site.client.get(link_in(site.received, CAROL, "/subscribe/confirm").path_qs)
    assert page.headers["Cache-Control"] == "no-store"
