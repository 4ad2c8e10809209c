"""The mirror in a real browser (Debian's headless Chromium driven by Playwright), served from loopback as
a web server would serve it: on a phone-sized screen, with nothing fetched from anywhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.mirror.helpers import served
from tests.support.helpers import run_cli

XSS = "<script>alert(1)</script>"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[str]:
    """A mirror built by the real CLI, served by a plain static file server on 127.0.0.1."""
    for args in (
        [
            "--title",
            f"Checkout errors {XSS}",
            "--status",
            "identified",
            "--component",
            "Checkout=major_outage",
            "--component",
            "A component with a rather long name that must wrap=degraded_performance",
            "--next-update",
            "1h",
            "--message",
            f"Payments fail for some cards. {XSS}\n\nA very long unbroken token: {'x' * 300}",
        ],
        ["--title", "Search slowness", "--status", "investigating", "--message", "Searches take seconds."],
    ):
        result = run_cli("send", *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    async with served(tmp_path / "public") as base:
        yield base


@pytest.mark.browser
async def test_the_status_page_on_a_phone(browser: Browser, site: str, tmp_path: Path) -> None:
    """Readable at 390 px wide, no sideways scroll, user text shown as text, nothing loaded but the page."""
    page = await browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    requested: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    response = await page.goto(f"{site}/index.html")
    assert response is not None
    assert response.ok
    await page.wait_for_load_state("networkidle")
    await page.screenshot(path=str(tmp_path / "index-phone.png"), full_page=True)

    assert dialogs == []  # the script in the title and message never ran
    text = await page.inner_text("body")
    assert f"Checkout errors {XSS}" in text
    assert "Critical outage" in text  # the worst open impact: Checkout's major_outage
    assert "Next update by" in text
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # Only the page itself (and the favicon Chromium asks for on its own), all from this origin.
    assert all(url.startswith(site) for url in requested), requested
    assert {url.removeprefix(site) for url in requested} <= {"/index.html", "/favicon.ico"}
    assert await page.evaluate("document.scripts.length") == 0


@pytest.mark.browser
async def test_links_lead_to_the_incident_page(browser: Browser, site: str) -> None:
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    await page.goto(f"{site}/index.html")
    await page.get_by_role("link", name="Search slowness").click()
    await page.wait_for_url("**/incidents/*.html")
    assert await page.inner_text("h1") == "Search slowness"
    assert "Searches take seconds." in await page.inner_text("main")
    await page.get_by_role("link", name="Current status").click()
    await page.wait_for_url("**/index.html")
    assert "active incidents" in (await page.inner_text("main")).lower()
