"""The incident history a calendar quarter a page: history.html the newest quarter with incidents, one
history-YYYY-MM.html per older one, linked both ways; an update renders only the pages it can change."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broadcaster.domain.models import UpdateDraft
from broadcaster.runtime import Runtime
from channels.base import ChannelContext
from channels.mirror import MirrorChannel
from tests.mirror.helpers import render

LINKED = re.compile(r'href="incidents/([0-9a-z]{12})\.html"')


def quarter_page(moment: datetime) -> str:
    first_month = (moment.month - 1) // 3 * 3 + 1
    return f"history-{moment.year}-{first_month:02d}.html"


def quarter_start(moment: datetime) -> datetime:
    return datetime(moment.year, (moment.month - 1) // 3 * 3 + 1, 1, tzinfo=UTC)


async def opened_at(runtime: Runtime, title: str, when: datetime) -> str:
    draft = UpdateDraft(title=title, status="investigating", message="Looking.")
    return (await runtime.store.accept(draft, [], now=when)).incident.id


async def update_files(runtime: Runtime, incident_id: str) -> dict[str, bytes]:
    """What `send` renders for an update of `incident_id`."""
    mirror = MirrorChannel.create(ChannelContext(runtime.settings, runtime.store))
    try:
        return await mirror.update_files(incident_id)
    finally:
        await mirror.aclose()


def history_pages(files: dict[str, bytes] | Path) -> set[str]:
    names = files if isinstance(files, dict) else [p.name for p in files.glob("history*.html")]
    return {name for name in names if name.startswith("history") and name.endswith(".html")}


async def test_each_quarter_has_a_page_and_empty_quarters_none(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    previous = quarter_start(now) - timedelta(days=10)  # the quarter before this one
    older = quarter_start(now) - timedelta(days=200)  # two or three quarters back: one quarter between is empty
    ids = {
        "now": await opened_at(runtime, "Now", now),
        "previous": await opened_at(runtime, "Previous", previous),
        "older": await opened_at(runtime, "Older", older),
    }
    site = await render(runtime)
    pages = {name: (site / name).read_text() for name in history_pages(site)}
    assert set(pages) == {"history.html", quarter_page(previous), quarter_page(older)}
    assert LINKED.findall(pages["history.html"]) == [ids["now"]]
    assert LINKED.findall(pages[quarter_page(previous)]) == [ids["previous"]]
    assert LINKED.findall(pages[quarter_page(older)]) == [ids["older"]]
    # Newer and older, in turn, skipping the empty quarter.
    assert f'class="older" href="{quarter_page(previous)}"' in pages["history.html"]
    assert 'href="history.html">&larr;' in pages[quarter_page(previous)]
    assert f'class="older" href="{quarter_page(older)}"' in pages[quarter_page(previous)]
    assert f'href="{quarter_page(previous)}">&larr;' in pages[quarter_page(older)]
    assert 'class="older"' not in pages[quarter_page(older)]
    assert f"{previous:%B %Y}" in pages[quarter_page(previous)]


async def test_an_update_renders_only_its_own_quarters_page(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    old = await opened_at(runtime, "Old", quarter_start(now) - timedelta(days=10))
    await opened_at(runtime, "Older", quarter_start(now) - timedelta(days=40))
    current = await opened_at(runtime, "Current", now)
    await opened_at(runtime, "Also current", now)
    assert history_pages(await update_files(runtime, current)) == {"history.html"}
    assert history_pages(await update_files(runtime, old)) == {quarter_page(quarter_start(now) - timedelta(days=10))}


async def test_the_first_incident_of_a_quarter_gives_the_last_quarter_its_own_page(runtime: Runtime) -> None:
    """Until then the last quarter was history.html; `send` writes both, as `render` would, byte for byte."""
    now = datetime.now(UTC)
    last_quarter = quarter_start(now) - timedelta(days=10)
    await opened_at(runtime, "Last quarter", last_quarter)
    site = await render(runtime)
    assert history_pages(site) == {"history.html"}
    first = await opened_at(runtime, "First of this quarter", now)
    sent = await update_files(runtime, first)
    assert history_pages(sent) == {"history.html", quarter_page(last_quarter)}
    await render(runtime)
    for name in history_pages(sent):
        assert sent[name] == (site / name).read_bytes(), name


async def test_an_empty_history_is_one_page(runtime: Runtime) -> None:
    site = await render(runtime)
    assert history_pages(site) == {"history.html"}
    assert "No incidents reported." in (site / "history.html").read_text()
    assert "<nav" not in (site / "history.html").read_text()
