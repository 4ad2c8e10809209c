"""The commander's pages in a real browser (Debian's headless Chromium, driven by Playwright over CDP) at a
phone's width: signing in, posting through the form, the ledger turning delivered without a reload, and
user text that looks like a script shown as text everywhere, never run. Nothing is fetched from anywhere
but the service itself."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.web.pages.conftest import OTHER_CHANNELS, PASSWORD, USER, XSS, Commander, OpenCommander, hold

PHONE = ViewportSize(width=390, height=844)
STILL_ON_ITS_WAY = '#deliveries tr[data-final="false"]'


class Visit:
    """A browser context at a phone's width that records every request and every dialog."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.context = context
        self.page = page
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        context.on("request", lambda request: self.requests.append(request.url))
        page.on("dialog", lambda dialog: self.dialogs.append(dialog.message))

    async def fits_the_screen(self) -> bool:
        return bool(await self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))

    async def scripts(self) -> list[str]:
        """Every script element's source ("" for an inline one)."""
        found: list[str] = await self.page.evaluate("Array.from(document.scripts, (script) => script.src)")
        return found


@pytest.fixture
async def visit(browser: Browser) -> AsyncIterator[Visit]:
    context = await browser.new_context(viewport=PHONE)
    try:
        yield Visit(context, await context.new_page())
    finally:
        await context.close()


def address(commander: Commander) -> str:
    return str(commander.client.make_url("")).rstrip("/")


async def log_in(visit: Visit, base: str) -> None:
    page = visit.page
    await page.goto(f"{base}/")
    assert page.url == f"{base}/login?next=/"
    assert await visit.fits_the_screen()
    await page.get_by_label("User name").fill(USER)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/")


@pytest.mark.browser
async def test_log_in_post_an_update_and_watch_it_delivered_without_a_reload(
    visit: Visit, commander: Commander
) -> None:
    release = asyncio.Event()
    commander.script.behave = hold(release)  # the scripted deliveries wait until the page has shown them pending
    base = address(commander)
    page = visit.page
    await log_in(visit, base)
    await page.get_by_label("Title of a new incident").fill("Checkout errors")
    await page.get_by_label("Status", exact=True).select_option("identified")
    await page.get_by_label("Component 1: name").fill("Checkout")
    await page.get_by_label("Component 1: state").select_option("partial_outage")
    await page.get_by_label("Next update by").select_option("2h")
    await page.get_by_label("Start from a template").select_option("identified")
    message = page.get_by_label("Message", exact=True)
    filled = await message.input_value()  # by form.js, no reload: the components and time typed above
    assert filled.startswith("We have found the cause of the problems with Checkout and are working on a fix.")
    assert re.search(r"We will post an update by \d{4}-\d\d-\d\d \d\d:\d\d UTC\.$", filled), filled
    await message.fill("A bad deploy; rolling back.")
    assert await visit.fits_the_screen()
    await page.get_by_role("button", name="Send update").click()
    await page.wait_for_url(f"{base}/updates/*")

    await page.evaluate("window.stillTheSamePage = true")  # a reload would forget it
    scripted = page.locator("#deliveries tr", has_text="scripted").locator('[data-field="state"]')
    assert await scripted.count() == 2
    assert "delivered" not in await scripted.all_inner_texts()
    release.set()
    await expect(page.locator(STILL_ON_ITS_WAY)).to_have_count(0, timeout=15_000)
    assert set(await page.locator('#deliveries [data-field="state"]').all_inner_texts()) == {"delivered"}
    assert await page.evaluate("window.stillTheSamePage") is True
    assert await page.inner_text("#live-status") == "Every delivery is final."
    assert "#1 delivered" in await page.locator("#deliveries tr", has_text="scripted").first.inner_text()
    assert f"Signed in as {USER}" in await page.inner_text("header")
    assert await visit.fits_the_screen()

    assert visit.dialogs == []
    assert all(url.startswith(f"{base}/") for url in visit.requests), visit.requests
    assert f"{base}/static/ledger.js" in visit.requests


@pytest.mark.browser
async def test_a_script_in_every_field_is_shown_as_text_and_never_runs(
    visit: Visit, open_commander: OpenCommander, workdir: Path
) -> None:
    (workdir / "subscribers.csv").write_text("someone@example.com\n")
    async with open_commander(OTHER_CHANNELS) as commander:
        for channel in ("x", "email", "webhook"):  # previewed, never sent
            await commander.runtime.store.set_paused(channel, "", paused=True, reason="test", now=0.0)
        base = address(commander)
        page = visit.page
        await log_in(visit, base)
        message_text = f"Payments fail. {XSS}\n\nAn unbroken token: {'x' * 300}"
        await page.get_by_label("Title of a new incident").fill(XSS)
        await page.get_by_label("Component 1: name").fill(XSS)  # with no state: an error
        await page.get_by_label("Message", exact=True).fill(message_text)
        await page.get_by_role("button", name="Preview").click()
        await page.wait_for_load_state()

        # Shown again with the error: every field as typed, the error naming the component as text.
        assert await page.inner_text("#components-error") == f"choose a state for {XSS}"
        assert XSS in await page.inner_text("#error-summary")
        assert await page.get_by_label("Title of a new incident").input_value() == XSS
        assert await page.get_by_label("Component 1: name").input_value() == XSS
        assert await page.get_by_label("Message", exact=True).input_value() == message_text
        assert await visit.fits_the_screen()

        await page.get_by_label("Component 1: state").select_option("major_outage")
        await page.get_by_role("button", name="Preview").click()
        await page.wait_for_load_state()
        assert XSS in await page.inner_text("#preview-x")
        assert await page.inner_text("#preview-email") == f"[Critical outage] {XSS} - Investigating"
        assert await visit.fits_the_screen()  # the long token wraps in the previews too
        assert await visit.scripts() == [f"{base}/static/form.js"]

        for channel in ("x", "email", "webhook"):
            await page.get_by_label(channel, exact=True).uncheck()
        await page.get_by_role("button", name="Send update").click()
        await page.wait_for_url(f"{base}/updates/*")
        assert await page.inner_text("h1") == XSS
        assert XSS in await page.inner_text("#message")
        assert f"{XSS}: Major outage" in await page.inner_text("dl.facts")
        await expect(page.locator(STILL_ON_ITS_WAY)).to_have_count(0, timeout=15_000)
        assert await visit.fits_the_screen()
        assert await visit.scripts() == [f"{base}/static/ledger.js"]
        update_id = page.url.rsplit("/", 1)[1]
        incident_id = (await commander.runtime.store.update(update_id)).incident_id

        async with static_site(workdir / "public") as mirror:
            for path in ("index.html", f"incidents/{incident_id}.html"):
                await page.goto(f"{mirror}/{path}")
                assert XSS in await page.inner_text("main")
                assert await visit.scripts() == []
                assert await visit.fits_the_screen()
        assert visit.dialogs == []
        assert all(url.startswith((f"{base}/", f"{mirror}/")) for url in visit.requests), visit.requests


@asynccontextmanager
async def static_site(directory: Path) -> AsyncIterator[str]:
    """`directory` served by a plain static file server on 127.0.0.1, as any web server would serve the mirror."""
    app = web.Application()
    app.router.add_static("/", directory)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
