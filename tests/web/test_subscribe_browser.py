"""Subscribing in a real browser (Debian's headless Chromium over Playwright): from the status page's link
to the form, the confirmation link from the email a real SMTP server caught, the next update, changing
components and unsubscribing on the page the update email links to; an unconfirmed address receives
nothing and a forged link is refused. No request leaves the service."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, expect

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.web import create_app
from config import load_settings
from tests.channels.email.smtp_server import Recorder, smtp_server
from tests.conftest import WriteConfig
from tests.support.helpers import eventually
from tests.web.conftest import AUTH, TOKEN

CAROL, DAVE = "carol@example.org", "dave@example.org"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Live:
    base: str
    runtime: Runtime
    received: Recorder
    requests: list[str]


@pytest.fixture
async def live(workdir: Path, write_config: WriteConfig) -> AsyncIterator[Live]:
    """The service on a real port, its own address configured, so the status pages link back to it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with smtp_server() as relay:
        config = write_config(
            f'[service]\npublic_url = "{base}"\n'
            f'[mirror]\ndirectories = ["public"]\npublic_url = "{base}/status"\ncomponents = ["API", "Website"]\n'
            f'[auth]\napi_tokens = {{ deploy-bot = "{TOKEN}" }}\n'
            f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {relay.port}\nsecurity = "none"\n'
            'from_addr = "Example Status <status@example.com>"\n'
        )
        runtime = await open_runtime(load_settings(config))
        try:
            async with Dispatcher(runtime, poll_interval=0.05) as dispatcher:
                runner = web.AppRunner(create_app(runtime, dispatcher), shutdown_timeout=0.5)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", port).start()
                try:
                    yield Live(base, runtime, relay.recorder, [])
                finally:
                    await runner.cleanup()
        finally:
            await runtime.close()


async def post_update(live: Live, update: dict[str, object]) -> None:
    url = f"{live.base}/api/v1/updates"
    async with aiohttp.ClientSession() as session, session.post(url, json=update, headers=AUTH) as response:
        assert response.status == 202, await response.text()
        update_id = (await response.json())["update_id"]

    async def settled() -> bool:
        deliveries = await live.runtime.store.deliveries(update_id=update_id)
        return all(d.state.value == "delivered" for d in deliveries)

    await eventually(settled)


def link_in_mail(live: Live, address: str, path: str) -> str:
    body = live.received.messages_to(address)[-1].message.get_body(("plain",))
    assert body is not None
    (link,) = re.findall(rf"{re.escape(live.base + path)}\?token=\S+", body.get_content())
    return str(link)


def subjects(live: Live, address: str) -> list[str]:
    return [str(item.message["Subject"]) for item in live.received.messages_to(address)]


async def open_page(browser: Browser, live: Live) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    page.on("request", lambda request: live.requests.append(request.url))
    return page


async def test_subscribing_from_the_status_page_to_unsubscribing(browser: Browser, live: Live) -> None:
    await post_update(live, {"title": "Slow pages", "status": "investigating", "message": "Pages load slowly."})
    page = await open_page(browser, live)
    await page.goto(f"{live.base}/status/")
    await page.get_by_role("link", name="Subscribe to updates").click()
    await expect(page.get_by_role("heading", name="Get status updates")).to_be_visible()
    await page.get_by_label("Email address").fill(CAROL)
    await page.get_by_label("API").check()
    await page.get_by_role("button", name="Subscribe").click()
    await expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()

    await page.goto(link_in_mail(live, CAROL, "/subscribe/confirm"))
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("heading", name="You are subscribed")).to_be_visible()

    # Dave asks too but never confirms: he gets the confirmation and nothing else.
    await page.goto(f"{live.base}/subscribe")
    await page.get_by_label("Email address").fill(DAVE)
    await page.get_by_role("button", name="Subscribe").click()

    api_down = {"status": "investigating", "message": "Calls fail.", "components": {"API": "major_outage"}}
    await post_update(live, {"title": "API errors", **api_down})
    assert [s.partition("] ")[2] for s in subjects(live, CAROL)[1:]] == ["API errors - Investigating"]
    assert len(subjects(live, DAVE)) == 1, "an unconfirmed address gets nothing but its confirmation"

    await page.goto(link_in_mail(live, CAROL, "/subscribe/manage"))
    await page.get_by_label("API").uncheck()
    await page.get_by_label("Website").check()
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("Saved.")).to_be_visible()
    await post_update(live, {"title": "API errors again", **api_down})
    assert len(subjects(live, CAROL)) == 2, "no longer follows API"

    await page.get_by_role("button", name="Unsubscribe").click()
    await expect(page.get_by_text("gets no status emails")).to_be_visible()
    await post_update(live, {"title": "Everything down", "status": "investigating", "message": "All fails."})
    assert len(subjects(live, CAROL)) == 2
    assert all(url.startswith(live.base) for url in live.requests), "no request leaves the service"


async def test_a_forged_confirmation_link_is_refused(browser: Browser, live: Live) -> None:
    page = await open_page(browser, live)
    await page.goto(f"{live.base}/subscribe")
    await page.get_by_label("Email address").fill(CAROL)
    await page.get_by_role("button", name="Subscribe").click()
    link = link_in_mail(live, CAROL, "/subscribe/confirm")
    payload, _, signature = link.partition("token=")[2].partition(".")
    forged = f"{live.base}/subscribe/confirm?token={payload}.{signature[::-1]}"  # another signature
    response = await page.goto(forged)
    assert response is not None and response.status == 403
    await expect(page.get_by_text("this link is not valid")).to_be_visible()
    await expect(page.get_by_role("heading", name="This link cannot be used")).to_be_visible()
    assert await live.runtime.store.subscribers("email") == []
