"""Every kind of page of the mirror in a real browser (the session's headless Chromium), at a desktop's and
a phone's width, in the light and the dark colour scheme: screenshots into the test's directory (looked at
by people, never compared), and what a reader needs checked as the browser computes it: no sideways
scroll, the maintenance window, the uptime bars and their text, WCAG AA contrast of every text, and no
request leaving the page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.async_api import Browser, ViewportSize

from broadcaster.domain.models import UpdateDraft
from broadcaster.runtime import Runtime
from tests.mirror.contrast import LARGE, TEXT, alpha, colour, contrast
from tests.mirror.helpers import journal_scenario, render, served

WIDTHS: Final = {"desktop": ViewportSize(width=1280, height=800), "phone": ViewportSize(width=390, height=844)}
LINK: Final = "https://example.com/status-details?from=page&x=1"

# For every element with text of its own, and every bar of an uptime chart: its colour (fill, for a bar),
# the first opaque background behind it, and its font. Transparent backgrounds are looked through;
# a half-transparent one is returned as is, for the test to refuse.
_COLOURS_IN_USE: Final = """() => {
  const behind = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const background = getComputedStyle(node).backgroundColor;
      if (!/^rgba\\(.*,\\s*0\\)$/.test(background) && background !== "transparent") return background;
    }
    return "rgb(255, 255, 255)";
  };
  const found = [];
  for (const element of document.body.querySelectorAll("*")) {
    const own = Array.from(element.childNodes).some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    const style = getComputedStyle(element);
    if (own) {
      found.push({what: element.tagName + "." + element.className, text: element.textContent.trim().slice(0, 40),
                  colour: style.color, background: behind(element), size: parseFloat(style.fontSize),
                  weight: parseInt(style.fontWeight, 10)});
    }
    if (element.tagName === "rect") {
      found.push({what: "rect." + element.getAttribute("class"), text: "", colour: style.fill,
                  background: behind(element.closest("svg")), size: 0, weight: 0, graphic: true});
    }
  }
  return found;
}"""


@dataclass(frozen=True, slots=True)
class Site:
    base: str
    pages: dict[str, str]
    """Path of each kind of page: the index (quiet, and with incidents), an incident, a maintenance and
    the history."""


@pytest.fixture
async def site(runtime: Runtime) -> AsyncIterator[Site]:
    """An outage under way (with a link in its latest message), a resolved incident and a scheduled
    maintenance, rendered in-process and served from 127.0.0.1; beside them, the index of the site before
    anything happened (quiet.html), for the operational banner's colours."""
    quiet = (await render(runtime)) / "index.html"
    quiet.rename(quiet.with_name("quiet.html"))
    ids = await journal_scenario(runtime)
    await runtime.submit(
        UpdateDraft(incident_id=ids["outage"], status="identified", message=f"Details at {LINK}, as they come.")
    )
    async with served(await render(runtime)) as base:
        yield Site(
            base,
            {
                "quiet": "/quiet.html",
                "index": "/index.html",
                "incident": f"/incidents/{ids['outage']}.html",
                "maintenance": f"/incidents/{ids['maintenance']}.html",
                "history": "/history.html",
            },
        )


def large(item: dict[str, Any]) -> bool:
    """WCAG's large text: 18 pt (24 px), or 14 pt (18.66 px) bold; graphics need the same 3:1."""
    return bool(item.get("graphic")) or item["size"] >= 24 or (item["size"] >= 18.66 and item["weight"] >= 700)


def poor_contrast(found: list[dict[str, Any]]) -> list[str]:
    poor = []
    for item in found:
        assert alpha(item["background"]) == 1, f"a half-transparent background cannot be judged: {item}"
        ratio = contrast(colour(item["colour"]), colour(item["background"]))
        if ratio < (LARGE if large(item) else TEXT):
            poor.append(f"{item['what']} {item['text']!r}: {item['colour']} on {item['background']} = {ratio:.2f}")
    return poor


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", list(WIDTHS))
async def test_each_page_reads_well_and_stays_on_its_own(
    browser: Browser, site: Site, tmp_path: Path, width: str, scheme: str
) -> None:
    context = await browser.new_context(viewport=WIDTHS[width], color_scheme="dark" if scheme == "dark" else "light")
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    try:
        page = await context.new_page()
        for name, path in site.pages.items():
            response = await page.goto(site.base + path)
            assert response is not None and response.ok, path
            await page.wait_for_load_state("networkidle")
            await page.screenshot(path=str(tmp_path / f"{name}-{width}-{scheme}.png"), full_page=True)
            assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
            found = await page.evaluate(_COLOURS_IN_USE)
            assert len(found) > 10, name  # the walk found the page's text
            assert poor_contrast(found) == [], name
    finally:
        await context.close()
    assert all(url.startswith(site.base + "/") for url in requested), requested
    assert {url.removeprefix(site.base) for url in requested} <= {*site.pages.values(), "/favicon.ico"}


@pytest.mark.browser
async def test_the_maintenance_page_shows_its_window(browser: Browser, site: Site, runtime: Runtime) -> None:
    (maintenance,) = [i for i in await runtime.store.incidents() if i.scheduled_for]
    assert maintenance.scheduled_for is not None and maintenance.scheduled_until is not None
    page = await browser.new_page(viewport=WIDTHS["phone"])
    await page.goto(site.base + site.pages["maintenance"])
    shown = await page.inner_text("main .meta .window")
    assert maintenance.scheduled_for.strftime("%d %b %Y, %H:%M").lstrip("0") in shown
    assert maintenance.scheduled_until.strftime("%H:%M UTC") in shown


@pytest.mark.browser
async def test_the_uptime_bars_are_there_with_their_text(browser: Browser, site: Site) -> None:
    page = await browser.new_page(viewport=WIDTHS["phone"])
    await page.goto(site.base + site.pages["index"])
    for name in ["API", "Dashboard", "Billing"]:
        bars = page.get_by_role("img", name=f"{name}: ")
        assert await bars.count() == 1, name
        assert await bars.locator("rect").count() == 90
        box = await bars.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 20
        label = await bars.get_attribute("aria-labelledby")
        text = await page.locator(f"#{label}").inner_text()
        assert text.startswith(f"{name}: ") and "uptime over the last 90 days" in text


@pytest.mark.browser
async def test_a_link_in_a_message_can_be_followed_and_names_no_referrer_credit(browser: Browser, site: Site) -> None:
    page = await browser.new_page(viewport=WIDTHS["phone"])
    await page.goto(site.base + site.pages["incident"])
    link = page.get_by_role("link", name=LINK)
    assert await link.get_attribute("href") == LINK
    assert await link.get_attribute("rel") == "nofollow noopener"


@pytest.mark.browser
@pytest.mark.parametrize("name", ["index", "incident", "maintenance"])
async def test_a_card_is_padded_alike_above_and_below(browser: Browser, site: Site, name: str) -> None:
    page = await browser.new_page(viewport=WIDTHS["desktop"])
    await page.goto(site.base + site.pages[name])
    gaps: list[list[float]] = await page.evaluate("""() => Array.from(document.querySelectorAll(".card"), (card) => {
      const box = card.getBoundingClientRect(), style = getComputedStyle(card);
      const first = card.firstElementChild.getBoundingClientRect();
      const last = card.lastElementChild.getBoundingClientRect();
      const top = first.top - box.top - parseFloat(style.borderTopWidth);
      const bottom = box.bottom - parseFloat(style.borderBottomWidth) - last.bottom;
      return [top, bottom];
    })""")
    assert gaps
    assert all(abs(top - bottom) < 0.5 for top, bottom in gaps), gaps
